//! The IOMMU core (drivers/iommu/iommu.c): groups, domains, DMA ownership
//! and attach.

pub mod ops;

pub use ops::{DeviceCaps, DomainOps, DomainType, IommuOps, PagingFlags, VtdS1Config};
