use notifications::consumer::Consumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve(
        "notifications_consumer",
        Consumer::new,
        |c, event| async move { c.handle(event).await },
    )
    .await
}
