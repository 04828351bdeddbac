//! Redaction of log records: nothing that identifies or authenticates a person (emails,
//! passwords, tokens, Authorization headers, cookies, one-time codes) leaves the process in a
//! log line, whatever a developer passes to a `tracing` macro.
//!
//! Two passes: a field whose *name* is sensitive loses its value entirely; in every other
//! string, values that *look* sensitive (emails, JWTs, bearer credentials, `password=...` pairs
//! inside free text such as an echoed body) are masked.

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
    names_a_secret(name.as_bytes())
}

fn names_a_secret(key: &[u8]) -> bool {
    SENSITIVE_NAMES.iter().any(|n| {
        key.len() >= n.len()
            && key
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n.as_bytes()))
    })
}

/// Masks sensitive-looking values inside free text.
///
/// Four passes, each a plain scanner over the text, in this order (each sees the previous
/// one's output; a match never overlaps the one before it):
/// 1. a pair whose key names a secret (`password=hunter2`, `"token": "abc"`, `otp : 123`):
///    `"?<word with a sensitive name>"?\s*[:=]\s*` then a quoted string (with `\` escapes) or
///    a run up to whitespace or `,;&}` (not starting with `:`): the value becomes
///    `"[REDACTED]"`;
/// 2. `Bearer <credential>` / `Basic <credential>` (any case, at a word start): the credential
///    becomes `[REDACTED]`;
/// 3. a JWT (`eyJ<b64url>.<b64url>.<b64url>?`) becomes `[REDACTED_JWT]`;
/// 4. an email address (`local@domain.tld`, a TLD of two letters or more) becomes
///    `[REDACTED_EMAIL]`.
///
/// They mask what the regular expressions this module used to run matched (a property test
/// holds the two to the same output), with two differences: names and schemes match ASCII
/// case-insensitively (the regexes also folded `ſ` to `s` and the Kelvin sign to `k`), and a
/// scheme's word start is "not after a letter, an ASCII digit or `_`" (so a scheme after, say,
/// `١` or `²` is masked where the regex's `\b` saw no word start). Every pass is linear in the text. Scanners spare every string of
/// every log line four regex scans, and every binary a regex engine (decision 0017).
pub fn redact_text(text: &str) -> String {
    let mut text = text.to_owned();
    redact_string(&mut text);
    text
}

/// Masks in place; allocates only when something is masked.
fn redact_string(s: &mut String) {
    // Most strings of a log line (ids, routes, numbers, statuses) hold none of the bytes a
    // match starts or turns on: one pass over them decides.
    if !s
        .bytes()
        .any(|b| matches!(b, b':' | b'=' | b'@' | b'b' | b'B'))
        && !s.contains("eyJ")
    {
        return;
    }
    let mut changed: Option<String> = None;
    for pass in PASSES {
        if let Some(next) = pass(changed.as_deref().unwrap_or(s.as_str())) {
            changed = Some(next);
        }
    }
    if let Some(changed) = changed {
        *s = changed;
    }
}

/// Each pass returns the text with its matches replaced, or `None` when nothing matched.
const PASSES: [fn(&str) -> Option<String>; 4] = [mask_pairs, mask_schemes, mask_jwts, mask_emails];

/// A pass's output: the text between matches copied, each match replaced.
struct Splicer<'a> {
    text: &'a str,
    out: Option<String>,
    /// Where the last match ended: the next one starts at or after it.
    copied: usize,
}

impl<'a> Splicer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            out: None,
            copied: 0,
        }
    }

    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.text.len() + 16));
        out.push_str(&self.text[self.copied..start]);
        out.push_str(with);
        self.copied = end;
    }

    fn finish(self) -> Option<String> {
        let copied = self.copied;
        let text = self.text;
        self.out.map(|mut out| {
            out.push_str(&text[copied..]);
            out
        })
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// How many bytes from `from` on are word bytes (`[A-Za-z0-9_-]`).
fn word_run(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .take_while(|&&b| is_word_byte(b))
        .count()
}

/// Pass 1: `key: value` / `key=value` pairs whose key names a secret.
fn mask_pairs(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut splice = Splicer::new(text);
    let mut unterminated = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b':' && bytes[i] != b'=' {
            i += 1;
            continue;
        }
        // The key: back over whitespace and an optional quote to a run of word bytes, all of
        // it after the previous match.
        let before = text[splice.copied..i].trim_end_matches(char::is_whitespace);
        let before = before.strip_suffix('"').unwrap_or(before);
        let key_len = before
            .bytes()
            .rev()
            .take_while(|&b| is_word_byte(b))
            .count();
        if key_len < 3 || !names_a_secret(&before.as_bytes()[before.len() - key_len..]) {
            i += 1;
            continue;
        }
        let after = &text[i + 1..];
        let value = after.trim_start_matches(char::is_whitespace);
        let value_start = i + 1 + (after.len() - value.len());
        match value_len(text, value_start, &mut unterminated) {
            0 => i += 1,
            len => {
                splice.replace(value_start, value_start + len, "\"[REDACTED]\"");
                i = value_start + len;
            }
        }
    }
    splice.finish()
}

