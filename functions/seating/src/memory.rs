//! The in-memory twin of the DynamoDB adapter, for unit tests of the rules: the same items and
//! the same conditions (a transition checks all of them, then applies all or nothing, under one
//! lock), with what a refused transaction reads back (`ALL_OLD` of the items whose condition
//! failed). Each call yields to the scheduler first, so that concurrent rules interleave between
//! their reads and their writes as they do against DynamoDB. Faults can be queued for the next
//! transitions ([`MemorySeats::inject`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use shared::outbox::OutboxMessage;

use crate::dynamo::wait_sk;
use crate::model::{Attendee, Membership, State, Venue, WaitEntry};
use crate::port::{Admission, AdmitError, Commit, Entry, SeatReader, Seats, WriteError};

/// A failure the next transition meets instead of its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A TransactionConflict or throttling: nothing written.
    Busy,
    /// The caller's session guard failed.
    SessionRevoked,
    /// The idempotency completion (the commit tail's last item) failed.
    LostClaim,
    /// No answer: the store failed.
    Unavailable,
}

#[derive(Default)]
struct Tables {
    venues: HashMap<String, Venue>,
    members: HashMap<(String, String), Membership>,
    /// (event, user) → at
    seats: BTreeMap<(String, String), String>,
    /// (event, ticket) → (user, at)
    waits: BTreeMap<(String, u64), (String, String)>,
    outbox: Vec<OutboxMessage>,
    faults: VecDeque<Fault>,
    commits: usize,
}

/// Seats and waitlists in memory.
#[derive(Default)]
pub struct MemorySeats {
    t: Mutex<Tables>,
}

/// The conditions of one transition, checked before anything is applied.
struct Check<'a> {
    t: &'a Tables,
    venue_ok: bool,
    member: Option<Membership>,
    ok: bool,
}

impl<'a> Check<'a> {
    fn new(t: &'a Tables, v: &Venue, event: impl Fn(&Venue) -> bool) -> Self {
        let venue_ok = t
            .venues
            .get(&v.id)
            .is_some_and(|s| s.msg_seq == v.msg_seq && event(s));
        Check {
            t,
            venue_ok,
            member: None,
            ok: venue_ok,
        }
    }
    /// A join's membership put: only if there is none (read back when refused).
    fn no_member(mut self, user: &str, event: &str) -> Self {
        self.member = self.t.members.get(&key(user, event)).cloned();
        self.ok &= self.member.is_none();
        self
    }
    fn holds(mut self, cond: bool) -> Self {
        self.ok &= cond;
        self
    }
    fn result(self, event: &str) -> Result<(), WriteError> {
        if self.ok {
            return Ok(());
        }
        Err(WriteError::Refused {
            venue: (!self.venue_ok)
                .then(|| self.t.venues.get(event).cloned().map(Box::new))
                .flatten(),
            member: self.member.map(Box::new),
            lost_claim: false,
        })
    }
}

fn key(user: &str, event: &str) -> (String, String) {
    (user.to_owned(), event.to_owned())
}

impl Tables {
    fn waiting(&self, event: &str, user: &str, ticket: Option<u64>) -> bool {
        self.members.get(&key(user, event)).is_some_and(|m| {
            m.state == State::Waitlisted && m.ticket.is_some() && m.ticket == ticket
        })
    }
    fn entry(&self, event: &str, ticket: u64) -> bool {
        self.waits.contains_key(&(event.to_owned(), ticket))
    }
    fn venue_mut(&mut self, id: &str) -> &mut Venue {
        self.venues.get_mut(id).expect("checked by the transition")
    }
    /// The outbox items and the message count of a committed transition.
    fn commit(&mut self, event: &str, read: u64, messages: &[OutboxMessage]) {
        self.outbox.extend(shared::outbox::numbered(messages, read));
        self.venue_mut(event).msg_seq = read + messages.len() as u64;
        self.commits += 1;
    }
    /// A join's membership.
    fn member(&mut self, event: &str, user: &str, ticket: Option<u64>, at: &str) {
        let state = match ticket {
            None => State::Joined,
            Some(_) => State::Waitlisted,
        };
        let m = Membership {
            user_id: user.into(),
            event_id: event.into(),
            state,
            ticket,
            at: at.into(),
        };
        self.members.insert(key(user, event), m);
    }
    fn seat(&mut self, event: &str, user: &str, at: &str) {
        self.seats.insert(key(event, user), at.to_owned());
    }
    fn promote(&mut self, event: &str, head: &WaitEntry, at: &str) {
        self.waits.remove(&(event.to_owned(), head.ticket));
        if let Some(m) = self.members.get_mut(&key(&head.user_id, event)) {
            m.state = State::Joined;
            m.ticket = None;
        }
        self.seat(event, &head.user_id, at);
    }
}

