//! Moved to [`crate::metrics`], a leaf that services and storage may count through too.

// moved: re-export kept for the merge
pub use crate::metrics::Metrics;
