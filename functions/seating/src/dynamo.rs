//! The DynamoDB adapter of [`Seats`] and [`SeatReader`]: the items and transactions of
//! docs/joins.md.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | event (written by the events crate; seating owns its counters) | `EVENT#<event>` | `EVENT` |
//! | membership (one per user and event) | `USER#<user>` | `JOIN#<event>` |
//! | seat | `EVENT#<event>` | `SEAT#<user>` |
//! | waitlist entry | `EVENT#<event>` | `WAIT#<ticket, 12 digits>` |
//!
//! Every transition is one TransactWriteItems whose first item is a conditional update of the
//! event item, so two transitions of one event never both commit on the same counts: a seat is
//! taken only while `joined < capacity` and nobody waits; a ticket is handed out only on the
//! exact `wl_seq` and `waitlisted` read (so tickets and positions follow commit order); a
//! promotion deletes the head's entry on the condition it still exists (so one freed seat
//! promotes once).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use shared::ddb::{
    Item, TxError, get_consistent, get_n, get_s, n, query_items, require_n, require_s, s,
};
use shared::outbox::utc;
use time::OffsetDateTime;

use crate::model::{Attendee, Membership, State, Venue, WaitEntry};
use crate::port::{Admission, AdmitError, Commit, Entry, SeatReader, Seats, WriteError};

/// The key of the item `sk` in the partition of event `event_id`.
fn in_event(event_id: &str, sk: impl Into<String>) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("EVENT#{event_id}"))),
        ("sk".into(), s(sk)),
    ])
}
/// The event item's key.
pub fn event_key(id: &str) -> Item {
    in_event(id, "EVENT")
}
pub fn membership_key(user_id: &str, event_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("USER#{user_id}"))),
        ("sk".into(), s(format!("JOIN#{event_id}"))),
    ])
}
fn seat_key(event_id: &str, user_id: &str) -> Item {
    in_event(event_id, format!("SEAT#{user_id}"))
}
/// The sort key of waitlist ticket `ticket`: fixed width, so the waitlist reads in order.
pub fn wait_sk(ticket: u64) -> String {
    format!("WAIT#{ticket:012}")
}
fn wait_key(event_id: &str, ticket: u64) -> Item {
    in_event(event_id, wait_sk(ticket))
}

fn membership_from_item(item: &Item) -> Option<Membership> {
    shared::ddb::from_item(item.clone()).ok()
}

/// The seating fields of an event item.
pub fn venue_from_item(item: &Item) -> anyhow::Result<Venue> {
    let starts_at = require_s(item, "starts_at")?;
    Ok(Venue {
        id: require_s(item, "id")?,
        title: require_s(item, "title")?,
        active: require_s(item, "status")? != "cancelled",
        starts_at: OffsetDateTime::parse(
            &starts_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| anyhow::anyhow!("starts_at: {e}"))?,
        capacity: require_n(item, "capacity")? as u32,
        joined: require_n(item, "joined")? as u32,
        waitlisted: get_n(item, "waitlisted").unwrap_or(0) as u32,
        wl_seq: get_n(item, "wl_seq").unwrap_or(0),
        msg_seq: get_n(item, "msg_seq").unwrap_or(0),
        hot: shared::ddb::get_bool(item, "hot"),
    })
}

/// What a cancelled transition read back (`ALL_OLD`): the event is item 0 of every transition,
/// the membership item 1 of a join, the idempotency completion the last.
fn refused(err: TxError) -> WriteError {
    match err {
        TxError::Cancelled(c) => WriteError::Refused {
            venue: c
                .current(0)
                .and_then(|i| venue_from_item(i).ok())
                .map(Box::new),
            member: c.current(1).and_then(membership_from_item).map(Box::new),
            lost_claim: c.last_failed(),
        },
        TxError::SessionRevoked => WriteError::SessionRevoked,
        TxError::Conflict => WriteError::Busy,
        TxError::Other(e) => WriteError::Other(e),
    }
}

