//! Failure counting and lockout (wrong passwords, wrong second-factor codes, wrong step-up
//! passwords), written against the narrow [`FailureStore`] port: the rules here compute the keys,
//! the thresholds and the backoff; the store only counts failures in a window and holds locks.
//! The DynamoDB adapter is [`crate::store::Store`]; [`crate::memory::MemoryAuth`] is the
//! in-memory twin the unit tests run the rules against.

use std::future::Future;

use crate::email::Email;
use crate::model::digest;

/// Lockout state of one account (keyed by email, known or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub locked_for: u64,
}

/// Failures in this window lock the account.
pub const LOCKOUT_THRESHOLD: u64 = 5;
/// How long a window of failures lasts from its first failure, in seconds.
pub const LOCKOUT_WINDOW_SECONDS: u64 = 15 * 60;
/// The first lock, in seconds (it doubles per further failure).
pub const LOCKOUT_FIRST_SECONDS: u64 = 60;
/// The longest lock, in seconds.
pub const LOCKOUT_MAX_SECONDS: u64 = 3600;

/// Failed logins on one account, from every address, in the window beyond which the account is
/// braked: each address then gets one failure (not five) before its lock on that account. The
/// owner's correct password from an address without failures still gets in.
pub const ACCOUNT_BRAKE_FAILURES: u64 = 20;
/// Failed logins from one address (an IPv6 /64), across accounts, in the window beyond which the
/// address is braked: on every account, one failure (not five) locks it. Not a lock of its own:
/// behind a shared NAT, a user who has not failed still gets in with the right password.
pub const ADDRESS_BRAKE_FAILURES: u64 = 20;

/// A per-user failure lock (beside the per-email password lockout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLock {
    /// Wrong second-factor codes (MFA login, turning MFA off): only someone past the password
    /// reaches them.
    Mfa,
    /// Wrong passwords on a step-up (enrolling or turning off MFA): only someone holding a
    /// session reaches them, so they cannot lock the owner's login.
    StepUp,
}

impl UserLock {
    /// The key of `user_id`'s lock of this kind.
    pub fn key(self, user_id: &str) -> String {
        match self {
            UserLock::Mfa => format!("MFALOCK#{user_id}"),
            UserLock::StepUp => format!("STEPUPLOCK#{user_id}"),
        }
    }
}

/// The lock of one account from one address (an IPv6 /64): what wrong passwords lock.
pub fn lockout_key(email: &Email, address: &str) -> String {
    format!("LOCKOUT#{}", digest(&format!("{}\n{address}", email.key())))
}

/// The account's failures from every address (a count, never a lock by itself).
pub fn account_failures_key(email: &Email) -> String {
    format!("LOCKOUT#ACCOUNT#{}", digest(&email.key()))
}

/// The address's failures across accounts (a count, never a lock by itself).
pub fn address_failures_key(address: &str) -> String {
    format!("LOCKOUT#ADDRESS#{}", digest(address))
}

/// The lock for the `failures`-th failure in a window: none below the threshold, then one
/// minute doubling per further failure, at most an hour.
pub fn lock_seconds(failures: u64) -> u64 {
    lock_seconds_after(failures, LOCKOUT_THRESHOLD)
}

/// As [`lock_seconds`], with the lock starting at the `threshold`-th failure.
pub fn lock_seconds_after(failures: u64, threshold: u64) -> u64 {
    if failures < threshold.max(1) {
        return 0;
    }
    let doublings = (failures - threshold.max(1)).min(10);
    (LOCKOUT_FIRST_SECONDS << doublings).min(LOCKOUT_MAX_SECONDS)
}

