//! Opaque, integrity-protected pagination cursors.
//!
//! A cursor is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`. The payload holds
//! the position after the last item of the page, a fingerprint of the query it belongs to and
//! an expiry. A cursor whose bytes were changed, that belongs to another query, or that expired
//! is refused. The key comes from Secrets Manager (`CURSOR_KEY_SECRET_ID`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a cursor stays usable.
pub const CURSOR_TTL_SECONDS: u64 = 3600;

/// Where the next page starts: after this item in the query's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Search rank (search queries only).
    #[serde(rename = "s", skip_serializing_if = "Option::is_none", default)]
    pub score: Option<u32>,
    #[serde(rename = "t")]
    pub starts_at: String,
    #[serde(rename = "i")]
    pub id: String,
}

impl Position {
    /// The position after the item `id` of a listing in one key order.
    pub fn after_id(id: impl Into<String>) -> Self {
        Position {
            score: None,
            starts_at: String::new(),
            id: id.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u8,
    q: String,
    e: u64,
    #[serde(flatten)]
    p: Position,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    Malformed,
    Tampered,
    OtherQuery,
    Expired,
}

impl std::fmt::Display for CursorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CursorError::Malformed => "the cursor is not one this API issued",
            CursorError::Tampered => "the cursor was altered",
            CursorError::OtherQuery => "the cursor belongs to a different query",
            CursorError::Expired => "the cursor expired; start again from the first page",
        })
    }
}

/// The query a cursor is bound to, as a short digest of its canonical parameters.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    data_encoding::HEXLOWER.encode(&h.finalize()[..16])
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload);
    m
}

pub fn encode(key: &[u8], query: &str, position: &Position, now: u64) -> String {
    let payload = serde_json::to_vec(&Payload {
        v: 1,
        q: query.to_owned(),
        e: now + CURSOR_TTL_SECONDS,
        p: position.clone(),
    })
    .expect("a cursor payload serialises");
    let tag = mac(key, &payload).finalize().into_bytes();
    format!("{}.{}", B64.encode(&payload), B64.encode(tag))
}

pub fn decode(key: &[u8], query: &str, cursor: &str, now: u64) -> Result<Position, CursorError> {
    let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
    let payload = B64.decode(payload).map_err(|_| CursorError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| CursorError::Malformed)?;
    mac(key, &payload)
        .verify_slice(&tag)
        .map_err(|_| CursorError::Tampered)?;
    let p: Payload = serde_json::from_slice(&payload).map_err(|_| CursorError::Malformed)?;
    if p.v != 1 {
        return Err(CursorError::Malformed);
    }
    if p.q != query {
        return Err(CursorError::OtherQuery);
    }
    if p.e <= now {
        return Err(CursorError::Expired);
    }
    Ok(p.p)
}

/// The cursor key, read from Secrets Manager (`CURSOR_KEY_SECRET_ID`) through the secrets cache.
pub type CursorKey = crate::secrets::SecretKey;

/// The cursor key of this function. Fails at start, naming `CURSOR_KEY_SECRET_ID`, when it is
/// not set.
pub fn cursor_key(app: &crate::App) -> anyhow::Result<CursorKey> {
    CursorKey::from_env(app, "CURSOR_KEY_SECRET_ID", "pagination cursor key")
}

/// The `cursor` query parameter decoded, or a 400 naming it.
pub fn decode_param(
    key: &[u8],
    query: &str,
    cursor: Option<&str>,
    now: u64,
) -> Result<Option<Position>, crate::ApiError> {
    cursor
        .map(|c| {
            decode(key, query, c, now).map_err(|e| {
                crate::ApiError::bad_request(format!("cursor: {e}")).field("cursor", e.to_string())
            })
        })
        .transpose()
}

/// The largest page any listing serves (`limit`'s maximum in the OpenAPI document).
pub const MAX_LIMIT: usize = 100;

