//! The auth domain's items in the single table, and the conditional writes that keep them
//! consistent. [`Store`] is also the DynamoDB adapter of the ports whose rules live elsewhere:
//! [`crate::refresh::RefreshStore`] (refresh-token rotation) and
//! [`crate::lockout::FailureStore`] (failure counting and lockout).
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | user | `USER#<id>` | `PROFILE` | email, display name, argon2id hash, roles, MFA state |
//! | email claim | `EMAIL#<email, lower-cased>` | `EMAIL` | makes emails unique regardless of case (written with the user, conditionally) |
//! | session | `USER#<id>` | `SESSION#<family>` | one refresh-token family; `revoked` |
//! | refresh token | `REFRESH#<sha256(token)>` | `REFRESH` | `status` active → used, `used_at`; TTL |
//! | MFA challenge | `CHALLENGE#<sha256(token)>` | `CHALLENGE` | 5 minutes; one use; 5 attempts, each reserved before the code is checked |
//! | lockout | `LOCKOUT#<sha256(email, address)>` | `LOCKOUT` | failures of one account from one address (IPv6: its /64), locked until; TTL |
//! | account failures | `LOCKOUT#ACCOUNT#<sha256(email)>` | `LOCKOUT` | failures of the account from every address (the brake); TTL |
//! | address failures | `LOCKOUT#ADDRESS#<sha256(address)>` | `LOCKOUT` | failures from one address across accounts (the other brake); TTL |
//! | MFA lockout | `MFALOCK#<user id>` | `LOCKOUT` | the same, for wrong second-factor codes |
//! | step-up lockout | `STEPUPLOCK#<user id>` | `LOCKOUT` | the same, for wrong passwords on MFA changes |
//! | admins | `ADMINS` | `ADMINS` | `ids`: the set of admin ids (never empty once there is one) |

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use shared::auth::Role;

use crate::email::Email;
use crate::lockout::FailureStore;
use crate::refresh::{Outcome, RefreshStore};

pub use crate::lockout::{
    ACCOUNT_BRAKE_FAILURES, ADDRESS_BRAKE_FAILURES, LOCKOUT_FIRST_SECONDS, LOCKOUT_MAX_SECONDS,
    LOCKOUT_THRESHOLD, LOCKOUT_WINDOW_SECONDS, Lockout, UserLock, lock_seconds, lock_seconds_after,
};
pub use crate::model::{REFRESH_TTL_SECONDS, User, digest, new_id, random_token};
pub use crate::refresh::{
    REFRESH_GRACE_SECONDS, RefreshRecord, Rotation, in_refresh_grace, successor_token,
};
pub use shared::ddb::Item;
use shared::ddb::{Retry, TxError, get_bool, get_n, get_s, n, s};

