//! An event's own transitions — a change (PATCH) and a cancellation — as rules against a
//! narrow port ([`EventWriter`]: read an event, replace it on the condition that it is as read).
//! The DynamoDB [`crate::store::Store`] implements it; [`memory::MemoryEvents`] is its twin for
//! the unit tests. Joins and leaves change the counts and message numbers, not the version: a
//! replacement they beat is tried again on the fresh read while the version still matches.

use std::future::Future;

use shared::ddb::{Retry, TxError};
use shared::outbox::OutboxMessage;
use time::OffsetDateTime;

use crate::error::EventError;
use crate::model::{Event, EventData, Status, utc};

/// What the rules need of the store.
pub trait EventWriter: Send + Sync {
    /// What the caller adds to a replacement (the session guard).
    type Tail: Send;
    /// The event, read consistently.
    fn get(&self, id: &str) -> impl Future<Output = anyhow::Result<Option<Event>>> + Send;
    /// Replaces `old` by `new` if the stored version is `old.version`, it is active, no more
    /// seats are taken than `new`'s capacity, and (when there are `messages`) none was numbered
    /// since `old` was read; the messages and `tail` commit with it, all or nothing.
    fn replace(
        &self,
        old: &Event,
        new: &Event,
        messages: &[OutboxMessage],
        tail: Self::Tail,
    ) -> impl Future<Output = Result<(), TxError>> + Send;
}

/// Changes `current` (as read, and allowed to the caller) to what `apply` makes of its data,
/// if it is still version `if_match`: 412 when it is not, 409 when it is cancelled or the new
/// capacity is below the seats taken. A replacement beaten by joins or leaves is tried again
/// on a fresh read until `retry` runs out (503). Returns the event as last read and as changed.
pub async fn change<W: EventWriter>(
    w: &W,
    mut current: Event,
    if_match: u64,
    apply: impl Fn(&EventData) -> Result<EventData, shared::ApiError>,
    now: OffsetDateTime,
    mut retry: Retry,
    tail: impl Fn() -> anyhow::Result<W::Tail>,
) -> Result<(Event, Event), EventError> {
    loop {
        if current.version != if_match {
            return Err(EventError::Stale(current.etag()));
        }
        if current.status == Status::Cancelled {
            return Err(EventError::Cancelled);
        }
        let data = apply(&current.data).map_err(EventError::Invalid)?;
        if data.capacity < current.joined {
            return Err(EventError::CapacityBelowSeats {
                capacity: data.capacity,
                joined: current.joined,
            });
        }
        let next = Event {
            data,
            version: current.version + 1,
            updated_at: utc(now),
            ..current.clone()
        };
        let messages: Vec<OutboxMessage> = changed_message(&current, &next).into_iter().collect();
        match w.replace(&current, &next, &messages, tail()?).await {
            Ok(()) => return Ok((current, next)),
            Err(TxError::Cancelled(_) | TxError::Conflict) => {
                if !retry.wait().await {
                    return Err(EventError::KeptChanging);
                }
                current = w
                    .get(&current.id)
                    .await?
                    .ok_or_else(|| EventError::NotFound(current.id.clone()))?;
            }
            Err(e) => return Err(EventError::Store(e)),
        }
    }
}

