//! The JWT attack suite: every forged, stale or foreign token is refused; a token of the
//! previous key keeps verifying after one rotation and stops once its key is dropped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use shared::auth::{Claims, KeyDocument, KeySet, Role, TokenError, new_claims, now_unix};

const ISS: &str = "https://city-events.test";
const AUD: &str = "city-events-api";

fn doc() -> KeyDocument {
    KeyDocument {
        keys: vec![KeyDocument::generate_key(now_unix()).unwrap()],
    }
}

fn claims() -> Claims {
    new_claims(ISS, AUD, "usr_1", &[Role::Attendee], "sess_1")
}

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let h = serde_json::from_slice(&B64.decode(p[0]).unwrap()).unwrap();
    let c = serde_json::from_slice(&B64.decode(p[1]).unwrap()).unwrap();
    (h, c, p[2].to_owned())
}

fn assemble(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn refused(set: &KeySet, token: &str) -> TokenError {
    set.verify(token, ISS, AUD)
        .expect_err("the token must be refused")
}

#[test]
fn a_fresh_token_verifies_with_every_claim() {
    let set = KeySet::from_document(&doc()).unwrap();
    let token = set.sign(&claims()).unwrap();
    let (h, c, _) = parts(&token);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["kid"], set.current_kid());
    for claim in ["iss", "aud", "sub", "roles", "jti", "iat", "nbf", "exp"] {
        assert!(c.get(claim).is_some(), "{claim} missing");
    }
    assert!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap() <= 15 * 60);
    assert_eq!(set.verify(&token, ISS, AUD).unwrap().sub, "usr_1");
}

#[test]
fn alg_none_is_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let (mut h, c, _) = parts(&set.sign(&claims()).unwrap());
    h["alg"] = json!("none");
    let err = refused(&set, &assemble(&h, &c, ""));
    assert!(
        matches!(err, TokenError::Malformed | TokenError::Algorithm),
        "{err:?}"
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let (mut h, c, _) = parts(&set.sign(&claims()).unwrap());
    h["alg"] = json!("HS256");
    let public = serde_json::to_vec(&set.jwks()["keys"][0]).unwrap();
    let signing_input = format!(
        "{}.{}",
        B64.encode(h.to_string()),
        B64.encode(c.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&public).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    assert_eq!(
        refused(&set, &format!("{signing_input}.{sig}")),
        TokenError::Algorithm
    );
}

#[test]
fn unknown_and_hostile_kids_are_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let token = set.sign(&claims()).unwrap();
    let (h, c, sig) = parts(&token);
    for kid in [
        "unknown",
        "../../etc/passwd",
        "k1\" OR \"1\"=\"1",
        "'; DROP TABLE keys; --",
        "",
    ] {
        let mut h = h.clone();
        h["kid"] = json!(kid);
        assert_eq!(
            refused(&set, &assemble(&h, &c, &sig)),
            TokenError::UnknownKey,
            "{kid}"
        );
    }
    let mut no_kid = h.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        refused(&set, &assemble(&no_kid, &c, &sig)),
        TokenError::UnknownKey
    );
}

/// A change made to otherwise valid claims before signing.
type Tamper = Box<dyn Fn(&mut Claims)>;

#[test]
fn expired_not_yet_valid_foreign_and_mistyped_tokens_are_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let now = now_unix();
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "expired",
            Box::new(move |c| {
                c.iat = now - 3600;
                c.nbf = now - 3600;
                c.exp = now - 60;
            }),
        ),
        ("nbf in the future", Box::new(move |c| c.nbf = now + 600)),
        (
            "wrong iss",
            Box::new(|c| c.iss = "https://evil.example".into()),
        ),
        ("wrong aud", Box::new(|c| c.aud = "another-api".into())),
    ];
    for (name, tamper) in cases {
        let mut c = claims();
        tamper(&mut c);
        let token = set.sign(&c).unwrap();
        assert!(
            matches!(refused(&set, &token), TokenError::Invalid(_)),
            "{name}"
        );
    }
    // Within the leeway, a just-expired token still verifies (clock skew).
    let mut c = claims();
    c.exp = now - 10;
    assert!(set.verify(&set.sign(&c).unwrap(), ISS, AUD).is_ok());
}

#[test]
fn a_wrong_typ_is_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let (mut h, c, sig) = parts(&set.sign(&claims()).unwrap());
    h["typ"] = json!("JWT");
    assert_eq!(refused(&set, &assemble(&h, &c, &sig)), TokenError::Type);
}

#[test]
fn a_payload_altered_after_signing_is_refused() {
    let set = KeySet::from_document(&doc()).unwrap();
    let (h, mut c, sig) = parts(&set.sign(&claims()).unwrap());
    c["roles"] = json!(["admin"]);
    assert!(matches!(
        refused(&set, &assemble(&h, &c, &sig)),
        TokenError::Invalid(_)
    ));
}

#[test]
fn the_previous_key_verifies_after_one_rotation_and_a_dropped_key_does_not() {
    let first = doc();
    let old_token = KeySet::from_document(&first)
        .unwrap()
        .sign(&claims())
        .unwrap();

    let mut second_key = KeyDocument::generate_key(now_unix() + 1).unwrap();
    second_key.created_at = first.keys[0].created_at + 10;
    let rotated = first.rotated(second_key);
    let set = KeySet::from_document(&rotated).unwrap();
    assert_eq!(set.kids().len(), 2);
    assert!(
        set.verify(&old_token, ISS, AUD).is_ok(),
        "tokens of the previous key keep verifying"
    );
    assert_ne!(
        parts(&set.sign(&claims()).unwrap()).0["kid"],
        parts(&old_token).0["kid"]
    );

    // A second rotation, long after: the first key is older than twice the token lifetime.
    let mut third_key = KeyDocument::generate_key(now_unix()).unwrap();
    third_key.created_at = first.keys[0].created_at + 10 + 3_600;
    let set = KeySet::from_document(&rotated.rotated(third_key)).unwrap();
    assert_eq!(set.kids().len(), 2);
    assert_eq!(refused(&set, &old_token), TokenError::UnknownKey);
}
