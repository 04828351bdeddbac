//! The storage seating needs, as two narrow ports: [`Seats`] for the transitions (what the
//! join and leave functions may do: GetItem, a Query of the head, TransactWriteItems) and
//! [`SeatReader`] for the listings (Query only: attendees, my joins, the consumer's fan-out).
//! The template grants each function the actions of the port it is built with.

use std::future::Future;

use shared::outbox::OutboxMessage;
use time::OffsetDateTime;

use crate::model::{Attendee, Membership, Venue, WaitEntry};

/// Why a transition did not commit. Nothing of it was written, except after
/// [`WriteError::Other`] from a timeout or a lost answer (it may have committed, so it is never
/// retried: the client's resend with the same Idempotency-Key replays it).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A condition failed; what the store read back of the event and of an existing membership
    /// (a join's), and whether the commit tail's last item — the idempotency completion — was
    /// the one refused (this attempt no longer holds its key).
    #[error("a condition of the transition failed")]
    Refused {
        venue: Option<Box<Venue>>,
        member: Option<Box<Membership>>,
        lost_claim: bool,
    },
    /// The caller's session was revoked (its guard in the commit tail failed).
    #[error("the caller's session was revoked")]
    SessionRevoked,
    /// Trying again may work: a TransactionConflict or throttling.
    #[error("the store was busy (a conflict or throttling)")]
    Busy,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One transition's commit: the event as read (the transition conditions on its counters and
/// its `msg_seq`), when it happens, its outbox messages and the caller's part.
pub struct Commit<'a, T> {
    pub venue: &'a Venue,
    /// When, as the items record it (RFC 3339).
    pub at: &'a str,
    /// The same instant: a join commits only while the event has not started.
    pub now: OffsetDateTime,
    /// Numbered after the venue's `msg_seq`, on the condition that it is unchanged.
    pub messages: &'a [OutboxMessage],
    /// The session guard and the idempotency completion (last); empty for a promotion.
    pub tail: T,
}

/// One newcomer of a batch admission, decided: a seat, or the waitlist ticket `ticket`.
pub struct Admit<T> {
    pub user_id: String,
    /// `None`: a seat.
    pub ticket: Option<u64>,
    /// Its outbox message (numbered in the order of the admission's newcomers).
    pub message: OutboxMessage,
    /// The request's part: its session guard and its idempotency record.
    pub tail: T,
}

/// Many joins of one event in one commit (a hot event's intake batch): the event's counters
/// move from the values read to the values after every newcomer, on the condition that they
/// are still the values read; each newcomer's membership only if it has none; the refused
/// requests' records (`refusals`) commit with them.
pub struct Admission<'a, T> {
    pub venue: &'a Venue,
    pub at: &'a str,
    pub now: OffsetDateTime,
    pub admits: Vec<Admit<T>>,
    pub refusals: Vec<T>,
}

/// Which request of an admission a failed condition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Admit(usize),
    Refusal(usize),
}

/// Why an admission did not commit (nothing of it was written, except after
/// [`AdmitError::Other`] from a timeout or a lost answer).
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// Conditions failed: the event as read back when its own failed; the newcomers who
    /// already had a membership (as it is); the requests whose session was revoked; the
    /// requests whose key already had a record (answered before: a redelivery).
    #[error("a condition of the admission failed")]
    Refused {
        venue: Option<Box<Venue>>,
        members: Vec<(usize, Membership)>,
        revoked: Vec<Entry>,
        answered: Vec<Entry>,
    },
    #[error("the store was busy (a conflict or throttling)")]
    Busy,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl AdmitError {
    /// A refusal that names nothing (the event is gone).
    pub fn gone() -> Self {
        AdmitError::Refused {
            venue: None,
            members: Vec::new(),
            revoked: Vec::new(),
            answered: Vec::new(),
        }
    }
}

/// The transitions and the reads that decide them. Every transition commits its own items,
/// its [`Commit`]'s messages and tail, all or nothing.
pub trait Seats: Send + Sync {
    /// What the caller adds to a transition's commit.
    type Tail: Send + Default;

    /// The event as seating sees it, read consistently.
    fn venue(&self, event_id: &str) -> impl Future<Output = anyhow::Result<Option<Venue>>> + Send;
    /// A user's membership, read consistently.
    fn membership(
        &self,
        user_id: &str,
        event_id: &str,
    ) -> impl Future<Output = anyhow::Result<Option<Membership>>> + Send;
    /// The head of the waitlist, read consistently.
    fn head(
        &self,
        event_id: &str,
    ) -> impl Future<Output = anyhow::Result<Option<WaitEntry>>> + Send;

    /// Takes a seat for `user_id`: only while the event is open, a seat is free, nobody waits,
    /// and the user has no membership.
    fn take_seat(
        &self,
        user_id: &str,
        c: Commit<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Waitlists `user_id` with ticket `wl_seq + 1`: only while the event is open, full, and its
    /// `wl_seq` and `waitlisted` are as read.
    fn wait(
        &self,
        user_id: &str,
        c: Commit<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Takes the waiting `m` off the waitlist.
    fn leave_waitlist(
        &self,
        m: &Membership,
        c: Commit<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Gives up `m`'s seat; with `head`, the seat goes to it in the same commit (only if its
    /// entry still exists); without, only while nobody waits.
    fn leave_seat(
        &self,
        m: &Membership,
        head: Option<&WaitEntry>,
        c: Commit<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Promotes `head` into a free seat (a capacity increase freed it): only while a seat is
    /// free, someone waits, and `head`'s entry still exists.
    fn promote(
        &self,
        head: &WaitEntry,
        c: Commit<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Admits a batch of newcomers in one commit ([`Admission`]): only while the event is
    /// open, not started, and its `capacity`, `joined`, `waitlisted`, `wl_seq` and `msg_seq`
    /// are as read (a capacity cut that notifies nobody leaves `msg_seq` alone).
    fn admit(
        &self,
        a: Admission<'_, Self::Tail>,
    ) -> impl Future<Output = Result<(), AdmitError>> + Send;
}

/// The listings: queries of an event's seats and waitlist and of a user's memberships.
pub trait SeatReader: Send + Sync {
    /// Attendees after the sort key `after`: seats (by user id), then the waitlist in ticket
    /// order; at most `limit`, and whether more follow.
    fn attendees(
        &self,
        event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<(Vec<Attendee>, bool)>> + Send;
    /// 1 + the number of entries ahead of `ticket` on the waitlist.
    fn position(
        &self,
        event_id: &str,
        ticket: u64,
    ) -> impl Future<Output = anyhow::Result<u32>> + Send;
    /// Every membership of `user_id`.
    fn memberships(
        &self,
        user_id: &str,
    ) -> impl Future<Output = anyhow::Result<Vec<Membership>>> + Send;

    /// Every attendee of `event_id` (seats, then the waitlist), for fan-out.
    fn everyone(&self, event_id: &str) -> impl Future<Output = anyhow::Result<Vec<String>>> + Send {
        async move {
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
}
