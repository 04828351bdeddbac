//! The auth domain's own types and primitives, which the rules ([`crate::refresh`],
//! [`crate::lockout`]), the DynamoDB store and the in-memory twin all use: a user as stored,
//! how secrets appear in keys, random tokens and ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use shared::auth::Role;

/// Refresh tokens (and so sessions) live 30 days.
pub const REFRESH_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// Bumped by every role change (0: never changed).
    pub roles_version: u64,
    pub mfa_enabled: bool,
    pub totp_secret: Option<String>,
    pub pending_totp_secret: Option<String>,
    pub last_totp_step: Option<u64>,
    pub recovery_codes: Vec<String>,
}

/// SHA-256, base64url: how tokens and emails appear in keys (never in clear).
pub fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// A random, URL-safe token of `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

pub use shared::ids::new_id;