/// Cancels event `id` for a caller `allowed` to change it (the event stays, for history), with
/// the message that tells every attendee. Returns the cancelled event and whether this call
/// cancelled it (false: it already was). Tried again on a fresh read while joins or leaves beat
/// it, until `retry` runs out (503).
pub async fn cancel<W: EventWriter>(
    w: &W,
    id: &str,
    allowed: impl Fn(&Event) -> Result<(), EventError>,
    now: impl Fn() -> OffsetDateTime,
    mut retry: Retry,
    tail: impl Fn() -> anyhow::Result<W::Tail>,
) -> Result<(Event, bool), EventError> {
    loop {
        let current = w
            .get(id)
            .await?
            .ok_or_else(|| EventError::NotFound(id.to_owned()))?;
        allowed(&current)?;
        if current.status == Status::Cancelled {
            return Ok((current, false));
        }
        let next = Event {
            status: Status::Cancelled,
            version: current.version + 1,
            // Each try stamps its own time: the change commits when it does.
            updated_at: utc(now()),
            data: EventData {
                // The capacity condition must hold whatever was joined meanwhile.
                capacity: current.data.capacity.max(current.joined),
                ..current.data.clone()
            },
            ..current.clone()
        };
        let message = OutboxMessage::new(
            "event.cancelled",
            &next.id,
            Vec::new(),
            format!("\"{}\" was cancelled", next.data.title),
            serde_json::json!({ "event_id": next.id, "fanout": "attendees" }),
        );
        match w.replace(&current, &next, &[message], tail()?).await {
            Ok(()) => return Ok((next, true)),
            // Changed meanwhile, or DynamoDB conflicted: read again after a jittered pause.
            Err(TxError::Cancelled(_) | TxError::Conflict) => {
                if !retry.wait().await {
                    return Err(EventError::KeptChanging);
                }
            }
            Err(e) => return Err(EventError::Store(e)),
        }
    }
}

/// The message telling the attendees what changed, when something they plan around did.
pub fn changed_message(old: &Event, new: &Event) -> Option<OutboxMessage> {
    let (o, n) = (&old.data, &new.data);
    let mut changed = Vec::new();
    if o.title != n.title {
        changed.push("title");
    }
    if o.starts_at != n.starts_at || o.ends_at != n.ends_at {
        changed.push("time");
    }
    if o.venue != n.venue || o.city != n.city {
        changed.push("place");
    }
    if changed.is_empty() {
        return None;
    }
    Some(OutboxMessage::new(
        "event.changed",
        &new.id,
        Vec::new(),
        format!("\"{}\" changed: {}", n.title, changed.join(", ")),
        serde_json::json!({ "event_id": new.id, "fanout": "attendees", "changed": changed,
            "starts_at": utc(n.starts_at), "venue": n.venue }),
    ))
}

/// The DynamoDB store: the replacement of [`crate::store::Store::replace`] (the session guard
/// is its tail).
impl EventWriter for crate::store::Store {
    type Tail = Vec<aws_sdk_dynamodb::types::TransactWriteItem>;

    async fn get(&self, id: &str) -> anyhow::Result<Option<Event>> {
        crate::store::Store::get(self, id).await
    }

    async fn replace(
        &self,
        old: &Event,
        new: &Event,
        messages: &[OutboxMessage],
        tail: Self::Tail,
    ) -> Result<(), TxError> {
        crate::store::Store::replace(self, old, new, messages, tail).await
    }
}

pub mod memory {
    //! The in-memory twin of [`super::EventWriter`]: the same conditions as the DynamoDB
    //! store's replacement, applied under one lock; injectable conflicts.

    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use shared::ddb::{Cancellation, TxError};
    use shared::outbox::OutboxMessage;

    use super::EventWriter;
    use crate::model::{Event, Status};

    /// Events by id, and the messages committed with their changes.
    #[derive(Default)]
    pub struct MemoryEvents {
        events: Mutex<HashMap<String, Event>>,
        outbox: Mutex<Vec<OutboxMessage>>,
        /// The next replacements that conflict (a join or leave beat them).
        pub conflicts: AtomicU32,
        /// What the next replacement fails with (a revoked session, a failure), once.
        pub fail_next: Mutex<Option<TxError>>,
    }

    impl FromIterator<Event> for MemoryEvents {
        fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> Self {
            let events = events.into_iter().map(|e| (e.id.clone(), e)).collect();
            MemoryEvents {
                events: Mutex::new(events),
                ..Default::default()
            }
        }
    }

    impl MemoryEvents {
        /// Stores `e` as it is (a join or leave would change its counts so).
        pub fn put(&self, e: Event) {
            self.events.lock().unwrap().insert(e.id.clone(), e);
        }
        pub fn stored(&self, id: &str) -> Option<Event> {
            self.events.lock().unwrap().get(id).cloned()
        }
        pub fn outbox(&self) -> Vec<OutboxMessage> {
            self.outbox.lock().unwrap().clone()
        }
    }

