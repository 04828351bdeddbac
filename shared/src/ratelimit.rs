//! Distributed rate limiting in DynamoDB, shared by every instance of every function.
//!
//! One item per (scope, subject): `pk = RATE#<scope>#<subject>`, `sk = RATE`, holding the start
//! of the current one-minute window and the count in it. A request is one conditional update:
//! "add one if the window is current and under the limit, or open the window if there is none".
//! When the condition fails, the item it returns says why: over the limit (refuse, with the
//! time left), or the window is over (start a new one, itself conditional, so two instances
//! cannot both reset it: the one case that costs a second write). Windows expire
//! by TTL (`expires_at`), and expiry is checked in code, not left to TTL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_after: u64,
}

/// A limit: `limit` requests per `window` for one subject in one scope.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What the budget is for: `api` for the whole API, or one auth route like `auth:login`.
    pub scope: &'static str,
    pub limit: u32,
    pub window: Duration,
    /// When the store fails: let the request through (reads) or refuse it (auth).
    pub fail_open: bool,
    /// Where the count is kept: exact and fleet-wide in DynamoDB, or only in this instance
    /// (public reads: see [`InstanceBrake`]).
    pub store: Store,
}

/// Where a [`Rule`]'s count lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// One conditional write per request to the shared table ([`RateLimiter`]): exact across
    /// every instance of every function.
    Shared,
    /// A count in this process only ([`InstanceBrake`]): no request to anything. What holds
    /// across the fleet is API Gateway's route throttling (template.yaml) and, in production,
    /// a WAF rate-based rule per client address (docs/decisions/0013-public-read-protection.md).
    Instance,
}

/// The subject a client address is limited as: an IPv4 address as it is, an IPv6 address by
/// its /64 (one customer's network: a single host holds a whole /64 and picks any address in
/// it at will), an IPv4-mapped IPv6 address as the IPv4 one. Anything else is kept verbatim.
pub fn address_key(ip: &str) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        Err(_) => ip.trim().to_owned(),
    }
}

/// The per-instance brake of anonymous reads: a one-minute fixed window per client address,
/// counted in this process. It costs no request (a public read is one DynamoDB GetItem, not a
/// write and a read), and it can only be an extra brake: N warm instances let a client through
/// up to N times the limit. What bounds a client across the fleet is the gateway's throttling
/// and the WAF rule in front of it (decision 0013).
///
/// Memory is bounded: at most `capacity` subjects are tracked; when the map is full the windows
/// that are over are dropped, and if every window is still current a new subject goes
/// uncounted (the brake never refuses a client it has not counted, and never forgets one it
/// has because others arrived).
#[derive(Debug)]
pub struct InstanceBrake {
    windows: std::sync::Mutex<std::collections::HashMap<String, (u64, u32)>>,
    capacity: usize,
    swept: std::sync::atomic::AtomicU64,
}

impl InstanceBrake {
    /// Subjects tracked at most (~100 bytes each).
    pub const CAPACITY: usize = 10_000;

