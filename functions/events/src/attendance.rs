//! Seats and the waitlist of an event: the join state machine's storage
//! (docs/joins.md has the state machine and why overbooking cannot happen).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | membership (one per user and event) | `USER#<user>` | `JOIN#<event>` |
//! | seat | `EVENT#<event>` | `SEAT#<user>` |
//! | waitlist entry | `EVENT#<event>` | `WAIT#<ticket, 12 digits>` |
//!
//! The event item counts `joined`, `waitlisted` and the last waitlist ticket `wl_seq`. Every
//! transition is one TransactWriteItems whose first item is a conditional update of the event
//! item, so two transitions of one event never both commit on the same counts: a seat is taken
//! only while `joined < capacity` and nobody waits; a ticket is handed out only on the exact
//! `wl_seq` and `waitlisted` read (so tickets and positions follow commit order); a promotion
//! deletes the head's entry on the condition it still exists (so one freed seat promotes once).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use shared::outbox::OutboxMessage;

use shared::ddb::{Item, TxError, get_n, get_s, n, query_items, s};

use crate::model::Event;
use crate::store::{event_from_item, event_key};

/// Where a member stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Joined,
    Waitlisted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Joined => "joined",
            State::Waitlisted => "waitlisted",
        }
    }
}

/// A user's membership of an event (its item's attributes, through serde_dynamo).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    pub user_id: String,
    pub event_id: String,
    pub state: State,
    /// The waitlist ticket while waitlisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    /// When the user joined or was waitlisted (RFC 3339).
    #[serde(default)]
    pub at: String,
}

/// The head (or any entry) of a waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEntry {
    pub ticket: u64,
    pub user_id: String,
}

/// An attendee as the organizer sees it.
#[derive(Debug, Clone)]
pub struct Attendee {
    pub user_id: String,
    pub state: State,
    pub at: String,
    /// The item's sort key: the listing's position.
    pub sk: String,
}

pub fn membership_key(user_id: &str, event_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("USER#{user_id}"))),
        ("sk".into(), s(format!("JOIN#{event_id}"))),
    ])
}
fn seat_key(event_id: &str, user_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("EVENT#{event_id}"))),
        ("sk".into(), s(format!("SEAT#{user_id}"))),
    ])
}
pub fn wait_sk(ticket: u64) -> String {
    format!("WAIT#{ticket:012}")
}
fn wait_key(event_id: &str, ticket: u64) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("EVENT#{event_id}"))),
        ("sk".into(), s(wait_sk(ticket))),
    ])
}

fn membership_from_item(item: &Item) -> Option<Membership> {
    shared::ddb::from_item(item.clone()).ok()
}

/// What a refused transition tells about the items it read back (`ALL_OLD`): the event is item
/// 0 of every transition, the membership item 1 of a join.
pub trait Refusal {
    /// The event as it is now, when the event item's condition failed.
    fn current_event(&self) -> Option<Event>;
    /// The membership that exists, when the join's membership put failed.
    fn existing_membership(&self) -> Option<Membership>;
}

impl Refusal for TxError {
    fn current_event(&self) -> Option<Event> {
        self.cancellation()
            .and_then(|c| c.current(0))
            .and_then(|i| event_from_item(i).ok())
    }
    fn existing_membership(&self) -> Option<Membership> {
        self.cancellation()
            .and_then(|c| c.current(1))
            .and_then(membership_from_item)
    }
}

/// The update of the event item that every transition starts with: its own `condition` and
/// `update` (a `SET`), plus the outbox sequence: the transition numbers its `messages`
/// messages after `read` (the event's `msg_seq` as read) on the condition that it is unchanged
/// ([`shared::outbox::seq_condition`]).
fn event_update(
    event_id: &str,
    read: u64,
    messages: usize,
    condition: &str,
    update: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let b = Update::builder();
    let b = if condition.contains("#capacity") {
        b.expression_attribute_names("#capacity", "capacity")
    } else {
        b
    };
    b.set_key(Some(event_key(event_id)))
        .condition_expression(format!(
            "({condition}) AND {}",
            shared::outbox::seq_condition(read)
        ))
        .update_expression(format!("{update}, msg_seq = :next_msg_seq"))
        .expression_attribute_values(":msg_seq", n(read))
        .expression_attribute_values(":next_msg_seq", n(read + messages as u64))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
}

