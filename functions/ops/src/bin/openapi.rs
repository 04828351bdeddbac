#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = shared::init("openapi").await?;
    shared::http::run(&app, shared::http::Policy::open(), |_req| {
        ops::openapi::openapi_json()
    })
    .await
}
