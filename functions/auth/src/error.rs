//! The auth domain's errors, mapped to problem+json once ([`From<AuthError> for ApiError`]).

use http::{HeaderValue, header};
use shared::ApiError;
use shared::problem::problems;

/// Why an auth operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A wrong email or password (one answer for both), or a wrong password on a step-up.
    #[error("{0}")]
    InvalidCredentials(&'static str),
    /// Too many failures: locked for this many seconds.
    #[error("locked for {0} s")]
    Locked(u64),
    /// A wrong, old or used second-factor code, or an unknown or burnt challenge.
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    #[error("the refresh token is unknown, expired, used or revoked")]
    InvalidRefresh,
    /// The session store kept conflicting: nothing changed.
    #[error("the session store is busy")]
    SessionBusy,
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("MFA is already on")]
    MfaEnabled,
    #[error("MFA is not on")]
    MfaNotEnabled,
    #[error("no authenticator enrolment is pending")]
    NoPendingEnrollment,
    /// The caller's account (as stored, not as its token says) is not an admin.
    #[error("this account is not an admin")]
    NotAdmin,
    #[error("no user has this id")]
    NoSuchUser,
    #[error("this would leave no admin")]
    LastAdmin,
    #[error("the user's roles changed meanwhile")]
    RolesChanged,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials(detail) => {
                ApiError::of(problems::INVALID_CREDENTIALS).detail(detail)
            }
            AuthError::Locked(seconds) => ApiError::of(problems::ACCOUNT_LOCKED)
                .detail(format!(
                    "too many failed attempts; try again in {seconds} s"
                ))
                .header(header::RETRY_AFTER, HeaderValue::from(seconds)),
            AuthError::InvalidCode => ApiError::of(problems::INVALID_CODE)
                .detail("the code is wrong, expired or already used"),
            AuthError::InvalidRefresh => ApiError::of(problems::INVALID_REFRESH_TOKEN)
                .detail("the refresh token is unknown, expired, used or revoked; log in again"),
            AuthError::SessionBusy => ApiError::service_unavailable(
                "the session store is busy; send the same refresh token again",
            )
            .header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            AuthError::EmailTaken => ApiError::of(problems::EMAIL_TAKEN)
                .detail("an account with this email exists; log in or reset the password")
                .field("email", "is taken"),
            AuthError::MfaEnabled => ApiError::of(problems::MFA_ENABLED)
                .detail("disable it first to enroll a new authenticator"),
            AuthError::MfaNotEnabled => ApiError::of(problems::MFA_NOT_ENABLED)
                .detail("there is no second factor to turn off"),
            AuthError::NoPendingEnrollment => ApiError::of(problems::NO_PENDING_ENROLLMENT)
                .detail("enroll first with POST /v1/me/mfa/totp"),
            AuthError::NotAdmin => ApiError::forbidden("this account is not an admin"),
            AuthError::NoSuchUser => ApiError::not_found("no user has this id"),
            AuthError::LastAdmin => ApiError::of(problems::LAST_ADMIN)
                .detail("this would leave no admin; grant admin to another account first"),
            AuthError::RolesChanged => ApiError::of(problems::ROLES_CHANGED)
                .detail("the user's roles changed while this request ran; read them and retry"),
            AuthError::Unexpected(e) => ApiError::internal(e),
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
                AuthError::InvalidCredentials("wrong"),
                problems::INVALID_CREDENTIALS,
            ),
            (AuthError::Locked(60), problems::ACCOUNT_LOCKED),
            (AuthError::InvalidCode, problems::INVALID_CODE),
            (AuthError::InvalidRefresh, problems::INVALID_REFRESH_TOKEN),
            (AuthError::SessionBusy, problems::SERVICE_UNAVAILABLE),
            (AuthError::EmailTaken, problems::EMAIL_TAKEN),
            (AuthError::MfaEnabled, problems::MFA_ENABLED),
            (AuthError::MfaNotEnabled, problems::MFA_NOT_ENABLED),
            (
                AuthError::NoPendingEnrollment,
                problems::NO_PENDING_ENROLLMENT,
            ),
            (AuthError::NotAdmin, problems::FORBIDDEN),
            (AuthError::NoSuchUser, problems::NOT_FOUND),
            (AuthError::LastAdmin, problems::LAST_ADMIN),
            (AuthError::RolesChanged, problems::ROLES_CHANGED),
            (
                AuthError::Unexpected(anyhow::anyhow!("boom")),
                problems::INTERNAL,
            ),
        ];
        shared::testing::assert_maps_to_problems(cases);
    }

    #[test]
    fn a_lock_and_a_busy_store_say_when_to_retry_and_a_taken_email_names_its_field() {
        let locked = ApiError::from(AuthError::Locked(120));
        assert_eq!(locked.headers.get(header::RETRY_AFTER).unwrap(), "120");
        let busy = ApiError::from(AuthError::SessionBusy);
        assert_eq!(busy.headers.get(header::RETRY_AFTER).unwrap(), "1");
        let taken = ApiError::from(AuthError::EmailTaken);
        assert_eq!(taken.invalid_params[0].name, "email");
    }
}
