//! The events' DynamoDB access. Table design (docs/events-table.md):
//!
//! | item | pk | sk | GSI1 (gsi1pk / gsi1sk) |
//! |---|---|---|---|
//! | event | `EVENT#<id>` | `EVENT` | `CITY#<city>` / `<starts_at UTC>#<id>` while active |
//! | search posting | `TERM#<city>#<stem>` | `EVENT#<id>` | — |
//!
//! Every access is a GetItem, Query or BatchGetItem on these keys; the event and its postings
//! are written in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use shared::outbox::OutboxMessage;

use crate::model::{Event, EventData, Status, parse_time, utc};
use crate::text::index_terms;

use shared::ddb::{Item, Retry, TxError, get_bool, get_n, n, query_items, require_n, require_s, s};

pub use seating::dynamo::event_key;
fn posting_pk(city: &str, term: &str) -> String {
    format!("TERM#{city}#{term}")
}
fn gsi1sk(data: &EventData, id: &str) -> String {
    format!("{}#{id}", utc(data.starts_at))
}

/// A search posting: one event under one term.
#[derive(Debug, Clone)]
pub struct Posting {
    pub id: String,
    pub starts_at: String,
    pub category: String,
    pub mask: u8,
}

/// BatchGetItem left keys unprocessed until the time budget ran out.
#[derive(Debug)]
pub struct Unavailable;

#[derive(Clone)]
pub struct Store {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn event_item(e: &Event) -> Item {
    let d = &e.data;
    let mut item = event_key(&e.id);
    item.extend([
        ("type".into(), s("event")),
        ("id".into(), s(&e.id)),
        ("owner_id".into(), s(&e.owner_id)),
        ("title".into(), s(&d.title)),
        ("description".into(), s(&d.description)),
        ("city".into(), s(&d.city)),
        ("category".into(), s(&d.category)),
        ("venue".into(), s(&d.venue)),
        (
            "tags".into(),
            AttributeValue::L(d.tags.iter().map(s).collect()),
        ),
        ("starts_at".into(), s(utc(d.starts_at))),
        ("ends_at".into(), s(utc(d.ends_at))),
        ("capacity".into(), n(d.capacity)),
        ("hot".into(), AttributeValue::Bool(d.hot)),
        ("joined".into(), n(e.joined)),
        ("waitlisted".into(), n(e.waitlisted)),
        ("wl_seq".into(), n(e.wl_seq)),
        ("msg_seq".into(), n(e.msg_seq)),
        ("status".into(), s(status_str(e.status))),
        ("version".into(), n(e.version)),
        ("created_at".into(), s(&e.created_at)),
        ("updated_at".into(), s(&e.updated_at)),
    ]);
    if e.status == Status::Active {
        item.insert("gsi1pk".into(), s(format!("CITY#{}", d.city)));
        item.insert("gsi1sk".into(), s(gsi1sk(d, &e.id)));
    }
    item
}

fn status_str(st: Status) -> &'static str {
    match st {
        Status::Active => "active",
        Status::Cancelled => "cancelled",
    }
}

pub fn event_from_item(item: &Item) -> anyhow::Result<Event> {
    let time = |k: &str| parse_time(&require_s(item, k)?).map_err(|e| anyhow::anyhow!("{k}: {e}"));
    Ok(Event {
        id: require_s(item, "id")?,
        owner_id: require_s(item, "owner_id")?,
        data: EventData {
            title: require_s(item, "title")?,
            description: require_s(item, "description")?,
            city: require_s(item, "city")?,
            category: require_s(item, "category")?,
            venue: require_s(item, "venue")?,
            tags: item
                .get("tags")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|t| t.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            starts_at: time("starts_at")?,
            ends_at: time("ends_at")?,
            capacity: require_n(item, "capacity")? as u32,
            hot: get_bool(item, "hot"),
        },
        status: match require_s(item, "status")?.as_str() {
            "cancelled" => Status::Cancelled,
            _ => Status::Active,
        },
        version: require_n(item, "version")?,
        joined: require_n(item, "joined")? as u32,
        waitlisted: get_n(item, "waitlisted").unwrap_or(0) as u32,
        wl_seq: get_n(item, "wl_seq").unwrap_or(0),
        msg_seq: get_n(item, "msg_seq").unwrap_or(0),
        created_at: require_s(item, "created_at")?,
        updated_at: require_s(item, "updated_at")?,
    })
}

