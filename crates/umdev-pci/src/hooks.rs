//! Call-ups from the platform to the IOMMU layer.
//!
//! The platform sits below the IOMMU layer and never names it. What Linux
//! does with `iommu_probe_device` / `iommu_release_device` (bus notifier) and
//! with `iommu_device_use_default_domain` / `iommu_device_unuse_default_domain`
//! (drivers/base/dd.c `really_probe` for drivers without `driver_managed_dma`)
//! reaches the IOMMU layer through this trait, which that layer registers on
//! the platform.

use rustix::io::Errno;

use crate::Bdf;

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
