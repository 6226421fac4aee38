//! The VT-d hardware model: one unit in scalable mode, as silicon has it.
//!
//! - [`regs`]: CAP / ECAP and RTADDR registers built from a [`IommuUnitSpec`](umdev_pci::IommuUnitSpec);
//! - [`layout`]: the bit layouts of root, context, PASID-directory and
//!   PASID-table entries;
//! - [`IommuUnit`]: the unit (registers, caches, invalidation queue,
//!   in-flight gate, fault log and counters); it reads the structures
//!   software wrote, walking them from the root table address register;
//! - the translation path (PASID cache → IOTLB → page walk, nested
//!   included) that [`crate::dma::DmaPort`] drives for device DMA.
//!
//! The driver that writes the structures and owns the domain ids is
//! [`crate::intel`].

mod device_stats;
mod error;
mod fault;
pub(crate) mod gate;
mod inv;
mod iotlb;
pub mod layout;
mod nested;
mod pasid_cache;
pub mod regs;
mod seqcache;
mod shard;
pub(crate) mod stats;
pub(crate) mod translate;
mod types;
mod unit;
mod walk;

pub use device_stats::DeviceStats;
pub use error::UnitError;
pub use fault::FaultLog;
pub use inv::InvDesc;
pub use iotlb::IotlbInvalidation;
pub use stats::UnitStats;
pub use types::*;
pub use unit::IommuUnit;
