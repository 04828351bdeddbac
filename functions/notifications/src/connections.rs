//! The realtime connections in the table (docs/realtime.md, decision 0014).
//!
//! - `CONNS#<user id>` / `CONNS`: the user's connections (their own partition, so that IAM can
//!   let the realtime functions change them and nothing of the user's `USER#` items), `conns`: connection id → entry
//!   (`e` lease end, `m` API Gateway's 2-hour end, `c` connected at — epoch s —, `s` session
//!   id), and a `version` every change is conditional on, so that the limit of
//!   [`MAX_CONNECTIONS`] holds under concurrent connects. A connection is live while its lease
//!   runs: [`LEASE_S`] from the connect or its last ping, never past its 2-hour end. A
//!   connection whose `$disconnect` never came stops counting when its lease ends.
//! - `CONN#<connection id>` / `CONN`: the connection's user and session (the routes after
//!   `$connect` get only the connection id), expiring (TTL) at the 2-hour end.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use shared::ApiError;
use shared::auth::User;
use shared::ddb::{Item, get_n, get_s, n, s};

/// Live connections per user; one more is refused with 429.
pub const MAX_CONNECTIONS: usize = 5;
/// API Gateway closes a WebSocket connection after 2 hours at most.
pub const MAX_LIFETIME_S: u64 = 2 * 3600;
/// A connection counts (and is pushed to) this long after its connect or its last ping: a
/// minute over API Gateway's 10-minute idle timeout, so a connection that stays open is never
/// dropped, and one that vanished without `$disconnect` frees its place within 11 minutes.
pub const LEASE_S: u64 = 11 * 60;
/// Expired entries dropped in one connect (the rest on later ones).
const PRUNE_PER_WRITE: usize = 20;

const CONNS_SK: &str = "CONNS";
const CONN_SK: &str = "CONN";

/// The partition-key prefix of users' connection maps.
pub const CONNS_PREFIX: &str = "CONNS#";

pub fn user_conns_key(user_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("{CONNS_PREFIX}{user_id}"))),
        ("sk".into(), s(CONNS_SK)),
    ])
}

pub fn connection_key(connection_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("CONN#{connection_id}"))),
        ("sk".into(), s(CONN_SK)),
    ])
}

/// One connection of a user, as its entry in `conns` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    /// The lease's end (epoch s).
    pub lease_until: u64,
    /// API Gateway's 2-hour end.
    pub max_until: u64,
    pub connected_at: u64,
    pub session_id: String,
}

impl Entry {
    pub fn live(&self, now: u64) -> bool {
        self.lease_until > now && self.max_until > now
    }

    fn value(&self) -> AttributeValue {
        AttributeValue::M(HashMap::from([
            ("e".into(), n(self.lease_until)),
            ("m".into(), n(self.max_until)),
            ("c".into(), n(self.connected_at)),
            ("s".into(), s(&self.session_id)),
        ]))
    }
}

/// The entries of a `CONNS` item (an entry it cannot read counts as expired).
pub fn entries_of(item: &Item) -> Vec<Entry> {
    let Some(Ok(map)) = item.get("conns").map(|v| v.as_m()) else {
        return Vec::new();
    };
    map.iter()
        .map(|(id, v)| {
            let m = v.as_m().ok();
            let num = |k: &str| m.and_then(|m| get_n(m, k)).unwrap_or(0);
            Entry {
                id: id.clone(),
                lease_until: num("e"),
                max_until: num("m"),
                connected_at: num("c"),
                session_id: m.and_then(|m| get_s(m, "s")).unwrap_or_default(),
            }
        })
        .collect()
}

