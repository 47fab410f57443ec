//! `weir-ingest`: the Lambda function that appends events to the log (see `weir_functions::ingest`).

#[tokio::main]
async fn main() -> Result<(), weir_functions::Error> {
    weir_functions::ingest::run().await
}
