//! The core object: the device → group table, domain allocation and the
//! queries the CLI and upper layers use.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{MutexGuard, RwLock};
use rustix::io::Errno;
use umdev_pci::{Bdf, Platform};

use super::domain::Domain;
use super::error::IommuError;
use super::group::{Group, GroupDevice, GroupInfo, GroupState};
use super::ioasid::{FIRST_GLOBAL_PASID, IoasidAllocator};
use super::ops::{DeviceCaps, DomainOps, IommuOps, PagingFlags, VtdS1Config};
use crate::dma::Dma;

/// Source of core identities (the `owner` of the domains a core allocates).
static NEXT_CORE_ID: AtomicU64 = AtomicU64::new(1);

/// What a new group's default domain is (Linux `iommu.passthrough=` /
/// `iommu_def_domain_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultDomainType {
    /// The driver's identity domain: DMA-API drivers DMA untranslated
    /// (`IOMMU_DOMAIN_IDENTITY`, `iommu=pt`). The default here, because the
    /// simulated kernel drivers map nothing.
    #[default]
    Identity,
    /// A fresh paging domain per group (`IOMMU_DOMAIN_DMA`): DMA-API
    /// drivers see only what is mapped into it.
    Dma,
}

/// Groups and devices, behind one lock (taken before any group lock).
#[derive(Default)]
struct Topology {
    groups: BTreeMap<u32, Arc<Group>>,
    devices: BTreeMap<Bdf, Arc<Group>>,
}

/// The IOMMU core (drivers/iommu/iommu.c) over one hardware driver.
///
/// The platform reaches it through [`umdev_pci::IommuHooks`]; upper layers
/// (iommufd, VFIO, mdev) use its attach, PASID and DMA-ownership calls.
/// See the module documentation for the lock order.
pub struct Iommu {
    pub(super) ops: Arc<dyn IommuOps>,
    /// Identity of this core; domains record it as their owner.
    pub(super) core_id: u64,
    default_domain_type: DefaultDomainType,
    pub(super) blocked: Arc<Domain>,
    pub(super) identity: Arc<Domain>,
    pub(super) ioasids: Arc<IoasidAllocator>,
    topology: RwLock<Topology>,
    /// The platform this core serves, for the viability query.
    pub(super) platform: RwLock<Weak<Platform>>,
}

impl Iommu {
    /// A core over `ops` whose groups default to the identity domain.
    pub fn new(ops: Arc<dyn IommuOps>) -> Arc<Self> {
        Self::with_default_domain(ops, DefaultDomainType::default())
    }

    /// A core over `ops` whose groups default to `default_domain`.
    pub fn with_default_domain(
        ops: Arc<dyn IommuOps>,
        default_domain: DefaultDomainType,
    ) -> Arc<Self> {
        let core_id = NEXT_CORE_ID.fetch_add(1, Ordering::Relaxed);
        let ioasids = Arc::new(IoasidAllocator::new());
        let blocked = Domain::new(core_id, ops.blocked_domain(), None, ioasids.clone());
        let identity = Domain::new(core_id, ops.identity_domain(), None, ioasids.clone());
        Arc::new(Self {
            ops,
            core_id,
            default_domain_type: default_domain,
            blocked,
            identity,
            ioasids,
            topology: RwLock::new(Topology::default()),
            platform: RwLock::new(Weak::new()),
        })
    }

    /// The hardware driver.
    pub fn ops(&self) -> &Arc<dyn IommuOps> {
        &self.ops
    }

    /// What new groups' default domains are.
    pub fn default_domain_type(&self) -> DefaultDomainType {
        self.default_domain_type
    }

    // ---- domains -------------------------------------------------------

    /// The driver's static blocked domain.
    pub fn blocked_domain(&self) -> Arc<Domain> {
        self.blocked.clone()
    }

    /// The driver's static identity domain.
    pub fn identity_domain(&self) -> Arc<Domain> {
        self.identity.clone()
    }

    /// A new, empty paging domain suitable for `bdf`
    /// (`iommu_paging_domain_alloc_flags`): ENODEV for a device the IOMMU
    /// does not translate, EOPNOTSUPP for flags the unit cannot honour.
    pub fn domain_alloc_paging(
        &self,
        bdf: Bdf,
        flags: PagingFlags,
    ) -> Result<Arc<Domain>, IommuError> {
        self.device_caps(bdf).ok_or(IommuError::NoGroup { bdf })?;
        let ops = self
            .ops
            .domain_alloc_paging(bdf, flags)
            .map_err(|errno| IommuError::Driver {
                op: "domain_alloc_paging",
                bdf,
                errno,
            })?;
        Ok(self.wrap_domain(ops, None))
    }