/// The storage the lockout rules need: per key, a count of failures in a window and a lock.
pub trait FailureStore: Send + Sync {
    /// Seconds the lock at `key` still holds at `now` (0: none, or expired), read consistently.
    fn locked_at(&self, key: &str, now: u64) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Counts one failure at `key` in the current window and returns the window's count; a
    /// failure [`LOCKOUT_WINDOW_SECONDS`] or more after the window's start starts a new one
    /// (count 1). Concurrent failures are all counted.
    fn count_failure(
        &self,
        key: &str,
        now: u64,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Sets the lock at `key` to hold until `until`, only if that is later than the lock there:
    /// a lock is never shortened. Whether it was set.
    fn extend_lock(
        &self,
        key: &str,
        until: u64,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Forgets the failures and the lock at `key`.
    fn clear(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Seconds logins to the account from `address` are still locked for (0 when they are not).
pub async fn locked_for(
    store: &impl FailureStore,
    email: &Email,
    address: &str,
    now: u64,
) -> anyhow::Result<u64> {
    store.locked_at(&lockout_key(email, address), now).await
}

/// Counts a failed login from `address` toward the (account, address) lock: after five
/// failures, or after one while the account ([`ACCOUNT_BRAKE_FAILURES`]) or the address
/// ([`ADDRESS_BRAKE_FAILURES`]) is braked. Returns the lock it caused (0: none yet).
pub async fn record_failure(
    store: &impl FailureStore,
    email: &Email,
    address: &str,
    now: u64,
) -> anyhow::Result<u64> {
    let (account_key, address_key) = (account_failures_key(email), address_failures_key(address));
    let (account, place) = tokio::try_join!(
        store.count_failure(&account_key, now),
        store.count_failure(&address_key, now),
    )?;
    let threshold = if account >= ACCOUNT_BRAKE_FAILURES || place >= ADDRESS_BRAKE_FAILURES {
        1
    } else {
        LOCKOUT_THRESHOLD
    };
    record_failure_at(store, &lockout_key(email, address), now, threshold).await
}

/// A successful login resets the failures of the account from that address (not the
/// account's count across addresses, nor the address's across accounts).
pub async fn clear_failures(
    store: &impl FailureStore,
    email: &Email,
    address: &str,
) -> anyhow::Result<()> {
    store.clear(&lockout_key(email, address)).await
}

/// Seconds `lock` of the user still holds for after failures (0: not locked).
pub async fn user_locked_for(
    store: &impl FailureStore,
    lock: UserLock,
    user_id: &str,
    now: u64,
) -> anyhow::Result<u64> {
    store.locked_at(&lock.key(user_id), now).await
}

/// Counts a failure toward `lock` of the user, with the password failures' backoff (5 in
/// 15 minutes lock for a minute, doubling to an hour); returns the lock it caused (0: none).
pub async fn record_user_failure(
    store: &impl FailureStore,
    lock: UserLock,
    user_id: &str,
    now: u64,
) -> anyhow::Result<u64> {
    record_failure_at(store, &lock.key(user_id), now, LOCKOUT_THRESHOLD).await
}

/// Forgets the user's failures and lock of kind `lock` (after a success).
pub async fn clear_user_failures(
    store: &impl FailureStore,
    lock: UserLock,
    user_id: &str,
) -> anyhow::Result<()> {
    store.clear(&lock.key(user_id)).await
}

/// Counts a failure toward the lock at `key` (locked from the `threshold`-th failure in the
/// window on, with backoff); returns the lock it caused (0: none).
pub async fn record_failure_at(
    store: &impl FailureStore,
    key: &str,
    now: u64,
    threshold: u64,
) -> anyhow::Result<u64> {
    let failures = store.count_failure(key, now).await?;
    let lock = lock_seconds_after(failures, threshold);
    if lock > 0 {
        // Never shortened by a concurrent failure that counted lower: when a later lock is
        // already set, it stands.
        store.extend_lock(key, now + lock).await?;
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn locks_start_at_the_fifth_failure_and_double_up_to_an_hour() {
        let locks: Vec<u64> = (1..=13).map(lock_seconds).collect();
        assert_eq!(
            locks,
            [0, 0, 0, 0, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        );
    }

    proptest! {
        /// More failures never lock for less; below the threshold nothing locks; from the
        /// threshold on, at least a minute and never more than an hour.
        #[test]
        fn the_backoff_is_monotone_zero_below_the_threshold_and_capped(
            failures in 0u64..200,
            more in 0u64..200,
            threshold in 0u64..30,
        ) {
            let lock = lock_seconds_after(failures, threshold);
            prop_assert!(lock <= lock_seconds_after(failures + more, threshold));
            prop_assert!(lock <= LOCKOUT_MAX_SECONDS);
            if failures < threshold.max(1) {
                prop_assert_eq!(lock, 0);
            } else {
                prop_assert!(lock >= LOCKOUT_FIRST_SECONDS);
            }
        }
    }
}
