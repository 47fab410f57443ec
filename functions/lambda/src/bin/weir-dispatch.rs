//! `weir-dispatch`: the Lambda function that delivers committed outputs (see `weir_functions::dispatch`).

#[tokio::main]
async fn main() -> Result<(), weir_functions::Error> {
    weir_functions::dispatch::run().await
}
