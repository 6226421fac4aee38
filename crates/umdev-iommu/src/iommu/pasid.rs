//! PASID attach (`iommu_attach_device_pasid`, `iommu_replace_device_pasid`,
//! `iommu_detach_device_pasid`, v6.15+ rules): a domain translates the
//! requests tagged with one PASID, for every PASID-capable device of the
//! group.

use std::sync::Arc;

use umdev_pci::Bdf;

use super::core::Iommu;
use super::domain::Domain;
use super::error::IommuError;
use super::group::{Group, GroupState};
use crate::vtd::IOMMU_NO_PASID;

impl Iommu {
    /// `iommu_attach_device_pasid`: `domain` translates `pasid` for every
    /// PASID-capable device of `bdf`'s group, or for none.
    ///
    /// Errors, in Linux's order: ENODEV without a group; EOPNOTSUPP if the
    /// domain cannot be attached to a PASID; EINVAL for another IOMMU's
    /// domain or `pasid == IOMMU_NO_PASID`; EINVAL if `bdf` has no PASID
    /// support, or `pasid` is beyond a PASID-capable group member's limit
    /// (members without PASID support are skipped, v6.15 "Skip PASID
    /// validation for devices without PASID capability"; the device itself
    /// must have it, which is what the iommufd selftest's `no_pasid` variant
    /// asserts); EBUSY if the PASID already has a domain.
    pub fn attach_device_pasid(
        &self,
        domain: &Arc<Domain>,
        bdf: Bdf,
        pasid: u32,
    ) -> Result<(), IommuError> {
        self.check_pasid_domain(domain, pasid)?;
        self.with_device_group(bdf, |group, state| {
            self.attach_pasid_locked(domain, bdf, pasid, group, state)
        })
    }

    /// `iommu_replace_device_pasid`: moves an attached `pasid` to `domain`
    /// for the whole group; on failure the old domain stays. ENODEV,
    /// EOPNOTSUPP and EINVAL (foreign domain, `IOMMU_NO_PASID`) as
    /// [`Self::attach_device_pasid`]; EINVAL if the PASID has no domain yet
    /// (the range was checked by that attach); replacing with the current
    /// domain does nothing.
    pub fn replace_device_pasid(
        &self,
        domain: &Arc<Domain>,
        bdf: Bdf,
        pasid: u32,
    ) -> Result<(), IommuError> {
        self.check_pasid_domain(domain, pasid)?;
        self.with_device_group(bdf, |group, state| {
            let old =
                state
                    .pasid_array
                    .get(&pasid)
                    .cloned()
                    .ok_or(IommuError::PasidNotAttached {
                        group: group.id(),
                        pasid,
                    })?;
            if Arc::ptr_eq(&old, domain) {
                return Ok(());
            }
            self.set_group_pasid(domain, pasid, Some(&old), state)?;
            state.pasid_array.insert(pasid, domain.clone());
            Ok(())
        })
    }

    /// `iommu_detach_device_pasid`: `pasid` stops translating for every
    /// device of the group (the driver's `remove_dev_pasid`). EINVAL if
    /// `domain` is not what `pasid` is attached to; EBUSY if the PASID is
    /// an aux domain's, held by [`Self::attach_device_aux`] users.
    #[doc(alias = "remove_dev_pasid")]
    pub fn detach_device_pasid(
        &self,
        domain: &Arc<Domain>,
        bdf: Bdf,
        pasid: u32,
    ) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            if Self::aux_holds(state, domain, pasid) {
                return Err(IommuError::PasidBusy {
                    group: group.id(),
                    pasid,
                });
            }
            self.detach_pasid_locked(domain, pasid, group, state)
        })
    }

    /// The checks that need no group: EOPNOTSUPP, then EINVAL for a
    /// foreign domain or `IOMMU_NO_PASID`.
    pub(super) fn check_pasid_domain(&self, domain: &Domain, pasid: u32) -> Result<(), IommuError> {
        if !domain.supports_pasid() {
            return Err(IommuError::PasidUnsupported {
                domain: domain.id(),
            });
        }
        self.check_owner(domain)?;
        if pasid == IOMMU_NO_PASID {
            return Err(IommuError::NoPasid);
        }
        Ok(())
    }

    /// Attach with the group lock held (shared with the aux API).
    pub(super) fn attach_pasid_locked(
        &self,
        domain: &Arc<Domain>,
        bdf: Bdf,
        pasid: u32,
        group: &Group,
        state: &mut GroupState,
    ) -> Result<(), IommuError> {
        Self::check_pasid_range(bdf, pasid, state)?;
        if state.pasid_array.contains_key(&pasid) {
            return Err(IommuError::PasidBusy {
                group: group.id(),
                pasid,
            });
        }
        self.set_group_pasid(domain, pasid, None, state)?;
        state.pasid_array.insert(pasid, domain.clone());
        Ok(())
    }

    /// Detach with the group lock held (shared with the aux API).
    pub(super) fn detach_pasid_locked(
        &self,
        domain: &Arc<Domain>,
        pasid: u32,
        group: &Group,
        state: &mut GroupState,
    ) -> Result<(), IommuError> {
        match state.pasid_array.get(&pasid) {
            Some(current) if Arc::ptr_eq(current, domain) => {}
            _ => {
                return Err(IommuError::PasidNotAttached {
                    group: group.id(),
                    pasid,
                });
            }
        }
        for dev in state.devices.iter().filter(|d| d.caps.max_pasids > 0) {
            self.ops.remove_dev_pasid(dev.bdf, pasid, domain.ops());
        }
        state.pasid_array.remove(&pasid);
        Ok(())
    }

    /// EINVAL unless `bdf` supports PASIDs and `pasid` is below the limit of
    /// every PASID-capable device of the group.
    fn check_pasid_range(bdf: Bdf, pasid: u32, state: &GroupState) -> Result<(), IommuError> {
        if state.device(bdf).is_none_or(|d| d.caps.max_pasids == 0) {
            return Err(IommuError::DeviceNoPasid { bdf });
        }
        match state
            .devices
            .iter()
            .find(|d| d.caps.max_pasids > 0 && pasid >= d.caps.max_pasids)
        {
            Some(d) => Err(IommuError::PasidOutOfRange {
                bdf: d.bdf,
                pasid,
                max_pasids: d.caps.max_pasids,
            }),
            None => Ok(()),
        }
    }

    /// `__iommu_set_group_pasid`: programs `pasid` on each PASID-capable
    /// device; on a failure the devices done so far go back to `old` (or
    /// lose the PASID when there was none).
    fn set_group_pasid(
        &self,
        domain: &Arc<Domain>,
        pasid: u32,
        old: Option<&Arc<Domain>>,
        state: &GroupState,
    ) -> Result<(), IommuError> {
        let capable: Vec<Bdf> = state
            .devices
            .iter()
            .filter(|d| d.caps.max_pasids > 0)
            .map(|d| d.bdf)
            .collect();
        for (done, &bdf) in capable.iter().enumerate() {
            let old_ops = old.map(|d| d.ops());
            if let Err(errno) = self.ops.set_dev_pasid(domain.ops(), bdf, pasid, old_ops) {
                for &prev in &capable[..done] {
                    let restored = old.is_some_and(|o| {
                        self.ops
                            .set_dev_pasid(o.ops(), prev, pasid, Some(domain.ops()))
                            .is_ok()
                    });
                    if !restored {
                        self.ops.remove_dev_pasid(prev, pasid, domain.ops());
                    }
                }
                return Err(IommuError::Driver {
                    op: "set_dev_pasid",
                    bdf,
                    errno,
                });
            }
        }
        Ok(())
    }
}
