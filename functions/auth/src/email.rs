//! Email addresses, normalised once: trimmed, NFKC, domain lower-cased. The address keeps the
//! local part as typed, for display and for mail; uniqueness and login go by [`Email::key`], the
//! whole address lower-cased, so `Ann@example.com` and `ann@example.com` are one account (RFC
//! 5321 lets a server treat the local part as case-sensitive, but no provider people use does,
//! and two accounts that differ only in case are a takeover and confusion risk).

use unicode_normalization::UnicodeNormalization;

/// A syntactically plausible, normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s: String = raw.trim().nfkc().collect();
        if s.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| "must look like name@example.com".to_owned())?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@');
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !local_ok || !domain_ok {
            return Err("must look like name@example.com".into());
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as typed (domain lower-cased): what is shown and mailed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What identifies the account: the whole address lower-cased.
    pub fn key(&self) -> String {
        // `to_lowercase` picks σ or ς for Σ by position: fold the final sigma too, so that no two
        // spellings of one address differing only in case get two keys.
        self.0.to_lowercase().replace('ς', "σ")
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_whitespace_width_and_domain_case() {
        let a = Email::parse("  Ann@Example.COM ").unwrap();
        let b = Email::parse("Ann@ｅｘａｍｐｌｅ.com").unwrap();
        assert_eq!(a.as_str(), "Ann@example.com");
        assert_eq!(a, b);
    }

    #[test]
    fn the_key_ignores_the_case_of_the_local_part_and_the_address_keeps_it() {
        let upper = Email::parse("ALICE@Example.com").unwrap();
        let lower = Email::parse("alice@example.com").unwrap();
        assert_eq!(upper.as_str(), "ALICE@example.com");
        assert_eq!(upper.key(), lower.key());
        let greek = |a: &str| Email::parse(a).unwrap().key();
        assert_eq!(greek("ΑΣ@example.gr"), greek("Ασ@example.gr"));
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "an n@example.com",
            "ann@exa..mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(local in "[a-zA-Z0-9._%+-]{1,20}", domain in "[a-zA-Z0-9-]{1,20}\\.[a-zA-Z]{2,6}") {
            let once = Email::parse(&format!("{local}@{domain}")).unwrap();
            let twice = Email::parse(once.as_str()).unwrap();
            prop_assert_eq!(once, twice);
        }
    }
}