impl MemorySeats {
    /// A store holding the events `venues`, nobody joined yet.
    pub fn with(venues: impl IntoIterator<Item = Venue>) -> Self {
        let s = Self::default();
        for v in venues {
            s.put_venue(v);
        }
        s
    }
    /// Writes the event as the events crate would (create, or a change of capacity or status).
    pub fn put_venue(&self, v: Venue) {
        self.t.lock().expect("lock").venues.insert(v.id.clone(), v);
    }
    /// Changes an event as a PATCH or a cancel would (it keeps the counters).
    pub fn change(&self, id: &str, f: impl FnOnce(&mut Venue)) {
        if let Some(v) = self.t.lock().expect("lock").venues.get_mut(id) {
            f(v);
        }
    }
    /// Queues `fault` for the next transition.
    pub fn inject(&self, fault: Fault) {
        self.t.lock().expect("lock").faults.push_back(fault);
    }
    /// The event as stored.
    pub fn stored(&self, id: &str) -> Option<Venue> {
        self.t.lock().expect("lock").venues.get(id).cloned()
    }
    /// The seat holders of `event`, by user id.
    pub fn seated(&self, event: &str) -> Vec<String> {
        let t = self.t.lock().expect("lock");
        t.seats
            .keys()
            .filter(|(e, _)| e == event)
            .map(|(_, u)| u.clone())
            .collect()
    }
    /// The waitlist of `event` in ticket order: (ticket, user).
    pub fn waitlist(&self, event: &str) -> Vec<(u64, String)> {
        let t = self.t.lock().expect("lock");
        t.waits
            .iter()
            .filter(|((e, _), _)| e == event)
            .map(|((_, ticket), (u, _))| (*ticket, u.clone()))
            .collect()
    }
    /// Every membership, in no order.
    pub fn members(&self) -> Vec<Membership> {
        self.t
            .lock()
            .expect("lock")
            .members
            .values()
            .cloned()
            .collect()
    }
    /// The outbox messages committed, in commit order.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.t.lock().expect("lock").outbox.clone()
    }
    /// Transitions committed.
    pub fn commits(&self) -> usize {
        self.t.lock().expect("lock").commits
    }

    /// Runs one transition: a queued fault instead, else `check` then, if it holds, `apply`
    /// and the commit's outbox messages, all under the lock.
    async fn transact(
        &self,
        c: &Commit<'_, ()>,
        check: impl FnOnce(&Tables) -> Result<(), WriteError>,
        apply: impl FnOnce(&mut Tables),
    ) -> Result<(), WriteError> {
        let event = c.venue.id.as_str();
        tokio::task::yield_now().await;
        let mut t = self.t.lock().expect("lock");
        match t.faults.pop_front() {
            Some(Fault::Busy) => return Err(WriteError::Busy),
            Some(Fault::SessionRevoked) => return Err(WriteError::SessionRevoked),
            Some(Fault::LostClaim) => {
                return Err(WriteError::Refused {
                    venue: None,
                    member: None,
                    lost_claim: true,
                });
            }
            Some(Fault::Unavailable) => {
                return Err(WriteError::Other(anyhow::anyhow!(
                    "the store did not answer"
                )));
            }
            None => {}
        }
        if !t.venues.contains_key(event) {
            return Err(WriteError::Refused {
                venue: None,
                member: None,
                lost_claim: false,
            });
        }
        check(&t)?;
        apply(&mut t);
        t.commit(event, c.venue.msg_seq, c.messages);
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        f(&self.t.lock().expect("lock"))
    }
}

impl Seats for MemorySeats {
    type Tail = ();

    async fn venue(&self, event_id: &str) -> anyhow::Result<Option<Venue>> {
        tokio::task::yield_now().await;
        Ok(self.read(|t| t.venues.get(event_id).cloned()))
    }

    async fn membership(
        &self,
        user_id: &str,
        event_id: &str,
    ) -> anyhow::Result<Option<Membership>> {
        tokio::task::yield_now().await;
        Ok(self.read(|t| t.members.get(&key(user_id, event_id)).cloned()))
    }

