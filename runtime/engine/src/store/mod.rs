//! Object store wrappers that add behaviour: request counting, fault injection.

mod counting;
#[cfg(any(test, feature = "test-support"))]
mod faulty;

pub use counting::{CountingStore, RequestCounts, RequestCountsSnapshot};
#[cfg(any(test, feature = "test-support"))]
pub use faulty::{Fault, FaultPlan, FaultyStore};
