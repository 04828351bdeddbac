use notifications::realtime::{self, Realtime};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve("realtime_message", Realtime::new, |rt, event| async move {
        Ok(realtime::message(&rt, event).await)
    })
    .await
}
