//! The legacy auxiliary-domain API (Linux v5.1 .. v5.16, removed in v5.17;
//! kernel-semantics §4.1), implemented on PASID attach.
//!
//! A device with `IOMMU_DEV_FEAT_AUX` enabled can have paging domains
//! attached "in aux mode": each such domain gets one default PASID from the
//! global IOASID space on its first aux attach (the same PASID on every
//! device, as VT-d's `dmar_domain->default_pasid`), and the device's DMA
//! tagged with that PASID is translated by the domain while its RID DMA is
//! not. Attaching the same domain to the same device again is counted
//! (VT-d `auxiliary_link_device`), so two mdevs of one parent may share it.

use std::sync::Arc;

use umdev_pci::Bdf;

use super::core::Iommu;
use super::domain::Domain;
use super::error::IommuError;
use super::group::{Group, GroupState};

/// A per-device IOMMU feature (`enum iommu_dev_features`); only the one the
/// legacy aux API needs is modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DevFeature {
    /// Auxiliary domains (`IOMMU_DEV_FEAT_AUX`): PASID-granular attach.
    Aux,
}

impl Iommu {
    /// `iommu_dev_has_feature`: the device is behind this IOMMU and can use
    /// PASIDs.
    pub fn dev_has_feature(&self, bdf: Bdf, feature: DevFeature) -> bool {
        match feature {
            DevFeature::Aux => self.device_caps(bdf).is_some_and(|c| c.max_pasids > 0),
        }
    }

    /// `iommu_dev_enable_feature`: ENODEV if no IOMMU translates the device
    /// (iommu.c) or the device cannot use PASIDs (VT-d
    /// `intel_iommu_enable_auxd`: enabling PASID on it fails).
    pub fn dev_enable_feature(&self, bdf: Bdf, feature: DevFeature) -> Result<(), IommuError> {
        match feature {
            DevFeature::Aux => self.with_device_group(bdf, |_, state| {
                let dev = state.device_mut(bdf).ok_or(IommuError::NoGroup { bdf })?;
                if dev.caps.max_pasids == 0 {
                    return Err(IommuError::FeatureUnavailable { bdf });
                }
                dev.aux_enabled = true;
                Ok(())
            }),
        }
    }

    /// `iommu_dev_disable_feature`: ENODEV without an IOMMU; EBUSY while
    /// aux domains are still attached to the device (VT-d cleared the flag
    /// regardless and left the caller to clean up first; refusing keeps
    /// the aux state consistent).
    pub fn dev_disable_feature(&self, bdf: Bdf, feature: DevFeature) -> Result<(), IommuError> {
        match feature {
            DevFeature::Aux => self.with_device_group(bdf, |_, state| {
                if state.aux.keys().any(|&(_, dev)| dev == bdf) {
                    return Err(IommuError::AuxInUse { bdf });
                }
                if let Some(dev) = state.device_mut(bdf) {
                    dev.aux_enabled = false;
                }
                Ok(())
            }),
        }
    }

    /// `iommu_dev_feature_enabled`.
    pub fn dev_feature_enabled(&self, bdf: Bdf, feature: DevFeature) -> bool {
        match feature {
            DevFeature::Aux => self
                .with_device_group(bdf, |_, state| {
                    Ok(state.device(bdf).is_some_and(|d| d.aux_enabled))
                })
                .unwrap_or(false),
        }
    }

