//! IOMMU groups (`struct iommu_group`): the devices the IOMMU cannot tell
//! apart, which therefore always share one RID domain.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use umdev_pci::Bdf;

use super::domain::Domain;
use super::error::IommuError;
use super::ops::{DeviceCaps, IommuOps};

/// One IOMMU group.
///
/// Its state sits behind one mutex (Linux `group->mutex`); driver calls
/// that change the group's translation are made with it held.
pub struct Group {
    id: u32,
    state: Mutex<GroupState>,
}

/// A device of a group (`struct group_device` + `dev->iommu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GroupDevice {
    pub(super) bdf: Bdf,
    pub(super) caps: DeviceCaps,
    /// `IOMMU_DEV_FEAT_AUX` enabled (VT-d `info->auxd_enabled`).
    pub(super) aux_enabled: bool,
}

/// The mutable part of a group.
pub(super) struct GroupState {
    /// In probe order; the first is `iommu_group_first_dev`.
    pub(super) devices: Vec<GroupDevice>,
    pub(super) default_domain: Arc<Domain>,
    /// The domain every device's RID is attached to.
    pub(super) domain: Arc<Domain>,
    pub(super) blocking_domain: Arc<Domain>,
    /// The owner cookie's id; `None` with `owner_cnt > 0` means kernel
    /// DMA-API drivers use the group.
    pub(super) owner: Option<u64>,
    pub(super) owner_cnt: u32,
    /// PASID → domain, for every device of the group.
    pub(super) pasid_array: BTreeMap<u32, Arc<Domain>>,
    /// Legacy aux attachments: (domain id, device) → attach count.
    pub(super) aux: BTreeMap<(u64, Bdf), u32>,
}

impl GroupState {
    /// The record of member `bdf`.
    pub(super) fn device(&self, bdf: Bdf) -> Option<&GroupDevice> {
        self.devices.iter().find(|d| d.bdf == bdf)
    }

    /// Mutable access to a device's record.
    pub(super) fn device_mut(&mut self, bdf: Bdf) -> Option<&mut GroupDevice> {
        self.devices.iter_mut().find(|d| d.bdf == bdf)
    }

    /// The group's RID domain is its default domain.
    pub(super) fn in_default_domain(&self) -> bool {
        Arc::ptr_eq(&self.domain, &self.default_domain)
    }

    /// The domain the group returns to when nobody is attached:
    /// blocking while owned, default otherwise
    /// (`__iommu_group_set_core_domain`).
    pub(super) fn core_domain(&self) -> Arc<Domain> {
        if self.owner.is_some() {
            self.blocking_domain.clone()
        } else {
            self.default_domain.clone()
        }
    }

    /// Attaches every device's RID to `new`; if one fails, the devices
    /// already switched go back to the current domain and the group is
    /// unchanged (`__iommu_group_set_domain`).
    pub(super) fn set_domain(
        &mut self,
        ops: &dyn IommuOps,
        new: &Arc<Domain>,
    ) -> Result<(), IommuError> {
        if Arc::ptr_eq(&self.domain, new) {
            return Ok(());
        }
        for (done, dev) in self.devices.iter().enumerate() {
            if let Err(errno) = ops.attach_dev(new.ops(), dev.bdf) {
                for prev in &self.devices[..done] {
                    self.reattach_or_block(ops, &self.domain, prev.bdf);
                }
                return Err(IommuError::Driver {
                    op: "attach_dev",
                    bdf: dev.bdf,
                    errno,
                });
            }
        }
        self.domain = new.clone();
        Ok(())
    }

    /// Like [`Self::set_domain`] for paths that cannot fail (release of
    /// ownership, detach): a device the driver refuses is blocked instead
    /// (`__iommu_group_set_domain_nofail`).
    pub(super) fn set_domain_nofail(&mut self, ops: &dyn IommuOps, new: &Arc<Domain>) {
        if Arc::ptr_eq(&self.domain, new) {
            return;
        }
        for dev in &self.devices {
            self.reattach_or_block(ops, new, dev.bdf);
        }
        self.domain = new.clone();
    }

    /// Attaches `domain` to `bdf`; a driver that refuses a domain it
    /// accepted before gets the blocking domain, so the device can never
    /// keep translating through a domain the group no longer holds.
    fn reattach_or_block(&self, ops: &dyn IommuOps, domain: &Arc<Domain>, bdf: Bdf) {
        if ops.attach_dev(domain.ops(), bdf).is_err() {
            // The blocked domain is static in the driver and cannot fail
            // (Linux IOMMU_SET_DOMAIN_MUST_SUCCEED); nothing more to do if
            // it does.
            let _ = ops.attach_dev(self.blocking_domain.ops(), bdf);
        }
    }
}

impl Group {
    pub(super) fn new(id: u32, state: GroupState) -> Arc<Self> {
        Arc::new(Self {
            id,
            state: Mutex::new(state),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock()
    }

    /// The group number (`/sys/kernel/iommu_groups/<id>`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The member devices, in probe order.
    pub fn devices(&self) -> Vec<Bdf> {
        self.lock().devices.iter().map(|d| d.bdf).collect()
    }

    /// The domain the group's RIDs are attached to now.
    pub fn domain(&self) -> Arc<Domain> {
        self.lock().domain.clone()
    }

    /// The domain kernel DMA-API drivers use.
    pub fn default_domain(&self) -> Arc<Domain> {
        self.lock().default_domain.clone()
    }

    /// The domain an owned, unattached group sits in.
    pub fn blocking_domain(&self) -> Arc<Domain> {
        self.lock().blocking_domain.clone()
    }

    /// The domain attached to `pasid` in this group.
    pub fn pasid_domain(&self, pasid: u32) -> Option<Arc<Domain>> {
        self.lock().pasid_array.get(&pasid).cloned()
    }

    /// `iommu_group_dma_owner_claimed`: someone (user owner or DMA-API
    /// driver) uses the group's DMA.
    pub fn dma_owner_claimed(&self) -> bool {
        self.lock().owner_cnt != 0
    }

    /// A consistent snapshot for listings.
    pub fn info(&self) -> GroupInfo {
        let s = self.lock();
        GroupInfo {
            id: self.id,
            devices: s.devices.iter().map(|d| d.bdf).collect(),
            default_domain: s.default_domain.id(),
            domain: s.domain.id(),
            blocking_domain: s.blocking_domain.id(),
            owner: s.owner,
            owner_cnt: s.owner_cnt,
            pasids: s.pasid_array.iter().map(|(&p, d)| (p, d.id())).collect(),
        }
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Group").field(&self.info()).finish()
    }
}

/// A snapshot of one group's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group number.
    pub id: u32,
    /// Member devices, in probe order.
    pub devices: Vec<Bdf>,
    /// Id of the default domain.
    pub default_domain: u64,
    /// Id of the current RID domain.
    pub domain: u64,
    /// Id of the blocking domain.
    pub blocking_domain: u64,
    /// Id of the owner cookie; `None` when unowned or used by DMA-API
    /// drivers only.
    pub owner: Option<u64>,
    /// Owner count: user claims, or DMA-API drivers bound.
    pub owner_cnt: u32,
    /// PASID → domain id.
    pub pasids: Vec<(u32, u64)>,
}
