//! The in-memory twin of the auth store's narrow ports, [`RefreshStore`] and [`FailureStore`],
//! for unit tests of the refresh and lockout rules: the same items and the same conditions as
//! the DynamoDB adapter ([`crate::store::Store`]), every write checked and applied under one
//! lock, all or nothing. Each call yields to the scheduler first, so that concurrent rules
//! interleave between their reads and their writes as they do against DynamoDB. Conflicts can
//! be queued for the next rotation tries ([`MemoryAuth::inject_conflicts`]). TTL is not
//! modelled: the rules check expiry themselves.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use shared::auth::Role;

use crate::lockout::{FailureStore, LOCKOUT_WINDOW_SECONDS};
use crate::model::{REFRESH_TTL_SECONDS, User, digest, new_id, random_token};
use crate::refresh::{Outcome, RefreshRecord, RefreshStore};

/// A lockout item (`LOCKOUT` sort key) as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockoutItem {
    /// Failures counted in the window.
    pub failures: u64,
    /// When the window started; `None` on an item only a lock was written to.
    pub window_start: Option<u64>,
    pub locked_until: Option<u64>,
}

impl LockoutItem {
    /// A new window holding one failure (the conditional put replaces the whole item, an
    /// expired lock included).
    fn window(now: u64) -> Self {
        LockoutItem {
            failures: 1,
            window_start: Some(now),
            locked_until: None,
        }
    }
}

#[derive(Default)]
struct Tables {
    users: HashMap<String, User>,
    /// (user id, family) → revoked
    sessions: HashMap<(String, String), bool>,
    /// digest(token) → its record: the table keeps only digests.
    refresh: HashMap<String, RefreshRecord>,
    /// pk → item
    lockouts: HashMap<String, LockoutItem>,
    /// Rotation tries still to be cancelled for a conflict.
    conflicts: u32,
    /// Rotation tries made, the cancelled ones included.
    tries: u32,
}

/// Users, sessions, refresh tokens and lockout items in memory.
#[derive(Default)]
pub struct MemoryAuth {
    t: Mutex<Tables>,
}

/// A refresh token's record as written with the session or by a rotation: active, 30 days.
fn active(user_id: &str, family: &str, now: u64) -> RefreshRecord {
    RefreshRecord {
        user_id: user_id.to_owned(),
        family: family.to_owned(),
        used: false,
        used_at: None,
        expires_at: now + REFRESH_TTL_SECONDS,
    }
}

fn session(user_id: &str, family: &str) -> (String, String) {
    (user_id.to_owned(), family.to_owned())
}

impl MemoryAuth {
    fn with<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> T {
        f(&mut self.t.lock().expect("lock"))
    }

    /// Writes a user as registering does (an attendee without MFA), replacing any with `id`.
    pub fn create_user(&self, id: &str, email: &str) {
        let user = User {
            id: id.to_owned(),
            email: email.to_owned(),
            display_name: String::new(),
            password_hash: String::new(),
            roles: vec![Role::Attendee],
            roles_version: 0,
            mfa_enabled: false,
            totp_secret: None,
            pending_totp_secret: None,
            last_totp_step: None,
            recovery_codes: Vec::new(),
        };
        self.with(|t| {
            t.users.insert(id.to_owned(), user);
        });
    }

    /// Deletes the user (its sessions and tokens stay, as in the table).
    pub fn delete_user(&self, id: &str) {
        self.with(|t| {
            t.users.remove(id);
        });
    }

    /// Starts a session as [`crate::store::Store::start_session`] does: a new family, live,
    /// and its first refresh token, active. Returns (family, token).
    pub fn start_session(&self, user_id: &str, now: u64) -> (String, String) {
        let family = new_id("ses").expect("randomness");
        let token = format!("{family}.{}", random_token(32).expect("randomness"));
        self.with(|t| {
            t.sessions.insert(session(user_id, &family), false);
            t.refresh
                .insert(digest(&token), active(user_id, &family, now));
        });
        (family, token)
    }

