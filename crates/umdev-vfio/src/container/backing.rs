//! The IOMMU groups a container actually attached, reference-counted by
//! the vfio groups that use them: the answer to the seed 004 thread
//! (reference §4.3, Liu Yi L's "vfio/type1: track iommu backed group
//! attach", with Alex Williamson's review applied: one list keyed by the
//! backing group, per-vfio-group membership, and the real detach done by
//! the last user).
//!
//! A vfio-pci group's backing group is itself; an IOMMU-backed mdev's is
//! the group of its `iommu_device`, which may hold other devices. The
//! first vfio group of a container that needs a backing group claims its
//! DMA ownership (with the container as owner) and, once the container has
//! an IOMMU, attaches it to one of the container's domains; later vfio
//! groups with the same backing group only join the record. Leaving drops
//! the membership; the last member detaches the group and releases the
//! ownership, so the group returns to its default domain.
//!
//! Domains are type1's `vfio_domain` list: paging HWPTs over the
//! container's IOAS, so every mapping is mirrored into each of them. A
//! group joins the first domain that accepts it (the driver-compatibility
//! merge of `vfio_iommu_type1_attach_group`) or gets a new one; a domain
//! no record uses any more is freed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::ops::ResvType;
use umdev_iommu::iommu::{Group, Iommu, IommuError, OwnerCookie, PagingFlags};
use umdev_iommufd::IommufdError;
use umdev_iommufd::hwpt::HwptPaging;
use umdev_iommufd::io_pagetable::{IovaRange, ReservedOwner, next_key};
use umdev_iommufd::ioas::Ioas;

use super::ClaimPath;
use super::error::{VfioError, VfioResult};
use super::group::VfioGroupKey;

/// One backing IOMMU group and the vfio groups sharing it.
struct Backing {
    group: Arc<Group>,
    users: BTreeSet<VfioGroupKey>,
    /// The domain the group is attached to, once the container has an
    /// IOMMU.
    domain: Option<Arc<HwptPaging>>,
    /// Owner key of the group's reserved regions in the IOAS.
    resv_key: u64,
}

/// A snapshot of one backing record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackingInfo {
    /// The backing IOMMU group number.
    pub group: u32,
    /// The vfio groups using it.
    pub users: Vec<VfioGroupKey>,
    /// Id of the IOMMU domain it is attached to, if attached.
    pub domain: Option<u64>,
}

/// The backing records and the domains of one container.
#[derive(Default)]
pub(super) struct BackingTable {
    records: BTreeMap<u32, Backing>,
    domains: Vec<Arc<HwptPaging>>,
}

impl BackingTable {
    /// Adds `user` to the record of `group`, claiming the group's DMA
    /// ownership for `owner` if this is the first user.
    pub(super) fn get(
        &mut self,
        iommu: &Iommu,
        owner: &OwnerCookie,
        group: &Arc<Group>,
        user: VfioGroupKey,
        path: ClaimPath,
    ) -> VfioResult<()> {
        if let Some(rec) = self.records.get_mut(&group.id()) {
            rec.users.insert(user);
            return Ok(());
        }
        if let Err(e) = iommu.group_claim_dma_owner(group, owner) {
            let user_owned = group.info().owner.is_some();
            return Err(match (path, &e) {
                (ClaimPath::IommuBacked, IommuError::OwnedByOther { .. }) if user_owned => {
                    VfioError::BackingGroupBusy { group: group.id() }
                }
                _ => e.into(),
            });
        }
        self.records.insert(
            group.id(),
            Backing {
                group: Arc::clone(group),
                users: BTreeSet::from([user]),
                domain: None,
                resv_key: next_key(),
            },
        );
        Ok(())
    }

    /// Drops `user` from the record of group `group_id`; the last user
    /// detaches the group and releases its ownership.
    pub(super) fn put(
        &mut self,
        iommu: &Iommu,
        owner: &OwnerCookie,
        group_id: u32,
        user: VfioGroupKey,
    ) {
        let Some(rec) = self.records.get_mut(&group_id) else {
            return;
        };
        rec.users.remove(&user);
        if !rec.users.is_empty() {
            return;
        }
        self.detach(iommu, group_id);
        if let Some(rec) = self.records.remove(&group_id) {
            // iommu_group_release_dma_owner cannot fail in Linux; here it
            // refuses only while PASIDs are attached, which nothing in a
            // container does.
            let _ = iommu.group_release_dma_owner(&rec.group, owner);
        }
    }

