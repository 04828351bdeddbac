//! Redaction of log records: nothing that identifies or authenticates a person (emails,
//! passwords, tokens, Authorization headers, cookies, one-time codes) leaves the process in a
//! log line, whatever a developer passes to a `tracing` macro.
//!
//! Two passes: a field whose *name* is sensitive loses its value entirely; in every other
//! string, values that *look* sensitive (emails, JWTs, bearer credentials, `password=...` pairs
//! inside free text such as an echoed body) are masked.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub const MASK: &str = "[REDACTED]";

const SENSITIVE_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "email",
    "otp",
    "totp",
    "recovery",
    "api_key",
    "apikey",
    "credential",
    "private_key",
];

/// Whether a field with this name must never be logged with its value.
pub fn is_sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_NAMES.iter().any(|s| name.contains(s))
}

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    let names = SENSITIVE_NAMES.join("|");
    vec![
        // "password": "hunter2", password=hunter2, token: abc — inside free text.
        (
            Regex::new(&format!(
                r#"(?i)("?[A-Za-z0-9_\-]*(?:{names})[A-Za-z0-9_\-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|[^\s,;&}}:][^\s,;&}}]*)"#
            ))
            .expect("valid regex"),
            "${1}\"[REDACTED]\"",
        ),
        (
            Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+").expect("valid regex"),
            "$1 [REDACTED]",
        ),
        (
            Regex::new(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
                .expect("valid regex"),
            "[REDACTED_JWT]",
        ),
        (
            Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}").expect("valid regex"),
            "[REDACTED_EMAIL]",
        ),
    ]
});

/// Masks sensitive-looking values inside free text.
pub fn redact_text(text: &str) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for (re, replacement) in PATTERNS.iter() {
        if re.is_match(&out) {
            out = std::borrow::Cow::Owned(re.replace_all(&out, *replacement).into_owned());
        }
    }
    out.into_owned()
}

/// Redacts a JSON value in place: by field name, then by value shape.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            let redacted = redact_text(s);
            if redacted != *s {
                *s = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_sensitive_name(key) {
                    *v = Value::String(MASK.to_owned());
                } else {
                    redact_value(v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_field_names_lose_their_values() {
        let mut v = json!({"password": "correct horse", "refresh_token": "abc", "Authorization": "Bearer x", "user_id": "u1"});
        redact_value(&mut v);
        assert_eq!(
            v,
            json!({"password": MASK, "refresh_token": MASK, "Authorization": MASK, "user_id": "u1"})
        );
    }

    #[test]
    fn secrets_inside_free_text_are_masked() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl";
        let text = format!(
            r#"body {{"email":"ann@example.com","password":"hunter2 hunter2"}} auth=Bearer {jwt} from bob@example.org"#
        );
        let out = redact_text(&text);
        for leaked in ["ann@example.com", "hunter2", jwt, "bob@example.org"] {
            assert!(!out.contains(leaked), "{leaked} leaked in {out}");
        }
        assert!(out.contains("body"), "ordinary text survives: {out}");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for text in [
            "GET /v1/events/01HX route matched in 3 ms",
            "aws_sdk_secretsmanager::operation::get_secret_value",
        ] {
            assert_eq!(redact_text(text), text);
        }
    }
}
