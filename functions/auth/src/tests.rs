//! The refresh and lockout rules against the in-memory twin ([`MemoryAuth`]): every branch of
//! the rotation (grace, reuse, revocation, deleted users, conflicts, a race) and of the lockout
//! (threshold and backoff, windows, the account and address brakes, per-user locks). No moto,
//! no network; the retry's waits run on tokio's paused clock.

use crate::email::Email;
use crate::lockout::{
    FailureStore, LOCKOUT_FIRST_SECONDS, LOCKOUT_MAX_SECONDS, LOCKOUT_WINDOW_SECONDS, UserLock,
    account_failures_key, address_failures_key, clear_failures, clear_user_failures, locked_for,
    lockout_key, record_failure, record_user_failure, user_locked_for,
};
use crate::memory::MemoryAuth;
use crate::refresh::{
    REFRESH_ATTEMPTS, REFRESH_GRACE_SECONDS, RefreshStore, Rotation, rotate, rotation_retry,
    successor_token,
};
use crate::store::REFRESH_TTL_SECONDS;

const KEY: &[u8] = b"the refresh function's key";
const NOW: u64 = 1_900_000_000;
const ANN: &str = "usr_ann";

// ------------------------------------------------------------------ refresh

/// A store holding Ann.
fn store() -> MemoryAuth {
    let s = MemoryAuth::default();
    s.create_user(ANN, "ann@example.com");
    s
}

/// Presents `token` at `now` with the refresh function's own retry policy.
async fn present(s: &MemoryAuth, token: &str, now: u64) -> Rotation {
    rotate(s, token, KEY, now, rotation_retry()).await.unwrap()
}

/// What a presentation that rotated handed out.
#[derive(Debug)]
struct Rotated {
    user_id: String,
    family: String,
    token: String,
    again: bool,
}

