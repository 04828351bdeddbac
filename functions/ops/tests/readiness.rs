//! `/readyz` against a real moto server started by this test: ready when everything exists,
//! 503 naming the table when it is missing, 503 naming moto when moto is stopped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::Value;
use shared::App;
use shared::telemetry::Sink;

struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Moto {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            format!(
                "{}/../../.tools/stack/bin/moto_server",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}): run `make setup` first"));
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto { child, url };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto server did not start on {url}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn sdk(url: &str) -> aws_config::SdkConfig {
    shared::aws::loader()
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// Creates a table, the two queues and the secret; returns the function configuration.
async fn provision(sdk: &aws_config::SdkConfig, table: &'static str) -> shared::Config {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    ddb.create_table()
        .table_name("readyz-table")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let q = sqs
        .create_queue()
        .queue_name("outbox")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq = sqs
        .create_queue()
        .queue_name("dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    // A public-key document with one key (an empty one is not ready: nothing would verify).
    let doc = shared::auth::KeyDocument {
        keys: vec![shared::auth::KeyDocument::generate_key(1).unwrap()],
    };
    let public = shared::auth::KeySet::from_document(&doc)
        .unwrap()
        .public_document();
    sm.create_secret()
        .name("keys")
        .secret_string(serde_json::to_string(&public).unwrap())
        .send()
        .await
        .unwrap();
    let q: &'static str = Box::leak(q.into_boxed_str());
    let dlq: &'static str = Box::leak(dlq.into_boxed_str());
    shared::testing::config(
        "readyz-test",
        &[
            ("TABLE_NAME", table),
            ("OUTBOX_QUEUE_URL", q),
            ("OUTBOX_DLQ_URL", dlq),
            ("PUBLIC_KEYS_SECRET_ID", "keys"),
        ],
    )
}

async fn readyz(app: &App) -> (u16, Value) {
    let resp = match ops::readiness::readyz(app).await {
        Ok(r) => r,
        Err(e) => e.into_response(Some("/readyz"), None),
    };
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(resp.body().as_ref()).unwrap(),
    )
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn readyz_is_200_with_latencies_then_503_naming_the_table_then_503_naming_moto() {
    let mut moto = Moto::start();
    let sdk = sdk(&moto.url).await;

    let app = App::with_sdk_config(
        provision(&sdk, "readyz-table").await,
        Sink::Buffer(Default::default()),
        &sdk,
    );
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    for name in ["table", "outbox_queue", "outbox_dlq", "public_keys"] {
        assert_eq!(check(&body, name)["status"], "ok", "{body}");
        assert!(check(&body, name)["latency_ms"].as_f64().unwrap() >= 0.0);
    }

    let missing = shared::testing::config(
        "readyz-test",
        &[
            ("TABLE_NAME", "no-such-table"),
            ("OUTBOX_QUEUE_URL", leak(&app.config.outbox_queue_url)),
            ("OUTBOX_DLQ_URL", leak(&app.config.outbox_dlq_url)),
            ("PUBLIC_KEYS_SECRET_ID", "keys"),
        ],
    );
    let app_missing = App::with_sdk_config(missing, Sink::Buffer(Default::default()), &sdk);
    let (status, body) = readyz(&app_missing).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("table"), "{body}");
    assert_eq!(check(&body, "table")["status"], "fail");
    assert!(
        check(&body, "table")["error"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFound"),
        "{body}"
    );
    assert_eq!(
        check(&body, "outbox_queue")["status"],
        "ok",
        "only the table is named: {body}"
    );

    moto.stop();
    // A fresh process (empty secrets cache) against the stopped endpoint.
    let app_down = App::with_sdk_config(app.config.clone(), Sink::Buffer(Default::default()), &sdk);
    let (status, body) = readyz(&app_down).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("moto server") && detail.contains(&moto.url),
        "{body}"
    );
    for name in ["table", "outbox_queue", "outbox_dlq", "public_keys"] {
        assert_eq!(check(&body, name)["status"], "fail", "{body}");
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
