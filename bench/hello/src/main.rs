//! The baseline for cold-start measurements: the smallest Lambda function, built like ours.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(serde_json::json!({"statusCode": 200, "body": event.payload.to_string().len().to_string()}))
    }))
    .await
}
