//! Feature flags operators flip without a deploy (issue 19; decision 0016): one table item
//! (`FLAGS` / `FLAGS`: per flag name a map `{enabled, rollout_percent, updated_at,
//! updated_by, reason}`, and a `version`), read by the functions that use a flag at most once per
//! `FLAGS_CACHE_TTL_SECONDS` per instance (default 30 s): a flip takes effect everywhere within
//! that time. Flags are typed ([`Flag`]): each has a default that holds when the item, or its
//! entry, is absent — and when the table cannot be read (the last value read, else the
//! default; never a failed request because of a flag).
//!
//! A flag is on for a user when it is enabled and the user falls within its rollout: a stable
//! hash of (flag, user id) below `rollout_percent` (100: everyone). Calls without a user (a
//! consumer, a public read) see it on when it is enabled at 100 %.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The flags this code reads. A name not here is refused by the admin route: a typo must not
/// look like a flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Hot events' joins go through the ordered intake (decision 0012). Off: a kill switch —
    /// every join takes the synchronous path, as for any event (the intake's queue is left to
    /// drain).
    /// Rolled out by event (its subject is the event id), never by user: one event's joins
    /// all take one path, or synchronous joins would overtake the queue and contend with the
    /// writer's batches on the event (what decision 0012 removed).
    HotIntake,
}

impl Flag {
    pub const ALL: [Flag; 1] = [Flag::HotIntake];

    pub fn name(self) -> &'static str {
        match self {
            Flag::HotIntake => "hot_intake",
        }
    }

    pub fn parse(name: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What holds when no operator has set it.
    pub fn default_state(self) -> FlagState {
        FlagState {
            enabled: true,
            rollout_percent: 100,
        }
    }
}

/// A flag's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagState {
    pub enabled: bool,
    /// 0–100: the share of users (by a stable hash of flag and user) it is on for.
    #[schema(minimum = 0, maximum = 100)]
    pub rollout_percent: u8,
}

impl FlagState {
    /// Whether it is on for `subject` (the user, or what the flag rolls out by: [`Flag`];
    /// `None`: a call on nobody's behalf).
    pub fn on_for(self, flag: Flag, user: Option<&str>) -> bool {
        if !self.enabled {
            return false;
        }
        if self.rollout_percent >= 100 {
            return true;
        }
        match user {
            Some(user) => bucket(flag, user) < self.rollout_percent,
            None => false,
        }
    }
}

/// The user's bucket (0–99) for `flag`: stable across instances and deploys, independent
/// between flags (a user early in one rollout is not early in all).
pub fn bucket(flag: Flag, user: &str) -> u8 {
    bucket_named(flag.name(), user)
}

fn bucket_named(flag: &str, user: &str) -> u8 {
    let digest = Sha256::new()
        .chain_update(flag)
        .chain_update([0])
        .chain_update(user)
        .finalize();
    (u16::from_be_bytes([digest[0], digest[1]]) % 100) as u8
}

/// The flags item's key.
pub fn key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S("FLAGS".into())),
        ("sk".to_owned(), AttributeValue::S("FLAGS".into())),
    ])
}

/// The settings in a flags item: one map attribute per flag (named as [`Flag::name`]); an
/// entry that does not parse is left out (its default holds).
pub fn parse_item(item: &HashMap<String, AttributeValue>) -> HashMap<Flag, FlagState> {
    let mut out = HashMap::new();
    for flag in Flag::ALL {
        let Some(AttributeValue::M(v)) = item.get(flag.name()) else {
            continue;
        };
        let enabled = matches!(v.get("enabled"), Some(AttributeValue::Bool(true)));
        let percent = match v.get("rollout_percent") {
            Some(AttributeValue::N(n)) => n.parse::<u8>().ok().filter(|p| *p <= 100),
            _ => None,
        };
        if let Some(rollout_percent) = percent {
            out.insert(
                flag,
                FlagState {
                    enabled,
                    rollout_percent,
                },
            );
        }
    }
    out
}

/// How long a flags read may take before the last value (or the default) is used.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed read, the next one is this far off (or the TTL, if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The flags as one instance sees them: read from the table at most once per TTL.
pub struct Flags {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    ttl: Duration,
    cache: Mutex<Option<(Instant, HashMap<Flag, FlagState>)>>,
}

impl Flags {
    pub fn new(app: &crate::App) -> Self {
        Self::with(
            app.clients.dynamodb.clone(),
            app.config.table_name.clone(),
            app.config.flags_ttl,
        )
    }

