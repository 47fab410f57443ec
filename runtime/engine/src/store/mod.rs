//! Object store wrappers that add behaviour: request counting, fault injection.

mod counting;
mod faulty;

pub use counting::{CountingStore, RequestCounts, RequestCountsSnapshot};
pub use faulty::{Fault, FaultPlan, FaultyStore};