    /// Writes an active refresh token of the family, only if it does not exist (as the
    /// rotation's put); whether it was written.
    pub fn put_refresh(&self, token: &str, user_id: &str, family: &str, now: u64) -> bool {
        self.with(|t| match t.refresh.entry(digest(token)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(active(user_id, family, now));
                true
            }
        })
    }

    /// The record of `token`, if there is one.
    pub fn record(&self, token: &str) -> Option<RefreshRecord> {
        self.with(|t| t.refresh.get(&digest(token)).cloned())
    }

    /// Whether the session is revoked; `None` when there is no such session.
    pub fn session_revoked(&self, user_id: &str, family: &str) -> Option<bool> {
        self.with(|t| t.sessions.get(&session(user_id, family)).copied())
    }

    /// The next `n` rotation tries are cancelled for a conflict (nothing written); 0 stops it.
    pub fn inject_conflicts(&self, n: u32) {
        self.with(|t| t.conflicts = n);
    }

    /// Rotation tries made so far, the cancelled ones included.
    pub fn rotation_tries(&self) -> u32 {
        self.with(|t| t.tries)
    }

    /// The lockout item at `key`, if there is one.
    pub fn lockout(&self, key: &str) -> Option<LockoutItem> {
        self.with(|t| t.lockouts.get(key).cloned())
    }
}

impl RefreshStore for MemoryAuth {
    async fn refresh_record(&self, token: &str) -> anyhow::Result<Option<RefreshRecord>> {
        tokio::task::yield_now().await;
        Ok(self.record(token))
    }

    async fn try_rotate(
        &self,
        token: &str,
        record: &RefreshRecord,
        next: &str,
        now: u64,
    ) -> anyhow::Result<Option<Outcome>> {
        tokio::task::yield_now().await;
        Ok(self.with(|t| {
            t.tries += 1;
            if t.conflicts > 0 {
                t.conflicts -= 1;
                return None;
            }
            // The session check first: DynamoDB reports a failed session guard as such, whatever
            // else failed with it.
            let live = t.sessions.get(&session(&record.user_id, &record.family)) == Some(&false);
            if !live {
                return Some(Outcome::SessionRevoked);
            }
            let old = digest(token);
            let retirable = t.refresh.get(&old).is_some_and(|r| !r.used);
            let successor = digest(next);
            if !retirable || t.refresh.contains_key(&successor) {
                return Some(Outcome::UsedMeanwhile);
            }
            if let Some(r) = t.refresh.get_mut(&old) {
                r.used = true;
                r.used_at = Some(now);
            }
            t.refresh
                .insert(successor, active(&record.user_id, &record.family, now));
            Some(Outcome::Rotated)
        }))
    }

    async fn session_active(&self, user_id: &str, family: &str) -> anyhow::Result<bool> {
        tokio::task::yield_now().await;
        Ok(self.session_revoked(user_id, family) == Some(false))
    }

    async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        tokio::task::yield_now().await;
        Ok(self.with(|t| t.users.get(id).cloned()))
    }

    async fn revoke_session(&self, user_id: &str, family: &str) -> anyhow::Result<()> {
        tokio::task::yield_now().await;
        self.with(|t| {
            if let Some(revoked) = t.sessions.get_mut(&session(user_id, family)) {
                *revoked = true;
            }
        });
        Ok(())
    }
}

impl FailureStore for MemoryAuth {
    async fn locked_at(&self, key: &str, now: u64) -> anyhow::Result<u64> {
        tokio::task::yield_now().await;
        Ok(self.with(|t| {
            t.lockouts
                .get(key)
                .and_then(|i| i.locked_until)
                .map_or(0, |until| until.saturating_sub(now))
        }))
    }

    async fn count_failure(&self, key: &str, now: u64) -> anyhow::Result<u64> {
        tokio::task::yield_now().await;
        let cutoff = now.saturating_sub(LOCKOUT_WINDOW_SECONDS);
        Ok(self.with(|t| match t.lockouts.entry(key.to_owned()) {
            Entry::Occupied(mut o) => {
                let item = o.get_mut();
                let start = item.window_start;
                match start {
                    // The update's condition, `window_start > :cutoff`: counted in the window.
                    Some(start) if start > cutoff => {
                        item.failures += 1;
                        item.failures
                    }
                    // The put's, `attribute_not_exists(window_start) OR window_start <=
                    // :cutoff`: a new window (also on an item that holds only a lock).
                    _ => {
                        *item = LockoutItem::window(now);
                        1
                    }
                }
            }
            Entry::Vacant(v) => {
                v.insert(LockoutItem::window(now));
                1
            }
        }))
    }

    async fn extend_lock(&self, key: &str, until: u64) -> anyhow::Result<bool> {
        tokio::task::yield_now().await;
        Ok(self.with(|t| {
            // UpdateItem writes a missing item (with only the lock): its condition holds there.
            let item = t.lockouts.entry(key.to_owned()).or_default();
            if item.locked_until.is_some_and(|current| current >= until) {
                return false;
            }
            item.locked_until = Some(until);
            true
        }))
    }

    async fn clear(&self, key: &str) -> anyhow::Result<()> {
        tokio::task::yield_now().await;
        self.with(|t| {
            t.lockouts.remove(key);
        });
        Ok(())
    }
}