    impl EventWriter for MemoryEvents {
        type Tail = ();

        async fn get(&self, id: &str) -> anyhow::Result<Option<Event>> {
            tokio::task::yield_now().await;
            Ok(self.stored(id))
        }

        async fn replace(
            &self,
            old: &Event,
            new: &Event,
            messages: &[OutboxMessage],
            _tail: (),
        ) -> Result<(), TxError> {
            tokio::task::yield_now().await;
            if let Some(e) = self.fail_next.lock().unwrap().take() {
                return Err(e);
            }
            if self
                .conflicts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(TxError::Conflict);
            }
            let mut events = self.events.lock().unwrap();
            let Some(stored) = events.get(&new.id) else {
                return Err(TxError::Cancelled(Cancellation::default()));
            };
            let holds = stored.version == old.version
                && stored.status == Status::Active
                && stored.joined <= new.data.capacity
                && (messages.is_empty() || stored.msg_seq == old.msg_seq);
            if !holds {
                return Err(TxError::Cancelled(Cancellation::default()));
            }
            // The counts are the store's own (joins and leaves keep them), not the writer's.
            let (joined, waitlisted, wl_seq) = (stored.joined, stored.waitlisted, stored.wl_seq);
            let msg_seq = stored.msg_seq + messages.len() as u64;
            events.insert(
                new.id.clone(),
                Event {
                    joined,
                    waitlisted,
                    wl_seq,
                    msg_seq,
                    ..new.clone()
                },
            );
            self.outbox
                .lock()
                .unwrap()
                .extend(shared::outbox::numbered(messages, old.msg_seq));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::memory::MemoryEvents;
    use super::*;

    const ID: &str = "evt_0001";

    fn at(s: &str) -> OffsetDateTime {
        crate::model::parse_time(s).unwrap()
    }

    fn now() -> OffsetDateTime {
        at("2030-01-01T12:00:00Z")
    }

    fn event(capacity: u32, joined: u32) -> Event {
        let data = EventData {
            title: "Jazz night".into(),
            description: "Quartet".into(),
            city: "lisbon".into(),
            category: "music".into(),
            venue: "The Hall".into(),
            tags: vec![],
            starts_at: at("2030-06-01T19:00:00Z"),
            ends_at: at("2030-06-01T22:00:00Z"),
            capacity,
            hot: false,
        };
        Event {
            joined,
            ..Event::new(ID.into(), "usr_owner".into(), data, now())
        }
    }

    fn retry() -> Retry {
        Retry::within("Test", Duration::from_secs(30))
            .pacing(Duration::ZERO, Duration::from_millis(1))
            .attempts(5)
    }

    fn retitle(d: &EventData) -> Result<EventData, shared::ApiError> {
        Ok(EventData {
            title: "Jazz night, late".into(),
            ..d.clone()
        })
    }

    /// Nothing was written: the event is as created, no message went out.
    #[track_caller]
    fn assert_untouched(w: &MemoryEvents) {
        assert_eq!(w.stored(ID).unwrap().version, 1, "nothing was written");
        assert!(w.outbox().is_empty(), "no message");
    }

    /// Cancels [`ID`] for a caller `allowed` (or not) to.
    async fn cancel_by(
        w: &MemoryEvents,
        allowed: impl Fn(&Event) -> Result<(), EventError>,
    ) -> Result<(Event, bool), EventError> {
        cancel(w, ID, allowed, now, retry(), || Ok(())).await
    }

    async fn change_to(
        w: &MemoryEvents,
        if_match: u64,
        apply: impl Fn(&EventData) -> Result<EventData, shared::ApiError>,
    ) -> Result<(Event, Event), EventError> {
        let current = w.stored(ID).unwrap();
        change(w, current, if_match, apply, now(), retry(), || Ok(())).await
    }

