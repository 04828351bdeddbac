use notifications::realtime::{self, Realtime};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve("realtime_connect", Realtime::new, |rt, event| async move {
        Ok(realtime::connect(&rt, event).await)
    })
    .await
}