#[derive(Clone)]
pub struct Attendance {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Attendance {
    /// The transition's own `items`, then its outbox `messages` (numbered after `read`, the
    /// event's `msg_seq` its first item conditions on) and `extra` (the idempotency completion,
    /// always last), as one transaction.
    async fn commit(
        &self,
        read: u64,
        mut items: Vec<TransactWriteItem>,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        for m in shared::outbox::numbered(messages, read) {
            items.push(m.transact_put(&self.table)?);
        }
        items.extend(extra);
        shared::ddb::transact(&self.ddb, items).await
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

    /// A strongly consistent read of a membership.
    pub async fn membership(
        &self,
        user_id: &str,
        event_id: &str,
    ) -> anyhow::Result<Option<Membership>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(membership_key(user_id, event_id)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.as_ref().and_then(membership_from_item))
    }

    /// Takes a seat of `e` (read at `e`'s counts) for `user_id`. Item 0 is the event, item 1
    /// the membership (see [`TxError`]).
    pub async fn take_seat(
        &self,
        e: &Event,
        user_id: &str,
        at: &str,
        now: &str,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let update = event_update(
            &e.id,
            e.msg_seq,
            messages.len(),
            "#status = :active AND starts_at > :now AND joined < #capacity AND waitlisted = :zero",
            "SET joined = joined + :one",
        )
        .table_name(&self.table)
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .build()?;
        let m = Membership {
            user_id: user_id.into(),
            event_id: e.id.clone(),
            state: State::Joined,
            ticket: None,
            at: at.into(),
        };
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put(self.membership_item(&m)?, Some("attribute_not_exists(pk)"))?,
            self.put(self.seat_item(&e.id, user_id, at), None)?,
        ];
        self.commit(e.msg_seq, items, messages, extra).await
    }

