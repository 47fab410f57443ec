//! Object store wrappers that add behaviour: request counting, fault injection.
