use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "openapi",
        ops::probe,
        |_| Policy::open(),
        |_app, _req| ops::openapi::openapi_json(),
    )
    .await
}
