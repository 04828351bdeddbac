//! The seating domain's values: where a member stands, the event as seating sees it.

use time::OffsetDateTime;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub user_id: String,
    pub state: State,
    pub at: String,
    /// The listing's position: `SEAT#<user>` or `WAIT#<ticket>` (the item's sort key).
    pub sk: String,
}

impl Attendee {
    /// The waitlist ticket of a waiting attendee.
    pub fn ticket(&self) -> Option<u64> {
        self.sk.strip_prefix("WAIT#").and_then(|t| t.parse().ok())
    }
}

/// The event as seating sees it: what decides a join, and the counters every transition
/// conditions on (as read; a transition commits only if they are unchanged where it matters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venue {
    pub id: String,
    pub title: String,
    /// Not cancelled.
    pub active: bool,
    pub starts_at: OffsetDateTime,
    pub capacity: u32,
    /// Seats taken.
    pub joined: u32,
    /// People on the waitlist.
    pub waitlisted: u32,
    /// The last waitlist ticket handed out.
    pub wl_seq: u64,
    /// The last outbox message number (decision 0008).
    pub msg_seq: u64,
    /// Joins go through the event's ordered intake and are admitted in batches (decision 0012).
    pub hot: bool,
}

impl Venue {
    /// Why nobody may join or leave at `now`, if so.
    pub fn closed(&self, now: OffsetDateTime) -> Option<&'static str> {
        if !self.active {
            Some("the event is cancelled")
        } else if self.starts_at <= now {
            Some("the event has already started")
        } else {
            None
        }
    }
    /// A seat is free while the waitlist is not empty: a capacity increase left it, and the
    /// head of the waitlist gets it before any newcomer.
    pub fn owes_promotion(&self) -> bool {
        self.active && self.joined < self.capacity && self.waitlisted > 0
    }
    /// A stand-in for an event that is gone: what a batch of refusals commits against (it
    /// conditions on nothing of it).
    pub fn closed_stub(id: &str, now: OffsetDateTime) -> Venue {
        Venue {
            id: id.to_owned(),
            title: String::new(),
            active: false,
            starts_at: now,
            capacity: 0,
            joined: 0,
            waitlisted: 0,
            wl_seq: 0,
            msg_seq: 0,
            hot: false,
        }
    }
    /// A newcomer gets a seat now (else a waitlist place).
    pub fn has_free_seat(&self) -> bool {
        self.joined < self.capacity
    }
}
