//! The device handle a driver callback receives (Linux `struct pci_dev *`
//! as seen from a driver).
//!
//! The handle reaches its function through [`DeviceOps`], which the
//! platform's function record implements: the record holds the bound
//! driver, whose callbacks take this handle, so naming the record here
//! would make the driver API and the record depend on each other.

use crate::error::PciError;
use crate::info::FunctionInfo;
use crate::{Bdf, Platform};

/// The operations on one present function that a [`PciDev`] offers.
pub(crate) trait DeviceOps: Sync {
    /// The function's address.
    fn bdf(&self) -> Bdf;
    /// A snapshot of the function, with its IOMMU group number.
    fn info(&self, group: Option<u32>) -> FunctionInfo;
    /// Reads config space.
    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError>;
    /// Writes config space through the write masks.
    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError>;
    /// `pci_enable_sriov` on `platform`.
    fn enable_sriov(&self, platform: &Platform, num_vfs: u16) -> Result<(), PciError>;
    /// `pci_disable_sriov` on `platform`.
    fn disable_sriov(&self, platform: &Platform);
    /// `pci_num_vf`.
    fn num_vfs(&self) -> u16;
}

/// A function as seen by its driver during `probe`, `remove` or
/// `sriov_configure`, while the platform holds the device's bind lock.
pub struct PciDev<'a> {
    platform: &'a Platform,
    function: &'a dyn DeviceOps,
}

impl<'a> PciDev<'a> {
    pub(crate) fn new(platform: &'a Platform, function: &'a dyn DeviceOps) -> Self {
        Self { platform, function }
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.function.bdf()
    }

    /// The platform, for read-only queries and for binding other devices.
    pub fn platform(&self) -> &'a Platform {
        self.platform
    }

    /// A snapshot of the function.
    pub fn info(&self) -> FunctionInfo {
        self.function.info(self.platform.iommu_group(self.bdf()))
    }

    /// Reads config space (`pci_read_config_*`).
    pub fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        self.function.config_read(offset, buf)
    }

    /// Writes config space (`pci_write_config_*`).
    pub fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        self.function.config_write(offset, data)
    }

    /// drivers/pci/iov.c `pci_enable_sriov`: creates `num_vfs` VFs, which
    /// get groups, reach the IOMMU layer and are offered to drivers.
    pub fn enable_sriov(&self, num_vfs: u16) -> Result<(), PciError> {
        self.function.enable_sriov(self.platform, num_vfs)
    }

    /// drivers/pci/iov.c `pci_disable_sriov`: unbinds and removes the VFs.
    pub fn disable_sriov(&self) {
        self.function.disable_sriov(self.platform);
    }

    /// `pci_num_vf`: VFs currently enabled.
    pub fn num_vfs(&self) -> u16 {
        self.function.num_vfs()
    }
}