    pub fn new(capacity: usize) -> Self {
        Self {
            windows: std::sync::Mutex::new(std::collections::HashMap::new()),
            capacity: capacity.max(1),
            swept: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts one request of `subject` at `now_ms` against `rule`.
    pub fn check_at(&self, rule: &Rule, subject: &str, now_ms: u64) -> Decision {
        let window_ms = (rule.window.as_millis() as u64).max(1);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !windows.contains_key(subject) && windows.len() >= self.capacity {
            // Full: drop the windows that are over (at most once a second: the sweep is a
            // walk of the whole map under the lock). Still full, a new subject goes uncounted:
            // the clients already counted stay braked (wiping them all would let a flood of new
            // addresses free the heavy hitters).
            let last = self.swept.load(std::sync::atomic::Ordering::Relaxed);
            if now_ms >= last + 1000 || now_ms < last {
                self.swept
                    .store(now_ms, std::sync::atomic::Ordering::Relaxed);
                windows.retain(|_, (start, _)| now_ms < *start + window_ms);
            }
            if windows.len() >= self.capacity {
                return Decision {
                    allowed: true,
                    limit: rule.limit,
                    remaining: rule.limit,
                    reset_after: window_ms.div_ceil(1000),
                };
            }
        }
        let entry = windows.entry(subject.to_owned()).or_insert((now_ms, 0));
        if now_ms >= entry.0 + window_ms || now_ms < entry.0 {
            *entry = (now_ms, 0);
        }
        let allowed = entry.1 < rule.limit;
        if allowed {
            entry.1 += 1;
        }
        Decision {
            allowed,
            limit: rule.limit,
            remaining: rule.limit.saturating_sub(entry.1),
            reset_after: (entry.0 + window_ms)
                .saturating_sub(now_ms)
                .div_ceil(1000)
                .max(1),
        }
    }

    /// Counts one request of `subject` now.
    pub fn check(&self, rule: &Rule, subject: &str) -> Decision {
        self.check_at(rule, subject, now_ms())
    }

    /// Subjects tracked now.
    pub fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shared limiter's refusals, remembered in this process until their window resets: a
/// caller over its limit is refused again without another request (no write for the count, no
/// handler run, no idempotency claim). Exact: a window the table refused stays refused until
/// it resets, whatever instance counts next. Bounded like the brake (full, nothing new is
/// remembered: those callers are simply counted in the table again).
#[derive(Debug, Default)]
pub struct Refusals {
    until: std::sync::Mutex<std::collections::HashMap<String, (u64, u32)>>,
}

impl Refusals {
    pub const CAPACITY: usize = 10_000;

    /// `(limit, seconds until the reset)` while `subject` is refused at `now_ms`.
    pub fn get(&self, subject: &str, now_ms: u64) -> Option<(u32, u64)> {
        let map = self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(subject)
            .filter(|(until, _)| *until > now_ms)
            .map(|(until, limit)| (*limit, (until - now_ms).div_ceil(1000).max(1)))
    }

    /// Remembers that `subject` is refused until `until_ms`.
    pub fn insert(&self, subject: &str, until_ms: u64, limit: u32, now_ms: u64) {
        let mut map = self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::CAPACITY && !map.contains_key(subject) {
            map.retain(|_, (until, _)| *until > now_ms);
            if map.len() >= Self::CAPACITY {
                return;
            }
        }
        map.insert(subject.to_owned(), (until_ms, limit));
    }
}

/// The limiter over the table.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

/// Milliseconds since the epoch (the windows' clock).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

use crate::ddb::{get_n as num, n};

impl RateLimiter {
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            dynamodb,
            table: table.into(),
        }
    }

    /// An update of the window item `pk`.
    fn window(
        &self,
        pk: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S("RATE".into()))
    }

    /// Counts one request of `subject` against `rule`.
    pub async fn check(&self, rule: &Rule, subject: &str) -> anyhow::Result<Decision> {
        let pk = format!("RATE#{}#{subject}", rule.scope);
        let window_ms = rule.window.as_millis() as u64;
        for _ in 0..4 {
            let now = now_ms();
            let cutoff = now.saturating_sub(window_ms);
            let add = self
                .window(&pk)
                // A subject's first request opens its window in the same request (one write,
                // not two): the item is created with the window starting now.
                .update_expression(
                    "SET window_start = if_not_exists(window_start, :now), expires_at = if_not_exists(expires_at, :exp) ADD #count :one",
                )
                .condition_expression(
                    "attribute_not_exists(window_start) OR (window_start > :cutoff AND #count < :limit)",
                )
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":exp", n((now + 2 * window_ms) / 1000))
                .expression_attribute_values(":cutoff", n(cutoff))
                .expression_attribute_values(":limit", n(rule.limit as u64))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match add {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    let count = num(&item, "count").unwrap_or(1) as u32;
                    let start = num(&item, "window_start").unwrap_or(now);
                    return Ok(Decision {
                        allowed: true,
                        limit: rule.limit,
                        remaining: rule.limit.saturating_sub(count),
                        reset_after: (start + window_ms).saturating_sub(now).div_ceil(1000),
                    });
                }
                Err(e) => match e.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.unwrap_or_default()
                    }
                    other => return Err(other.into()),
                },
            };
            let start = num(&old, "window_start");
            if let Some(start) = start
                && start > cutoff
            {
                // The window is current: the condition failed on the count.
                return Ok(Decision {
                    allowed: false,
                    limit: rule.limit,
                    remaining: 0,
                    reset_after: (start + window_ms)
                        .saturating_sub(now)
                        .div_ceil(1000)
                        .max(1),
                });
            }
            // No window or an expired one: start a new window, unless another request just did.
            let reset = self
                .window(&pk)
                .update_expression("SET window_start = :now, #count = :one, expires_at = :exp")
                .condition_expression(
                    "attribute_not_exists(window_start) OR window_start <= :cutoff",
                )
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(cutoff))
                .expression_attribute_values(":exp", n((now + 2 * window_ms) / 1000))
                .send()
                .await;
            match reset {
                Ok(_) => {
                    return Ok(Decision {
                        allowed: true,
                        limit: rule.limit,
                        remaining: rule.limit.saturating_sub(1),
                        reset_after: window_ms.div_ceil(1000),
                    });
                }
                Err(e) if crate::ddb::condition_failed(&e) => {
                    continue; // someone else opened the window: count against it
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("rate limit window for {pk} kept changing under contention")
    }
}