    #[tokio::test]
    async fn a_change_of_the_current_version_is_stored_and_tells_the_attendees_what_changed() {
        let w = MemoryEvents::from_iter([event(10, 3)]);
        let (_, next) = change_to(&w, 1, retitle).await.unwrap();
        assert_eq!(
            (next.version, next.data.title.as_str()),
            (2, "Jazz night, late")
        );
        assert_eq!(w.stored(ID).unwrap(), Event { msg_seq: 1, ..next });
        let sent = w.outbox();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, "event.changed");
        assert_eq!(sent[0].seq, Some(1), "numbered after the number read");
        assert_eq!(sent[0].data["changed"], serde_json::json!(["title"]));
        // A change nobody plans around tells nobody.
        let describe = |d: &EventData| {
            Ok(EventData {
                description: "Trio".into(),
                ..d.clone()
            })
        };
        change_to(&w, 2, describe).await.unwrap();
        assert_eq!(w.outbox().len(), 1);
    }

    #[tokio::test]
    async fn a_stale_version_a_cancelled_event_and_a_capacity_below_the_seats_are_refused() {
        let w = MemoryEvents::from_iter([event(10, 6)]);
        assert!(matches!(
            change_to(&w, 7, retitle).await,
            Err(EventError::Stale(_))
        ));
        let shrink = |d: &EventData| {
            Ok(EventData {
                capacity: 5,
                ..d.clone()
            })
        };
        assert!(matches!(
            change_to(&w, 1, shrink).await,
            Err(EventError::CapacityBelowSeats {
                capacity: 5,
                joined: 6
            })
        ));
        let invalid = |_: &EventData| Err(shared::ApiError::validation("title", "too long"));
        assert!(matches!(
            change_to(&w, 1, invalid).await,
            Err(EventError::Invalid(_))
        ));
        w.put(Event {
            status: Status::Cancelled,
            ..event(10, 6)
        });
        assert!(matches!(
            change_to(&w, 1, retitle).await,
            Err(EventError::Cancelled)
        ));
        assert_untouched(&w);
    }

    #[tokio::test]
    async fn a_change_beaten_by_joins_is_tried_again_on_their_counts_and_gives_up_in_time() {
        let w = MemoryEvents::from_iter([event(10, 3)]);
        let read = w.stored(ID).unwrap();
        // Joins land after the read: the stored counts and message number moved on.
        w.put(Event {
            joined: 5,
            msg_seq: 2,
            ..event(10, 5)
        });
        let (last_read, next) = change(&w, read, 1, retitle, now(), retry(), || Ok(()))
            .await
            .unwrap();
        assert_eq!((last_read.joined, next.version), (5, 2));
        assert_eq!(w.stored(ID).unwrap().joined, 5, "the joins' counts stand");
        assert_eq!(w.stored(ID).unwrap().msg_seq, 3);
        // Conflicts for the whole budget: 503, nothing written.
        w.conflicts.store(100, Ordering::SeqCst);
        assert!(matches!(
            change_to(&w, 2, retitle).await,
            Err(EventError::KeptChanging)
        ));
        assert_eq!(w.stored(ID).unwrap().version, 2);
    }

