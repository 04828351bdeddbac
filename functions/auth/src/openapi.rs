//! This domain's part of the OpenAPI document.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::register, crate::api::login, crate::api::mfa_verify, crate::api::refresh,
        crate::api::logout, crate::api::me, crate::api::totp_enroll, crate::api::totp_activate,
        crate::api::totp_disable, crate::api::jwks, crate::api::set_roles,
        crate::oidc::start, crate::oidc::callback, crate::oidc::callback_post,
        crate::oidc::link, crate::oidc::unlink, crate::flags_admin::get_flags,
        crate::flags_admin::set_flag
    ),
    components(schemas(
        crate::api::Register, crate::api::Profile, crate::api::Login, crate::api::Tokens,
        crate::api::MfaChallenge, crate::api::LoginAnswer, crate::api::MfaVerify, crate::api::Refresh,
        crate::api::TotpEnrollment, crate::api::TotpCode, crate::api::DisableTotp, crate::api::StepUp, crate::api::RecoveryCodes,
        crate::api::SetRoles, shared::auth::Role, crate::oidc::SignInStarted, crate::oidc::Callback,
        crate::identities::LinkedIdentity, crate::oidc::Link, crate::flags_admin::FlagView,
        crate::flags_admin::SetFlag, shared::flags::Flag
    )),
    modifiers(&BearerScheme),
    tags((name = "auth", description = "Accounts, sessions, tokens and MFA"))
)]
struct AuthDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    AuthDoc::openapi()
}