/// The length of a pair's value at `text[start..]`: a quoted string with `\` escapes (an
/// escape never takes a newline), or else a run of anything but whitespace and `,;&}` that does
/// not start with `:`; 0 when neither.
///
/// `unterminated` remembers the last quoted string that never ended: (its opening quote, where
/// the scan gave up). A later opening quote between the two was an escaped character of that
/// scan, so its own scan would walk the same bytes to the same end: it is not scanned again,
/// which keeps a text of many unterminated quotes to one pass.
fn value_len(text: &str, start: usize, unterminated: &mut Option<(usize, usize)>) -> usize {
    let value = &text[start..];
    if value.starts_with('"') && !unterminated.is_some_and(|(from, to)| from < start && start < to)
    {
        match quoted_end(text, start) {
            Ok(end) => return end - start,
            Err(gave_up) => *unterminated = Some((start, gave_up)),
        }
    }
    let delimiter = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '&' | '}');
    match value.chars().next() {
        Some(c) if !delimiter(c) && c != ':' => value.find(delimiter).unwrap_or(value.len()),
        _ => 0,
    }
}

/// The end (the index after its closing quote) of the quoted string that opens at
/// `text[open]`, or where the scan gave up (the end of the text, or an escape before a newline).
fn quoted_end(text: &str, open: usize) -> Result<usize, usize> {
    let bytes = text.as_bytes();
    let mut j = open + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'"' => return Ok(j + 1),
            b'\\' => match text[j + 1..].chars().next() {
                Some(c) if c != '\n' => j += 1 + c.len_utf8(),
                _ => return Err(j),
            },
            _ => j += 1,
        }
    }
    Err(bytes.len())
}

/// Pass 2: the credential after `Bearer` or `Basic`.
fn mask_schemes(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut splice = Splicer::new(text);
    let mut i = 0;
    while i < bytes.len() {
        if !matches!(bytes[i], b'b' | b'B') {
            i += 1;
            continue;
        }
        let scheme = [&b"bearer"[..], b"basic"]
            .into_iter()
            .find(|s| bytes.len() - i >= s.len() && bytes[i..i + s.len()].eq_ignore_ascii_case(s));
        let at_word_start = || {
            text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphabetic() || c.is_ascii_digit() || c == '_'))
        };
        let Some(scheme) = scheme.filter(|_| at_word_start()) else {
            i += 1;
            continue;
        };
        let keyword_end = i + scheme.len();
        let rest = &text[keyword_end..];
        let credential = rest.trim_start_matches(char::is_whitespace);
        let credential_start = keyword_end + (rest.len() - credential.len());
        // No whitespace after the keyword: not a scheme (and the run after it is not counted,
        // so a long run of `bearer.bearer.…` is read once).
        if credential_start == keyword_end {
            i += 1;
            continue;
        }
        let len = credential
            .bytes()
            .take_while(|&b| b.is_ascii_alphanumeric() || b"._~+/=-".contains(&b))
            .count();
        if len == 0 {
            i += 1;
            continue;
        }
        splice.replace(keyword_end, credential_start + len, " [REDACTED]");
        i = credential_start + len;
    }
    splice.finish()
}

/// Pass 3: JWTs (three base64url parts, the first a JSON header: `eyJ`).
fn mask_jwts(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut splice = Splicer::new(text);
    let mut i = 0;
    while let Some(found) = text[i..].find("eyJ") {
        let start = i + found;
        let header = start + 3 + word_run(bytes, start + 3);
        let payload = (header > start + 3 && bytes.get(header) == Some(&b'.'))
            .then(|| header + 1 + word_run(bytes, header + 1))
            .filter(|&p| p > header + 1 && bytes.get(p) == Some(&b'.'));
        match payload {
            Some(payload) => {
                let end = payload + 1 + word_run(bytes, payload + 1);
                splice.replace(start, end, "[REDACTED_JWT]");
                i = end;
            }
            // An `eyJ` inside the same header run fails the same way: go past the run.
            None => i = header,
        }
    }
    splice.finish()
}