    async fn head(&self, event_id: &str) -> anyhow::Result<Option<WaitEntry>> {
        tokio::task::yield_now().await;
        Ok(self.read(|t| {
            t.waits
                .iter()
                .find(|((e, _), _)| e == event_id)
                .map(|((_, ticket), (u, _))| WaitEntry {
                    ticket: *ticket,
                    user_id: u.clone(),
                })
        }))
    }

    async fn take_seat(&self, user_id: &str, c: Commit<'_, ()>) -> Result<(), WriteError> {
        let (v, now) = (c.venue, c.now);
        self.transact(
            &c,
            |t| {
                Check::new(t, v, |s| {
                    s.closed(now).is_none() && s.joined < s.capacity && s.waitlisted == 0
                })
                .no_member(user_id, &v.id)
                .result(&v.id)
            },
            |t| {
                t.venue_mut(&v.id).joined += 1;
                t.member(&v.id, user_id, None, c.at);
                t.seat(&v.id, user_id, c.at);
            },
        )
        .await
    }

    async fn wait(&self, user_id: &str, c: Commit<'_, ()>) -> Result<(), WriteError> {
        let (v, now) = (c.venue, c.now);
        let ticket = v.wl_seq + 1;
        self.transact(
            &c,
            |t| {
                Check::new(t, v, |s| {
                    s.closed(now).is_none()
                        && s.joined >= s.capacity
                        && s.wl_seq == v.wl_seq
                        && s.waitlisted == v.waitlisted
                })
                .no_member(user_id, &v.id)
                .holds(!t.entry(&v.id, ticket))
                .result(&v.id)
            },
            |t| {
                let s = t.venue_mut(&v.id);
                s.wl_seq = ticket;
                s.waitlisted = v.waitlisted + 1;
                t.member(&v.id, user_id, Some(ticket), c.at);
                t.waits
                    .insert((v.id.clone(), ticket), (user_id.into(), c.at.into()));
            },
        )
        .await
    }

    async fn leave_waitlist(&self, m: &Membership, c: Commit<'_, ()>) -> Result<(), WriteError> {
        let v = c.venue;
        let ticket = m.ticket.unwrap_or_default();
        self.transact(
            &c,
            |t| {
                Check::new(t, v, |s| s.waitlisted >= 1)
                    .holds(t.waiting(&v.id, &m.user_id, m.ticket) && t.entry(&v.id, ticket))
                    .result(&v.id)
            },
            |t| {
                t.venue_mut(&v.id).waitlisted -= 1;
                t.members.remove(&key(&m.user_id, &v.id));
                t.waits.remove(&(v.id.clone(), ticket));
            },
        )
        .await
    }

    async fn leave_seat(
        &self,
        m: &Membership,
        head: Option<&WaitEntry>,
        c: Commit<'_, ()>,
    ) -> Result<(), WriteError> {
        let v = c.venue;
        self.transact(
            &c,
            |t| {
                let seated = t
                    .members
                    .get(&key(&m.user_id, &v.id))
                    .is_some_and(|x| x.state == State::Joined)
                    && t.seats.contains_key(&key(&v.id, &m.user_id));
                let check = match head {
                    None => Check::new(t, v, |s| s.waitlisted == 0 && s.joined >= 1),
                    Some(h) => Check::new(t, v, |s| s.active && s.waitlisted >= 1).holds(
                        t.entry(&v.id, h.ticket) && t.waiting(&v.id, &h.user_id, Some(h.ticket)),
                    ),
                };
                check.holds(seated).result(&v.id)
            },
            |t| {
                match head {
                    None => t.venue_mut(&v.id).joined -= 1,
                    Some(h) => {
                        t.venue_mut(&v.id).waitlisted -= 1;
                        t.promote(&v.id, h, c.at);
                    }
                }
                t.members.remove(&key(&m.user_id, &v.id));
                t.seats.remove(&key(&v.id, &m.user_id));
            },
        )
        .await
    }

    async fn promote(&self, head: &WaitEntry, c: Commit<'_, ()>) -> Result<(), WriteError> {
        let v = c.venue;
        self.transact(
            &c,
            |t| {
                Check::new(t, v, |s| {
                    s.active && s.joined < s.capacity && s.waitlisted >= 1
                })
                .holds(
                    t.entry(&v.id, head.ticket)
                        && t.waiting(&v.id, &head.user_id, Some(head.ticket)),
                )
                .result(&v.id)
            },
            |t| {
                let s = t.venue_mut(&v.id);
                s.joined += 1;
                s.waitlisted -= 1;
                t.promote(&v.id, head, c.at);
            },
        )
        .await
    }