    pub fn with(ddb: aws_sdk_dynamodb::Client, table: String, ttl: Duration) -> Self {
        Self {
            ddb,
            table,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// `flag`'s setting now (within the TTL).
    pub async fn state(&self, flag: Flag) -> FlagState {
        let cached = self.cache.lock().ok().and_then(|c| {
            c.as_ref()
                .map(|(at, v)| (at.elapsed() < self.ttl, v.get(&flag).copied()))
        });
        if let Some((true, value)) = cached {
            return value.unwrap_or_else(|| flag.default_state());
        }
        // A short, single-try read: a flag must not hold a request up (the value it falls back
        // to is the last one read, or the default).
        let read = tokio::time::timeout(
            READ_TIMEOUT,
            self.ddb
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key()))
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Config::builder()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                )
                .send(),
        )
        .await
        .map_err(|_| "the read timed out".to_owned())
        .and_then(|r| r.map_err(|e| crate::error_chain(&e)));
        match read {
            Ok(out) => {
                let settings = out.item.as_ref().map(parse_item).unwrap_or_default();
                let value = settings.get(&flag).copied();
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some((Instant::now(), settings));
                }
                value.unwrap_or_else(|| flag.default_state())
            }
            Err(e) => {
                // The last value read, else the default: a flag never fails a request. Read
                // again after RETRY_AFTER_FAILURE, not on every call (a throttled table is not
                // asked harder).
                metrics::counter!("FlagReadFailures").increment(1);
                tracing::warn!(error = %e, flag = flag.name(), "the feature flags could not be read");
                if let Ok(mut c) = self.cache.lock() {
                    let last = c.take().map(|(_, v)| v).unwrap_or_default();
                    let at = Instant::now()
                        .checked_sub(self.ttl.saturating_sub(RETRY_AFTER_FAILURE))
                        .unwrap_or_else(Instant::now);
                    *c = Some((at, last));
                }
                cached
                    .and_then(|(_, v)| v)
                    .unwrap_or_else(|| flag.default_state())
            }
        }
    }

    /// Whether `flag` is on for `user` now.
    pub async fn on(&self, flag: Flag, user: Option<&str>) -> bool {
        self.state(flag).await.on_for(flag, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_is_stable_spread_and_independent_between_flags() {
        let users: Vec<String> = (0..10_000).map(|i| format!("usr_{i:028x}")).collect();
        let half = FlagState {
            enabled: true,
            rollout_percent: 50,
        };
        let on = users
            .iter()
            .filter(|u| half.on_for(Flag::HotIntake, Some(u)))
            .count();
        assert!((4_700..5_300).contains(&on), "{on}");
        // The same user, the same answer.
        assert!(
            users
                .iter()
                .all(|u| bucket(Flag::HotIntake, u) == bucket(Flag::HotIntake, u))
        );
        // Another flag puts users in other buckets.
        let same = users
            .iter()
            .filter(|u| bucket(Flag::HotIntake, u) == bucket_named("another_flag", u))
            .count();
        assert!(same < 300, "{same}");
        // Off is off for everyone; 100 % is on without a user; a partial rollout is not.
        let off = FlagState {
            enabled: false,
            rollout_percent: 100,
        };
        assert!(!off.on_for(Flag::HotIntake, Some("usr_1")));
        assert!(
            Flag::HotIntake
                .default_state()
                .on_for(Flag::HotIntake, None)
        );
        assert!(!half.on_for(Flag::HotIntake, None));
    }

    #[test]
    fn an_item_is_read_leaving_out_what_does_not_parse() {
        let entry = |enabled: bool, percent: &str| {
            AttributeValue::M(HashMap::from([
                ("enabled".to_owned(), AttributeValue::Bool(enabled)),
                (
                    "rollout_percent".to_owned(),
                    AttributeValue::N(percent.into()),
                ),
            ]))
        };
        let item = HashMap::from([
            ("hot_intake".to_owned(), entry(false, "100")),
            ("hot_intake_typo".to_owned(), entry(true, "50")),
            ("no_such_flag".to_owned(), entry(true, "10")),
        ]);
        let parsed = parse_item(&item);
        assert_eq!(
            parsed.get(&Flag::HotIntake),
            Some(&FlagState {
                enabled: false,
                rollout_percent: 100
            })
        );
        assert_eq!(parsed.len(), 1);
        for flag in Flag::ALL {
            assert_eq!(Flag::parse(flag.name()), Some(flag));
        }
    }
}