/// The update of the event item that every transition starts with: its own `condition` and
/// `update` (a `SET`), plus the outbox sequence: the transition numbers its messages after the
/// event's `msg_seq` as read, on the condition that it is unchanged
/// ([`shared::outbox::seq_condition`]).
fn event_update<T>(
    c: &Commit<'_, T>,
    condition: &str,
    update: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let (read, messages) = (c.venue.msg_seq, c.messages.len());
    let b = Update::builder();
    let b = if condition.contains("#capacity") {
        b.expression_attribute_names("#capacity", "capacity")
    } else {
        b
    };
    let b = if condition.contains("#status") {
        b.expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
    } else {
        b
    };
    // DynamoDB refuses a value or name that the expressions do not use.
    let b = if condition.contains(":one") || update.contains(":one") {
        b.expression_attribute_values(":one", n(1))
    } else {
        b
    };
    b.set_key(Some(event_key(&c.venue.id)))
        .condition_expression(format!(
            "({condition}) AND {}",
            shared::outbox::seq_condition(read)
        ))
        .update_expression(format!("{update}, msg_seq = :next_msg_seq"))
        .expression_attribute_values(":msg_seq", n(read))
        .expression_attribute_values(":next_msg_seq", n(read + messages as u64))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
}

/// The waitlist's counters as read, for a condition on them (`:seq`, `:waiting`).
fn as_read(
    b: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    v: &Venue,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    b.expression_attribute_values(":seq", n(v.wl_seq))
        .expression_attribute_values(":waiting", n(v.waitlisted))
}

/// Seats and the waitlist in the single table.
#[derive(Clone)]
pub struct DynamoSeats {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DynamoSeats {
    pub fn new(app: &shared::App) -> Self {
        Self {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
        }
    }

    /// The transition's own `items`, then its outbox messages (numbered after the `msg_seq` its
    /// first item conditions on) and its tail (the idempotency completion always last), as one
    /// transaction.
    async fn commit(
        &self,
        mut items: Vec<TransactWriteItem>,
        c: Commit<'_, Vec<TransactWriteItem>>,
    ) -> Result<(), WriteError> {
        for m in shared::outbox::numbered(c.messages, c.venue.msg_seq) {
            items.push(m.transact_put(&self.table)?);
        }
        items.extend(c.tail);
        shared::ddb::transact(&self.ddb, items)
            .await
            .map_err(refused)
    }

    fn put(&self, item: Item, condition: Option<&str>) -> anyhow::Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    fn delete(
        &self,
        key: Item,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> anyhow::Result<TransactWriteItem> {
        let mut d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition);
        for (k, v) in values {
            d = d.expression_attribute_values(*k, v.clone());
        }
        if condition.contains("#state") {
            d = d.expression_attribute_names("#state", "state");
        }
        Ok(TransactWriteItem::builder().delete(d.build()?).build())
    }

    /// A strongly consistent Query of event `event_id`'s partition (`:pk`); the caller adds its
    /// key condition on the sort key.
    fn event_query(&self, event_id: &str) -> QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(format!("EVENT#{event_id}")))
    }

    fn update(
        &self,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> anyhow::Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .update(update.table_name(&self.table).build()?)
            .build())
    }

    fn membership_item(&self, m: &Membership) -> anyhow::Result<Item> {
        let mut item = shared::ddb::to_item(m)?;
        item.extend(membership_key(&m.user_id, &m.event_id));
        item.insert("type".into(), s("membership"));
        Ok(item)
    }

    fn seat_item(&self, event_id: &str, user_id: &str, at: &str) -> Item {
        let mut item = seat_key(event_id, user_id);
        item.extend([
            ("type".into(), s("seat")),
            ("user_id".into(), s(user_id)),
            ("at".into(), s(at)),
        ]);
        item
    }

    /// The items that move `head` from the waitlist to a seat.
    fn promotion_items(
        &self,
        event_id: &str,
        head: &WaitEntry,
        at: &str,
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        let membership = Update::builder()
            .set_key(Some(membership_key(&head.user_id, event_id)))
            .condition_expression("#state = :waitlisted AND ticket = :ticket")
            .update_expression("SET #state = :joined, promoted_at = :at REMOVE ticket")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":waitlisted", s("waitlisted"))
            .expression_attribute_values(":joined", s("joined"))
            .expression_attribute_values(":ticket", n(head.ticket))
            .expression_attribute_values(":at", s(at));
        Ok(vec![
            self.delete(wait_key(event_id, head.ticket), "attribute_exists(pk)", &[])?,
            self.update(membership)?,
            self.put(self.seat_item(event_id, &head.user_id, at), None)?,
        ])
    }

    /// A join's membership put: only if the user has none (item 1, read back when refused).
    fn new_membership(
        &self,
        v: &Venue,
        user_id: &str,
        state: State,
        ticket: Option<u64>,
        at: &str,
    ) -> anyhow::Result<TransactWriteItem> {
        let m = Membership {
            user_id: user_id.into(),
            event_id: v.id.clone(),
            state,
            ticket,
            at: at.into(),
        };
        self.put(self.membership_item(&m)?, Some("attribute_not_exists(pk)"))
    }
}

