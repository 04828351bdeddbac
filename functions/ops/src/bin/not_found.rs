use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "not_found",
        ops::probe,
        |_| Policy::open(),
        |_app, req| ops::not_found(req),
    )
    .await
}
