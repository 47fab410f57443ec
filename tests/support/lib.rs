//! Shared parts of weir's end-to-end tests: a test agent whose durable calls go to a fake
//! external service that records every call and its idempotency key, and the backends.

pub mod agent;
pub mod backends;
pub mod fake_openai;
pub mod fake_openai_batch;
pub mod moto;
pub mod phoenix;
pub mod policy;

pub use agent::{ExternalService, ServiceCall, TestAgent, find_reviews, review_events, reviews_path};
pub use backends::Backend;
pub use policy::{Gate, PolicyStore};