/// Registers `connection_id` for `user` unless they have [`MAX_CONNECTIONS`] live ones (429):
/// one transaction of the session guard (a logged-out session is refused, 401), the user's
/// map (conditional on what was read, so two connects at once cannot both take the last place;
/// expired entries dropped in the same write) and the connection's record. Read again when
/// another change came first.
pub async fn open(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    user: &User,
    connection_id: &str,
    now: u64,
) -> Result<(), ApiError> {
    let entry = Entry {
        id: connection_id.to_owned(),
        lease_until: now + LEASE_S,
        max_until: now + MAX_LIFETIME_S,
        connected_at: now,
        session_id: user.session_id.clone(),
    };
    let mut retry = shared::ddb::Retry::within("TransactWriteItems", Duration::from_secs(3))
        .pacing(Duration::from_millis(20), Duration::from_millis(300));
    loop {
        let current = shared::ddb::get_consistent(ddb, table, user_conns_key(&user.id))
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
        let entries = current.as_ref().map(entries_of).unwrap_or_default();
        if entries.iter().filter(|e| e.live(now)).count() >= MAX_CONNECTIONS {
            return Err(
                ApiError::of(shared::problem::problems::RATE_LIMITED).detail(format!(
                    "at most {MAX_CONNECTIONS} realtime connections per user; close one first"
                )),
            );
        }
        let update = map_update(table, &user.id, current.as_ref(), &entry, &entries, now)?;
        let mut record = connection_key(connection_id);
        record.insert("user_id".into(), s(&user.id));
        record.insert("session_id".into(), s(&user.session_id));
        record.insert("expires_at".into(), n(entry.max_until));
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(record))
            .build()
            .map_err(ApiError::internal)?;
        let items = vec![
            shared::session::guard(table, user).map_err(ApiError::internal)?,
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match shared::ddb::transact(ddb, items).await {
            Ok(()) => return Ok(()),
            // Another connect or disconnect changed the map since it was read: read again.
            Err(shared::ddb::TxError::Cancelled(_) | shared::ddb::TxError::Conflict)
                if retry.wait().await => {}
            Err(shared::ddb::TxError::Cancelled(_) | shared::ddb::TxError::Conflict) => {
                return Err(ApiError::service_unavailable(
                    "too many connects at once for this user; retry shortly",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The write of `entry` into the map as it was read (`current`): on a map that exists, its
/// path (and expired entries removed), conditional on the same version; else a new map,
/// conditional on there being none.
fn map_update(
    table: &str,
    user_id: &str,
    current: Option<&Item>,
    entry: &Entry,
    entries: &[Entry],
    now: u64,
) -> Result<Update, ApiError> {
    let has_map = current.is_some_and(|i| i.get("conns").is_some_and(|v| v.as_m().is_ok()));
    let version = current.and_then(|i| get_n(i, "version"));
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(user_conns_key(user_id)))
        .expression_attribute_values(":entry", entry.value())
        .expression_attribute_values(":max", n(entry.max_until))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":zero", n(0));
    let mut set = vec![
        "version = if_not_exists(version, :zero) + :one".to_owned(),
        // The item outlives its longest connection (TTL).
        "expires_at = :max".to_owned(),
    ];
    let mut conditions = Vec::new();
    match version {
        Some(v) => {
            conditions.push("version = :v");
            update = update.expression_attribute_values(":v", n(v));
        }
        None => conditions.push("attribute_not_exists(version)"),
    }
    let mut remove = Vec::new();
    if has_map {
        set.push("conns.#c = :entry".into());
        conditions.push("attribute_exists(conns)");
        update = update.expression_attribute_names("#c", &entry.id);
        let expired = entries.iter().filter(|e| !e.live(now) && e.id != entry.id);
        for (i, e) in expired.take(PRUNE_PER_WRITE).enumerate() {
            let name = format!("#x{i}");
            remove.push(format!("conns.{name}"));
            update = update.expression_attribute_names(name, &e.id);
        }
    } else {
        set.push("conns = :first".into());
        conditions.push("attribute_not_exists(conns)");
        update = update.expression_attribute_values(
            ":first",
            AttributeValue::M(HashMap::from([(entry.id.clone(), entry.value())])),
        );
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    update
        .update_expression(expression)
        .condition_expression(conditions.join(" AND "))
        .build()
        .map_err(ApiError::internal)
}

/// Extends the lease of `connection_id` of `user_id` to `now + LEASE_S` (not past its 2-hour
/// end), while it runs. `Ok(false)`: the connection is no longer in the map (removed as gone,
/// its session ended, or the map expired) or its lease has ended (it no longer counts, and a
/// frame may not revive it past the limit): the client should reconnect.
pub async fn touch(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    user_id: &str,
    connection_id: &str,
    max_until: u64,
    now: u64,
) -> anyhow::Result<bool> {
    let result = ddb
        .update_item()
        .table_name(table)
        .set_key(Some(user_conns_key(user_id)))
        .update_expression("SET conns.#c.e = :lease")
        .condition_expression("attribute_exists(conns.#c) AND conns.#c.e > :now")
        .expression_attribute_names("#c", connection_id)
        .expression_attribute_values(":lease", n((now + LEASE_S).min(max_until)))
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    Ok(shared::ddb::written(result)?)
}

/// Removes `connection_id` of `user_id`: its entry (when there) and its record.
pub async fn forget(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    user_id: &str,
    connection_id: &str,
) -> anyhow::Result<()> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(user_conns_key(user_id)))
        .update_expression("REMOVE conns.#c SET version = version + :one")
        .condition_expression("attribute_exists(conns.#c) AND attribute_exists(version)")
        .expression_attribute_names("#c", connection_id)
        .expression_attribute_values(":one", n(1))
        .build()?;
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(connection_key(connection_id)))
        .build()?;
    let items = vec![
        TransactWriteItem::builder().update(update).build(),
        TransactWriteItem::builder().delete(delete).build(),
    ];
    let mut retry = shared::ddb::Retry::within("TransactWriteItems", Duration::from_secs(3));
    match shared::ddb::transact_retrying(ddb, items, &mut retry).await {
        Ok(()) => Ok(()),
        // Not in the map (already removed, or the map expired): the record alone.
        Err(shared::ddb::TxError::Cancelled(_)) => {
            ddb.delete_item()
                .table_name(table)
                .set_key(Some(connection_key(connection_id)))
                .send()
                .await?;
            Ok(())
        }
        Err(shared::ddb::TxError::Conflict) => Err(anyhow::anyhow!("connection map contended")),
        Err(shared::ddb::TxError::SessionRevoked) => Ok(()),
        Err(shared::ddb::TxError::Other(e)) => Err(e),
    }
}

/// A connection's record: whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub user_id: String,
    pub session_id: String,
    pub max_until: u64,
}

/// The owner of `connection_id` (`None`: unknown, or past its 2-hour end).
pub async fn owner(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    connection_id: &str,
    now: u64,
) -> anyhow::Result<Option<Owner>> {
    let item = shared::ddb::get_consistent(ddb, table, connection_key(connection_id)).await?;
    Ok(item.and_then(|i| {
        let max_until = get_n(&i, "expires_at")?;
        (max_until > now).then_some(Owner {
            user_id: get_s(&i, "user_id")?,
            session_id: get_s(&i, "session_id").unwrap_or_default(),
            max_until,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, lease: u64, max: u64) -> Entry {
        Entry {
            id: id.into(),
            lease_until: lease,
            max_until: max,
            connected_at: 0,
            session_id: "ses".into(),
        }
    }

    #[test]
    fn a_connection_is_live_while_its_lease_and_its_two_hours_run() {
        assert!(entry("a", 101, 200).live(100));
        assert!(!entry("a", 100, 200).live(100), "lease over");
        assert!(
            !entry("a", 300, 100).live(100),
            "past API Gateway's 2 hours"
        );
    }

    #[test]
    fn entries_round_trip_through_the_item_and_bad_ones_count_as_expired() {
        let e = entry("L0SM9cOFvHcCIhw=", 700, 7200);
        let item = HashMap::from([(
            "conns".to_owned(),
            AttributeValue::M(HashMap::from([
                (e.id.clone(), e.value()),
                ("junk".to_owned(), n(5)),
            ])),
        )]);
        let mut got = entries_of(&item);
        got.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(got[0], e);
        assert_eq!(got[1].id, "junk");
        assert!(!got[1].live(1));
        assert!(entries_of(&HashMap::new()).is_empty());
    }

    #[test]
    fn a_connect_writes_a_new_map_or_its_entry_conditionally_and_prunes_expired_ones() {
        let user = "u";
        let new = entry("new", 760, 7300);
        // No item: a new map, only if there is still none.
        let u = map_update("t", user, None, &new, &[], 100).unwrap();
        assert!(u.update_expression().contains("conns = :first"));
        assert_eq!(
            u.condition_expression(),
            Some("attribute_not_exists(version) AND attribute_not_exists(conns)")
        );
        // An existing map: the entry's path, the version read, and an expired one removed.
        let old = [entry("gone", 50, 7000), entry("live", 500, 7000)];
        let item = HashMap::from([
            ("version".to_owned(), n(3)),
            (
                "conns".to_owned(),
                AttributeValue::M(old.iter().map(|e| (e.id.clone(), e.value())).collect()),
            ),
        ]);
        let u = map_update("t", user, Some(&item), &new, &old, 100).unwrap();
        assert!(u.update_expression().contains("conns.#c = :entry"));
        assert!(u.update_expression().contains("REMOVE conns.#x0"));
        assert_eq!(
            u.condition_expression(),
            Some("version = :v AND attribute_exists(conns)")
        );
        let names = u.expression_attribute_names().unwrap();
        assert_eq!(names["#c"], "new");
        assert_eq!(names["#x0"], "gone");
        // A map without a version (never written so): still no blind overwrite.
        let bare = HashMap::from([("conns".to_owned(), AttributeValue::M(HashMap::new()))]);
        let u = map_update("t", user, Some(&bare), &new, &[], 100).unwrap();
        assert_eq!(
            u.condition_expression(),
            Some("attribute_not_exists(version) AND attribute_exists(conns)")
        );
    }
}