#[cfg(test)]
mod tests {
    use super::{InstanceBrake, Rule, Store, address_key};

    fn rule(limit: u32) -> Rule {
        Rule {
            scope: "api",
            limit,
            window: std::time::Duration::from_secs(60),
            fail_open: true,
            store: Store::Instance,
        }
    }

    #[test]
    fn the_brake_refuses_past_the_limit_until_the_window_is_over() {
        let brake = InstanceBrake::new(100);
        let r = rule(3);
        let t = 1_000_000;
        for i in 0..3 {
            let d = brake.check_at(&r, "ip:a", t + i);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 2 - i as u32);
        }
        let refused = brake.check_at(&r, "ip:a", t + 10);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, 60);
        assert!(brake.check_at(&r, "ip:b", t + 10).allowed, "another client");
        assert!(!brake.check_at(&r, "ip:a", t + 59_999).allowed);
        assert!(
            brake.check_at(&r, "ip:a", t + 60_000).allowed,
            "a new window"
        );
    }

    #[test]
    fn the_brake_holds_at_most_its_capacity_and_a_flood_of_new_addresses_frees_no_one() {
        let brake = InstanceBrake::new(50);
        let r = rule(1);
        assert!(brake.check_at(&r, "ip:heavy", 1_000).allowed);
        assert!(!brake.check_at(&r, "ip:heavy", 1_001).allowed);
        for i in 0..10_000u64 {
            assert!(brake.check_at(&r, &format!("ip:{i}"), 2_000 + i).allowed);
            assert!(brake.len() <= 50, "at {i}: {}", brake.len());
        }
        assert!(
            !brake.check_at(&r, "ip:heavy", 20_000).allowed,
            "the heavy hitter is still braked in its window"
        );
        // once the windows are over, the map makes room again
        assert!(brake.check_at(&r, "ip:new", 200_000).allowed);
        assert!(!brake.check_at(&r, "ip:new", 200_001).allowed);
    }

    #[test]
    fn a_refusal_is_remembered_until_its_window_resets() {
        let refusals = super::Refusals::default();
        refusals.insert("user:a", 61_000, 100, 1_000);
        assert_eq!(refusals.get("user:a", 1_000), Some((100, 60)));
        assert_eq!(refusals.get("user:a", 60_500), Some((100, 1)));
        assert_eq!(refusals.get("user:a", 61_000), None, "reset");
        assert_eq!(refusals.get("user:b", 1_000), None);
    }

    #[test]
    fn ipv6_clients_are_one_subject_per_64_and_ipv4_stays_whole() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:fffe"),
            address_key("2001:db8:1:2::1"),
            "every address of one /64 is one subject"
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("not an address"), "not an address");
    }
}
