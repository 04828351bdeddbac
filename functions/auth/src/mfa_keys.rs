//! Second-factor data at rest (issue 11): a TOTP secret is stored sealed with AES-256-GCM
//! (bound to its user by the associated data), a recovery code as HMAC-SHA256 of the user and
//! the code — both under keys from Secrets Manager (`MFA_KEY_SECRET_ID`), so a copy of the
//! table (a backup, the stream, an export) holds neither a usable secret nor a hash that ten
//! characters of code could be guessed back from without the key.
//!
//! The secret is either one random string (as CloudFormation generates it) or, to rotate, a
//! document `{"current": "<kid>", "keys": {"<kid>": "<material>", ...}}` that keeps the old
//! keys for what they sealed. Stored values name their key: `v1.<kid>.<nonce>.<ciphertext>`
//! and `v1.<kid>.<hmac hex>`. Values written before this (a plain base32 secret, a plain
//! SHA-256 of a code) are still read, and are replaced at the next enrolment.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";

/// The parsed keys: the current one seals and hashes, every one opens and matches.
pub struct MfaKeys {
    current: String,
    keys: Vec<(String, Vec<u8>)>,
}

#[derive(Deserialize)]
struct Document {
    current: String,
    keys: std::collections::BTreeMap<String, String>,
}

/// A key's purpose-bound subkey: HMAC-SHA256(material, purpose).
fn derive(material: &[u8], purpose: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, material);
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(&key, purpose.as_bytes()).as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MfaKeys {
    pub fn parse(secret: &str) -> anyhow::Result<MfaKeys> {
        let secret = secret.trim();
        let (current, keys) = if secret.starts_with('{') {
            let doc: Document = serde_json::from_str(secret)
                .map_err(|e| anyhow::anyhow!("the MFA key document is malformed: {e}"))?;
            let keys: Vec<(String, Vec<u8>)> = doc
                .keys
                .into_iter()
                .map(|(kid, m)| (kid, m.into_bytes()))
                .collect();
            (doc.current, keys)
        } else {
            let kid = format!("k{}", &hex(&Sha256::digest(secret.as_bytes()))[..8]);
            (kid.clone(), vec![(kid, secret.as_bytes().to_vec())])
        };
        for (kid, material) in &keys {
            anyhow::ensure!(
                material.len() >= 32,
                "MFA key {kid} is shorter than 32 bytes"
            );
            anyhow::ensure!(
                !kid.is_empty() && !kid.contains('.'),
                "MFA key id {kid:?} is empty or has a dot"
            );
        }
        anyhow::ensure!(
            keys.iter().any(|(k, _)| *k == current),
            "the current MFA key {current} is not among the keys"
        );
        Ok(MfaKeys { current, keys })
    }

    fn material(&self, kid: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, m)| m.as_slice())
    }

    fn aead(material: &[u8]) -> anyhow::Result<LessSafeKey> {
        let key = UnboundKey::new(&AES_256_GCM, &derive(material, "city-events/totp-secret"))
            .map_err(|_| anyhow::anyhow!("AES key setup failed"))?;
        Ok(LessSafeKey::new(key))
    }

    /// A TOTP secret sealed for `user_id`.
    pub fn seal(&self, user_id: &str, plaintext: &str) -> anyhow::Result<String> {
        let material = self.material(&self.current).expect("checked at parse");
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut data = plaintext.as_bytes().to_vec();
        Self::aead(material)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.as_bytes()),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok(format!(
            "{VERSION}.{}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(data)
        ))
    }

    /// The TOTP secret stored for `user_id` (sealed, or plain from before sealing).
    pub fn open(&self, user_id: &str, stored: &str) -> anyhow::Result<String> {
        let Some(rest) = stored.strip_prefix("v1.") else {
            return Ok(stored.to_owned()); // written before secrets were sealed
        };
        let mut parts = rest.split('.');
        let (Some(kid), Some(nonce), Some(data), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("a sealed TOTP secret is malformed");
        };
        let material = self
            .material(kid)
            .ok_or_else(|| anyhow::anyhow!("the MFA key {kid} is no longer configured"))?;
        let nonce = Nonce::try_assume_unique_for_key(&URL_SAFE_NO_PAD.decode(nonce)?)
            .map_err(|_| anyhow::anyhow!("a sealed TOTP secret has a bad nonce"))?;
        let mut data = URL_SAFE_NO_PAD.decode(data)?;
        let plain = Self::aead(material)?
            .open_in_place(nonce, Aad::from(user_id.as_bytes()), &mut data)
            .map_err(|_| {
                anyhow::anyhow!("a sealed TOTP secret does not open (other user or key)")
            })?;
        Ok(String::from_utf8(plain.to_vec())?)
    }

    fn code_hash(kid: &str, material: &[u8], user_id: &str, code: &str) -> String {
        let key = hmac::Key::new(
            hmac::HMAC_SHA256,
            &derive(material, "city-events/recovery-code"),
        );
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&(user_id.len() as u64).to_be_bytes());
        ctx.update(user_id.as_bytes());
        ctx.update(normalise(code).as_bytes());
        format!("{VERSION}.{kid}.{}", hex(ctx.sign().as_ref()))
    }

    /// What a new recovery code of `user_id` is stored as.
    pub fn recovery_hash(&self, user_id: &str, code: &str) -> String {
        let material = self.material(&self.current).expect("checked at parse");
        Self::code_hash(&self.current, material, user_id, code)
    }

    /// Every form `code` may be stored in: under each configured key, and the plain SHA-256
    /// of codes issued before they were keyed.
    pub fn recovery_candidates(&self, user_id: &str, code: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(|(kid, m)| Self::code_hash(kid, m, user_id, code))
            .collect();
        out.push(crate::model::digest(&normalise(code)));
        out
    }
}

