//! The hardware unit: a VT-d-like IOMMU in scalable mode.

mod types;

pub use types::*;
