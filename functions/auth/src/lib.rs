//! Accounts, tokens, MFA and key rotation: one Lambda per endpoint (src/bin), the domain here.

pub mod api;
pub mod email;
pub mod error;
pub mod flags_admin;
pub mod identities;
pub mod lockout;
pub mod memory;
pub mod mfa_keys;
pub mod model;
pub mod oidc;
pub mod openapi;
pub mod password;
pub mod refresh;
pub mod rotation;
pub mod store;
pub mod totp;

#[cfg(test)]
mod tests;
