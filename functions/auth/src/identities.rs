//! The OpenID Connect identities linked to an account, as `GET /v1/me` lists them (the items
//! `USER#<id>` / `IDENTITY#...` that crate::oidc writes beside each identity).

use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::ddb::{get_s, s};
use utoipa::ToSchema;

/// An identity linked to an account, as `GET /v1/me` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct LinkedIdentity {
    /// The provider's name in this API's routes.
    pub provider: String,
    /// Unix seconds.
    pub linked_at: u64,
}

/// The identities linked to `user_id` (one Query of its partition).
pub async fn identities(
    store: &crate::store::Store,
    user_id: &str,
) -> Result<Vec<LinkedIdentity>, ApiError> {
    let items = identity_items(store, user_id).await?;
    Ok(items
        .iter()
        .map(|i| LinkedIdentity {
            provider: get_s(i, "provider").unwrap_or_default(),
            linked_at: shared::ddb::get_n(i, "linked_at").unwrap_or(0),
        })
        .collect())
}

/// The listing items of `user_id`'s identities, as stored (read consistently).
pub async fn identity_items(
    store: &crate::store::Store,
    user_id: &str,
) -> Result<Vec<shared::ddb::Item>, ApiError> {
    shared::ddb::query_all(
        store
            .ddb
            .query()
            .table_name(&store.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :identity)")
            .expression_attribute_values(":pk", s(format!("USER#{user_id}")))
            .expression_attribute_values(":identity", s("IDENTITY#"))
            .consistent_read(true),
    )
    .await
    .map_err(|e| ApiError::internal(anyhow::Error::from(e)))
}