    #[tokio::test]
    async fn cancelling_keeps_the_event_tells_everyone_once_and_refuses_strangers() {
        let w = MemoryEvents::from_iter([event(10, 12)]);
        let owner = |e: &Event| {
            if e.owner_id == "usr_owner" {
                Ok(())
            } else {
                Err(EventError::NotOwner)
            }
        };
        let stranger = |_: &Event| Err(EventError::NotOwner);
        assert!(matches!(
            cancel_by(&w, stranger).await,
            Err(EventError::NotOwner)
        ));
        assert!(matches!(
            cancel(&w, "evt_none", owner, now, retry(), || Ok(())).await,
            Err(EventError::NotFound(_))
        ));
        w.conflicts.store(2, Ordering::SeqCst);
        let (cancelled, first) = cancel_by(&w, owner).await.unwrap();
        assert!(first);
        assert_eq!(cancelled.status, Status::Cancelled);
        assert_eq!(cancelled.data.capacity, 12, "never below the seats taken");
        let sent = w.outbox();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, "event.cancelled");
        assert_eq!(sent[0].data["fanout"], "attendees");
        // Again: the same event, no second message.
        let (again, first) = cancel_by(&w, owner).await.unwrap();
        assert!(!first);
        assert_eq!(again.version, cancelled.version);
        assert_eq!(w.outbox().len(), 1);
        // Conflicts for the whole budget: 503.
        w.put(event(10, 0));
        w.conflicts.store(100, Ordering::SeqCst);
        assert!(matches!(
            cancel_by(&w, owner).await,
            Err(EventError::KeptChanging)
        ));
    }

    #[tokio::test]
    async fn with_several_faults_the_first_check_decides_and_nothing_is_written() {
        let invalid = |_: &EventData| Err(shared::ApiError::validation("title", "too long"));
        let w = MemoryEvents::from_iter([Event {
            status: Status::Cancelled,
            ..event(10, 0)
        }]);
        // Stale and cancelled: 412 with the current ETag.
        match change_to(&w, 7, retitle).await {
            Err(EventError::Stale(etag)) => assert_eq!(etag, "W/\"v1.0.0\""),
            other => panic!("{other:?}"),
        }
        // Cancelled and invalid: 409.
        assert!(matches!(
            change_to(&w, 1, invalid).await,
            Err(EventError::Cancelled)
        ));
        // Stale and invalid, on an active event: 412.
        w.put(event(10, 0));
        assert!(matches!(
            change_to(&w, 3, invalid).await,
            Err(EventError::Stale(_))
        ));
        // A stranger cancelling a cancelled event: 403, not its 200.
        w.put(Event {
            status: Status::Cancelled,
            ..event(10, 0)
        });
        let stranger = |_: &Event| Err(EventError::NotOwner);
        assert!(matches!(
            cancel_by(&w, stranger).await,
            Err(EventError::NotOwner)
        ));
        assert_untouched(&w);
    }

    #[tokio::test]
    async fn a_revoked_session_or_a_failing_tail_is_answered_at_once_and_writes_nothing() {
        let w = MemoryEvents::from_iter([event(10, 0)]);
        *w.fail_next.lock().unwrap() = Some(TxError::SessionRevoked);
        assert!(matches!(
            change_to(&w, 1, retitle).await,
            Err(EventError::Store(TxError::SessionRevoked))
        ));
        *w.fail_next.lock().unwrap() = Some(TxError::SessionRevoked);
        let owner = |_: &Event| Ok(());
        assert!(matches!(
            cancel_by(&w, owner).await,
            Err(EventError::Store(TxError::SessionRevoked))
        ));
        let no_tail = || Err(anyhow::anyhow!("no session guard"));
        assert!(matches!(
            cancel(&w, ID, owner, now, retry(), no_tail).await,
            Err(EventError::Unexpected(_))
        ));
        assert_untouched(&w);
    }

    #[tokio::test]
    async fn an_event_deleted_while_a_change_retries_is_not_found() {
        let w = MemoryEvents::from_iter([event(10, 0)]);
        let read = w.stored(ID).unwrap();
        w.put(Event {
            id: "evt_other".into(),
            ..event(10, 0)
        });
        // The stored event moves on (another change), then is gone.
        w.put(Event {
            version: 2,
            ..event(10, 0)
        });
        w.conflicts.store(1, Ordering::SeqCst);
        let gone = MemoryEvents::from_iter([]);
        gone.conflicts.store(1, Ordering::SeqCst);
        assert!(matches!(
            change(&gone, read.clone(), 1, retitle, now(), retry(), || Ok(())).await,
            Err(EventError::NotFound(_))
        ));
        // A re-read that finds a newer version is stale.
        assert!(matches!(
            change(&w, read, 1, retitle, now(), retry(), || Ok(())).await,
            Err(EventError::Stale(_))
        ));
    }
}
