//! The events domain's errors, mapped to problem+json once ([`From<EventError> for ApiError`]).

use shared::ApiError;
use shared::problem::problems;

/// Why an event operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A path id that is not `evt_` and 28 hex digits (the reason).
    #[error("id {0}")]
    MalformedId(String),
    #[error("no event {0}")]
    NotFound(String),
    /// The caller is neither the event's organizer nor an admin.
    #[error("only the event's organizer or an admin may change it")]
    NotOwner,
    #[error("the event is cancelled and can no longer be changed")]
    Cancelled,
    #[error("capacity {capacity} is below the {joined} seats already taken")]
    CapacityBelowSeats { capacity: u32, joined: u32 },
    /// A fresh id collided with an existing event (nothing was written).
    #[error("an event with this id exists; retry")]
    IdTaken,
    /// If-Match names an older version; the current ETag.
    #[error("the event changed; its current ETag is {0}")]
    Stale(String),
    #[error("send If-Match with the ETag of the version you are changing")]
    IfMatchRequired,
    #[error("If-Match must be an ETag like \"v3\"")]
    BadIfMatch,
    /// The event kept changing under the request for its whole time budget.
    #[error("the event kept changing; retry")]
    KeptChanging,
    /// DynamoDB kept keys unprocessed past the time budget.
    #[error("the event store is busy; retry")]
    StoreBusy,
    /// Fields of a change that are not acceptable (each named).
    #[error("invalid fields")]
    Invalid(ApiError),
    /// The store refused the transaction for a reason the rules do not retry (a revoked
    /// session, a failure).
    #[error("the store refused the change")]
    Store(shared::ddb::TxError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        let detail = e.to_string();
        match e {
            EventError::MalformedId(reason) => ApiError::bad_request(detail).field("id", reason),
            EventError::NotFound(_) => ApiError::not_found(detail),
            EventError::NotOwner => ApiError::forbidden(detail),
            EventError::Cancelled | EventError::IdTaken => {
                ApiError::of(problems::EVENT_CONFLICT).detail(detail)
            }
            EventError::CapacityBelowSeats { joined, .. } => ApiError::of(problems::EVENT_CONFLICT)
                .detail(detail)
                .field("capacity", format!("must be at least {joined}")),
            EventError::Stale(_) => ApiError::of(problems::STALE_ETAG).detail(detail),
            EventError::IfMatchRequired => ApiError::of(problems::IF_MATCH_REQUIRED).detail(detail),
            EventError::BadIfMatch => {
                ApiError::bad_request(detail).field("If-Match", "not an ETag this API issued")
            }
            EventError::KeptChanging | EventError::StoreBusy => {
                ApiError::service_unavailable(detail)
            }
            EventError::Invalid(e) => e,
            EventError::Store(e) => e.into(),
            EventError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_catalogued_problem() {
        let cases = [
            (
                EventError::MalformedId("must be evt_".into()),
                problems::BAD_REQUEST,
            ),
            (EventError::NotFound("evt_x".into()), problems::NOT_FOUND),
            (EventError::NotOwner, problems::FORBIDDEN),
            (EventError::Cancelled, problems::EVENT_CONFLICT),
            (
                EventError::CapacityBelowSeats {
                    capacity: 3,
                    joined: 5,
                },
                problems::EVENT_CONFLICT,
            ),
            (EventError::IdTaken, problems::EVENT_CONFLICT),
            (EventError::Stale("\"v2\"".into()), problems::STALE_ETAG),
            (EventError::IfMatchRequired, problems::IF_MATCH_REQUIRED),
            (EventError::BadIfMatch, problems::BAD_REQUEST),
            (EventError::KeptChanging, problems::SERVICE_UNAVAILABLE),
            (EventError::StoreBusy, problems::SERVICE_UNAVAILABLE),
            (
                EventError::Invalid(ApiError::validation("title", "too long")),
                problems::VALIDATION,
            ),
            (
                EventError::Store(shared::ddb::TxError::SessionRevoked),
                problems::UNAUTHORIZED,
            ),
            (
                EventError::Unexpected(anyhow::anyhow!("boom")),
                problems::INTERNAL,
            ),
        ];
        shared::testing::assert_maps_to_problems(cases);
    }

    #[test]
    fn the_field_at_fault_is_named() {
        let low = ApiError::from(EventError::CapacityBelowSeats {
            capacity: 3,
            joined: 5,
        });
        assert_eq!(
            (
                low.invalid_params[0].name.as_str(),
                low.invalid_params[0].reason.as_str()
            ),
            ("capacity", "must be at least 5")
        );
        assert_eq!(
            ApiError::from(EventError::BadIfMatch).invalid_params[0].name,
            "If-Match"
        );
        assert_eq!(
            ApiError::from(EventError::MalformedId("x".into())).invalid_params[0].name,
            "id"
        );
    }
}
