//! The projector runtime and every projection. The runtime arrives with the projections issue.

pub use chronicle_store as store;