impl Seats for DynamoSeats {
    type Tail = Vec<TransactWriteItem>;

    async fn venue(&self, event_id: &str) -> anyhow::Result<Option<Venue>> {
        let item = get_consistent(&self.ddb, &self.table, event_key(event_id)).await?;
        item.as_ref().map(venue_from_item).transpose()
    }

    async fn membership(
        &self,
        user_id: &str,
        event_id: &str,
    ) -> anyhow::Result<Option<Membership>> {
        let key = membership_key(user_id, event_id);
        let item = get_consistent(&self.ddb, &self.table, key).await?;
        Ok(item.as_ref().and_then(membership_from_item))
    }

    async fn head(&self, event_id: &str) -> anyhow::Result<Option<WaitEntry>> {
        let out = self
            .event_query(event_id)
            .key_condition_expression("pk = :pk AND begins_with(sk, :wait)")
            .expression_attribute_values(":wait", s("WAIT#"))
            .limit(1)
            .send()
            .await?;
        Ok(out.items().first().and_then(|i| {
            Some(WaitEntry {
                ticket: get_n(i, "ticket")?,
                user_id: get_s(i, "user_id")?,
            })
        }))
    }

    async fn take_seat(&self, user_id: &str, c: Commit<'_, Self::Tail>) -> Result<(), WriteError> {
        let v = c.venue;
        let update = event_update(
            &c,
            "#status = :active AND starts_at > :now AND joined < #capacity AND waitlisted = :zero",
            "SET joined = joined + :one",
        )
        .expression_attribute_values(":now", s(utc(c.now)))
        .expression_attribute_values(":zero", n(0));
        let items = vec![
            self.update(update)?,
            self.new_membership(v, user_id, State::Joined, None, c.at)?,
            self.put(self.seat_item(&v.id, user_id, c.at), None)?,
        ];
        self.commit(items, c).await
    }

    async fn wait(&self, user_id: &str, c: Commit<'_, Self::Tail>) -> Result<(), WriteError> {
        let v = c.venue;
        let ticket = v.wl_seq + 1;
        let update = event_update(
            &c,
            "#status = :active AND starts_at > :now AND joined >= #capacity AND wl_seq = :seq AND waitlisted = :waiting",
            "SET wl_seq = :next_seq, waitlisted = :next_waiting",
        )
        .expression_attribute_values(":now", s(utc(c.now)));
        let update = as_read(update, v)
            .expression_attribute_values(":next_seq", n(ticket))
            .expression_attribute_values(":next_waiting", n(v.waitlisted + 1));
        let mut entry = wait_key(&v.id, ticket);
        entry.extend([
            ("type".into(), s("wait")),
            ("user_id".into(), s(user_id)),
            ("ticket".into(), n(ticket)),
            ("at".into(), s(c.at)),
        ]);
        let items = vec![
            self.update(update)?,
            self.new_membership(v, user_id, State::Waitlisted, Some(ticket), c.at)?,
            self.put(entry, Some("attribute_not_exists(pk)"))?,
        ];
        self.commit(items, c).await
    }

    async fn leave_waitlist(
        &self,
        m: &Membership,
        c: Commit<'_, Self::Tail>,
    ) -> Result<(), WriteError> {
        let ticket = m.ticket.unwrap_or_default();
        let update = event_update(
            &c,
            "waitlisted >= :one",
            "SET waitlisted = waitlisted - :one",
        );
        let items = vec![
            self.update(update)?,
            self.delete(
                membership_key(&m.user_id, &m.event_id),
                "#state = :waitlisted AND ticket = :ticket",
                &[(":waitlisted", s("waitlisted")), (":ticket", n(ticket))],
            )?,
            self.delete(wait_key(&m.event_id, ticket), "attribute_exists(pk)", &[])?,
        ];
        self.commit(items, c).await
    }