/// A recovery code as typed: any case, with or without its dash.
fn normalise(code: &str) -> String {
    code.trim().to_ascii_uppercase().replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01";

    #[test]
    fn a_sealed_secret_opens_for_its_user_only_and_never_shows_the_secret() {
        let keys = MfaKeys::parse(ONE).unwrap();
        let sealed = keys.seal("usr_a", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with("v1.k") && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            keys.seal("usr_a", "JBSWY3DPEHPK3PXP").unwrap(),
            "fresh nonce"
        );
        assert_eq!(keys.open("usr_a", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(keys.open("usr_b", &sealed).is_err(), "bound to its user");
        let other = MfaKeys::parse(&ONE.replace('0', "9")).unwrap();
        assert!(other.open("usr_a", &sealed).is_err(), "another key");
        assert_eq!(
            keys.open("usr_a", "JBSWY3DPEHPK3PXP").unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn a_rotated_document_opens_what_the_old_key_sealed_and_matches_its_codes() {
        let old = MfaKeys::parse(ONE).unwrap();
        let sealed = old.seal("usr_a", "SECRET").unwrap();
        let code_hash = old.recovery_hash("usr_a", "ABCDE-FGHIJ");
        let doc = format!(
            r#"{{"current":"k2","keys":{{"{}":"{ONE}","k2":"{}"}}}}"#,
            old.current,
            "z".repeat(40)
        );
        let rotated = MfaKeys::parse(&doc).unwrap();
        assert_eq!(rotated.open("usr_a", &sealed).unwrap(), "SECRET");
        assert!(rotated.seal("usr_a", "S").unwrap().starts_with("v1.k2."));
        let candidates = rotated.recovery_candidates("usr_a", "abcde-fghij");
        assert!(candidates.contains(&code_hash), "any case, dash or not");
        assert!(
            !rotated
                .recovery_candidates("usr_b", "ABCDE-FGHIJ")
                .contains(&code_hash)
        );
        assert!(MfaKeys::parse(r#"{"current":"x","keys":{}}"#).is_err());
        assert!(MfaKeys::parse("short").is_err());
    }
}
