use notifications::realtime::{self, Realtime};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve(
        "realtime_disconnect",
        Realtime::new,
        |rt, event| async move { realtime::disconnect(&rt, event).await },
    )
    .await
}
