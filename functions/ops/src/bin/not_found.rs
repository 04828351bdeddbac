#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = shared::init("not-found").await?;
    shared::http::run(&app, shared::http::Policy::open(), ops::not_found).await
}