#[track_caller]
fn rotated(r: Rotation) -> Rotated {
    match r {
        Rotation::Rotated {
            user,
            family,
            token,
            again,
        } => Rotated {
            user_id: user.id,
            family,
            token,
            again,
        },
        other => panic!("expected a rotation, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_live_token_rotates_to_its_derived_successor_which_rotates_in_turn() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    let first = rotated(present(&s, &t0, NOW).await);
    assert_eq!(first.token, successor_token(KEY, &family, &t0));
    assert_eq!(
        (first.user_id.as_str(), first.family.as_str()),
        (ANN, family.as_str())
    );
    assert!(!first.again);
    let retired = s.record(&t0).unwrap();
    assert!(retired.used && retired.used_at == Some(NOW));
    assert!(
        !s.record(&first.token).unwrap().used,
        "the successor is active"
    );

    let second = rotated(present(&s, &first.token, NOW + 60).await);
    assert_eq!(second.token, successor_token(KEY, &family, &first.token));
    assert!(!second.again);
    assert_eq!(s.session_revoked(ANN, &family), Some(false));
    assert_eq!(s.rotation_tries(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_token_again_within_the_grace_gets_the_same_successor() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    let first = rotated(present(&s, &t0, NOW).await);
    let again = rotated(present(&s, &t0, NOW + REFRESH_GRACE_SECONDS).await);
    assert_eq!(again.token, first.token);
    assert!(again.again);
    assert_eq!(s.rotation_tries(), 1, "the grace wrote nothing");
    assert_eq!(s.session_revoked(ANN, &family), Some(false));
    // The successor handed out twice is still good, once.
    let next = rotated(present(&s, &first.token, NOW + REFRESH_GRACE_SECONDS).await);
    assert!(!next.again);
}

#[tokio::test(start_paused = true)]
async fn a_retired_token_after_the_grace_is_a_reuse_that_revokes_the_family() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    let first = rotated(present(&s, &t0, NOW).await);
    let later = NOW + REFRESH_GRACE_SECONDS + 1;
    match present(&s, &t0, later).await {
        Rotation::Reused { user_id, family: f } => {
            assert_eq!((user_id, f), (ANN.into(), family.clone()))
        }
        other => panic!("expected a reuse, got {other:?}"),
    }
    assert_eq!(s.session_revoked(ANN, &family), Some(true));
    assert!(matches!(
        present(&s, &first.token, later).await,
        Rotation::Invalid
    ));
    assert!(
        !s.record(&first.token).unwrap().used,
        "the refused rotation wrote nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retired_token_whose_successor_was_used_is_a_reuse_even_within_the_grace() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    let first = rotated(present(&s, &t0, NOW).await);
    let second = rotated(present(&s, &first.token, NOW + 1).await);
    assert!(matches!(
        present(&s, &t0, NOW + 2).await,
        Rotation::Reused { .. }
    ));
    assert_eq!(s.session_revoked(ANN, &family), Some(true));
    assert!(matches!(
        present(&s, &second.token, NOW + 3).await,
        Rotation::Invalid
    ));
}

#[tokio::test(start_paused = true)]
async fn unknown_and_expired_tokens_are_invalid_and_try_nothing() {
    let s = store();
    let (_, t0) = s.start_session(ANN, NOW);
    assert!(matches!(
        present(&s, "ses_x.unknown", NOW).await,
        Rotation::Invalid
    ));
    assert!(matches!(
        present(&s, &t0, NOW + REFRESH_TTL_SECONDS).await,
        Rotation::Invalid
    ));
    assert_eq!(s.rotation_tries(), 0);
    assert!(!s.record(&t0).unwrap().used);
    // A second before its expiry it still rotates.
    rotated(present(&s, &t0, NOW + REFRESH_TTL_SECONDS - 1).await);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_session_refuses_the_rotation_and_the_grace() {
    let s = store();
    // In the transaction: its session check fails and nothing is written.
    let (family, t0) = s.start_session(ANN, NOW);
    s.revoke_session(ANN, &family).await.unwrap();
    assert!(matches!(present(&s, &t0, NOW).await, Rotation::Invalid));
    assert_eq!(s.rotation_tries(), 1);
    assert!(!s.record(&t0).unwrap().used);

    // In the grace: the same successor is not handed out again (and it is no reuse either).
    let (other, u0) = s.start_session(ANN, NOW);
    rotated(present(&s, &u0, NOW).await);
    s.revoke_session(ANN, &other).await.unwrap();
    assert!(matches!(present(&s, &u0, NOW + 1).await, Rotation::Invalid));
}

#[tokio::test(start_paused = true)]
async fn a_deleted_user_gets_no_tokens_from_a_rotation_or_from_the_grace() {
    let s = store();
    let (_, t0) = s.start_session(ANN, NOW);
    s.delete_user(ANN);
    assert!(matches!(present(&s, &t0, NOW).await, Rotation::Invalid));
    // The rotation committed before the user was read: the retry lands in the grace.
    assert!(s.record(&t0).unwrap().used);
    assert!(matches!(present(&s, &t0, NOW + 1).await, Rotation::Invalid));
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_retried_until_the_rotation_commits() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    s.inject_conflicts(REFRESH_ATTEMPTS - 1);
    let r = rotated(present(&s, &t0, NOW).await);
    assert_eq!(r.token, successor_token(KEY, &family, &t0));
    assert!(!r.again);
    assert_eq!(s.rotation_tries(), REFRESH_ATTEMPTS);
}

#[tokio::test(start_paused = true)]
async fn conflicts_that_outlast_the_attempts_answer_busy_and_change_nothing() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    s.inject_conflicts(100);
    assert!(matches!(present(&s, &t0, NOW).await, Rotation::Busy));
    assert_eq!(s.rotation_tries(), REFRESH_ATTEMPTS);
    assert!(!s.record(&t0).unwrap().used);
    assert_eq!(s.session_revoked(ANN, &family), Some(false));
    s.inject_conflicts(0);
    assert!(!rotated(present(&s, &t0, NOW).await).again);
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_presentations_of_a_token_get_the_same_successor() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    let (a, b) = tokio::join!(present(&s, &t0, NOW), present(&s, &t0, NOW));
    let (a, b) = (rotated(a), rotated(b));
    assert_eq!(a.token, b.token);
    assert_eq!(a.token, successor_token(KEY, &family, &t0));
    assert!(
        a.again != b.again,
        "one rotated, the other got the grace: {a:?} {b:?}"
    );
    // Both read the token active and tried: the loser's transaction found it used meanwhile,
    // and its second read landed in the grace.
    assert_eq!(s.rotation_tries(), 2);
    assert_eq!(s.session_revoked(ANN, &family), Some(false));
}

#[tokio::test(start_paused = true)]
async fn an_existing_successor_is_never_overwritten() {
    let s = store();
    let (family, t0) = s.start_session(ANN, NOW);
    // The successor exists while the token is still active: the transaction's put is refused,
    // the rule reads the token again, and (still active) tries until it runs out.
    assert!(s.put_refresh(&successor_token(KEY, &family, &t0), ANN, &family, NOW));
    assert!(matches!(present(&s, &t0, NOW).await, Rotation::Busy));
    assert_eq!(s.rotation_tries(), REFRESH_ATTEMPTS);
    assert!(!s.record(&t0).unwrap().used);
}

// ------------------------------------------------------------------ lockout

const HERE: &str = "203.0.113.7";

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

/// A failed login of `who` from `from` at `now`: the lock it caused.
async fn fail(s: &MemoryAuth, who: &Email, from: &str, now: u64) -> u64 {
    record_failure(s, who, from, now).await.unwrap()
}

/// `times` failed logins of `who` from `from` at [`NOW`].
async fn fail_times(s: &MemoryAuth, who: &Email, from: &str, times: usize) {
    for _ in 0..times {
        fail(s, who, from, NOW).await;
    }
}

/// A store in which Ann failed four times from each of `addresses` at [`NOW`].
async fn four_failures_from(addresses: [&str; 2]) -> (MemoryAuth, Email) {
    let s = MemoryAuth::default();
    let ann = email("ann@example.com");
    for address in addresses {
        fail_times(&s, &ann, address, 4).await;
    }
    (s, ann)
}

/// Seconds logins of `who` from `from` are locked for at `now`.
async fn locked(s: &MemoryAuth, who: &Email, from: &str, now: u64) -> u64 {
    locked_for(s, who, from, now).await.unwrap()
}

/// A failure toward `lock` of `user` at [`NOW`]: the lock it caused.
async fn user_fail(s: &MemoryAuth, lock: UserLock, user: &str) -> u64 {
    record_user_failure(s, lock, user, NOW).await.unwrap()
}

/// Seconds `lock` of `user` holds for at [`NOW`].
async fn user_locked(s: &MemoryAuth, lock: UserLock, user: &str) -> u64 {
    user_locked_for(s, lock, user, NOW).await.unwrap()
}

#[test]
fn the_lockout_keys_keep_the_table_layout() {
    let ann = email("Ann@Example.com");
    assert_eq!(
        lockout_key(&ann, HERE),
        "LOCKOUT#P84jL56d2ZiYfXulN8na9n7kjbAcDvwPZWan267g-ZI"
    );
    assert_eq!(
        account_failures_key(&ann),
        "LOCKOUT#ACCOUNT#cdT1X3L6Eo37RooaOQFQfIBLdDFkiHRNdp1_SxZpZHY"
    );
    assert_eq!(
        address_failures_key(HERE),
        "LOCKOUT#ADDRESS#_sUlZaoM8Y9X189bOscoUDuJktLW99RtodEgEJCQKwI"
    );
    assert_eq!(UserLock::Mfa.key("usr_1"), "MFALOCK#usr_1");
    assert_eq!(UserLock::StepUp.key("usr_1"), "STEPUPLOCK#usr_1");
}

#[tokio::test]
async fn four_failures_do_not_lock_the_fifth_locks_a_minute_doubling_up_to_an_hour() {
    let s = MemoryAuth::default();
    let ann = email("ann@example.com");
    let mut locks = Vec::new();
    for _ in 0..13 {
        let lock = fail(&s, &ann, HERE, NOW).await;
        assert_eq!(locked(&s, &ann, HERE, NOW).await, lock);
        locks.push(lock);
    }
    assert_eq!(
        locks,
        [0, 0, 0, 0, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    );
    assert_eq!(locks[12], LOCKOUT_MAX_SECONDS);
}

#[tokio::test]
async fn a_lock_runs_out_and_holds_for_every_spelling_of_the_email() {
    let s = MemoryAuth::default();
    let ann = email("ann@example.com");
    for _ in 0..5 {
        fail(&s, &ann, HERE, NOW).await;
    }
    let shouting = email("ANN@EXAMPLE.COM");
    assert_eq!(
        locked(&s, &shouting, HERE, NOW).await,
        LOCKOUT_FIRST_SECONDS
    );
    assert_eq!(locked(&s, &ann, HERE, NOW + 59).await, 1);
    assert_eq!(locked(&s, &ann, HERE, NOW + 60).await, 0);
}

#[tokio::test]
async fn failures_a_window_apart_do_not_add_up() {
    let (inside, outside) = ("192.0.2.1", "192.0.2.2");
    let (s, ann) = four_failures_from([inside, outside]).await;
    let last_second = NOW + LOCKOUT_WINDOW_SECONDS - 1;
    assert_eq!(fail(&s, &ann, inside, last_second).await, 60);
    let next_window = NOW + LOCKOUT_WINDOW_SECONDS;
    assert_eq!(fail(&s, &ann, outside, next_window).await, 0);
    let item = s.lockout(&lockout_key(&ann, outside)).unwrap();
    assert_eq!((item.failures, item.window_start), (1, Some(next_window)));
}

#[tokio::test]
async fn a_success_clears_only_that_account_from_that_address() {
    let (here, there) = ("192.0.2.1", "192.0.2.2");
    let (s, ann) = four_failures_from([here, there]).await;
    clear_failures(&s, &ann, here).await.unwrap();
    assert_eq!(fail(&s, &ann, here, NOW).await, 0);
    assert_eq!(s.lockout(&lockout_key(&ann, here)).unwrap().failures, 1);
    assert_eq!(fail(&s, &ann, there, NOW).await, 60);
    // The account's count across addresses is not a success's to clear.
    let account = s.lockout(&account_failures_key(&ann)).unwrap();
    assert_eq!(account.failures, 10);
}

#[tokio::test]
async fn a_failure_cleared_between_its_count_and_its_lock_does_not_lock_every_later_failure() {
    let s = MemoryAuth::default();
    let ann = email("ann@example.com");
    let key = lockout_key(&ann, "192.0.2.1");
    // The success's clear landed between the fifth failure's count and its lock: the item
    // holds only the lock.
    assert!(s.extend_lock(&key, NOW + 60).await.unwrap());
    assert_eq!(s.lockout(&key).unwrap().window_start, None);
    let later = NOW + 61;
    assert_eq!(locked(&s, &ann, "192.0.2.1", later).await, 0);
    assert_eq!(
        fail(&s, &ann, "192.0.2.1", later).await,
        0,
        "one failure is one failure"
    );
    assert_eq!(s.lockout(&key).unwrap().failures, 1);
}

#[tokio::test]
async fn a_braked_account_locks_a_new_address_at_its_first_failure_but_lets_the_owner_in() {
    let s = MemoryAuth::default();
    let ann = email("ann@example.com");
    let mut locks = Vec::new();
    for i in 0..20 {
        locks.push(fail(&s, &ann, &format!("198.51.100.{i}"), NOW).await);
    }
    assert_eq!(
        locks[..19],
        [0u64; 19],
        "one failure per address locks nothing"
    );
    assert_eq!(locks[19], 60, "the twentieth failure brakes the account");
    // The owner, from an address that never failed, is not locked out.
    assert_eq!(locked(&s, &ann, "192.0.2.1", NOW).await, 0);
    // A new address is locked on the account at its first failure.
    let fresh = "198.51.100.200";
    assert_eq!(fail(&s, &ann, fresh, NOW).await, 60);
    assert_eq!(locked(&s, &ann, fresh, NOW).await, 60);
    // Another account is not braked by Ann's.
    let bob = email("bob@example.com");
    assert_eq!(fail(&s, &bob, "192.0.2.99", NOW).await, 0);
}

#[tokio::test]
async fn a_braked_address_locks_any_account_at_its_first_failure() {
    let s = MemoryAuth::default();
    let mut locks = Vec::new();
    for i in 0..20 {
        let someone = email(&format!("user{i}@example.com"));
        locks.push(fail(&s, &someone, HERE, NOW).await);
    }
    assert_eq!(
        locks[..19],
        [0u64; 19],
        "one failure per account locks nothing"
    );
    assert_eq!(locks[19], 60, "the twentieth failure brakes the address");
    let carol = email("carol@example.com");
    assert_eq!(locked(&s, &carol, HERE, NOW).await, 0, "no lock of its own");
    assert_eq!(fail(&s, &carol, HERE, NOW).await, 60);
    // Carol from elsewhere is not braked.
    assert_eq!(fail(&s, &carol, "192.0.2.1", NOW).await, 0);
}

#[tokio::test]
async fn a_lock_is_never_shortened() {
    let s = MemoryAuth::default();
    let key = "LOCKOUT#test";
    assert!(s.extend_lock(key, NOW + 600).await.unwrap());
    assert!(!s.extend_lock(key, NOW + 60).await.unwrap());
    assert!(!s.extend_lock(key, NOW + 600).await.unwrap());
    assert_eq!(s.locked_at(key, NOW).await.unwrap(), 600);
    assert!(s.extend_lock(key, NOW + 900).await.unwrap());
    assert_eq!(s.locked_at(key, NOW).await.unwrap(), 900);

    // Two failures at once, the fifth and the sixth: whichever sets its lock last, the longer
    // one stands.
    for _ in 0..4 {
        user_fail(&s, UserLock::Mfa, ANN).await;
    }
    let (a, b) = tokio::join!(
        user_fail(&s, UserLock::Mfa, ANN),
        user_fail(&s, UserLock::Mfa, ANN),
    );
    let mut locks = [a, b];
    locks.sort_unstable();
    assert_eq!(locks, [60, 120]);
    assert_eq!(user_locked(&s, UserLock::Mfa, ANN).await, 120);
}

#[tokio::test]
async fn user_locks_are_per_user_and_per_kind() {
    let s = MemoryAuth::default();
    let (one, two) = ("usr_1", "usr_2");
    let mut locks = Vec::new();
    for _ in 0..5 {
        locks.push(user_fail(&s, UserLock::Mfa, one).await);
    }
    assert_eq!(locks, [0, 0, 0, 0, 60]);
    assert_eq!(user_locked(&s, UserLock::Mfa, one).await, 60);
    assert_eq!(user_locked(&s, UserLock::StepUp, one).await, 0);
    assert_eq!(user_locked(&s, UserLock::Mfa, two).await, 0);

    for _ in 0..4 {
        assert_eq!(
            user_fail(&s, UserLock::StepUp, one).await,
            0,
            "the MFA failures do not count toward the step-up lock"
        );
    }
    assert_eq!(user_fail(&s, UserLock::StepUp, one).await, 60);

    clear_user_failures(&s, UserLock::Mfa, one).await.unwrap();
    assert_eq!(user_locked(&s, UserLock::Mfa, one).await, 0);
    assert_eq!(user_locked(&s, UserLock::StepUp, one).await, 60);
    assert_eq!(
        user_fail(&s, UserLock::Mfa, one).await,
        0,
        "the count starts again"
    );
}