/// The `limit` query parameter: 1 to `max`, `default` when absent.
pub fn parse_limit(
    raw: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, crate::ApiError> {
    match raw {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(l) if (1..=max).contains(&l) => Ok(l),
            _ => Err(crate::ApiError::validation(
                "limit",
                format!("must be an integer from 1 to {max}"),
            )),
        },
    }
}

/// One page of a listing: its size, where it starts (from a cursor checked against the key
/// and the listing's query) and how the cursor of the next page is signed.
pub struct Page {
    pub limit: usize,
    pub after: Option<Position>,
    key: Vec<u8>,
    query: String,
    now: u64,
}

impl Page {
    /// The page `req` asks for (`limit`: 1 to [`MAX_LIMIT`], `default` when absent; `cursor`)
    /// of the listing whose canonical parameters are `query`.
    pub async fn of(
        req: &lambda_http::Request,
        key: &CursorKey,
        default: usize,
        query: &[&str],
    ) -> Result<Page, crate::ApiError> {
        use lambda_http::RequestExt;
        let params = req.query_string_parameters();
        let limit = parse_limit(params.first("limit"), default, MAX_LIMIT)?;
        Page::at(key, query, params.first("cursor"), limit).await
    }

    /// The page of `limit` items after `cursor` (a 400 naming it when it is not a live cursor
    /// of this listing).
    pub async fn at(
        key: &CursorKey,
        query: &[&str],
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, crate::ApiError> {
        let key = key.get().await?;
        let query = fingerprint(query);
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let after = decode_param(&key, &query, cursor, now)?;
        Ok(Page {
            limit,
            after,
            key,
            query,
            now,
        })
    }

    /// The cursor of the next page, which starts after `last` (None: this page is the last).
    pub fn next(&self, last: Option<Position>) -> Option<String> {
        last.map(|p| encode(&self.key, &self.query, &p, self.now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn position() -> impl Strategy<Value = Position> {
        (
            proptest::option::of(0u32..1000),
            "[0-9TZ:-]{1,25}",
            "evt_[0-9a-f]{28}",
        )
            .prop_map(|(score, starts_at, id)| Position {
                score,
                starts_at,
                id,
            })
    }

    proptest! {
        #[test]
        fn round_trips(p in position(), q in "[a-z0-9]{1,32}", now in 0u64..4_000_000_000) {
            let c = encode(KEY, &q, &p, now);
            prop_assert_eq!(decode(KEY, &q, &c, now), Ok(p));
        }

        #[test]
        fn any_changed_byte_is_refused(p in position(), i in any::<prop::sample::Index>(), x in 1u8..=255) {
            let c = encode(KEY, "q", &p, 1000);
            let mut bytes = c.into_bytes();
            let at = i.index(bytes.len());
            bytes[at] ^= x;
            // A change that is not even text is refused by the HTTP layer before us.
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(decode(KEY, "q", &changed, 1000).is_err(), "{changed}");
            }
        }

        #[test]
        fn truncation_or_extension_is_refused(p in position(), cut in 1usize..10) {
            let c = encode(KEY, "q", &p, 1000);
            prop_assert!(decode(KEY, "q", &c[..c.len() - cut], 1000).is_err());
            let extended = format!("{c}A");
            prop_assert!(decode(KEY, "q", &extended, 1000).is_err());
        }
    }

    #[test]
    fn foreign_expired_and_wrong_key_cursors_are_refused() {
        let p = Position {
            score: None,
            starts_at: "2030-01-01T00:00:00Z".into(),
            id: "evt_1".into(),
        };
        let c = encode(KEY, "query-a", &p, 1000);
        assert_eq!(
            decode(KEY, "query-b", &c, 1000),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(
            decode(KEY, "query-a", &c, 1000 + CURSOR_TTL_SECONDS),
            Err(CursorError::Expired)
        );
        assert_eq!(
            decode(b"another key", "query-a", &c, 1000),
            Err(CursorError::Tampered)
        );
        assert_eq!(
            decode(KEY, "query-a", "garbage", 1000),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn fingerprints_do_not_collide_by_concatenation() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }
}
