//! What the platform calls when devices and drivers come and go.
//!
//! The platform calls these with its own locks held, so none of them calls
//! back into the platform; they take only the core's locks.

use rustix::io::Errno;
use umdev_pci::{Bdf, IommuHooks};

use super::core::Iommu;
use super::error::IommuError;

impl IommuHooks for Iommu {
    /// `iommu_probe_device`: the driver probes the device, which joins its
    /// group (created with its default domain on the first device) and is
    /// attached to the group's current domain. ENODEV when no unit
    /// translates it.
    fn probe_device(&self, bdf: Bdf, group: u32) -> Result<(), Errno> {
        if self.device_group(bdf).is_some() {
            return Err(IommuError::AlreadyProbed { bdf }.errno());
        }
        let caps = self.ops.probe_device(bdf)?;
        match self.add_device(bdf, group, caps) {
            Ok(()) => Ok(()),
            // A concurrent probe won; its driver state stays.
            Err(e @ IommuError::AlreadyProbed { .. }) => Err(e.errno()),
            Err(e) => {
                self.ops.release_device(bdf);
                Err(e.errno())
            }
        }
    }

    /// `iommu_release_device`.
    fn release_device(&self, bdf: Bdf) {
        self.remove_device(bdf);
    }

    /// `iommu_device_use_default_domain`: a kernel DMA-API driver is about
    /// to probe. With users already counted, EBUSY unless the group is in
    /// its default domain, has no user-space owner and no PASID attached;
    /// then the user count goes up. A device without a group is fine.
    fn device_use_default_domain(&self, bdf: Bdf) -> Result<(), Errno> {
        match self.with_device_group(bdf, |group, state| {
            if state.owner_cnt != 0 {
                if !state.in_default_domain() {
                    return Err(IommuError::NotInDefaultDomain { group: group.id() });
                }
                if state.owner.is_some() {
                    return Err(IommuError::UserOwned { group: group.id() });
                }
                if !state.pasid_array.is_empty() {
                    return Err(IommuError::PasidsAttached { group: group.id() });
                }
            }
            state.owner_cnt += 1;
            Ok(())
        }) {
            Ok(()) | Err(IommuError::NoGroup { .. }) => Ok(()),
            Err(e) => Err(e.errno()),
        }
    }

    /// `iommu_device_unuse_default_domain`. Linux warns and keeps the count
    /// when PASIDs are still attached; the count is dropped here anyway so
    /// a driver's unbind always balances its probe.
    fn device_unuse_default_domain(&self, bdf: Bdf) {
        // A device without a group was never counted.
        let _ = self.with_device_group(bdf, |_, state| {
            state.owner_cnt = state.owner_cnt.saturating_sub(1);
            Ok(())
        });
    }
}
