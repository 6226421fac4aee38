//! DMA ownership (drivers/iommu/iommu.c, v5.19+): who may program a group's
//! translation. Kernel DMA-API drivers count as users without an owner;
//! user space (iommufd contexts, VFIO groups) claims ownership with a
//! cookie, which moves the whole group to its blocking domain.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

use umdev_pci::Bdf;

use super::core::Iommu;
use super::error::IommuError;
use super::group::{Group, GroupState};

static NEXT_COOKIE: AtomicU64 = AtomicU64::new(1);

/// An opaque, unique DMA-owner identity (the `void *owner` of
/// `iommu_device_claim_dma_owner`): an iommufd context or a VFIO group each
/// hold one. Not `Clone`: sharing ownership means sharing the cookie.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OwnerCookie(NonZeroU64);

impl OwnerCookie {
    /// A cookie no other holder has.
    pub fn new() -> Self {
        let id = NEXT_COOKIE.fetch_add(1, Ordering::Relaxed);
        Self(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    /// The cookie's number, as [`super::GroupInfo::owner`] reports it.
    pub fn id(&self) -> u64 {
        self.0.get()
    }
}

impl Default for OwnerCookie {
    fn default() -> Self {
        Self::new()
    }
}

impl Iommu {
    /// `iommu_device_claim_dma_owner`: claims `bdf`'s group for `owner`.
    /// Devices of one group may share a claim by presenting the same
    /// cookie, which is counted. ENODEV without a group; EPERM if another
    /// owner or a kernel DMA-API driver uses the group; EBUSY if the group
    /// is not in its default domain or has PASIDs attached.
    pub fn device_claim_dma_owner(&self, bdf: Bdf, owner: &OwnerCookie) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            if state.owner_cnt != 0 {
                if state.owner != Some(owner.id()) {
                    return Err(IommuError::OwnedByOther { group: group.id() });
                }
                state.owner_cnt += 1;
                return Ok(());
            }
            self.take_dma_ownership(group, state, owner)
        })
    }

    /// `iommu_device_release_dma_owner`: drops one device-level claim; the
    /// last one returns the group to its default domain. EPERM if `owner`
    /// does not own the group; EBUSY (nothing released) while PASIDs are
    /// attached to the last claim.
    pub fn device_release_dma_owner(
        &self,
        bdf: Bdf,
        owner: &OwnerCookie,
    ) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            if state.owner_cnt == 0 || state.owner != Some(owner.id()) {
                return Err(IommuError::NotOwner { group: group.id() });
            }
            if state.owner_cnt > 1 {
                state.owner_cnt -= 1;
                return Ok(());
            }
            self.release_dma_ownership(group, state)
        })
    }

    /// `iommu_group_claim_dma_owner` (legacy VFIO group): exclusive, EPERM
    /// if anyone (even the same cookie) uses the group; otherwise as
    /// [`Self::device_claim_dma_owner`].
    pub fn group_claim_dma_owner(
        &self,
        group: &Group,
        owner: &OwnerCookie,
    ) -> Result<(), IommuError> {
        let mut state = self.lock_group(group)?;
        if state.owner_cnt != 0 {
            return Err(IommuError::OwnedByOther { group: group.id() });
        }
        self.take_dma_ownership(group, &mut state, owner)
    }

    /// `iommu_group_release_dma_owner`: the group goes back to its default
    /// domain. EPERM if `owner` does not own it; EBUSY (nothing released)
    /// while PASIDs are attached.
    pub fn group_release_dma_owner(
        &self,
        group: &Group,
        owner: &OwnerCookie,
    ) -> Result<(), IommuError> {
        let mut state = group.lock();
        if state.owner_cnt == 0 || state.owner != Some(owner.id()) {
            return Err(IommuError::NotOwner { group: group.id() });
        }
        self.release_dma_ownership(group, &mut state)
    }

    /// `iommu_group_dma_owner_claimed`.
    pub fn group_dma_owner_claimed(&self, group: &Group) -> bool {
        group.dma_owner_claimed()
    }

    /// `__iommu_take_dma_ownership`: EBUSY unless the group is in its
    /// default domain with no PASID attached; then the whole group moves to
    /// the blocking domain.
    fn take_dma_ownership(
        &self,
        group: &Group,
        state: &mut GroupState,
        owner: &OwnerCookie,
    ) -> Result<(), IommuError> {
        if !state.in_default_domain() {
            return Err(IommuError::NotInDefaultDomain { group: group.id() });
        }
        if !state.pasid_array.is_empty() {
            return Err(IommuError::PasidsAttached { group: group.id() });
        }
        let blocking = state.blocking_domain.clone();
        state.set_domain(self.ops.as_ref(), &blocking)?;
        state.owner = Some(owner.id());
        state.owner_cnt += 1;
        Ok(())
    }

    /// `__iommu_release_dma_ownership`: Linux warns and releases nothing
    /// while PASIDs are attached; that is EBUSY here.
    fn release_dma_ownership(
        &self,
        group: &Group,
        state: &mut GroupState,
    ) -> Result<(), IommuError> {
        if !state.pasid_array.is_empty() {
            return Err(IommuError::PasidsAttached { group: group.id() });
        }
        state.owner_cnt = 0;
        state.owner = None;
        let default = state.default_domain.clone();
        state.set_domain_nofail(self.ops.as_ref(), &default);
        Ok(())
    }
}