    async fn leave_seat(
        &self,
        m: &Membership,
        head: Option<&WaitEntry>,
        c: Commit<'_, Self::Tail>,
    ) -> Result<(), WriteError> {
        let update = match head {
            None => event_update(
                &c,
                "waitlisted = :zero AND joined >= :one",
                "SET joined = joined - :one",
            )
            .expression_attribute_values(":zero", n(0)),
            Some(_) => event_update(
                &c,
                "#status = :active AND waitlisted >= :one",
                "SET waitlisted = waitlisted - :one",
            ),
        };
        let mut items = vec![
            self.update(update)?,
            self.delete(
                membership_key(&m.user_id, &m.event_id),
                "#state = :joined",
                &[(":joined", s("joined"))],
            )?,
            self.delete(
                seat_key(&m.event_id, &m.user_id),
                "attribute_exists(pk)",
                &[],
            )?,
        ];
        if let Some(h) = head {
            items.extend(self.promotion_items(&m.event_id, h, c.at)?);
        }
        self.commit(items, c).await
    }

    async fn promote(&self, head: &WaitEntry, c: Commit<'_, Self::Tail>) -> Result<(), WriteError> {
        let update = event_update(
            &c,
            "#status = :active AND joined < #capacity AND waitlisted >= :one",
            "SET joined = joined + :one, waitlisted = waitlisted - :one",
        );
        let mut items = vec![self.update(update)?];
        items.extend(self.promotion_items(&c.venue.id, head, c.at)?);
        self.commit(items, c).await
    }

    async fn admit(&self, a: Admission<'_, Self::Tail>) -> Result<(), AdmitError> {
        let (roles, items): (Vec<Role>, Vec<TransactWriteItem>) =
            self.admission_items(a)?.into_iter().unzip();
        if items.is_empty() {
            return Ok(());
        }
        shared::ddb::transact_itemwise(&self.ddb, items.clone())
            .await
            .map_err(|e| admission_refused(&roles, &items, e))
    }
}

/// What each item of an admission's transaction is, to read a cancellation back.
#[derive(Debug, Clone, Copy)]
enum Role {
    Event,
    Membership(usize),
    Place,
    Outbox,
    /// An item of a request's tail: its session guard or its idempotency record.
    Tail(Entry),
}

impl DynamoSeats {
    /// The admission's items, each with its role: the event's update (when anyone is
    /// admitted), per newcomer its membership, its seat or waitlist entry and its tail, the
    /// outbox items, then the refusals' records.
    fn admission_items(
        &self,
        a: Admission<'_, Vec<TransactWriteItem>>,
    ) -> anyhow::Result<Vec<(Role, TransactWriteItem)>> {
        let v = a.venue;
        let mut items = Vec::new();
        if !a.admits.is_empty() {
            let seats = a.admits.iter().filter(|x| x.ticket.is_none()).count() as u64;
            let waits = a.admits.len() as u64 - seats;
            let last_ticket = a.admits.iter().filter_map(|x| x.ticket).max();
            let messages: Vec<_> = a.admits.iter().map(|x| x.message.clone()).collect();
            let commit = Commit {
                venue: v,
                at: a.at,
                now: a.now,
                messages: &messages,
                tail: (),
            };
            let update = event_update(
                &commit,
                "#status = :active AND starts_at > :now AND #capacity = :capacity AND joined = :joined AND waitlisted = :waiting AND wl_seq = :seq",
                "SET joined = :next_joined, waitlisted = :next_waiting, wl_seq = :next_seq",
            )
            .expression_attribute_values(":now", s(utc(a.now)))
            .expression_attribute_values(":capacity", n(v.capacity))
            .expression_attribute_values(":joined", n(v.joined));
            let update = as_read(update, v)
                .expression_attribute_values(":next_joined", n(u64::from(v.joined) + seats))
                .expression_attribute_values(":next_waiting", n(u64::from(v.waitlisted) + waits))
                .expression_attribute_values(":next_seq", n(last_ticket.unwrap_or(v.wl_seq)));
            items.push((Role::Event, self.update(update)?));
            for m in shared::outbox::numbered(&messages, v.msg_seq) {
                items.push((Role::Outbox, m.transact_put(&self.table)?));
            }
        }
        for (i, x) in a.admits.into_iter().enumerate() {
            let state = match x.ticket {
                None => State::Joined,
                Some(_) => State::Waitlisted,
            };
            items.push((
                Role::Membership(i),
                self.new_membership(v, &x.user_id, state, x.ticket, a.at)?,
            ));
            let place = match x.ticket {
                None => self.put(self.seat_item(&v.id, &x.user_id, a.at), None)?,
                Some(ticket) => {
                    let mut entry = wait_key(&v.id, ticket);
                    entry.extend([
                        ("type".into(), s("wait")),
                        ("user_id".into(), s(&x.user_id)),
                        ("ticket".into(), n(ticket)),
                        ("at".into(), s(a.at)),
                    ]);
                    self.put(entry, Some("attribute_not_exists(pk)"))?
                }
            };
            items.push((Role::Place, place));
            items.extend(x.tail.into_iter().map(|t| (Role::Tail(Entry::Admit(i)), t)));
        }
        for (j, tail) in a.refusals.into_iter().enumerate() {
            items.extend(tail.into_iter().map(|t| (Role::Tail(Entry::Refusal(j)), t)));
        }
        Ok(items)
    }
}