pub const CHALLENGE_TTL_SECONDS: u64 = 5 * 60;
/// Codes one MFA challenge takes (each reserved before it is checked): five wrong ones burn it.
pub const CHALLENGE_MAX_ATTEMPTS: u64 = 5;

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
    let change = store
        .set_roles_settled(&id, &[Role::Attendee, Role::Admin], None)
        .await?;
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
    /// The admin making the change is not one any more.
    CallerNotAdmin,
    /// The roles changed meanwhile (or a transaction conflicted): nothing was written.
    Conflict,
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

    /// GetItem of one item of the table.
    fn get(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// UpdateItem of one item of the table.
    fn update(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// DeleteItem of one item of the table.
    fn delete(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
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
            .item("pk", s(format!("EMAIL#{}", email.key())))
            .item("sk", s("EMAIL"))
            .item("user_id", s(id))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().put(user).build(),
            TransactWriteItem::builder().put(claim).build(),
        ];
        items.extend(extra);
        // A conflict or throttling wrote nothing: sent again for up to 3 s.
        let mut retry = Retry::within("CreateUser", std::time::Duration::from_secs(3));
        match shared::ddb::transact_retrying(&self.ddb, items, &mut retry).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(e) => Err(e.into_error()),
        }
    }

    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        let out = self
            .get(format!("USER#{id}"), "PROFILE")
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.as_ref().and_then(User::from_item))
    }

    pub async fn user_by_email(&self, email: &Email) -> anyhow::Result<Option<User>> {
        let out = self
            .get(format!("EMAIL#{}", email.key()), "EMAIL")
            .consistent_read(true)
            .send()
            .await?;
        match out.item.as_ref().and_then(|i| get_s(i, "user_id")) {
            Some(id) => self.user(&id).await,
            None => {
                // The same second read as a known email makes, so that the answer's timing does
                // not tell which emails have accounts (with the dummy password hash in login).
                // A fresh id each time: one fixed key would be the hot (and throttled) one.
                self.user(&new_id("usr")?).await?;
                Ok(None)
            }
        }
    }

    /// [`Store::set_roles`], read again and retried a few times (with jitter) while it
    /// conflicts — the roles changed meanwhile, or DynamoDB's TransactionConflict: the request
    /// states the whole set of roles, so the last one wins.
    pub async fn set_roles_settled(
        &self,
        id: &str,
        roles: &[Role],
        by: Option<&str>,
    ) -> anyhow::Result<RolesChange> {
        let mut retry = Retry::within("SetRoles", std::time::Duration::from_secs(3))
            .pacing(
                std::time::Duration::from_millis(20),
                std::time::Duration::from_millis(320),
            )
            .attempts(5);
        loop {
            let change = self.set_roles(id, roles, by).await?;
            if change != RolesChange::Conflict || !retry.wait().await {
                return Ok(change);
            }
        }
    }

    /// Sets a user's roles on behalf of the admin `by`: one transaction of the profile (on the
    /// condition that its roles are still the version read, so two changes cannot interleave),
    /// a check that `by` is still an admin as the transaction commits (a demotion landing
    /// meanwhile wins), and, when admin is granted or removed, the set of admins (removal on
    /// the condition that another admin remains: there is always one). The caller revokes the
    /// user's sessions afterwards. `create_admin` passes `by = None`.
    pub async fn set_roles(
        &self,
        id: &str,
        roles: &[Role],
        by: Option<&str>,
    ) -> anyhow::Result<RolesChange> {
        let Some(current) = self.user(id).await? else {
            return Ok(RolesChange::NoSuchUser);
        };
        let was_admin = current.roles.contains(&Role::Admin);
        let admin = roles.contains(&Role::Admin);
        let mut condition = if current.roles_version == 0 {
            "attribute_exists(pk) AND attribute_not_exists(roles_version)".to_owned()
        } else {
            "roles_version = :read".to_owned()
        };
        let by_self = by == Some(id);
        if by_self {
            condition.push_str(" AND contains(#roles, :admin)");
        }
        let mut profile = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("USER#{id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET #roles = :roles, roles_version = :next")
            .condition_expression(condition)
            .expression_attribute_names("#roles", "roles")
            .expression_attribute_values(
                ":roles",
                AttributeValue::Ss(roles.iter().map(|r| r.as_str().to_owned()).collect()),
            )
            .expression_attribute_values(":next", n(current.roles_version + 1));
        if current.roles_version != 0 {
            profile = profile.expression_attribute_values(":read", n(current.roles_version));
        }
        if by_self {
            profile = profile.expression_attribute_values(":admin", s(Role::Admin.as_str()));
        }
        let mut items = vec![
            TransactWriteItem::builder()
                .update(profile.build()?)
                .build(),
        ];
        let mut caller_check = None;
        if let Some(by) = by.filter(|b| *b != id) {
            let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(format!("USER#{by}")))
                .key("sk", s("PROFILE"))
                .condition_expression("contains(#roles, :admin)")
                .expression_attribute_names("#roles", "roles")
                .expression_attribute_values(":admin", s(Role::Admin.as_str()))
                .build()?;
            caller_check = Some(items.len());
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let me = AttributeValue::Ss(vec![id.to_owned()]);
        let mut admins = None;
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
            admins = Some(items.len());
            items.push(TransactWriteItem::builder().update(remove).build());
        }
        match shared::ddb::transact(&self.ddb, items).await {
            Ok(()) => Ok(RolesChange::Changed),
            Err(TxError::Cancelled(c)) => {
                let at = |i: Option<usize>| i.is_some_and(|i| c.failed(i));
                if at(caller_check) {
                    return Ok(RolesChange::CallerNotAdmin);
                }
                if at(admins) {
                    return Ok(RolesChange::LastAdmin);
                }
                // The profile changed (a self-change by a demoted admin included): nothing
                // was written.
                Ok(RolesChange::Conflict)
            }
            // Another transaction held an item (TransactionConflict) or DynamoDB throttled.
            Err(TxError::Conflict) => Ok(RolesChange::Conflict),
            Err(e) => Err(e.into_error()),
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
        let items = vec![
            TransactWriteItem::builder().put(session).build(),
            TransactWriteItem::builder().put(refresh).build(),
        ];
        // Fresh random keys: a cancellation is a conflict or throttling, sent again for up to
        // 3 s, then 503 (into_error names TransactionConflict, which is transient).
        let mut retry = Retry::within("StartSession", std::time::Duration::from_secs(3));
        shared::ddb::transact_retrying(&self.ddb, items, &mut retry)
            .await
            .map_err(TxError::into_error)?;
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

    /// Whether the session exists and is not revoked.
    pub async fn session_active(&self, user_id: &str, family: &str) -> anyhow::Result<bool> {
        let out = self
            .get(format!("USER#{user_id}"), format!("SESSION#{family}"))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.is_some_and(|i| !get_bool(&i, "revoked")))
    }

    /// Presents a refresh token with the refresh function's retry policy: the rules are
    /// [`crate::refresh::rotate`].
    pub async fn rotate_refresh(
        &self,
        token: &str,
        key: &[u8],
        now: u64,
    ) -> anyhow::Result<Rotation> {
        crate::refresh::rotate(self, token, key, now, crate::refresh::rotation_retry()).await
    }

    pub async fn revoke_session(&self, user_id: &str, family: &str) -> anyhow::Result<()> {
        let result = self
            .update(format!("USER#{user_id}"), format!("SESSION#{family}"))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        // Already gone or already revoked: the same outcome.
        shared::ddb::written(result)?;
        Ok(())
    }

    /// Revokes every session of the user (MFA or password change); returns how many.
    pub async fn revoke_all_sessions(&self, user_id: &str) -> anyhow::Result<usize> {
        self.revoke_sessions_but(user_id, None).await
    }

    /// Revokes every session of the user but `keep` (a family); returns how many.
    pub async fn revoke_sessions_but(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> anyhow::Result<usize> {
        let sessions = shared::ddb::query_all(
            self.ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("USER#{user_id}")))
                .expression_attribute_values(":prefix", s("SESSION#"))
                .consistent_read(true),
        )
        .await?;
        let mut revoked = 0;
        for item in &sessions {
            if let Some(family) =
                get_s(item, "sk").and_then(|sk| sk.strip_prefix("SESSION#").map(str::to_owned))
                && Some(family.as_str()) != keep
            {
                self.revoke_session(user_id, &family).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
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

    /// Takes one of the challenge's five attempts and returns its user: one conditional update,
    /// so parallel guesses cannot share an attempt (the sixth, however sent, is refused).
    /// `None`: unknown, expired (checked here, not left to TTL), used or out of attempts.
    pub async fn reserve_challenge_attempt(
        &self,
        token: &str,
        now: u64,
    ) -> anyhow::Result<Option<String>> {
        let reserved = self.update(format!("CHALLENGE#{}", digest(token)), "CHALLENGE")
            .update_expression("ADD attempts :one")
            .condition_expression(
                "attribute_exists(pk) AND expires_at > :now AND (attribute_not_exists(attempts) OR attempts < :max)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(CHALLENGE_MAX_ATTEMPTS))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match reserved {
            Ok(out) => Ok(out.attributes.as_ref().and_then(|i| get_s(i, "user_id"))),
            Err(e) if shared::ddb::condition_failed(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Consumes a challenge (one use).
    pub async fn consume_challenge(&self, token: &str) -> anyhow::Result<bool> {
        let result = self
            .delete(format!("CHALLENGE#{}", digest(token)), "CHALLENGE")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        Ok(shared::ddb::written(result)?)
    }

    /// An update of `user_id`'s profile item.
    fn profile_update(
        &self,
        user_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.update(format!("USER#{user_id}"), "PROFILE")
    }

    /// Records an accepted TOTP step, on condition it is later than the last one: two requests
    /// with the same code cannot both pass.
    pub async fn accept_totp_step(&self, user_id: &str, step: u64) -> anyhow::Result<bool> {
        let result = self
            .profile_update(user_id)
            .update_expression("SET last_totp_step = :step")
            .condition_expression("attribute_not_exists(last_totp_step) OR last_totp_step < :step")
            .expression_attribute_values(":step", n(step))
            .send()
            .await;
        Ok(shared::ddb::written(result)?)
    }

    /// Uses a recovery code, given every form it may be stored in (its stored form leaves the
    /// set; a second use finds it gone).
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        candidates: &[String],
    ) -> anyhow::Result<bool> {
        for h in candidates {
            if self.use_recovery_hash(user_id, h).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn use_recovery_hash(&self, user_id: &str, h: &str) -> anyhow::Result<bool> {
        let result = self
            .profile_update(user_id)
            .update_expression("DELETE recovery_codes :h")
            .condition_expression("contains(recovery_codes, :one)")
            .expression_attribute_values(":h", AttributeValue::Ss(vec![h.to_owned()]))
            .expression_attribute_values(":one", s(h))
            .send()
            .await;
        Ok(shared::ddb::written(result)?)
    }

    pub async fn set_pending_totp(&self, user_id: &str, secret: &str) -> anyhow::Result<()> {
        self.profile_update(user_id)
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
        let result = self.profile_update(user_id)
            .update_expression("SET totp_secret = :s, mfa_enabled = :yes, last_totp_step = :step, recovery_codes = :codes REMOVE pending_totp_secret")
            .condition_expression("pending_totp_secret = :s")
            .expression_attribute_values(":s", s(secret))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":codes", AttributeValue::Ss(recovery_hashes))
            .send()
            .await;
        Ok(shared::ddb::written(result)?)
    }

    pub async fn disable_totp(&self, user_id: &str) -> anyhow::Result<()> {
        self.profile_update(user_id)
            .update_expression(
                "SET mfa_enabled = :no REMOVE totp_secret, recovery_codes, pending_totp_secret",
            )
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ lockout
    // The rules are in crate::lockout; these delegate to them with this store.

    /// Seconds logins to the account from `address` are still locked for (0 when they are not).
    pub async fn locked_for(&self, email: &Email, address: &str, now: u64) -> anyhow::Result<u64> {
        crate::lockout::locked_for(self, email, address, now).await
    }

    /// [`crate::lockout::record_failure`]: returns the lock the failure caused (0: none yet).
    pub async fn record_failure(
        &self,
        email: &Email,
        address: &str,
        now: u64,
    ) -> anyhow::Result<u64> {
        crate::lockout::record_failure(self, email, address, now).await
    }

    /// [`crate::lockout::clear_failures`].
    pub async fn clear_failures(&self, email: &Email, address: &str) -> anyhow::Result<()> {
        crate::lockout::clear_failures(self, email, address).await
    }

    /// Seconds `lock` of the user still holds for after failures (0: not locked).
    pub async fn user_locked_for(
        &self,
        lock: UserLock,
        user_id: &str,
        now: u64,
    ) -> anyhow::Result<u64> {
        crate::lockout::user_locked_for(self, lock, user_id, now).await
    }

    /// [`crate::lockout::record_user_failure`]: returns the lock it caused (0: none).
    pub async fn record_user_failure(
        &self,
        lock: UserLock,
        user_id: &str,
        now: u64,
    ) -> anyhow::Result<u64> {
        crate::lockout::record_user_failure(self, lock, user_id, now).await
    }

    /// [`crate::lockout::clear_user_failures`].
    pub async fn clear_user_failures(&self, lock: UserLock, user_id: &str) -> anyhow::Result<()> {
        crate::lockout::clear_user_failures(self, lock, user_id).await
    }
}

/// The rotation's storage: the refresh-token items, the sessions and the users (the reads
/// consistent), and the rotation as one TransactWriteItems.
impl RefreshStore for Store {
    async fn refresh_record(&self, token: &str) -> anyhow::Result<Option<RefreshRecord>> {
        let out = self
            .get(format!("REFRESH#{}", digest(token)), "REFRESH")
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.map(|i| RefreshRecord {
            user_id: get_s(&i, "user_id").unwrap_or_default(),
            family: get_s(&i, "family").unwrap_or_default(),
            used: get_s(&i, "status").as_deref() == Some("used"),
            used_at: get_n(&i, "used_at"),
            expires_at: get_n(&i, "expires_at").unwrap_or(0),
        }))
    }

    async fn try_rotate(
        &self,
        token: &str,
        record: &RefreshRecord,
        next: &str,
        now: u64,
    ) -> anyhow::Result<Option<Outcome>> {
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
        let put = self.refresh_put(next, &record.user_id, &record.family, now)?;
        let items = vec![
            TransactWriteItem::builder().update(retire).build(),
            // A session check (shared::session's guard shape): its failure is SessionRevoked.
            TransactWriteItem::builder()
                .condition_check(session_live)
                .build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match shared::ddb::transact(&self.ddb, items).await {
            Ok(()) => Ok(Some(Outcome::Rotated)),
            Err(TxError::SessionRevoked) => Ok(Some(Outcome::SessionRevoked)),
            // The token was retired, or its successor exists (only if this token was rotated):
            // read it again.
            Err(TxError::Cancelled(_)) => Ok(Some(Outcome::UsedMeanwhile)),
            Err(TxError::Conflict) => Ok(None),
            // Throttled, failing inside, or no answer (after the SDK's retries): try again.
            Err(e) => {
                let err = e.into_error();
                if shared::aws::is_transient(&err) {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn session_active(&self, user_id: &str, family: &str) -> anyhow::Result<bool> {
        Store::session_active(self, user_id, family).await
    }

    async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        Store::user(self, id).await
    }

    async fn revoke_session(&self, user_id: &str, family: &str) -> anyhow::Result<()> {
        Store::revoke_session(self, user_id, family).await
    }
}

/// The lockout items (`LOCKOUT` sort key): `failures` in the window from `window_start`,
/// `locked_until`, and `expires_at` for TTL.
impl FailureStore for Store {
    async fn locked_at(&self, key: &str, now: u64) -> anyhow::Result<u64> {
        let out = self
            .get(key, "LOCKOUT")
            .consistent_read(true)
            .send()
            .await?;
        Ok(out
            .item
            .and_then(|i| get_n(&i, "locked_until"))
            .map(|until| until.saturating_sub(now))
            .unwrap_or(0))
    }

    async fn count_failure(&self, key: &str, now: u64) -> anyhow::Result<u64> {
        let cutoff = n(now.saturating_sub(LOCKOUT_WINDOW_SECONDS));
        let expires = n(now + LOCKOUT_WINDOW_SECONDS + LOCKOUT_MAX_SECONDS);
        // Count within the window; a failure after the window starts a new one. Both are
        // conditional, so concurrent failures are all counted: of two that find no current
        // window, one starts it and the other counts in it.
        let mut failures = None;
        for _ in 0..3 {
            let counted = self
                .update(key, "LOCKOUT")
                .update_expression("ADD failures :one SET expires_at = :exp")
                .condition_expression("window_start > :cutoff")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", cutoff.clone())
                .expression_attribute_values(":exp", expires.clone())
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match counted {
                Ok(out) => {
                    failures = out.attributes.as_ref().and_then(|a| get_n(a, "failures"));
                    break;
                }
                Err(e) if shared::ddb::condition_failed(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let started = self
                .ddb
                .put_item()
                .table_name(&self.table)
                .item("pk", s(key))
                .item("sk", s("LOCKOUT"))
                .item("failures", n(1))
                .item("window_start", n(now))
                .item("expires_at", expires.clone())
                // An item that holds only a lock (its failures were cleared between a count and
                // its lock) starts a window too: otherwise it could never count again.
                .condition_expression(
                    "attribute_not_exists(window_start) OR window_start <= :cutoff",
                )
                .expression_attribute_values(":cutoff", cutoff.clone())
                .send()
                .await;
            match started {
                Ok(_) => {
                    failures = Some(1);
                    break;
                }
                Err(e) if shared::ddb::condition_failed(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Three lost races in a row: count it as reaching the threshold rather than not at all.
        Ok(failures.unwrap_or(LOCKOUT_THRESHOLD))
    }

    async fn extend_lock(&self, key: &str, until: u64) -> anyhow::Result<bool> {
        let set = self
            .update(key, "LOCKOUT")
            .update_expression("SET locked_until = :until")
            .condition_expression("attribute_not_exists(locked_until) OR locked_until < :until")
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        // Refused: a later lock already set, which stands.
        Ok(shared::ddb::written(set)?)
    }

    async fn clear(&self, key: &str) -> anyhow::Result<()> {
        self.delete(key, "LOCKOUT").send().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_ids_are_url_safe_and_distinct() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        let (a, b) = (new_id("usr").unwrap(), new_id("usr").unwrap());
        assert!(a.starts_with("usr_") && a != b);
        assert_eq!(random_token(32).unwrap().len(), 43);
    }
}
