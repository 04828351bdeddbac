//! Signing-key rotation, as a Secrets Manager rotation function: `createSecret` stages a key
//! document with a new key added (and keys older than twice the token lifetime dropped) as
//! AWSPENDING; `setSecret` publishes the pending document's public keys to the verifiers'
//! secret (`PUBLIC_KEYS_SECRET_ID`), so every verifier knows the new key before anything is
//! signed with it; `testSecret` signs and verifies a token with the pending document;
//! `finishSecret` makes it AWSCURRENT, and the signers start using the new key.
//! The previous key stays in both documents, so tokens it signed verify until they expire.

use aws_sdk_secretsmanager::Client;
use serde::Deserialize;
use shared::auth::{KeyDocument, KeySet, Role, new_claims, now_unix};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// The event Secrets Manager sends for each rotation step.
#[derive(Debug, Deserialize)]
pub struct RotationEvent {
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
    #[serde(rename = "Step")]
    pub step: String,
}

async fn document(
    sm: &Client,
    id: &str,
    stage: &str,
    version: Option<&str>,
) -> anyhow::Result<Option<KeyDocument>> {
    let mut get = sm.get_secret_value().secret_id(id);
    get = match version {
        Some(v) => get.version_id(v).version_stage(stage),
        None => get.version_stage(stage),
    };
    match get.send().await {
        Ok(out) => {
            let text = out.secret_string.unwrap_or_default();
            if text.trim().is_empty() {
                return Ok(Some(KeyDocument::default()));
            }
            Ok(Some(serde_json::from_str(&text)?))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|x| x.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The rotation function as deployed: Secrets Manager and the public-keys secret it keeps in
/// step.
pub struct Rotator {
    pub sm: Client,
    pub public_secret_id: String,
}

impl Rotator {
    pub fn new(app: &shared::App) -> anyhow::Result<std::sync::Arc<Self>> {
        Ok(std::sync::Arc::new(Rotator {
            sm: app.clients.secrets().clone(),
            public_secret_id: app.config.public_keys_secret_id.clone(),
        }))
    }

    pub async fn handle(&self, event: RotationEvent) -> anyhow::Result<()> {
        rotate(&self.sm, &self.public_secret_id, &event).await
    }
}

/// Runs one rotation step. `public_secret_id` is the verifiers' secret.
pub async fn rotate(
    sm: &Client,
    public_secret_id: &str,
    event: &RotationEvent,
) -> anyhow::Result<()> {
    tracing::info!(step = %event.step, "key rotation step");
    match event.step.as_str() {
        "createSecret" => create(sm, event).await,
        "setSecret" => publish(sm, public_secret_id, event).await,
        "testSecret" => test(sm, event).await,
        "finishSecret" => finish(sm, event).await,
        other => anyhow::bail!("unknown rotation step {other}"),
    }
}

async fn create(sm: &Client, e: &RotationEvent) -> anyhow::Result<()> {
    if document(sm, &e.secret_id, PENDING, Some(&e.token))
        .await?
        .is_some()
    {
        return Ok(()); // a retried step: the pending version exists
    }
    let current = document(sm, &e.secret_id, CURRENT, None)
        .await?
        .unwrap_or_default();
    let next = current.rotated(KeyDocument::generate_key(now_unix())?);
    let kids = next.keys.iter().map(|k| k.kid.as_str()).collect();
    let staged = (PENDING, "keys.rotation_staged");
    put_version(sm, &e.secret_id, e, &next, staged, kids).await
}

/// Writes `value` as this rotation's version (its request token) of `secret_id`, at `stage`,
/// and audits the key ids it holds. Idempotent: a retried step writes the same value under
/// the same request token.
async fn put_version(
    sm: &Client,
    secret_id: &str,
    e: &RotationEvent,
    value: &impl serde::Serialize,
    (stage, audit_event): (&str, &'static str),
    kids: Vec<&str>,
) -> anyhow::Result<()> {
    sm.put_secret_value()
        .secret_id(secret_id)
        .client_request_token(&e.token)
        .secret_string(serde_json::to_string(value)?)
        .version_stages(stage)
        .send()
        .await?;
    tracing::info!(target: "audit", audit_event, kids = ?kids, "security event");
    Ok(())
}

/// The document this rotation staged (createSecret) as AWSPENDING.
async fn pending(sm: &Client, e: &RotationEvent) -> anyhow::Result<KeyDocument> {
    document(sm, &e.secret_id, PENDING, Some(&e.token))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no pending version {}", e.token))
}

/// The pending keys' public halves become the verifiers' current document. Idempotent: a
/// retried step writes the same value under the same request token.
async fn publish(sm: &Client, public_secret_id: &str, e: &RotationEvent) -> anyhow::Result<()> {
    let pending = pending(sm, e).await?;
    let public = KeySet::from_document(&pending)?.public_document();
    let kids = public.keys.iter().map(|k| k.kid.as_str()).collect();
    let published = (CURRENT, "keys.public_published");
    put_version(sm, public_secret_id, e, &public, published, kids).await
}

async fn test(sm: &Client, e: &RotationEvent) -> anyhow::Result<()> {
    let pending = pending(sm, e).await?;
    let set = KeySet::from_document(&pending)?;
    let claims = new_claims(
        "rotation-test",
        "rotation-test",
        "rotation",
        &[Role::Attendee],
        "rotation",
    );
    let token = set.sign(&claims)?;
    set.verify(&token, "rotation-test", "rotation-test")
        .map_err(|e| anyhow::anyhow!("the pending keys do not verify their own token: {e}"))?;
    Ok(())
}

async fn finish(sm: &Client, e: &RotationEvent) -> anyhow::Result<()> {
    let described = sm.describe_secret().secret_id(&e.secret_id).send().await?;
    let mut current_version = None;
    for (version, stages) in described.version_ids_to_stages.unwrap_or_default() {
        if stages.iter().any(|s| s == CURRENT) {
            if version == e.token {
                return Ok(()); // already finished
            }
            current_version = Some(version);
        }
    }
    sm.update_secret_version_stage()
        .secret_id(&e.secret_id)
        .version_stage(CURRENT)
        .move_to_version_id(&e.token)
        .set_remove_from_version_id(current_version)
        .send()
        .await?;
    tracing::info!(target: "audit", audit_event = "keys.rotated", "security event");
    Ok(())
}