    /// Puts `user_id` on the waitlist of the full event `e` with ticket `e.wl_seq + 1`, at
    /// position `e.waitlisted + 1`. Item 0 is the event, item 1 the membership.
    pub async fn wait(
        &self,
        e: &Event,
        user_id: &str,
        at: &str,
        now: &str,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let ticket = e.wl_seq + 1;
        let update = event_update(
            &e.id,
            e.msg_seq,
            messages.len(),
            "#status = :active AND starts_at > :now AND joined >= #capacity AND wl_seq = :seq AND waitlisted = :waiting",
            "SET wl_seq = :next_seq, waitlisted = :next_waiting",
        )
        .table_name(&self.table)
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":seq", n(e.wl_seq))
        .expression_attribute_values(":waiting", n(e.waitlisted))
        .expression_attribute_values(":next_seq", n(ticket))
        .expression_attribute_values(":next_waiting", n(e.waitlisted + 1))
        .build()?;
        let m = Membership {
            user_id: user_id.into(),
            event_id: e.id.clone(),
            state: State::Waitlisted,
            ticket: Some(ticket),
            at: at.into(),
        };
        let mut entry = wait_key(&e.id, ticket);
        entry.extend([
            ("type".into(), s("wait")),
            ("user_id".into(), s(user_id)),
            ("ticket".into(), n(ticket)),
            ("at".into(), s(at)),
        ]);
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put(self.membership_item(&m)?, Some("attribute_not_exists(pk)"))?,
            self.put(entry, Some("attribute_not_exists(pk)"))?,
        ];
        self.commit(e.msg_seq, items, messages, extra).await
    }

    /// Takes `m` (waitlisted) off the waitlist of `e` (as read).
    pub async fn leave_waitlist(
        &self,
        e: &Event,
        m: &Membership,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let ticket = m.ticket.unwrap_or_default();
        let update = event_update(
            &m.event_id,
            e.msg_seq,
            messages.len(),
            "waitlisted >= :one",
            "SET waitlisted = waitlisted - :one",
        )
        .table_name(&self.table)
        .expression_attribute_values(":one", n(1))
        .build()?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.delete(
                membership_key(&m.user_id, &m.event_id),
                "#state = :waitlisted AND ticket = :ticket",
                &[(":waitlisted", s("waitlisted")), (":ticket", n(ticket))],
            )?,
            self.delete(wait_key(&m.event_id, ticket), "attribute_exists(pk)", &[])?,
        ];
        self.commit(e.msg_seq, items, messages, extra).await
    }

    /// Gives up `m`'s seat. With `head` (the first waitlist entry, read just before), the seat
    /// goes to it in the same transaction: `joined` stays, `waitlisted` drops by one, the entry
    /// is deleted on the condition that it still exists (so two leaves never promote the same
    /// person, and each freed seat promotes once). Without, the transaction requires an empty
    /// waitlist (so a seat is never left free while someone waits).
    pub async fn leave_seat(
        &self,
        e: &Event,
        m: &Membership,
        head: Option<&WaitEntry>,
        at: &str,
        messages: &[OutboxMessage],
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), TxError> {
        let update = match head {
            None => event_update(
                &m.event_id,
                e.msg_seq,
                messages.len(),
                "waitlisted = :zero AND joined >= :one",
                "SET joined = joined - :one",
            )
            .expression_attribute_values(":zero", n(0)),
            Some(_) => event_update(
                &m.event_id,
                e.msg_seq,
                messages.len(),
                "#status = :active AND waitlisted >= :one",
                "SET waitlisted = waitlisted - :one",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active")),
        }
        .table_name(&self.table)
        .expression_attribute_values(":one", n(1))
        .build()?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
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
            items.extend(self.promotion_items(&m.event_id, h, at)?);
        }
        self.commit(e.msg_seq, items, messages, extra).await
    }

    /// The items that move `head` from the waitlist to a seat.
    fn promotion_items(
        &self,
        event_id: &str,
        head: &WaitEntry,
        at: &str,
    ) -> anyhow::Result<Vec<TransactWriteItem>> {
        let membership = Update::builder()
            .table_name(&self.table)
            .set_key(Some(membership_key(&head.user_id, event_id)))
            .condition_expression("#state = :waitlisted AND ticket = :ticket")
            .update_expression("SET #state = :joined, promoted_at = :at REMOVE ticket")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":waitlisted", s("waitlisted"))
            .expression_attribute_values(":joined", s("joined"))
            .expression_attribute_values(":ticket", n(head.ticket))
            .expression_attribute_values(":at", s(at))
            .build()?;
        Ok(vec![
            self.delete(wait_key(event_id, head.ticket), "attribute_exists(pk)", &[])?,
            TransactWriteItem::builder().update(membership).build(),
            self.put(self.seat_item(event_id, &head.user_id, at), None)?,
        ])
    }

    /// Promotes `head` into a free seat of `e` (a capacity increase freed it): the event must
    /// still have a free seat and someone waiting.
    pub async fn promote(
        &self,
        e: &Event,
        head: &WaitEntry,
        at: &str,
        messages: &[OutboxMessage],
    ) -> Result<(), TxError> {
        let update = event_update(
            &e.id,
            e.msg_seq,
            messages.len(),
            "#status = :active AND joined < #capacity AND waitlisted >= :one",
            "SET joined = joined + :one, waitlisted = waitlisted - :one",
        )
        .table_name(&self.table)
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":one", n(1))
        .build()?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.promotion_items(&e.id, head, at)?);
        self.commit(e.msg_seq, items, messages, Vec::new()).await
    }

    /// The first entry of the waitlist, read consistently.
    pub async fn head(&self, event_id: &str) -> anyhow::Result<Option<WaitEntry>> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :wait)")
            .expression_attribute_values(":pk", s(format!("EVENT#{event_id}")))
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

    /// 1 + the number of entries ahead of `ticket` on the waitlist.
    pub async fn position(&self, event_id: &str, ticket: u64) -> anyhow::Result<u32> {
        let mut pages = self
            .ddb
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(format!("EVENT#{event_id}")))
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

    /// Attendees of `event_id` after the sort key `after`: seats (by user id) first, then the
    /// waitlist in ticket order; at most `limit`, and whether more follow.
    pub async fn attendees(
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
            let start: Option<Item> = after.filter(|a| a.starts_with(prefix)).map(|a| {
                HashMap::from([
                    ("pk".into(), s(format!("EVENT#{event_id}"))),
                    ("sk".into(), s(a)),
                ])
            });
            let q = self
                .ddb
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("EVENT#{event_id}")))
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

    /// Every membership of `user_id`.
    pub async fn memberships(&self, user_id: &str) -> anyhow::Result<Vec<Membership>> {
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

    /// Every attendee of `event_id` (seats and waitlist), for fan-out.
    pub async fn everyone(&self, event_id: &str) -> anyhow::Result<Vec<String>> {
        let mut users = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, more) = self.attendees(event_id, after.as_deref(), 100).await?;
            after = page.last().map(|a| a.sk.clone());
            users.extend(page.into_iter().map(|a| a.user_id));
            if !more {
                return Ok(users);
            }
        }
    }
}

/// The message announcing a promotion to the promoted user.
pub fn promoted_message(e: &Event, user_id: &str) -> OutboxMessage {
    OutboxMessage::new(
        "join.promoted",
        &e.id,
        vec![user_id.to_owned()],
        format!("A seat freed up: you are now going to \"{}\"", e.data.title),
        serde_json::json!({ "event_id": e.id, "state": "joined" }),
    )
}