fn posting_put(table: &str, e: &Event, term: &str, mask: u8) -> anyhow::Result<TransactWriteItem> {
    let d = &e.data;
    let put = Put::builder()
        .table_name(table)
        .item("pk", s(posting_pk(&d.city, term)))
        .item("sk", s(format!("EVENT#{}", e.id)))
        .item("type", s("posting"))
        .item("event_id", s(&e.id))
        .item("starts_at", s(utc(d.starts_at)))
        .item("category", s(&d.category))
        .item("mask", n(mask))
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn posting_delete(
    table: &str,
    city: &str,
    id: &str,
    term: &str,
) -> anyhow::Result<TransactWriteItem> {
    let del = Delete::builder()
        .table_name(table)
        .key("pk", s(posting_pk(city, term)))
        .key("sk", s(format!("EVENT#{id}")))
        .build()?;
    Ok(TransactWriteItem::builder().delete(del).build())
}

/// The posting writes that take an event's index from `old` (None: not indexed) to `new`
/// (None: no longer indexed), touching only postings that change.
fn posting_changes(
    table: &str,
    old: Option<&Event>,
    new: Option<&Event>,
) -> anyhow::Result<Vec<TransactWriteItem>> {
    let terms = |e: Option<&Event>| {
        e.map(|e| index_terms(&e.data.title, &e.data.description, &e.data.tags))
            .unwrap_or_default()
    };
    let (old_terms, new_terms): (BTreeMap<String, u8>, BTreeMap<String, u8>) =
        (terms(old), terms(new));
    let mut out = Vec::new();
    if let Some(o) = old {
        let moved = new.is_none_or(|n| n.data.city != o.data.city);
        for term in old_terms.keys() {
            if moved || !new_terms.contains_key(term) {
                out.push(posting_delete(table, &o.data.city, &o.id, term)?);
            }
        }
    }
    if let Some(n) = new {
        let same_place_and_time = old.is_some_and(|o| {
            o.data.city == n.data.city
                && o.data.starts_at == n.data.starts_at
                && o.data.category == n.data.category
        });
        for (term, mask) in &new_terms {
            if !(same_place_and_time && old_terms.get(term) == Some(mask)) {
                out.push(posting_put(table, n, term, *mask)?);
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Writes a new event and its search postings in one transaction, with `extra` (the
    /// idempotency record's completion); a conflict is sent again within `retry`.
    pub async fn create(
        &self,
        e: &Event,
        extra: Vec<TransactWriteItem>,
        mut retry: Retry,
    ) -> Result<(), TxError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(event_item(e)))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(posting_changes(&self.table, None, Some(e))?);
        items.extend(extra);
        shared::ddb::transact_retrying(&self.ddb, items, &mut retry).await
    }

    /// A strongly consistent read of one event.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Event>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .consistent_read(true)
            .send()
            .await?;
        out.item.as_ref().map(event_from_item).transpose()
    }

    /// Replaces `old` by `new` (same id) if the stored version is still `old.version`, the event
    /// is active, no more seats are taken than `new`'s capacity, and no message was numbered
    /// since `old` was read; the postings follow in the same transaction, then `messages` (the
    /// outbox items telling the attendees, numbered after `old.msg_seq`) and `extra` (the
    /// session guard). `new.status == Cancelled` cancels: the event leaves the city index and
    /// the search index.
    pub async fn replace(
        &self,
        old: &Event,
        new: &Event,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let d = &new.data;
        // Only a change that writes messages numbers them (and so conditions on the number
        // read): an edit that tells nobody does not contend with the joins.
        let (condition, set_seq) = if messages.is_empty() {
            (String::new(), "")
        } else {
            (
                format!(" AND {}", shared::outbox::seq_condition(old.msg_seq)),
                ", msg_seq = :next_msg_seq",
            )
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(event_key(&new.id)))
            .condition_expression(format!(
                "version = :old AND #status = :active AND joined <= :capacity{condition}"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":old", n(old.version))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":capacity", n(d.capacity));
        let mut sets = Vec::new();
        let item = event_item(new);
        for field in [
            "title",
            "description",
            "city",
            "category",
            "venue",
            "tags",
            "starts_at",
            "ends_at",
            "capacity",
            "hot",
            "status",
            "version",
            "updated_at",
        ] {
            let name = format!("#{field}");
            if field != "status" {
                update = update.expression_attribute_names(&name, field);
            }
            update = update.expression_attribute_values(format!(":{field}"), item[field].clone());
            sets.push(format!("{name} = :{field}"));
        }
        let expression = if new.status == Status::Active {
            update = update
                .expression_attribute_values(":gsi1pk", item["gsi1pk"].clone())
                .expression_attribute_values(":gsi1sk", item["gsi1sk"].clone());
            format!(
                "SET {}{set_seq}, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk",
                sets.join(", ")
            )
        } else {
            format!("SET {}{set_seq} REMOVE gsi1pk, gsi1sk", sets.join(", "))
        };
        if !messages.is_empty() {
            update = update
                .expression_attribute_values(":msg_seq", n(old.msg_seq))
                .expression_attribute_values(
                    ":next_msg_seq",
                    n(old.msg_seq + messages.len() as u64),
                );
        }
        let update = update.update_expression(expression).build()?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let indexed_new = (new.status == Status::Active).then_some(new);
        items.extend(posting_changes(&self.table, Some(old), indexed_new)?);
        for m in shared::outbox::numbered(messages, old.msg_seq) {
            items.push(m.transact_put(&self.table)?);
        }
        items.extend(extra);
        shared::ddb::transact(&self.ddb, items).await
    }

    /// Active events of `city` starting in `[from, to]`, ordered by start time then id, after
    /// `after` (start, id); at most `limit`, and whether more may follow.
    pub async fn list(
        &self,
        city: &str,
        category: Option<&str>,
        from: OffsetDateTime,
        to: Option<OffsetDateTime>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Event>, bool)> {
        let pk = format!("CITY#{city}");
        let lo = utc(from);
        let hi = to
            .map(|t| format!("{}#~", utc(t)))
            .unwrap_or_else(|| "~".into());
        let start: Option<Item> = after.map(|(starts_at, id)| {
            let mut k = event_key(id);
            k.insert("gsi1pk".into(), s(&pk));
            k.insert("gsi1sk".into(), s(format!("{starts_at}#{id}")));
            k
        });
        let mut q = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":lo", s(&lo))
            .expression_attribute_values(":hi", s(&hi))
            .limit((limit + 1).max(10) as i32)
            .set_exclusive_start_key(start);
        if let Some(c) = category {
            q = q
                .filter_expression("category = :category")
                .expression_attribute_values(":category", s(c));
        }
        let mut items = query_items(q).send();
        let mut out = Vec::new();
        while let Some(item) = items.next().await {
            let e = event_from_item(&item?)?;
            if e.status == Status::Active {
                out.push(e);
            }
            if out.len() > limit {
                out.truncate(limit);
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }

    /// Every posting of `term` in `city` whose event starts in `[from, to]` (and has
    /// `category`), read consistently from the base table.
    pub async fn postings(
        &self,
        city: &str,
        term: &str,
        category: Option<&str>,
        from: OffsetDateTime,
        to: Option<OffsetDateTime>,
    ) -> anyhow::Result<Vec<Posting>> {
        let hi = to.map(utc).unwrap_or_else(|| "~".into());
        let mut q = self
            .ddb
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .filter_expression(if category.is_some() {
                "starts_at BETWEEN :lo AND :hi AND category = :category"
            } else {
                "starts_at BETWEEN :lo AND :hi"
            })
            .expression_attribute_values(":pk", s(posting_pk(city, term)))
            .expression_attribute_values(":lo", s(utc(from)))
            .expression_attribute_values(":hi", s(&hi));
        if let Some(c) = category {
            q = q.expression_attribute_values(":category", s(c));
        }
        shared::ddb::query_all(q)
            .await?
            .iter()
            .map(|item| {
                Ok(Posting {
                    id: require_s(item, "event_id")?,
                    starts_at: require_s(item, "starts_at")?,
                    category: require_s(item, "category")?,
                    mask: require_n(item, "mask")? as u8,
                })
            })
            .collect()
    }

    /// The events with these ids (at most 100, no repeats), consistently read. Keys DynamoDB
    /// leaves unprocessed are asked again ([`Retry`]) until `budget` runs out; then the whole
    /// answer is [`Unavailable`] rather than a silent partial one.
    pub async fn batch_get(
        &self,
        ids: &[String],
        budget: Duration,
    ) -> anyhow::Result<Result<HashMap<String, Event>, Unavailable>> {
        let mut retry = Retry::within("BatchGetItem", budget)
            .pacing(Duration::from_millis(25), Duration::from_millis(800));
        let keys = ids.iter().map(|id| event_key(id)).collect();
        let Some(items) =
            shared::ddb::batch_get_consistent(&self.ddb, &self.table, keys, &mut retry).await?
        else {
            return Ok(Err(Unavailable));
        };
        let mut found = HashMap::new();
        for item in items {
            let e = event_from_item(&item)?;
            found.insert(e.id.clone(), e);
        }
        Ok(Ok(found))
    }
}
