//! `GET /v1/admin/flags` and `PUT /v1/admin/flags/{name}`: the feature flags (shared::flags,
//! decision 0016) read and set by an admin, audited. Setting one is a transaction with the
//! caller's session guard and a check that the account (as stored, not as its token says) is
//! an admin now.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::Role;
use shared::ddb::{n, s};
use shared::flags::{Flag, FlagState};
use shared::http::{Request, RequestParts, Response, json};
use utoipa::ToSchema;

use crate::api::Auth;

/// A flag as it is set now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FlagView {
    pub name: Flag,
    pub enabled: bool,
    #[schema(minimum = 0, maximum = 100)]
    pub rollout_percent: u8,
    /// Whether no one has set it (its default holds).
    pub default: bool,
    /// Unix seconds of the last change, who made it and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Setting a flag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFlag {
    pub enabled: bool,
    /// The share of users it is on for (by a stable hash of flag and user); 100 when absent.
    #[schema(minimum = 0, maximum = 100)]
    pub rollout_percent: Option<u8>,
    /// Why (kept with the flag and in the audit line).
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

async fn read(auth: &Auth) -> Result<HashMap<String, AttributeValue>, ApiError> {
    Ok(
        shared::ddb::get_consistent(&auth.store.ddb, &auth.store.table, shared::flags::key())
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
            .unwrap_or_default(),
    )
}

fn views(item: &HashMap<String, AttributeValue>) -> Vec<FlagView> {
    let set = shared::flags::parse_item(item);
    Flag::ALL
        .into_iter()
        .map(|flag| {
            let state = set.get(&flag).copied();
            let entry = match item.get(flag.name()) {
                Some(AttributeValue::M(m)) => Some(m),
                _ => None,
            };
            let text = |k: &str| {
                entry
                    .and_then(|m| m.get(k))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            };
            let FlagState {
                enabled,
                rollout_percent,
            } = state.unwrap_or_else(|| flag.default_state());
            FlagView {
                name: flag,
                enabled,
                rollout_percent,
                default: state.is_none(),
                updated_at: entry
                    .and_then(|m| m.get("updated_at"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok()),
                updated_by: text("updated_by"),
                reason: text("reason"),
            }
        })
        .collect()
}

shared::error_answers!(
    /// What reading the flags answers besides them.
    GetFlagsErrors:
    UNAUTHORIZED => "Not signed in",
    FORBIDDEN => "Not an admin",
);

#[utoipa::path(get, path = "/v1/admin/flags", tag = "auth", operation_id = "get_flags", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every flag this code reads, as set now (or its default)", body = [FlagView]),
        GetFlagsErrors,
    ))]
/// `GET /v1/admin/flags`.
pub async fn get_flags(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    auth.live_caller(&req).await?;
    json(StatusCode::OK, &views(&read(auth).await?))
}

shared::error_answers!(
    /// What setting a flag answers besides the flags.
    SetFlagErrors:
    VALIDATION => "Unknown flag (`name`), a rollout above 100, or no reason",
    UNAUTHORIZED => "Not signed in, or the session was revoked",
    FORBIDDEN => "The caller is not an admin now (roles are read from the account, not the token)",
);

#[utoipa::path(put, path = "/v1/admin/flags/{name}", tag = "auth", operation_id = "set_flag", security(("bearer" = [])),
    params(("name" = shared::flags::Flag, Path, description = "The flag")),
    request_body = SetFlag,
    responses(
        (status = 200, description = "Set: every flag as set now. Functions see it within FLAGS_CACHE_TTL_SECONDS (30 s deployed)", body = [FlagView]),
        SetFlagErrors,
    ))]
/// `PUT /v1/admin/flags/{name}`.
pub async fn set_flag(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let name: String = req.path_param("name")?;
    let flag = Flag::parse(&name).ok_or_else(|| {
        ApiError::validation(
            "name",
            format!("is not one of {}", Flag::ALL.map(Flag::name).join(", ")),
        )
    })?;
    let input: SetFlag = req.json_body()?;
    let percent = input.rollout_percent.unwrap_or(100);
    if percent > 100 {
        return Err(ApiError::validation("rollout_percent", "must be 0 to 100"));
    }
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::validation(
            "reason",
            "must be 1 to 200 characters",
        ));
    }
    let now = shared::auth::now_unix();
    let value = AttributeValue::M(HashMap::from([
        ("enabled".to_owned(), AttributeValue::Bool(input.enabled)),
        ("rollout_percent".to_owned(), n(u64::from(percent))),
        ("updated_at".to_owned(), n(now)),
        ("updated_by".to_owned(), s(&caller.id)),
        ("reason".to_owned(), s(reason)),
    ]));
    let admin = ConditionCheck::builder()
        .table_name(&auth.store.table)
        .key("pk", s(format!("USER#{}", caller.id)))
        .key("sk", s("PROFILE"))
        .condition_expression("contains(#roles, :admin)")
        .expression_attribute_names("#roles", "roles")
        .expression_attribute_values(":admin", s(Role::Admin.as_str()))
        .build()
        .map_err(ApiError::internal)?;
    // Set on the version read, so the audit line's "before" is what this change replaced (two
    // admins at once: the second reads again).
    let mut attempt = 0;
    let before = loop {
        let item = read(auth).await?;
        let version = shared::ddb::get_n(&item, "version");
        let before = views(&item).into_iter().find(|v| v.name == flag);
        let mut set = Update::builder()
            .table_name(&auth.store.table)
            .set_key(Some(shared::flags::key()))
            .update_expression("SET #flag = :value ADD version :one")
            .expression_attribute_names("#flag", flag.name())
            .expression_attribute_values(":value", value.clone())
            .expression_attribute_values(":one", n(1));
        set = match version {
            Some(v) => set
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", n(v)),
            None => set.condition_expression("attribute_not_exists(version)"),
        };
        let items = vec![
            shared::session::guard(&auth.store.table, caller).map_err(ApiError::internal)?,
            TransactWriteItem::builder()
                .condition_check(admin.clone())
                .build(),
            TransactWriteItem::builder()
                .update(set.build().map_err(ApiError::internal)?)
                .build(),
        ];
        match shared::ddb::transact(&auth.store.ddb, items).await {
            Ok(()) => break before,
            Err(shared::ddb::TxError::Cancelled(c)) if c.failed(1) => {
                tracing::warn!(target: "audit", audit_event = "flag.refused", flag = flag.name(), admin_id = %caller.id, "security event: a token with the admin role from an account without it");
                return Err(ApiError::forbidden("this account is not an admin"));
            }
            Err(shared::ddb::TxError::Cancelled(c)) if c.failed(2) && attempt < 4 => attempt += 1,
            Err(shared::ddb::TxError::Cancelled(c)) if c.failed(2) => {
                return Err(ApiError::service_unavailable(
                    "the flags kept changing meanwhile: read them and retry",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(
        target: "audit",
        audit_event = "flag.set",
        flag = flag.name(),
        admin_id = %caller.id,
        enabled = input.enabled,
        rollout_percent = percent,
        was_enabled = before.as_ref().map(|b| b.enabled),
        was_rollout_percent = before.as_ref().map(|b| b.rollout_percent),
        reason = %reason,
        "security event"
    );
    json(StatusCode::OK, &views(&read(auth).await?))
}
