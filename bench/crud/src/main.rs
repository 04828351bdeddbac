//! The baseline `make bench` holds get_event to (issue 16): what a bare CRUD Rust Lambda does for
//! `GET /v1/events/{id}` — lambda_http, the SDK's default configuration and one DynamoDB GetItem
//! of the event's item, answered as JSON — and nothing else: no authentication, no rate limit,
//! no logging, tracing or metrics, no warm-up. Built with the same profile as the functions.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, RequestExt, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("TABLE_NAME")?;
    lambda_http::run(service_fn(|req: Request| {
        let dynamodb = dynamodb.clone();
        let table = table.clone();
        async move {
            let id = req
                .path_parameters_ref()
                .and_then(|p| p.first("id"))
                .unwrap_or_default()
                .to_owned();
            let out = dynamodb
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(format!("EVENT#{id}")))
                .key("sk", AttributeValue::S("EVENT".into()))
                .send()
                .await?;
            let (status, body) = match out.item {
                Some(item) => {
                    let value: serde_json::Value = serde_dynamo::from_item(item)?;
                    (200, value.to_string())
                }
                None => (404, r#"{"title":"not found"}"#.to_owned()),
            };
            Ok::<_, Error>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::Text(body))?,
            )
        }
    }))
    .await
}