    /// `iommu_aux_attach_device`: attaches `domain` to `bdf` in aux mode and
    /// returns the PASID the device must tag the domain's DMA with.
    ///
    /// ENODEV without an IOMMU or when no PASID is left below the device's
    /// limit; EPERM unless the aux feature is enabled and `domain` is a
    /// paging domain (VT-d `is_aux_domain`); then the PASID-attach errors of
    /// [`Self::attach_device_pasid`] (EINVAL for another IOMMU's domain or a
    /// PASID beyond a group member's limit, EBUSY if the PASID is taken by
    /// another domain).
    pub fn attach_device_aux(&self, domain: &Arc<Domain>, bdf: Bdf) -> Result<u32, IommuError> {
        self.with_device_group(bdf, |group, state| {
            let dev = *state.device(bdf).ok_or(IommuError::NoGroup { bdf })?;
            if !dev.aux_enabled || !domain.is_paging() {
                return Err(IommuError::NotAuxDomain { bdf });
            }
            self.check_owner(domain)?;
            let pasid = domain.aux_pasid_or_alloc(dev.caps.max_pasids).ok_or(
                IommuError::PasidExhausted {
                    bdf,
                    max_pasids: dev.caps.max_pasids,
                },
            )?;
            let key = (domain.id(), bdf);
            if let Some(count) = state.aux.get_mut(&key) {
                *count += 1;
                return Ok(pasid);
            }
            // A sibling in the group may have attached the domain already:
            // the PASID is programmed group-wide, so only record the user.
            let attached = state
                .pasid_array
                .get(&pasid)
                .is_some_and(|d| Arc::ptr_eq(d, domain));
            if !attached {
                self.check_pasid_domain(domain, pasid)?;
                self.attach_pasid_locked(domain, bdf, pasid, group, state)?;
            }
            state.aux.insert(key, 1);
            Ok(pasid)
        })
    }

    /// `iommu_aux_detach_device`: drops one aux attach of `domain` to `bdf`;
    /// the PASID stops translating when no device of the group holds the
    /// domain in aux mode any more. EINVAL if it is not aux-attached.
    pub fn detach_device_aux(&self, domain: &Arc<Domain>, bdf: Bdf) -> Result<(), IommuError> {
        self.with_device_group(bdf, |group, state| {
            let key = (domain.id(), bdf);
            let not_attached = IommuError::AuxNotAttached {
                domain: domain.id(),
                bdf,
            };
            let count = state.aux.get_mut(&key).ok_or(not_attached.clone())?;
            *count -= 1;
            if *count > 0 {
                return Ok(());
            }
            state.aux.remove(&key);
            let still_used = state.aux.keys().any(|&(id, _)| id == domain.id());
            if still_used {
                return Ok(());
            }
            let pasid = domain.aux_pasid().ok_or(not_attached)?;
            self.detach_pasid_locked(domain, pasid, group, state)
        })
    }

    /// `iommu_aux_get_pasid`: the domain's default PASID. ENODEV without an
    /// IOMMU; EINVAL if the domain never had an aux attach. As on VT-d, the
    /// PASID belongs to the domain, so it is returned for any device once
    /// allocated (it is freed with the domain).
    pub fn aux_get_pasid(&self, domain: &Domain, bdf: Bdf) -> Result<u32, IommuError> {
        self.with_device_group(bdf, |_, _| {
            domain.aux_pasid().ok_or(IommuError::NoAuxPasid {
                domain: domain.id(),
            })
        })
    }

    /// How many times `domain` is aux-attached to `bdf`.
    pub fn aux_attach_count(&self, domain: &Domain, bdf: Bdf) -> u32 {
        self.with_device_group(bdf, |_, state| {
            Ok(state.aux.get(&(domain.id(), bdf)).copied().unwrap_or(0))
        })
        .unwrap_or(0)
    }

    /// Forgets `bdf`'s aux attachments (the device is going away); a
    /// domain no other member holds in aux mode leaves its PASID.
    pub(super) fn drop_device_aux(&self, group: &Group, state: &mut GroupState, bdf: Bdf) {
        let gone: Vec<u64> = state
            .aux
            .keys()
            .filter(|&&(_, dev)| dev == bdf)
            .map(|&(id, _)| id)
            .collect();
        state.aux.retain(|&(_, dev), _| dev != bdf);
        for id in gone {
            if state.aux.keys().any(|&(other, _)| other == id) {
                continue;
            }
            let orphan = state
                .pasid_array
                .iter()
                .find(|&(&pasid, d)| d.id() == id && d.aux_pasid() == Some(pasid))
                .map(|(&pasid, d)| (pasid, d.clone()));
            if let Some((pasid, domain)) = orphan {
                // It is attached: the detach cannot fail.
                let _ = self.detach_pasid_locked(&domain, pasid, group, state);
            }
        }
    }

    /// Whether `pasid` of the group is held by aux attachments, which only
    /// [`Self::detach_device_aux`] may undo.
    pub(super) fn aux_holds(state: &GroupState, domain: &Domain, pasid: u32) -> bool {
        domain.aux_pasid() == Some(pasid) && state.aux.keys().any(|&(id, _)| id == domain.id())
    }
}
