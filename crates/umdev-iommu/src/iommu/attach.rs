//! RID attach: a domain translates every device of a group
//! (`iommu_attach_group`, `iommu_attach_device`,
//! `iommu_group_replace_domain`).

use std::sync::Arc;

use umdev_pci::Bdf;

use super::core::Iommu;
use super::domain::Domain;
use super::error::IommuError;
use super::group::{Group, GroupState};

impl Iommu {
    /// `iommu_attach_group`: every device of `group` is attached to
    /// `domain`, or none is (a failing device reverts the others). EBUSY if
    /// the group is in neither its default nor its blocking domain (someone
    /// else attached); EINVAL for another IOMMU's domain.
    pub fn attach_group(&self, domain: &Arc<Domain>, group: &Group) -> Result<(), IommuError> {
        let mut state = self.lock_group(group)?;
        self.attach_group_locked(domain, group, &mut state)
    }

    /// `iommu_detach_group`: the group goes back to its blocking domain if
    /// owned, else to its default domain. EINVAL if `domain` is not the
    /// group's current domain.
    pub fn detach_group(&self, domain: &Arc<Domain>, group: &Group) -> Result<(), IommuError> {
        let mut state = self.lock_group(group)?;
        self.detach_group_locked(domain, group, &mut state)
    }

    /// `iommu_attach_device`: the single-device form of
    /// [`Self::attach_group`], refused with EINVAL unless the device's
    /// group has exactly one device. ENODEV without a group.
    pub fn attach_device(&self, domain: &Arc<Domain>, bdf: Bdf) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            Self::require_singleton(group, state)?;
            self.attach_group_locked(domain, group, state)
        })
    }

    /// `iommu_detach_device`: undoes [`Self::attach_device`]; EINVAL unless
    /// the group has one device and `domain` is attached.
    pub fn detach_device(&self, domain: &Arc<Domain>, bdf: Bdf) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            Self::require_singleton(group, state)?;
            self.detach_group_locked(domain, group, state)
        })
    }

    /// `iommu_group_replace_domain` (iommufd's replace): switches the group
    /// to `domain` whatever it is attached to now, all devices or none.
    /// EINVAL for another IOMMU's domain.
    pub fn replace_group_domain(
        &self,
        group: &Group,
        domain: &Arc<Domain>,
    ) -> Result<(), IommuError> {
        self.check_owner(domain)?;
        let mut state = self.lock_group(group)?;
        state.set_domain(self.ops.as_ref(), domain)
    }

    /// `__iommu_attach_group`.
    fn attach_group_locked(
        &self,
        domain: &Arc<Domain>,
        group: &Group,
        state: &mut GroupState,
    ) -> Result<(), IommuError> {
        if !state.in_default_domain() && !Arc::ptr_eq(&state.domain, &state.blocking_domain) {
            return Err(IommuError::GroupBusy { group: group.id() });
        }
        self.check_owner(domain)?;
        state.set_domain(self.ops.as_ref(), domain)
    }

    /// `__iommu_group_set_core_domain`, after checking what is attached.
    fn detach_group_locked(
        &self,
        domain: &Arc<Domain>,
        group: &Group,
        state: &mut GroupState,
    ) -> Result<(), IommuError> {
        if !Arc::ptr_eq(&state.domain, domain) {
            return Err(IommuError::DomainNotAttached {
                group: group.id(),
                domain: domain.id(),
            });
        }
        let core = state.core_domain();
        state.set_domain_nofail(self.ops.as_ref(), &core);
        Ok(())
    }

    fn require_singleton(group: &Group, state: &GroupState) -> Result<(), IommuError> {
        if state.devices.len() == 1 {
            Ok(())
        } else {
            Err(IommuError::NotSingleton {
                group: group.id(),
                devices: state.devices.len(),
            })
        }
    }
}
