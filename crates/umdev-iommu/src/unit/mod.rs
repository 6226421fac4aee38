//! The hardware unit: a VT-d-like IOMMU in scalable mode.
//!
//! - [`regs`]: CAP / ECAP registers built from a [`UnitConfig`];
//! - [`layout`]: the bit layouts of root, context, PASID-directory and
//!   PASID-table entries;
//! - [`IommuUnit`]: the structures in host memory, domain ids, the
//!   invalidation sequence, the fault log and counters;
//! - the translation path (PASID cache → IOTLB → page walk, nested
//!   included) and the [`Dma`] API device models use;
//! - [`VtdIommu`]: the driver implementing [`crate::iommu::IommuOps`].

mod device_stats;
mod did;
mod dma;
mod driver;
mod error;
mod fault;
mod gate;
mod hw;
mod iotlb;
pub mod layout;
mod nested;
mod pasid_cache;
pub mod regs;
mod seqcache;
mod shard;
mod stats;
mod tables;
mod translate;
mod types;

pub use device_stats::DeviceStats;
pub use dma::{Dma, DmaError, DmaPort, Segment, SgMapping};
pub use driver::{
    DRIVER_NAME, PasidWidthFn, VtdBlockedDomain, VtdIdentityDomain, VtdIommu, VtdNestedDomain,
    VtdPagingDomain,
};
pub use error::UnitError;
pub use fault::FaultLog;
pub use hw::IommuUnit;
pub use iotlb::IotlbInvalidation;
pub use stats::UnitStats;
pub use types::*;
