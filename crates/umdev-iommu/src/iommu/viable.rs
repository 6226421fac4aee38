//! Wiring the core to its platform, and group viability.

use std::sync::{Arc, Weak};

use umdev_pci::{IommuHooks, PciError, Platform};

use super::core::Iommu;
use super::group::Group;

impl Iommu {
    /// Registers this core as `platform`'s IOMMU layer: the platform probes
    /// every grouped function through [`IommuHooks::probe_device`] and
    /// counts the DMA-API drivers already bound, and from then on reports
    /// devices and drivers as they come and go. Returns the first probe or
    /// count error (after every function was offered).
    pub fn attach_platform(self: &Arc<Self>, platform: &Arc<Platform>) -> Result<(), PciError> {
        *self.platform.write() = Arc::downgrade(platform);
        let hooks: Weak<dyn IommuHooks> = Arc::downgrade(self) as Weak<dyn IommuHooks>;
        platform.set_iommu_hooks(hooks)
    }

    /// Whether user space may use `group` (VFIO's "viable"): every member is
    /// unbound or bound to a `driver_managed_dma` driver.
    ///
    /// Asks the platform which drivers are bound, after releasing the group
    /// lock. Without a platform it falls back on the core's own count: no
    /// kernel DMA-API driver uses the group. Like Linux's, the answer is a
    /// snapshot; the ownership claim is what enforces it.
    pub fn group_viable(&self, group: &Group) -> bool {
        let members = group.devices();
        match self.platform.read().upgrade() {
            Some(platform) => members.iter().all(|&bdf| {
                platform
                    .driver_of(bdf)
                    .is_none_or(|driver| driver.driver_managed_dma)
            }),
            None => {
                let info = group.info();
                info.owner.is_some() || info.owner_cnt == 0
            }
        }
    }
}
