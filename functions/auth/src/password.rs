//! Passwords: the policy (12 to 256 characters, no composition rules, not a common password,
//! strong enough by zxcvbn) and argon2id hashing at OWASP's minimum cost, off the async
//! runtime's worker threads.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_lowercase)
        .collect()
});

fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid argon2 parameters"),
    )
}

/// Checks a new password against the policy; the error says what to change.
pub fn check_policy(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let n = password.chars().count();
    if n < 12 {
        return Err("must be at least 12 characters".into());
    }
    if n > 256 {
        return Err("must be at most 256 characters".into());
    }
    if COMMON.contains(&password.to_lowercase()) {
        return Err("is a commonly used password; choose another".into());
    }
    let entropy = zxcvbn::zxcvbn(password, user_inputs);
    if (entropy.score() as u8) < 3 {
        return Err("is too easy to guess; a few unrelated words make a strong password".into());
    }
    Ok(())
}

/// Hashes a password (argon2id, random salt) on a blocking thread.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = new_salt()?;
        argon2()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await?
}

/// Verifies a password against a stored hash on a blocking thread. `None` verifies against a
/// dummy hash of the same cost, so an unknown account costs the same time as a wrong password.
pub async fn verify(password: SecretString, stored: Option<String>) -> anyhow::Result<bool> {
    let real = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        let ok = argon2()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(ok && real)
    })
    .await?
}

/// 16 random bytes from the OS CSPRNG.
fn new_salt() -> anyhow::Result<SaltString> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt encoding failed: {e}"))
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = new_salt().expect("the OS has randomness");
    argon2()
        .hash_password(b"no account has this password", &salt)
        .expect("argon2 works")
        .to_string()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_has_length_limits_a_common_list_and_a_strength_floor() {
        assert!(check_policy("short", &[]).is_err());
        assert!(check_policy(&"x".repeat(257), &[]).is_err());
        assert!(
            check_policy("qwertyuiop123", &[])
                .unwrap_err()
                .contains("common")
        );
        assert!(
            check_policy("aaaaaaaaaaaa", &[])
                .unwrap_err()
                .contains("guess")
        );
        assert!(check_policy("ann@example.com1", &["ann@example.com"]).is_err());
        assert!(check_policy("violet tram sings at dusk", &[]).is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_do() {
        let h = hash(SecretString::from("violet tram sings at dusk"))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify(
                SecretString::from("violet tram sings at dusk"),
                Some(h.clone())
            )
            .await
            .unwrap()
        );
        assert!(
            !verify(SecretString::from("violet tram sings at noon"), Some(h))
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("no account has this password"), None)
                .await
                .unwrap()
        );
    }
}
