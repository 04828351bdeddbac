//! Refresh-token rotation and reuse detection, written against the narrow [`RefreshStore`]
//! port: [`rotate`] decides, the store only reads and makes one conditional write at a time.
//! The DynamoDB adapter is [`crate::store::Store`]; [`crate::memory::MemoryAuth`] is the
//! in-memory twin the unit tests run the rules against.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::ddb::Retry;

use crate::model::User;

/// A just-rotated refresh token presented again within this many seconds (a retry after a lost
/// answer, a second tab) gets the same successor instead of revoking its family.
pub const REFRESH_GRACE_SECONDS: u64 = 30;
/// Tries of the rotation transaction when DynamoDB cancels it for a TransactionConflict.
pub const REFRESH_ATTEMPTS: u32 = 4;

/// A refresh token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub user_id: String,
    pub family: String,
    pub used: bool,
    pub used_at: Option<u64>,
    pub expires_at: u64,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    Rotated {
        user: Box<User>,
        family: String,
        token: String,
        /// The token had just been rotated: this is the same successor again (grace).
        again: bool,
    },
    /// A retired token came back: the family is revoked.
    Reused {
        user_id: String,
        family: String,
    },
    Invalid,
    /// DynamoDB kept cancelling the rotation for conflicts: nothing changed, try again.
    Busy,
}

/// What one try of the rotation transaction found (when it was not a conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The token is retired and its successor written.
    Rotated,
    /// The session is gone or revoked: nothing was written.
    SessionRevoked,
    /// The token was retired meanwhile, or its successor exists: nothing was written.
    UsedMeanwhile,
}

/// The storage the rotation needs.
pub trait RefreshStore: Send + Sync {
    /// The record of `token` (stored under its digest), read consistently; `None`: unknown.
    fn refresh_record(
        &self,
        token: &str,
    ) -> impl Future<Output = anyhow::Result<Option<RefreshRecord>>> + Send;

    /// One try of the rotation, all or nothing: retires `token` (only while it is active),
    /// writes `next` for `record`'s user and family (only if it does not exist), on condition
    /// that the session exists and is not revoked. `None`: a conflict or throttling cancelled
    /// it, nothing was written, and the same try may pass later.
    fn try_rotate(
        &self,
        token: &str,
        record: &RefreshRecord,
        next: &str,
        now: u64,
    ) -> impl Future<Output = anyhow::Result<Option<Outcome>>> + Send;

    /// Whether the session exists and is not revoked, read consistently.
    fn session_active(
        &self,
        user_id: &str,
        family: &str,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// The user, read consistently; `None` when deleted.
    fn user(&self, id: &str) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;

    /// Revokes the session (the family): its refresh tokens no longer rotate. A session that
    /// is gone or already revoked is no error.
    fn revoke_session(
        &self,
        user_id: &str,
        family: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Whether a token used at `used_at` is still in its grace at `now`.
pub fn in_refresh_grace(used_at: Option<u64>, now: u64) -> bool {
    used_at.is_some_and(|t| now.saturating_sub(t) <= REFRESH_GRACE_SECONDS)
}

/// The successor of a refresh token: derived with a key only the refresh function holds, not
/// stored, so a retry in the grace gets the same successor while the table keeps only digests.
/// Whoever lacks the key cannot compute it from an old token.
pub fn successor_token(key: &[u8], family: &str, token: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, token.as_bytes());
    format!("{family}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The refresh function's retry policy: [`REFRESH_ATTEMPTS`] tries of the transaction within
/// 3 s, 25 ms to 400 ms apart (jittered).
pub fn rotation_retry() -> Retry {
    Retry::within("RotateRefresh", Duration::from_secs(3))
        .pacing(Duration::from_millis(25), Duration::from_millis(400))
        .attempts(REFRESH_ATTEMPTS)
}

/// Presents a refresh token: rotates it (one transaction: retire the old, write the new, on
/// condition the old is still active and its session not revoked), or detects reuse. The
/// successor is derived from the token with `key` ([`successor_token`]): the same token
/// presented again within [`REFRESH_GRACE_SECONDS`] of its rotation gets the same successor as
/// long as that one is unused; later, or once the successor was used, it is a reuse and revokes
/// the family. A concurrent rotation of the same token (its transaction wins) is read again and
/// lands in the grace; a conflict is retried with `retry`'s backoff, then answers
/// [`Rotation::Busy`].
pub async fn rotate(
    store: &impl RefreshStore,
    token: &str,
    key: &[u8],
    now: u64,
    mut retry: Retry,
) -> anyhow::Result<Rotation> {
    while retry.can_try() {
        let Some(record) = store.refresh_record(token).await? else {
            return Ok(Rotation::Invalid);
        };
        if record.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        let next = successor_token(key, &record.family, token);
        if record.used {
            return present_again(store, record, next, now).await;
        }
        match store.try_rotate(token, &record, &next, now).await? {
            Some(Outcome::Rotated) => return handed_out(store, record, next, false).await,
            Some(Outcome::SessionRevoked) => return Ok(Rotation::Invalid),
            // Another request retired the token first: read it again (the grace decides). Or a
            // conflict: try again.
            Some(Outcome::UsedMeanwhile) | None => {
                if !retry.wait().await {
                    break;
                }
            }
        }
    }
    metrics::counter!("RefreshConflicts").increment(1);
    Ok(Rotation::Busy)
}

/// The successor `next` of `record`'s token, handed out with its user's current account
/// (none left: invalid). `again`: the same successor as before, within the grace.
async fn handed_out(
    store: &impl RefreshStore,
    record: RefreshRecord,
    next: String,
    again: bool,
) -> anyhow::Result<Rotation> {
    Ok(match store.user(&record.user_id).await? {
        Some(user) => Rotation::Rotated {
            user: Box::new(user),
            family: record.family,
            token: next,
            again,
        },
        None => Rotation::Invalid,
    })
}

/// A used token came back: within the grace, and while its successor is unused and the
/// session live, the same successor again; otherwise a reuse, which revokes the family.
async fn present_again(
    store: &impl RefreshStore,
    record: RefreshRecord,
    next: String,
    now: u64,
) -> anyhow::Result<Rotation> {
    if in_refresh_grace(record.used_at, now) {
        let successor = store.refresh_record(&next).await?;
        if successor.as_ref().is_some_and(|r| !r.used) {
            if !store
                .session_active(&record.user_id, &record.family)
                .await?
            {
                return Ok(Rotation::Invalid);
            }
            return handed_out(store, record, next, true).await;
        }
    }
    store
        .revoke_session(&record.user_id, &record.family)
        .await?;
    Ok(Rotation::Reused {
        user_id: record.user_id,
        family: record.family,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_key_and_unguessable_without_the_key() {
        let t = "ses_1.abc";
        let next = successor_token(b"key one", "ses_1", t);
        assert_eq!(next, successor_token(b"key one", "ses_1", t));
        assert_ne!(next, successor_token(b"key two", "ses_1", t));
        assert_ne!(next, successor_token(b"key one", "ses_1", "ses_1.abd"));
        assert!(next.starts_with("ses_1.") && next.len() == "ses_1.".len() + 43);
    }

    #[test]
    fn the_grace_is_thirty_seconds_from_the_rotation() {
        assert!(in_refresh_grace(Some(100), 100));
        assert!(in_refresh_grace(Some(100), 130));
        assert!(!in_refresh_grace(Some(100), 131));
        assert!(!in_refresh_grace(None, 100));
        assert!(
            in_refresh_grace(Some(100), 90),
            "a clock behind the writer's"
        );
    }
}