    /// Attaches every record not attached yet; on a failure the ones this
    /// call attached are detached again (`__vfio_container_attach_groups`).
    pub(super) fn attach_all(&mut self, iommu: &Iommu, ioas: &Arc<Ioas>) -> VfioResult<()> {
        let pending: Vec<u32> = self
            .records
            .iter()
            .filter(|(_, r)| r.domain.is_none())
            .map(|(&id, _)| id)
            .collect();
        for (n, &id) in pending.iter().enumerate() {
            if let Err(e) = self.attach(iommu, ioas, id) {
                for &done in &pending[..n] {
                    self.detach(iommu, done);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// `vfio_iommu_type1_attach_group` for one backing group: reserves its
    /// devices' reserved regions in the IOAS, then attaches it to the first
    /// domain that takes it (EINVAL from the core means "another driver's
    /// domain, try the next") or to a new one. A group already attached is
    /// left alone: that is the shared attach.
    pub(super) fn attach(
        &mut self,
        iommu: &Iommu,
        ioas: &Arc<Ioas>,
        group_id: u32,
    ) -> VfioResult<()> {
        let rec = self.records.get(&group_id).ok_or(VfioError::NoIommuGroup {
            what: format!("no record of IOMMU group {group_id}"),
        })?;
        if rec.domain.is_some() {
            return Ok(());
        }
        let group = Arc::clone(&rec.group);
        let resv = ReservedOwner::Device(rec.resv_key);
        reserve_group_regions(iommu, ioas, &group, resv)?;
        let domain = self.attach_domain(iommu, ioas, &group).inspect_err(|_| {
            ioas.iopt().remove_reserved(resv);
        })?;
        self.records
            .get_mut(&group_id)
            .expect("record exists")
            .domain = Some(domain);
        Ok(())
    }

    fn attach_domain(
        &mut self,
        iommu: &Iommu,
        ioas: &Arc<Ioas>,
        group: &Arc<Group>,
    ) -> VfioResult<Arc<HwptPaging>> {
        for hwpt in &self.domains {
            match iommu.attach_group(hwpt.domain(), group) {
                Ok(()) => return Ok(Arc::clone(hwpt)),
                Err(e) if e.errno() == Errno::INVAL => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let bdf = *group
            .devices()
            .first()
            .ok_or(IommuError::EmptyGroup { group: group.id() })?;
        let hwpt = HwptPaging::alloc(iommu, bdf, ioas, PagingFlags::default(), false).map_err(
            |e| match e {
                IommufdError::Iopt {
                    errno: Errno::ADDRINUSE,
                    ..
                } => VfioError::IovaConflict { group: group.id() },
                e => e.into(),
            },
        )?;
        if let Err(e) = iommu.attach_group(hwpt.domain(), group) {
            hwpt.teardown();
            return Err(e.into());
        }
        self.domains.push(Arc::clone(&hwpt));
        Ok(hwpt)
    }

    /// Detaches group `group_id` from its domain (the group goes back to
    /// its blocking domain, still owned) and frees a domain nobody uses.
    fn detach(&mut self, iommu: &Iommu, group_id: u32) {
        let Some(rec) = self.records.get_mut(&group_id) else {
            return;
        };
        let Some(hwpt) = rec.domain.take() else {
            return;
        };
        // The container owns the group, so nothing else can have moved it
        // off this domain; iommu_detach_group returns nothing in Linux.
        let _ = iommu.detach_group(hwpt.domain(), &rec.group);
        hwpt.ioas()
            .iopt()
            .remove_reserved(ReservedOwner::Device(rec.resv_key));
        let in_use = self
            .records
            .values()
            .any(|r| r.domain.as_ref().is_some_and(|d| Arc::ptr_eq(d, &hwpt)));
        if !in_use {
            self.domains.retain(|d| !Arc::ptr_eq(d, &hwpt));
            hwpt.teardown();
        }
    }

    /// Snapshots of the records, by group number.
    pub(super) fn info(&self) -> Vec<BackingInfo> {
        self.records
            .iter()
            .map(|(&group, r)| BackingInfo {
                group,
                users: r.users.iter().copied().collect(),
                domain: r.domain.as_ref().map(|d| d.domain().id()),
            })
            .collect()
    }
}

/// Reserves the reserved regions of every device of `group` in `ioas`
/// under `owner` (type1 keeps them out of its IOVA list), all or nothing.
/// A clash with an existing mapping is EINVAL (`vfio_iommu_resv_conflict`).
fn reserve_group_regions(
    iommu: &Iommu,
    ioas: &Ioas,
    group: &Group,
    owner: ReservedOwner,
) -> VfioResult<()> {
    let mut iopt = ioas.iopt();
    for bdf in group.devices() {
        for r in iommu.ops().resv_regions(bdf) {
            if r.kind == ResvType::DirectRelaxable || r.length == 0 {
                continue;
            }
            let range = IovaRange::new(r.start, r.start.saturating_add(r.length - 1));
            if iopt.reserve(range, owner).is_err() {
                iopt.remove_reserved(owner);
                return Err(VfioError::IovaConflict { group: group.id() });
            }
        }
    }
    Ok(())
}