    /// A nested domain (user stage 1) over the paging domain `parent`
    /// (`domain_alloc_nested`): EINVAL if `parent` is not this core's or not
    /// a nest parent, EOPNOTSUPP without nesting support.
    pub fn domain_alloc_nested(
        &self,
        bdf: Bdf,
        parent: &Arc<Domain>,
        config: VtdS1Config,
        pasid: bool,
    ) -> Result<Arc<Domain>, IommuError> {
        self.device_caps(bdf).ok_or(IommuError::NoGroup { bdf })?;
        self.check_owner(parent)?;
        let ops = self
            .ops
            .domain_alloc_nested(bdf, parent.ops(), config, pasid)
            .map_err(|errno| IommuError::Driver {
                op: "domain_alloc_nested",
                bdf,
                errno,
            })?;
        Ok(self.wrap_domain(ops, Some(parent.clone())))
    }

    fn wrap_domain(&self, ops: Arc<dyn DomainOps>, parent: Option<Arc<Domain>>) -> Arc<Domain> {
        Domain::new(self.core_id, ops, parent, self.ioasids.clone())
    }

    /// EINVAL unless `domain` was allocated by this core
    /// (`domain_iommu_ops_compatible`).
    pub(super) fn check_owner(&self, domain: &Domain) -> Result<(), IommuError> {
        if domain.owned_by(self.core_id) {
            Ok(())
        } else {
            Err(IommuError::ForeignDomain {
                domain: domain.id(),
            })
        }
    }

    // ---- global PASIDs -------------------------------------------------

    /// A PASID from the global space below the device's limit
    /// (`iommu_alloc_global_pasid`); `None` if the device has no PASID
    /// support or the space is full.
    pub fn alloc_global_pasid(&self, bdf: Bdf) -> Option<u32> {
        let max = self.device_caps(bdf)?.max_pasids.checked_sub(1)?;
        self.ioasids.alloc(FIRST_GLOBAL_PASID, max)
    }

    /// Returns a PASID from [`Self::alloc_global_pasid`]
    /// (`iommu_free_global_pasid`).
    pub fn free_global_pasid(&self, pasid: u32) {
        self.ioasids.free(pasid);
    }

    /// The global PASID space (shared with aux default PASIDs).
    pub fn ioasids(&self) -> &Arc<IoasidAllocator> {
        &self.ioasids
    }

    // ---- device and group table ----------------------------------------

    /// Adds a probed device to group `group_id`, creating the group with its
    /// default domain on its first device; the device is attached to the
    /// group's current domain (`iommu_probe_device` /
    /// `iommu_group_add_device`).
    pub(super) fn add_device(
        &self,
        bdf: Bdf,
        group_id: u32,
        caps: DeviceCaps,
    ) -> Result<(), IommuError> {
        let mut topo = self.topology.write();
        if topo.devices.contains_key(&bdf) {
            return Err(IommuError::AlreadyProbed { bdf });
        }
        let device = GroupDevice {
            bdf,
            caps,
            aux_enabled: false,
        };
        let group = match topo.groups.get(&group_id) {
            Some(group) => {
                let group = group.clone();
                let mut state = group.lock();
                self.ops
                    .attach_dev(state.domain.ops(), bdf)
                    .map_err(|errno| IommuError::Driver {
                        op: "attach_dev",
                        bdf,
                        errno,
                    })?;
                state.devices.push(device);
                drop(state);
                group
            }
            None => {
                let default_domain = self.alloc_default_domain(bdf)?;
                self.ops
                    .attach_dev(default_domain.ops(), bdf)
                    .map_err(|errno| IommuError::Driver {
                        op: "attach_dev",
                        bdf,
                        errno,
                    })?;
                let group = Group::new(
                    group_id,
                    GroupState {
                        devices: vec![device],
                        domain: default_domain.clone(),
                        default_domain,
                        blocking_domain: self.blocked.clone(),
                        owner: None,
                        owner_cnt: 0,
                        pasid_array: BTreeMap::new(),
                        aux: BTreeMap::new(),
                    },
                );
                topo.groups.insert(group_id, group.clone());
                group
            }
        };
        topo.devices.insert(bdf, group);
        Ok(())
    }

