//! The seating domain's errors, mapped to problem+json once ([`From<JoinError> for ApiError`]).

use http::{HeaderValue, header};
use shared::ApiError;
use shared::problem::problems;

use crate::model::State;

/// Why a join or a leave did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("no event {0}")]
    NoSuchEvent(String),
    /// Cancelled or started.
    #[error("{0}")]
    NotJoinable(&'static str),
    #[error("already {}", .0.as_str())]
    AlreadyJoined(State),
    #[error("you have not joined this event")]
    NotJoined,
    /// Another attempt with the same Idempotency-Key took over.
    #[error("the Idempotency-Key was taken over")]
    KeyTakenOver,
    /// Contention outlasted the time budget: nothing was written.
    #[error("the event is very busy")]
    Busy,
    #[error("the caller's session was revoked")]
    SessionRevoked,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl JoinError {
    /// A copy of a refusal that is the request's final answer (stored for its key); `None`
    /// for the failures a retry may change.
    pub fn refusal(&self) -> Option<JoinError> {
        match self {
            JoinError::NoSuchEvent(id) => Some(JoinError::NoSuchEvent(id.clone())),
            JoinError::NotJoinable(why) => Some(JoinError::NotJoinable(why)),
            JoinError::AlreadyJoined(state) => Some(JoinError::AlreadyJoined(*state)),
            JoinError::NotJoined => Some(JoinError::NotJoined),
            JoinError::KeyTakenOver
            | JoinError::Busy
            | JoinError::SessionRevoked
            | JoinError::Unexpected(_) => None,
        }
    }
}

impl From<JoinError> for ApiError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::NoSuchEvent(id) => ApiError::not_found(format!("no event {id}")),
            JoinError::NotJoinable(why) => ApiError::of(problems::EVENT_NOT_JOINABLE).detail(why),
            JoinError::AlreadyJoined(state) => ApiError::of(problems::ALREADY_JOINED)
                .detail(match state {
                    State::Joined => "you already have a seat at this event",
                    State::Waitlisted => "you are already on this event's waitlist",
                })
                .extension("state", serde_json::json!(state.as_str())),
            JoinError::NotJoined => {
                ApiError::of(problems::NOT_JOINED).detail("you have not joined this event")
            }
            JoinError::KeyTakenOver => ApiError::of(problems::IDEMPOTENCY_IN_FLIGHT).detail(
                "another attempt with this Idempotency-Key took over; retry to see its outcome",
            ),
            JoinError::Busy => ApiError::service_unavailable(
                "the event is very busy; retry with the same Idempotency-Key",
            )
            .header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            JoinError::SessionRevoked => shared::auth::unauthorized(),
            JoinError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_catalogued_problem() {
        let cases = [
            (JoinError::NoSuchEvent("evt_x".into()), problems::NOT_FOUND),
            (
                JoinError::NotJoinable("the event is cancelled"),
                problems::EVENT_NOT_JOINABLE,
            ),
            (
                JoinError::AlreadyJoined(State::Joined),
                problems::ALREADY_JOINED,
            ),
            (
                JoinError::AlreadyJoined(State::Waitlisted),
                problems::ALREADY_JOINED,
            ),
            (JoinError::NotJoined, problems::NOT_JOINED),
            (JoinError::KeyTakenOver, problems::IDEMPOTENCY_IN_FLIGHT),
            (JoinError::Busy, problems::SERVICE_UNAVAILABLE),
            (JoinError::SessionRevoked, problems::UNAUTHORIZED),
            (
                JoinError::Unexpected(anyhow::anyhow!("boom")),
                problems::INTERNAL,
            ),
        ];
        shared::testing::assert_maps_to_problems(cases);
    }

    #[test]
    fn a_busy_event_says_when_to_retry_and_a_double_join_names_the_state() {
        let busy = ApiError::from(JoinError::Busy);
        assert_eq!(busy.headers.get(header::RETRY_AFTER).unwrap(), "1");
        let twice = ApiError::from(JoinError::AlreadyJoined(State::Waitlisted));
        assert_eq!(twice.extensions.get("state").unwrap(), "waitlisted");
    }
}
