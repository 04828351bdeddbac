//! Accounts, tokens, MFA and key rotation: one Lambda per endpoint (src/bin), the domain here.

pub mod api;
pub mod email;
pub mod mfa_keys;
pub mod openapi;
pub mod password;
pub mod rotation;
pub mod store;
pub mod totp;
