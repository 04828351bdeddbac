//! Operator command, not a Lambda: creates an admin account with a freshly generated password
//! and prints the credentials once. There is no default account or password anywhere; this is
//! how the first admin comes to exist (docs/runbook.md).
//!
//! `TABLE_NAME=<table> create_admin --email ops@example.com [--name "Operations"]`

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let email = auth::email::Email::parse(&arg("--email").ok_or_else(|| {
        anyhow::anyhow!("usage: create_admin --email <address> [--name <display name>]")
    })?)
    .map_err(|e| anyhow::anyhow!("--email {e}"))?;
    let name = arg("--name").unwrap_or_else(|| "Administrator".into());
    let table =
        std::env::var("TABLE_NAME").map_err(|_| anyhow::anyhow!("TABLE_NAME is not set"))?;
    let sdk = shared::aws::sdk_config().await;
    let store = auth::store::Store {
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        table,
    };

    let (id, password) = auth::store::create_admin(&store, &email, &name).await?;
    println!(
        "{}",
        serde_json::json!({"id": id, "email": email.as_str(), "password": password, "roles": ["admin", "attendee"]})
    );
    Ok(())
}
