//! The auth domain's items in the single table, and the conditional writes that keep them
//! consistent.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | user | `USER#<id>` | `PROFILE` | email, display name, argon2id hash, roles, MFA state |
//! | email claim | `EMAIL#<email>` | `EMAIL` | makes emails unique (written with the user, conditionally) |
//! | session | `USER#<id>` | `SESSION#<family>` | one refresh-token family; `revoked` |
//! | refresh token | `REFRESH#<sha256(token)>` | `REFRESH` | `status` active → used; TTL |
//! | MFA challenge | `CHALLENGE#<sha256(token)>` | `CHALLENGE` | 5 minutes; one use; burnt at 5 wrong codes |
//! | lockout | `LOCKOUT#<sha256(email)>` | `LOCKOUT` | failures, lock level, locked until; TTL |
//! | MFA lockout | `MFALOCK#<user id>` | `LOCKOUT` | the same, for wrong second-factor codes |
//! | admins | `ADMINS` | `ADMINS` | `ids`: the set of admin ids (never empty once there is one) |

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use shared::auth::Role;

use crate::email::Email;

pub type Item = HashMap<String, AttributeValue>;

/// Refresh tokens (and so sessions) live 30 days.
pub const REFRESH_TTL_SECONDS: u64 = 30 * 24 * 3600;
pub const CHALLENGE_TTL_SECONDS: u64 = 5 * 60;
/// Wrong codes that burn an MFA challenge.
pub const CHALLENGE_MAX_FAILURES: u64 = 5;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k)?.as_s().ok().cloned()
}
fn get_n(item: &Item, k: &str) -> Option<u64> {
    item.get(k)?.as_n().ok()?.parse().ok()
}
fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
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

/// Creates an admin account with a freshly generated password: (id, password). The operator
/// command `create_admin` and the local stack's start use it; there is no default account.
pub async fn create_admin(
    store: &Store,
    email: &crate::email::Email,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let password = format!(
        "{}-{}-{}",
        random_token(6)?,
        random_token(6)?,
        random_token(6)?
    );
    let hash = crate::password::hash(secrecy::SecretString::from(password.clone())).await?;
    let id = new_id("usr")?;
    if !store
        .create_user(
            &id,
            email,
            name,
            &hash,
            shared::auth::now_unix(),
            Vec::new(),
        )
        .await?
    {
        anyhow::bail!(
            "an account with this email exists; give it the admin role with PUT /v1/admin/users/{{id}}/roles"
        );
    }
    let change = store.set_roles(&id, &[Role::Attendee, Role::Admin]).await?;
    if change != RolesChange::Changed {
        anyhow::bail!("the new account {id} could not be made an admin: {change:?}");
    }
    Ok((id, password))
}

/// The key (pk and sk) of the item holding the set of admin ids.
pub const ADMINS_KEY: &str = "ADMINS";

/// What a role change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolesChange {
    Changed,
    NoSuchUser,
    /// It would have removed the last admin.
    LastAdmin,
    /// The roles changed meanwhile (or a transaction conflicted): nothing was written.
    Conflict,
}

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

impl User {
    fn from_item(item: &Item) -> Option<User> {
        let roles = item
            .get("roles")
            .and_then(|v| v.as_ss().ok())
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        serde_json::from_value(serde_json::Value::String(r.clone())).ok()
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec![Role::Attendee]);
        Some(User {
            id: get_s(item, "id")?,
            email: get_s(item, "email")?,
            display_name: get_s(item, "display_name").unwrap_or_default(),
            password_hash: get_s(item, "password_hash")?,
            roles,
            roles_version: get_n(item, "roles_version").unwrap_or(0),
            mfa_enabled: get_bool(item, "mfa_enabled"),
            totp_secret: get_s(item, "totp_secret"),
            pending_totp_secret: get_s(item, "pending_totp_secret"),
            last_totp_step: get_n(item, "last_totp_step"),
            recovery_codes: item
                .get("recovery_codes")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// A refresh token's record.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub user_id: String,
    pub family: String,
    pub used: bool,
    pub expires_at: u64,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    Rotated {
        user: Box<User>,
        family: String,
        token: String,
    },
    /// A retired token came back: the family is revoked.
    Reused {
        user_id: String,
        family: String,
    },
    Invalid,
}

/// Lockout state of one account (keyed by email, known or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub locked_for: u64,
}

/// Failures in this window lock the account.
pub const LOCKOUT_THRESHOLD: u64 = 5;
pub const LOCKOUT_WINDOW_SECONDS: u64 = 15 * 60;
pub const LOCKOUT_FIRST_SECONDS: u64 = 60;
pub const LOCKOUT_MAX_SECONDS: u64 = 3600;

/// The lock for the `failures`-th failure in a window: none below the threshold, then one
/// minute doubling per further failure, at most an hour.
pub fn lock_seconds(failures: u64) -> u64 {
    if failures < LOCKOUT_THRESHOLD {
        return 0;
    }
    let doublings = (failures - LOCKOUT_THRESHOLD).min(10);
    (LOCKOUT_FIRST_SECONDS << doublings).min(LOCKOUT_MAX_SECONDS)
}

#[derive(Clone, Debug)]
pub struct Store {
    pub ddb: Client,
    pub table: String,
}

impl Store {
    pub fn new(app: &shared::App) -> Self {
        Store {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
        }
    }

