//! Shared parts of weir's end-to-end tests: a test agent whose durable calls go to a fake
//! external service that records every call and its idempotency key, and the backends.

pub mod agent;
pub mod backends;
pub mod fake_openai;
pub mod fake_openai_batch;
pub mod fake_s3_vectors;
pub mod moto;
pub mod phoenix;
pub mod policy;

pub use agent::{ExternalService, ServiceCall, TestAgent, find_reviews, review_events, reviews_path};
pub use backends::Backend;
pub use policy::{Gate, PolicyStore};

/// Serves `app` on a free port of 127.0.0.1 until the task is aborted; returns
/// `http://127.0.0.1:PORT` and the task.
pub async fn serve_loopback(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the fake serves");
    });
    (url, server)
}
