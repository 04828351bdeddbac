use joins::intake::Writer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve("join_writer", Writer::new, |w, event| async move {
        w.handle(event).await
    })
    .await
}
