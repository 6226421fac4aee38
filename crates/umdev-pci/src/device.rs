//! The device handle a driver callback receives (Linux `struct pci_dev *`
//! as seen from a driver).

use std::sync::Arc;

use crate::error::PciError;
use crate::function::Function;
use crate::info::FunctionInfo;
use crate::{Bdf, Platform};

/// A function as seen by its driver during `probe`, `remove` or
/// `sriov_configure`, while the platform holds the device's bind lock.
pub struct PciDev<'a> {
    platform: &'a Platform,
    function: &'a Arc<Function>,
}

impl<'a> PciDev<'a> {
    pub(crate) fn new(platform: &'a Platform, function: &'a Arc<Function>) -> Self {
        Self { platform, function }
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.function.spec.bdf
    }

    /// The platform, for read-only queries and for binding other devices.
    pub fn platform(&self) -> &'a Platform {
        self.platform
    }

    /// A snapshot of the function.
    pub fn info(&self) -> FunctionInfo {
        FunctionInfo::new(self.function, self.platform.iommu_group(self.bdf()))
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
        self.platform.sriov_enable(self.function, num_vfs)
    }

    /// drivers/pci/iov.c `pci_disable_sriov`: unbinds and removes the VFs.
    pub fn disable_sriov(&self) {
        self.platform.sriov_disable(self.function);
    }

    /// `pci_num_vf`: VFs currently enabled.
    pub fn num_vfs(&self) -> u16 {
        self.function.state.lock().vfs.len() as u16
    }
}