    /// Creates the user and claims the email in one transaction; `Ok(false)` when the email is
    /// taken. Never read-then-write: the condition on the email claim decides.
    pub async fn create_user(
        &self,
        id: &str,
        email: &Email,
        display_name: &str,
        password_hash: &str,
        now: u64,
        extra: Vec<TransactWriteItem>,
    ) -> anyhow::Result<bool> {
        let user = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("USER#{id}")))
            .item("sk", s("PROFILE"))
            .item("id", s(id))
            .item("email", s(email.as_str()))
            .item("display_name", s(display_name))
            .item("password_hash", s(password_hash))
            .item("roles", AttributeValue::Ss(vec!["attendee".into()]))
            .item("created_at", n(now))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        let claim = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("EMAIL#{}", email.as_str())))
            .item("sk", s("EMAIL"))
            .item("user_id", s(id))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().put(user).build(),
            TransactWriteItem::builder().put(claim).build(),
        ];
        items.extend(extra);
        let result = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
                    let taken = c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"));
                    if taken {
                        return Ok(false);
                    }
                }
                Err(e.into())
            }
        }
    }

    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{id}")))
            .key("sk", s("PROFILE"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.as_ref().and_then(User::from_item))
    }

    pub async fn user_by_email(&self, email: &Email) -> anyhow::Result<Option<User>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("EMAIL#{}", email.as_str())))
            .key("sk", s("EMAIL"))
            .consistent_read(true)
            .send()
            .await?;
        match out.item.as_ref().and_then(|i| get_s(i, "user_id")) {
            Some(id) => self.user(&id).await,
            None => Ok(None),
        }
    }

    /// Sets a user's roles: one transaction of the profile (on the condition that its roles are
    /// still the version read, so two admins' changes cannot interleave) and, when admin is
    /// granted or removed, the set of admins (removal on the condition that another admin
    /// remains: there is always one). The caller revokes the user's sessions afterwards.
    pub async fn set_roles(&self, id: &str, roles: &[Role]) -> anyhow::Result<RolesChange> {
        let Some(current) = self.user(id).await? else {
            return Ok(RolesChange::NoSuchUser);
        };
        let was_admin = current.roles.contains(&Role::Admin);
        let admin = roles.contains(&Role::Admin);
        let mut profile = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET #roles = :roles, roles_version = :next")
            .expression_attribute_names("#roles", "roles")
            .expression_attribute_values(
                ":roles",
                AttributeValue::Ss(roles.iter().map(|r| r.as_str().to_owned()).collect()),
            )
            .expression_attribute_values(":next", n(current.roles_version + 1));
        profile = if current.roles_version == 0 {
            profile.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(roles_version)",
            )
        } else {
            profile
                .condition_expression("roles_version = :read")
                .expression_attribute_values(":read", n(current.roles_version))
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(profile.build()?)
                .build(),
        ];
        let me = AttributeValue::Ss(vec![id.to_owned()]);
        if admin {
            // Granting (or re-granting) admin registers the id; ADD of a member is idempotent.
            let add = Update::builder()
                .table_name(&self.table)
                .key("pk", s(ADMINS_KEY))
                .key("sk", s(ADMINS_KEY))
                .update_expression("ADD ids :me")
                .expression_attribute_values(":me", me)
                .build()?;
            items.push(TransactWriteItem::builder().update(add).build());
        } else if was_admin {
            let remove = Update::builder()
                .table_name(&self.table)
                .key("pk", s(ADMINS_KEY))
                .key("sk", s(ADMINS_KEY))
                .update_expression("DELETE ids :me")
                .condition_expression("contains(ids, :id) AND size(ids) > :one")
                .expression_attribute_values(":me", me)
                .expression_attribute_values(":id", s(id))
                .expression_attribute_values(":one", n(1))
                .build()?;
            items.push(TransactWriteItem::builder().update(remove).build());
        }
        let result = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RolesChange::Changed),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                if let Some(E::TransactionCanceledException(c)) = e.as_service_error() {
                    let failed: Vec<bool> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect();
                    if failed.get(1) == Some(&true) {
                        return Ok(RolesChange::LastAdmin);
                    }
                    // The profile changed (or another transaction held it): read again.
                    return Ok(RolesChange::Conflict);
                }
                Err(e.into())
            }
        }
    }

    // ------------------------------------------------------------------ sessions and tokens

    /// Starts a session (a refresh-token family) and returns its first refresh token.
    pub async fn start_session(&self, user_id: &str, now: u64) -> anyhow::Result<(String, String)> {
        let family = new_id("ses")?;
        let token = format!("{family}.{}", random_token(32)?);
        let session = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("USER#{user_id}")))
            .item("sk", s(format!("SESSION#{family}")))
            .item("revoked", AttributeValue::Bool(false))
            .item("created_at", n(now))
            .item("expires_at", n(now + REFRESH_TTL_SECONDS))
            .build()?;
        let refresh = self.refresh_put(&token, user_id, &family, now)?;
        self.ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(session).build())
            .transact_items(TransactWriteItem::builder().put(refresh).build())
            .send()
            .await?;
        Ok((family, token))
    }

    fn refresh_put(
        &self,
        token: &str,
        user_id: &str,
        family: &str,
        now: u64,
    ) -> anyhow::Result<Put> {
        Ok(Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("REFRESH#{}", digest(token))))
            .item("sk", s("REFRESH"))
            .item("user_id", s(user_id))
            .item("family", s(family))
            .item("status", s("active"))
            .item("expires_at", n(now + REFRESH_TTL_SECONDS))
            .condition_expression("attribute_not_exists(pk)")
            .build()?)
    }

    async fn refresh_record(&self, token: &str) -> anyhow::Result<Option<RefreshRecord>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("REFRESH#{}", digest(token))))
            .key("sk", s("REFRESH"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.map(|i| RefreshRecord {
            user_id: get_s(&i, "user_id").unwrap_or_default(),
            family: get_s(&i, "family").unwrap_or_default(),
            used: get_s(&i, "status").as_deref() == Some("used"),
            expires_at: get_n(&i, "expires_at").unwrap_or(0),
        }))
    }

    /// Whether the session exists and is not revoked.
    pub async fn session_active(&self, user_id: &str, family: &str) -> anyhow::Result<bool> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s(format!("SESSION#{family}")))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.is_some_and(|i| !get_bool(&i, "revoked")))
    }

    /// Presents a refresh token: rotates it (one transaction: retire the old, write the new,
    /// on condition the old is still active and its session not revoked), or detects reuse.
    pub async fn rotate_refresh(&self, token: &str, now: u64) -> anyhow::Result<Rotation> {
        let Some(record) = self.refresh_record(token).await? else {
            return Ok(Rotation::Invalid);
        };
        if record.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        if record.used {
            self.revoke_session(&record.user_id, &record.family).await?;
            return Ok(Rotation::Reused {
                user_id: record.user_id,
                family: record.family,
            });
        }
        let new_token = format!("{}.{}", record.family, random_token(32)?);
        let retire = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("REFRESH#{}", digest(token))))
            .key("sk", s("REFRESH"))
            .update_expression("SET #status = :used, used_at = :now")
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":used", s("used"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", n(now))
            .build()?;
        let session_live = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{}", record.user_id)))
            .key("sk", s(format!("SESSION#{}", record.family)))
            .condition_expression("revoked = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()?;
        let put = self.refresh_put(&new_token, &record.user_id, &record.family, now)?;
        let result = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(retire).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(session_live)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
                    let reasons: Vec<Option<&str>> = c.cancellation_reasons().iter().map(|r| r.code()).collect();
                    if reasons.first() == Some(&Some("ConditionalCheckFailed")) {
                        // Another request used this token first: a reuse.
                        self.revoke_session(&record.user_id, &record.family).await?;
                        return Ok(Rotation::Reused { user_id: record.user_id, family: record.family });
                    }
                    if reasons.get(1) == Some(&Some("ConditionalCheckFailed")) {
                        return Ok(Rotation::Invalid); // the session was revoked
                    }
                }
                return Err(e.into());
            }
        }
        match self.user(&record.user_id).await? {
            Some(user) => Ok(Rotation::Rotated {
                user: Box::new(user),
                family: record.family,
                token: new_token,
            }),
            None => Ok(Rotation::Invalid),
        }
    }

    pub async fn revoke_session(&self, user_id: &str, family: &str) -> anyhow::Result<()> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s(format!("SESSION#{family}")))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes every session of the user (MFA or password change); returns how many.
    pub async fn revoke_all_sessions(&self, user_id: &str) -> anyhow::Result<usize> {
        let mut revoked = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("USER#{user_id}")))
                .expression_attribute_values(":prefix", s("SESSION#"))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in out.items() {
                if let Some(family) =
                    get_s(item, "sk").and_then(|sk| sk.strip_prefix("SESSION#").map(str::to_owned))
                {
                    self.revoke_session(user_id, &family).await?;
                    revoked += 1;
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(revoked),
            }
        }
    }

    // ------------------------------------------------------------------ MFA

    pub async fn create_challenge(&self, user_id: &str, now: u64) -> anyhow::Result<String> {
        let token = random_token(32)?;
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CHALLENGE#{}", digest(&token))))
            .item("sk", s("CHALLENGE"))
            .item("user_id", s(user_id))
            .item("expires_at", n(now + CHALLENGE_TTL_SECONDS))
            .send()
            .await?;
        Ok(token)
    }

    /// The challenge's user, if it is unexpired (expiry checked here, not left to TTL).
    pub async fn challenge_user(&self, token: &str, now: u64) -> anyhow::Result<Option<String>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("CHALLENGE#{}", digest(token))))
            .key("sk", s("CHALLENGE"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out
            .item
            .filter(|i| get_n(i, "expires_at").is_some_and(|e| e > now))
            .filter(|i| get_n(i, "failures").unwrap_or(0) < CHALLENGE_MAX_FAILURES)
            .and_then(|i| get_s(&i, "user_id")))
    }

    /// Counts a wrong code against the challenge; at the fifth it is burnt (deleted), so one
    /// password login buys at most five guesses. Returns the failures counted so far.
    pub async fn fail_challenge(&self, token: &str) -> anyhow::Result<u64> {
        let key = format!("CHALLENGE#{}", digest(token));
        let counted = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.clone()))
            .key("sk", s("CHALLENGE"))
            .update_expression("ADD failures :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        let failures = match counted {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| get_n(a, "failures"))
                .unwrap_or(CHALLENGE_MAX_FAILURES),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                return Ok(CHALLENGE_MAX_FAILURES); // already gone
            }
            Err(e) => return Err(e.into()),
        };
        if failures >= CHALLENGE_MAX_FAILURES {
            self.consume_challenge(token).await?;
        }
        Ok(failures)
    }

    /// Consumes a challenge (one use).
    pub async fn consume_challenge(&self, token: &str) -> anyhow::Result<bool> {
        let result = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("CHALLENGE#{}", digest(token))))
            .key("sk", s("CHALLENGE"))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records an accepted TOTP step, on condition it is later than the last one: two requests
    /// with the same code cannot both pass.
    pub async fn accept_totp_step(&self, user_id: &str, step: u64) -> anyhow::Result<bool> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET last_totp_step = :step")
            .condition_expression("attribute_not_exists(last_totp_step) OR last_totp_step < :step")
            .expression_attribute_values(":step", n(step))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Uses a recovery code (its hash leaves the set; a second use finds it gone).
    pub async fn use_recovery_code(&self, user_id: &str, code: &str) -> anyhow::Result<bool> {
        let h = digest(&code.trim().to_ascii_uppercase().replace('-', ""));
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression("DELETE recovery_codes :h")
            .condition_expression("contains(recovery_codes, :one)")
            .expression_attribute_values(":h", AttributeValue::Ss(vec![h.clone()]))
            .expression_attribute_values(":one", s(h))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_pending_totp(&self, user_id: &str, secret: &str) -> anyhow::Result<()> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET pending_totp_secret = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":s", s(secret))
            .send()
            .await?;
        Ok(())
    }

    /// Turns MFA on with the pending secret and the hashes of the recovery codes.
    pub async fn activate_totp(
        &self,
        user_id: &str,
        secret: &str,
        step: u64,
        recovery_hashes: Vec<String>,
    ) -> anyhow::Result<bool> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET totp_secret = :s, mfa_enabled = :yes, last_totp_step = :step, recovery_codes = :codes REMOVE pending_totp_secret")
            .condition_expression("pending_totp_secret = :s")
            .expression_attribute_values(":s", s(secret))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":codes", AttributeValue::Ss(recovery_hashes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn disable_totp(&self, user_id: &str) -> anyhow::Result<()> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression(
                "SET mfa_enabled = :no REMOVE totp_secret, recovery_codes, pending_totp_secret",
            )
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ lockout

    fn lockout_key(email: &Email) -> String {
        format!("LOCKOUT#{}", digest(email.as_str()))
    }

    /// Seconds the account is still locked for (0 when it is not).
    pub async fn locked_for(&self, email: &Email, now: u64) -> anyhow::Result<u64> {
        self.locked_at(Self::lockout_key(email), now).await
    }

    /// Counts a failed login; returns the lock it caused (0: none yet).
    pub async fn record_failure(&self, email: &Email, now: u64) -> anyhow::Result<u64> {
        self.record_failure_at(Self::lockout_key(email), now).await
    }

    /// A successful login resets the account's failures.
    pub async fn clear_failures(&self, email: &Email) -> anyhow::Result<()> {
        self.clear_at(Self::lockout_key(email)).await
    }

    fn mfa_lockout_key(user_id: &str) -> String {
        format!("MFALOCK#{user_id}")
    }

    /// Seconds the user's second factor is still locked for after wrong codes (0: not).
    pub async fn mfa_locked_for(&self, user_id: &str, now: u64) -> anyhow::Result<u64> {
        self.locked_at(Self::mfa_lockout_key(user_id), now).await
    }

    /// Counts a wrong second-factor code for the account, across challenges, with the same
    /// backoff as password failures; returns the lock it caused (0: none yet).
    pub async fn record_mfa_failure(&self, user_id: &str, now: u64) -> anyhow::Result<u64> {
        self.record_failure_at(Self::mfa_lockout_key(user_id), now)
            .await
    }

    pub async fn clear_mfa_failures(&self, user_id: &str) -> anyhow::Result<()> {
        self.clear_at(Self::mfa_lockout_key(user_id)).await
    }

    async fn locked_at(&self, key: String, now: u64) -> anyhow::Result<u64> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s("LOCKOUT"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out
            .item
            .and_then(|i| get_n(&i, "locked_until"))
            .map(|until| until.saturating_sub(now))
            .unwrap_or(0))
    }

    async fn record_failure_at(&self, key: String, now: u64) -> anyhow::Result<u64> {
        // Count within the window; a failure after the window starts a new one.
        let counted = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key.clone()))
            .key("sk", s("LOCKOUT"))
            .update_expression("ADD failures :one SET expires_at = :exp")
            .condition_expression("window_start > :cutoff")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(now.saturating_sub(LOCKOUT_WINDOW_SECONDS)))
            .expression_attribute_values(
                ":exp",
                n(now + LOCKOUT_WINDOW_SECONDS + LOCKOUT_MAX_SECONDS),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        let failures = match counted {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| get_n(a, "failures"))
                .unwrap_or(1),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                self.ddb
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(key.clone()))
                    .item("sk", s("LOCKOUT"))
                    .item("failures", n(1))
                    .item("window_start", n(now))
                    .item(
                        "expires_at",
                        n(now + LOCKOUT_WINDOW_SECONDS + LOCKOUT_MAX_SECONDS),
                    )
                    .send()
                    .await?;
                1
            }
            Err(e) => return Err(e.into()),
        };
        let lock = lock_seconds(failures);
        if lock > 0 {
            self.ddb
                .update_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .key("sk", s("LOCKOUT"))
                .update_expression("SET locked_until = :until")
                .expression_attribute_values(":until", n(now + lock))
                .send()
                .await?;
        }
        Ok(lock)
    }

    async fn clear_at(&self, key: String) -> anyhow::Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s("LOCKOUT"))
            .send()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_start_at_the_fifth_failure_and_double_up_to_an_hour() {
        let locks: Vec<u64> = (1..=13).map(lock_seconds).collect();
        assert_eq!(
            locks,
            [0, 0, 0, 0, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        );
    }

    #[test]
    fn digests_and_ids_are_url_safe_and_distinct() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        let (a, b) = (new_id("usr").unwrap(), new_id("usr").unwrap());
        assert!(a.starts_with("usr_") && a != b);
        assert_eq!(random_token(32).unwrap().len(), 43);
    }
}
