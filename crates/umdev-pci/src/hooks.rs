//! The interfaces the platform calls out through to the layers above it:
//! the IOMMU layer ([`IommuHooks`]) and device models ([`BarHandler`]).
//!
//! ## IOMMU hooks
//!
//! The platform sits below the IOMMU layer and never names it. What Linux
//! does with `iommu_probe_device` / `iommu_release_device` (bus notifier) and
//! with `iommu_device_use_default_domain` / `iommu_device_unuse_default_domain`
//! (drivers/base/dd.c `really_probe` for drivers without `driver_managed_dma`)
//! reaches the IOMMU layer through [`IommuHooks`], which that layer registers on
//! the platform.

use rustix::io::Errno;

use crate::bdf::Bdf;

/// IOMMU operations the platform calls when devices and drivers come and go.
pub trait IommuHooks: Send + Sync {
    /// A function appeared (platform start, or a VF when SR-IOV is enabled);
    /// `group` is the IOMMU group number the platform computed for it.
    fn probe_device(&self, bdf: Bdf, group: u32) -> Result<(), Errno>;

    /// A function is going away (a VF when SR-IOV is disabled).
    fn release_device(&self, bdf: Bdf);

    /// A kernel DMA-API driver is about to probe `bdf`: the group must be in
    /// its default domain and not owned by user space, else `EBUSY`
    /// (drivers/iommu/iommu.c `iommu_device_use_default_domain`).
    fn device_use_default_domain(&self, bdf: Bdf) -> Result<(), Errno>;

    /// The DMA-API driver left `bdf` (unbind, or a failed probe).
    fn device_unuse_default_domain(&self, bdf: Bdf);
}

/// Behaviour behind a function's memory BARs (a device model).
///
/// Called with no platform lock held, so an implementation may issue DMA,
/// raise interrupts and query the platform (config reads included). Each
/// call is one access of `buf.len()` bytes that lies inside BAR `bar`.
pub trait BarHandler: Send + Sync {
    /// A read of `buf.len()` bytes at `offset` into BAR `bar`.
    fn read(&self, bar: u8, offset: u64, buf: &mut [u8]);

    /// A write of `data` at `offset` into BAR `bar`.
    fn write(&self, bar: u8, offset: u64, data: &[u8]);
}