/// What a cancelled admission read back, per item.
fn admission_refused(roles: &[Role], items: &[TransactWriteItem], err: TxError) -> AdmitError {
    let c = match err {
        TxError::Cancelled(c) => c,
        TxError::Conflict => return AdmitError::Busy,
        TxError::SessionRevoked => {
            return AdmitError::Other(anyhow::anyhow!("a session guard failed unreported"));
        }
        TxError::Other(e) => return AdmitError::Other(e),
    };
    let (mut venue, mut members, mut revoked, mut answered) =
        (None, Vec::new(), Vec::new(), Vec::new());
    let mut unexplained = false;
    for (i, role) in roles.iter().enumerate() {
        if !c.failed(i) {
            continue;
        }
        match *role {
            Role::Event => {
                venue = c
                    .current(i)
                    .and_then(|item| venue_from_item(item).ok())
                    .map(Box::new);
                unexplained |= venue.is_none();
            }
            Role::Membership(k) => match c.current(i).and_then(membership_from_item) {
                Some(m) => members.push((k, m)),
                None => unexplained = true,
            },
            Role::Tail(e) if shared::session::is_guard(&items[i]) => revoked.push(e),
            Role::Tail(e) => answered.push(e),
            Role::Place | Role::Outbox => unexplained = true,
        }
    }
    if unexplained
        && members.is_empty()
        && revoked.is_empty()
        && answered.is_empty()
        && venue.is_none()
    {
        // The event is gone, or an item no request explains failed: read again.
        return AdmitError::gone();
    }
    AdmitError::Refused {
        venue,
        members,
        revoked,
        answered,
    }
}

impl SeatReader for DynamoSeats {
    async fn position(&self, event_id: &str, ticket: u64) -> anyhow::Result<u32> {
        let mut pages = self
            .event_query(event_id)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":lo", s("WAIT#"))
            .expression_attribute_values(":hi", s(wait_sk(ticket)))
            .into_paginator()
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page?.count() as u32;
        }
        Ok(count.max(1))
    }

    async fn attendees(
        &self,
        event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Attendee>, bool)> {
        let mut out = Vec::new();
        let sections = [("SEAT#", State::Joined), ("WAIT#", State::Waitlisted)];
        for (prefix, state) in sections {
            if after.is_some_and(|a| prefix == "SEAT#" && a.starts_with("WAIT#")) {
                continue;
            }
            let start = after
                .filter(|a| a.starts_with(prefix))
                .map(|a| in_event(event_id, a));
            let q = self
                .event_query(event_id)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix))
                .limit((limit + 1 - out.len()) as i32)
                .set_exclusive_start_key(start);
            let mut items = query_items(q).send();
            while let Some(i) = items.next().await {
                let i = i?;
                out.push(Attendee {
                    user_id: get_s(&i, "user_id").unwrap_or_default(),
                    state,
                    at: get_s(&i, "at").unwrap_or_default(),
                    sk: get_s(&i, "sk").unwrap_or_default(),
                });
                if out.len() > limit {
                    out.truncate(limit);
                    return Ok((out, true));
                }
            }
        }
        Ok((out, false))
    }

    async fn memberships(&self, user_id: &str) -> anyhow::Result<Vec<Membership>> {
        let q = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :join)")
            .expression_attribute_values(":pk", s(format!("USER#{user_id}")))
            .expression_attribute_values(":join", s("JOIN#"));
        Ok(shared::ddb::query_all(q)
            .await?
            .iter()
            .filter_map(membership_from_item)
            .collect())
    }
}