/// Pass 4: email addresses.
fn mask_emails(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let is_domain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let mut splice = Splicer::new(text);
    let mut i = 0;
    while let Some(found) = text[i..].find('@') {
        let at = i + found;
        let local = bytes[splice.copied..at]
            .iter()
            .rev()
            .take_while(|&&b| is_local(b))
            .count();
        let domain_len = bytes[at + 1..]
            .iter()
            .take_while(|&&b| is_domain(b))
            .count();
        let domain = &bytes[at + 1..at + 1 + domain_len];
        // The last dot (after one character at least) that two letters or more follow.
        let tld_dot = (1..domain_len.saturating_sub(2)).rev().find(|&d| {
            domain[d] == b'.'
                && domain[d + 1].is_ascii_alphabetic()
                && domain[d + 2].is_ascii_alphabetic()
        });
        match tld_dot {
            Some(d) if local > 0 => {
                let letters = domain[d + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .count();
                let end = at + 1 + d + 1 + letters;
                splice.replace(at - local, end, "[REDACTED_EMAIL]");
                i = end;
            }
            _ => i = at + 1,
        }
    }
    splice.finish()
}

/// Redacts a JSON value in place: by field name, then by value shape.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(s) => redact_string(s),
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

    /// The regular expressions this module ran before its scanners (decision 0017): the
    /// scanners must mask exactly what they did.
    fn redact_with_regexes(text: &str) -> String {
        static PATTERNS: std::sync::LazyLock<[(regex::Regex, &str); 4]> = std::sync::LazyLock::new(
            || {
                let names = SENSITIVE_NAMES.join("|");
                [
            (
                regex::Regex::new(&format!(
                    r#"(?i)("?[A-Za-z0-9_\-]*(?:{names})[A-Za-z0-9_\-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|[^\s,;&}}:][^\s,;&}}]*)"#
                ))
                .unwrap(),
                "${1}\"[REDACTED]\"",
            ),
            (
                regex::Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+").unwrap(),
                "$1 [REDACTED]",
            ),
            (
                regex::Regex::new(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*").unwrap(),
                "[REDACTED_JWT]",
            ),
            (
                regex::Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}").unwrap(),
                "[REDACTED_EMAIL]",
            ),
        ]
            },
        );
        let mut out = text.to_owned();
        for (re, replacement) in PATTERNS.iter() {
            out = re.replace_all(&out, *replacement).into_owned();
        }
        out
    }

    #[test]
    fn the_scanners_mask_what_the_regexes_did_on_known_cases() {
        for text in [
            r#"{"password": "a \" b", "user": "u"}"#,
            "password=hunter2&next=1 token : 'abc' otp=:x Otp=  7,",
            "footprint=3 x-api_key=abc; passwd=\"unterminated",
            "Authorization: Bearer abc.def/+= then basic\tZm9v and xbearer nope, bearer",
            "eyJa.b. eyJ.b.c eyJabc.def eyJa.b.c.d eyJhbGciOiJIUzI1NiJ9.e30.sig",
            "a@b.cc.d@e.ff bob@example.org. x@y.c @z.com ann@ex-ample.co-uk é@x.io",
            "mail me: ann@example.com, token=eyJa.b.c",
            "",
            "plain text, nothing here",
        ] {
            assert_eq!(redact_text(text), redact_with_regexes(text), "{text:?}");
        }
        // Texts built to make a scanner go back over what it has read (an attacker's path or
        // User-Agent is logged): still the regexes' output.
        for text in [
            "eyJ".repeat(2000),
            "eyJa.".repeat(1000),
            r#"password="\"\""#.repeat(500) + " x",
            r#"token=" "#.repeat(500),
            "bearer ".repeat(1000),
            "a@".repeat(1000) + "b.cc",
            "password:".repeat(500),
            "bearer.".repeat(1000),
            "basic-".repeat(1000),
        ] {
            assert_eq!(redact_text(&text), redact_with_regexes(&text), "{text:.60}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn the_scanners_mask_what_the_regexes_did(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "password", "Token", "otp", "EMAIL", "api_key", "secretive", "bearer", "Basic",
                "eyJ", "eyJhb", "abc", "x", "Z9", ".", "..", "@", "a@b.cc", "=", ":", " ", "  ",
                "\t", "\n", "\"", "\\", ",", ";", "&", "}", "-", "_", "%", "+", "/", "~", "é",
                "\u{a0}", "com", "org", "1", "日本",
            ]),
            0..14,
        )) {
            let text = parts.concat();
            proptest::prop_assert_eq!(redact_text(&text), redact_with_regexes(&text), "{:?}", text);
        }
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