    fn alloc_default_domain(&self, bdf: Bdf) -> Result<Arc<Domain>, IommuError> {
        match self.default_domain_type {
            DefaultDomainType::Identity => Ok(self.identity.clone()),
            DefaultDomainType::Dma => {
                let ops = self
                    .ops
                    .domain_alloc_paging(bdf, PagingFlags::default())
                    .map_err(|errno| IommuError::Driver {
                        op: "domain_alloc_paging",
                        bdf,
                        errno,
                    })?;
                Ok(self.wrap_domain(ops, None))
            }
        }
    }

    /// Removes a device: its aux attachments are dropped, the driver clears
    /// its entries, and a group left empty disappears
    /// (`iommu_release_device`).
    pub(super) fn remove_device(&self, bdf: Bdf) {
        let mut topo = self.topology.write();
        let Some(group) = topo.devices.remove(&bdf) else {
            return;
        };
        let mut state = group.lock();
        self.drop_device_aux(&group, &mut state, bdf);
        state.devices.retain(|d| d.bdf != bdf);
        self.ops.release_device(bdf);
        if state.devices.is_empty() {
            // Nothing can translate through the group any more; drop its
            // PASID domains so they can be freed.
            state.pasid_array.clear();
            drop(state);
            topo.groups.remove(&group.id());
        }
    }

    /// Runs `f` on the group of `bdf` with the group lock held, after
    /// checking the device is still a member (it may have been released
    /// between the lookup and the lock): ENODEV otherwise.
    pub(super) fn with_device_group<R>(
        &self,
        bdf: Bdf,
        f: impl FnOnce(&Group, &mut GroupState) -> Result<R, IommuError>,
    ) -> Result<R, IommuError> {
        let group = self.device_group(bdf).ok_or(IommuError::NoGroup { bdf })?;
        let mut state = group.lock();
        if state.device(bdf).is_none() {
            return Err(IommuError::NoGroup { bdf });
        }
        f(&group, &mut state)
    }

    /// The group `group` with its lock held, checked to have devices.
    pub(super) fn lock_group<'g>(
        &self,
        group: &'g Group,
    ) -> Result<MutexGuard<'g, GroupState>, IommuError> {
        let state = group.lock();
        if state.devices.is_empty() {
            return Err(IommuError::EmptyGroup { group: group.id() });
        }
        Ok(state)
    }

    // ---- queries -------------------------------------------------------

    /// DMA as requester `bdf` issues it (the device model's side of the
    /// IOMMU: read, write, copy at IOVAs through whatever `bdf` is attached
    /// to); ENODEV when no IOMMU hardware translates it.
    pub fn dma_for(&self, bdf: Bdf) -> Result<Arc<dyn Dma>, Errno> {
        self.ops.dma_for(bdf).ok_or(Errno::NODEV)
    }

    /// The group of `bdf` (`iommu_group_get`).
    pub fn device_group(&self, bdf: Bdf) -> Option<Arc<Group>> {
        self.topology.read().devices.get(&bdf).cloned()
    }

    /// Group number `id`.
    pub fn group(&self, id: u32) -> Option<Arc<Group>> {
        self.topology.read().groups.get(&id).cloned()
    }

    /// Every group, by number.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.topology.read().groups.values().cloned().collect()
    }

    /// Snapshots of every group, by number.
    pub fn group_infos(&self) -> Vec<GroupInfo> {
        self.groups().iter().map(|g| g.info()).collect()
    }

    /// What the driver reported for `bdf` at probe time.
    pub fn device_caps(&self, bdf: Bdf) -> Option<DeviceCaps> {
        let group = self.device_group(bdf)?;
        group.lock().device(bdf).map(|d| d.caps)
    }

    /// The domain translating `bdf`'s requests without PASID (`None`) or
    /// tagged `pasid`.
    pub fn device_domain(&self, bdf: Bdf, pasid: Option<u32>) -> Option<Arc<Domain>> {
        self.with_device_group(bdf, |_, state| {
            Ok(match pasid {
                None => Some(state.domain.clone()),
                Some(p) => state.pasid_array.get(&p).cloned(),
            })
        })
        .ok()
        .flatten()
    }
}
