//! The caller's session must still be live for anything that changes state: logout, refresh
//! reuse, a role change and an MFA change revoke sessions, and an access token of a revoked
//! session may not keep writing for the rest of its lifetime.
//!
//! A route that already writes in a transaction adds [`guard`] to it: a `ConditionCheck` on the
//! session item (`USER#<id>` / `SESSION#<sid>`, `revoked = false`), so the check costs no extra
//! request and holds at the instant of the write; [`is_guard`] finds it again in a cancelled
//! transaction's items, to tell a revoked session from a conflict. Other state-changing routes make one
//! consistent read ([`require_live`]). Read routes rely on the access token's 5-minute lifetime.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

use crate::ApiError;
use crate::auth::User;

/// The session item's sort-key prefix (its partition key is the user's `USER#<id>`).
pub const SESSION_PREFIX: &str = "SESSION#";

fn key(user: &User) -> [(&'static str, AttributeValue); 2] {
    [
        ("pk", AttributeValue::S(format!("USER#{}", user.id))),
        (
            "sk",
            AttributeValue::S(format!("{SESSION_PREFIX}{}", user.session_id)),
        ),
    ]
}

/// The transaction item that makes the write conditional on `user`'s session being live.
pub fn guard(table: &str, user: &User) -> anyhow::Result<TransactWriteItem> {
    let [pk, sk] = key(user);
    let check = ConditionCheck::builder()
        .table_name(table)
        .key(pk.0, pk.1)
        .key(sk.0, sk.1)
        .condition_expression("revoked = :no")
        .expression_attribute_values(":no", AttributeValue::Bool(false))
        .build()?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// Whether `item` is a [`guard`].
pub fn is_guard(item: &TransactWriteItem) -> bool {
    item.condition_check().is_some_and(|c| {
        c.key()
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|sk| sk.starts_with(SESSION_PREFIX))
    })
}

/// The key of `user_id`'s session `session_id` (for reading many sessions in one BatchGetItem).
pub fn session_key(
    user_id: &str,
    session_id: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("USER#{user_id}")),
        ),
        (
            "sk".to_owned(),
            AttributeValue::S(format!("{SESSION_PREFIX}{session_id}")),
        ),
    ])
}

/// Whether a session item (as read) is live: present and not revoked.
pub fn is_live(item: &std::collections::HashMap<String, AttributeValue>) -> bool {
    item.get("revoked").and_then(|v| v.as_bool().ok()) == Some(&false)
}

/// One consistent read: the caller's session exists and is not revoked, or a 401.
pub async fn require_live(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    user: &User,
) -> Result<(), ApiError> {
    let [pk, sk] = key(user);
    let out = ddb
        .get_item()
        .table_name(table)
        .key(pk.0, pk.1)
        .key(sk.0, sk.1)
        .projection_expression("revoked")
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
    let live = out.item.as_ref().is_some_and(is_live);
    if live {
        Ok(())
    } else {
        metrics::counter!("RevokedSessionRefused").increment(1);
        Err(crate::auth::unauthorized())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: "usr_1".into(),
            roles: vec![],
            session_id: "ses_1".into(),
            token_id: "j".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn a_guard_is_told_from_other_condition_checks() {
        let g = guard("t", &user()).unwrap();
        let other = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name("t")
                    .key("pk", AttributeValue::S("EVENT#1".into()))
                    .key("sk", AttributeValue::S("EVENT".into()))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .unwrap(),
            )
            .build();
        assert!(is_guard(&g) && !is_guard(&other));
    }
}
