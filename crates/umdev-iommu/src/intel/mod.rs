//! The intel-iommu driver (drivers/iommu/intel/) over the [`crate::vtd`]
//! hardware model:
//! - [`VtdIommu`] (iommu.c): implements [`crate::iommu::IommuOps`]: device
//!   probe and release, domain allocation, attach and PASID attach;
//! - [`IntelIommu`] (`struct intel_iommu`): the driver's state of one unit:
//!   the root, context and PASID tables it allocates and writes (pasid.c),
//!   the domain ids it hands out, and the invalidations it queues;
//! - the domains: [`VtdPagingDomain`], [`VtdNestedDomain`] (nested.c),
//!   [`VtdBlockedDomain`], [`VtdIdentityDomain`].

mod attach;
mod did;
mod iommu;
mod nested;
mod paging;
mod pasid;
mod static_domains;
mod tables;
mod unit;

pub use iommu::{DRIVER_NAME, PasidWidthFn, VtdIommu};
pub use nested::VtdNestedDomain;
pub use paging::VtdPagingDomain;
pub use static_domains::{VtdBlockedDomain, VtdIdentityDomain};
pub use unit::IntelIommu;