    async fn admit(&self, a: Admission<'_, ()>) -> Result<(), AdmitError> {
        let (v, now) = (a.venue, a.now);
        tokio::task::yield_now().await;
        let mut t = self.t.lock().expect("lock");
        let entry = if a.admits.is_empty() {
            Entry::Refusal(0)
        } else {
            Entry::Admit(0)
        };
        match t.faults.pop_front() {
            Some(Fault::Busy) => return Err(AdmitError::Busy),
            Some(Fault::SessionRevoked) => {
                return Err(AdmitError::Refused {
                    venue: None,
                    members: Vec::new(),
                    revoked: vec![entry],
                    answered: Vec::new(),
                });
            }
            Some(Fault::LostClaim) => {
                return Err(AdmitError::Refused {
                    venue: None,
                    members: Vec::new(),
                    revoked: Vec::new(),
                    answered: vec![entry],
                });
            }
            Some(Fault::Unavailable) => {
                return Err(AdmitError::Other(anyhow::anyhow!(
                    "the store did not answer"
                )));
            }
            None => {}
        }
        if a.admits.is_empty() {
            return Ok(());
        }
        let Some(stored) = t.venues.get(&v.id) else {
            return Err(AdmitError::gone());
        };
        let venue_ok = stored.closed(now).is_none()
            && stored.capacity == v.capacity
            && stored.joined == v.joined
            && stored.waitlisted == v.waitlisted
            && stored.wl_seq == v.wl_seq
            && stored.msg_seq == v.msg_seq;
        let members: Vec<(usize, Membership)> = a
            .admits
            .iter()
            .enumerate()
            .filter_map(|(i, x)| {
                t.members
                    .get(&key(&x.user_id, &v.id))
                    .map(|m| (i, m.clone()))
            })
            .collect();
        if !venue_ok || !members.is_empty() {
            return Err(AdmitError::Refused {
                venue: (!venue_ok).then(|| Box::new(stored.clone())),
                members,
                revoked: Vec::new(),
                answered: Vec::new(),
            });
        }
        let messages: Vec<OutboxMessage> = a.admits.iter().map(|x| x.message.clone()).collect();
        for x in &a.admits {
            t.member(&v.id, &x.user_id, x.ticket, a.at);
            match x.ticket {
                None => {
                    t.seat(&v.id, &x.user_id, a.at);
                    t.venue_mut(&v.id).joined += 1;
                }
                Some(ticket) => {
                    t.waits
                        .insert((v.id.clone(), ticket), (x.user_id.clone(), a.at.into()));
                    let s = t.venue_mut(&v.id);
                    s.waitlisted += 1;
                    s.wl_seq = s.wl_seq.max(ticket);
                }
            }
        }
        t.commit(&v.id, v.msg_seq, &messages);
        Ok(())
    }
}

impl SeatReader for MemorySeats {
    async fn attendees(
        &self,
        event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Attendee>, bool)> {
        let all: Vec<Attendee> =
            self.read(|t| {
                let seats =
                    t.seats
                        .iter()
                        .filter(|((e, _), _)| e == event_id)
                        .map(|((_, u), at)| Attendee {
                            user_id: u.clone(),
                            state: State::Joined,
                            at: at.clone(),
                            sk: format!("SEAT#{u}"),
                        });
                let waits = t.waits.iter().filter(|((e, _), _)| e == event_id).map(
                    |((_, ticket), (u, at))| Attendee {
                        user_id: u.clone(),
                        state: State::Waitlisted,
                        at: at.clone(),
                        sk: wait_sk(*ticket),
                    },
                );
                seats.chain(waits).collect()
            });
        let mut page: Vec<Attendee> = all
            .into_iter()
            .filter(|a| after.is_none_or(|x| a.sk.as_str() > x))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    async fn position(&self, event_id: &str, ticket: u64) -> anyhow::Result<u32> {
        let ahead = self.read(|t| {
            t.waits
                .keys()
                .filter(|(e, k)| e == event_id && *k <= ticket)
                .count()
        });
        Ok((ahead as u32).max(1))
    }

    async fn memberships(&self, user_id: &str) -> anyhow::Result<Vec<Membership>> {
        let mut out: Vec<Membership> = self.read(|t| {
            t.members
                .values()
                .filter(|m| m.user_id == user_id)
                .cloned()
                .collect()
        });
        out.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        Ok(out)
    }
}
