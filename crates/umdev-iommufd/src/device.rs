//! IOMMUFD_OBJ_DEVICE (device.c): binding a physical device to a context
//! (DMA ownership with the context as cookie) and attaching it, per PASID,
//! to HWPTs with the group rules of kernel-semantics §2.3.
//!
//! A second kind of binding, [`Ictx::device_bind_pasid`], serves an
//! IOMMU-backed mediated device of a Scalable-IOV parent: the context gets
//! one PASID of a function whose RID stays with its kernel driver. Linux
//! has no such bind (`iommufd_device_bind` always claims the group; the
//! 2019 aux-domain API did this inside vfio_iommu_type1); the rules kept
//! are those of `iommufd_device_attach(idev, pasid, ..)` for that one
//! PASID, and none of the RID's.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::iommu::ops::ResvType;
use umdev_iommu::iommu::{Group, PagingFlags};
use umdev_iommu::vtd::IOMMU_NO_PASID;
use umdev_pci::Bdf;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::{IovaRange, ReservedOwner, next_key};
use crate::object::{ObjHeader, ObjRef};
use crate::private::{Attach, HwptPaging, HwptRef, Ictx, Ioas, Object};
pub use crate::private::{Device, IGroup};

impl Device {
    /// The object id (VFIO's `out_devid`).
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// The PCI function.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The one PASID a PASID-only binding may attach.
    pub fn pasid_only(&self) -> Option<u32> {
        self.pasid_only
    }

    /// EPERM unless this binding may attach `pasid`: a PASID-only binding
    /// owns nothing of the function but its PASID (the RID and the other
    /// PASIDs belong to the kernel driver that keeps the function), the
    /// same errno as a claim on a group someone else owns
    /// (`iommu_device_claim_dma_owner`).
    fn check_pasid(&self, pasid: u32) -> Result<()> {
        match self.pasid_only {
            Some(own) if own != pasid => Err(IommufdError::Errno {
                what: "device bound for another PASID",
                errno: rustix::io::Errno::PERM,
            }),
            _ => Ok(()),
        }
    }
}

impl IGroup {
    /// The IOMMU group.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// The HWPT id attached for `pasid`, if any.
    pub fn attached_hwpt(&self, pasid: u32) -> Option<u32> {
        self.attaches.lock().get(&pasid).map(|a| a.hwpt.id())
    }
}

/// What an attach or replace resolves `pt_id` to.
enum Target {
    Hwpt(HwptRef),
    Ioas(Arc<Ioas>),
}

impl Ictx {
    /// `iommufd_device_bind`: claims DMA ownership of `bdf`'s group with
    /// this context as the cookie and creates the DEVICE object. ENODEV
    /// without a group; EPERM if another context or a kernel driver owns
    /// the group; EBUSY if the group is not in its default domain.
    pub fn device_bind(&self, bdf: Bdf) -> Result<u32> {
        let group = self.device_group(bdf)?;
        self.iommu.device_claim_dma_owner(bdf, &self.cookie)?;
        let inserted = self.insert_device(bdf, group, None);
        inserted.inspect_err(|_| {
            // Undo the claim: the group goes back as it was.
            let _ = self.iommu.device_release_dma_owner(bdf, &self.cookie);
        })
    }

    /// Binds `(bdf, pasid)` only, for an IOMMU-backed mdev whose DMA the
    /// parent function tags with `pasid` (see the module docs): no DMA
    /// ownership is claimed, so the function stays with its kernel driver
    /// and its default domain, and several contexts may each hold a PASID
    /// of it. The caller (the mdev's parent driver) allocated `pasid` for
    /// the mdev. Attaching this device at any other PASID or at the RID
    /// fails with EPERM; an attach to an IOAS gets an automatic domain
    /// allocated PASID-compatible (IOMMU_HWPT_ALLOC_PASID), which Linux's
    /// automatic domains are not, since a PASID is the only place this
    /// device attaches. ENODEV without a group; EINVAL for
    /// `IOMMU_NO_PASID`; the PASID's limits are checked at attach, as
    /// `iommu_attach_device_pasid` does.
    pub fn device_bind_pasid(&self, bdf: Bdf, pasid: u32) -> Result<u32> {
        let group = self.device_group(bdf)?;
        if pasid == IOMMU_NO_PASID {
            return Err(IommufdError::Invalid {
                what: "PASID-only bind of IOMMU_NO_PASID",
            });
        }
        self.insert_device(bdf, group, Some(pasid))
    }

    fn device_group(&self, bdf: Bdf) -> Result<Arc<Group>> {
        self.iommu.device_group(bdf).ok_or(IommufdError::Errno {
            what: "device has no IOMMU group",
            errno: rustix::io::Errno::NODEV,
        })
    }

    /// The context's `iommufd_group` for `group` and a DEVICE object in it.
    fn insert_device(&self, bdf: Bdf, group: Arc<Group>, pasid_only: Option<u32>) -> Result<u32> {
        let igroup = {
            let mut igroups = self.igroups.lock();
            igroups.retain(|_, w| w.strong_count() > 0);
            match igroups.get(&group.id()).and_then(std::sync::Weak::upgrade) {
                Some(ig) => ig,
                None => {
                    let ig = Arc::new(IGroup {
                        group,
                        attaches: Mutex::new(BTreeMap::new()),
                    });
                    igroups.insert(ig.group.id(), Arc::downgrade(&ig));
                    ig
                }
            }
        };
        let dev = Arc::new(Device {
            hdr: ObjHeader::new(),
            bdf,
            igroup,
            key: next_key(),
            pasid_only,
        });
        // The driver's reference: user space can never DESTROY a device.
        dev.hdr.get();
        self.table.lock().insert(Object::Device(dev))
    }

    /// `iommufd_device_unbind`: detaches every PASID and the RID, removes
    /// the object and releases DMA ownership (the group returns to its
    /// default domain when the last device of the context leaves).
    pub fn device_unbind(&self, dev_id: u32) -> Result<()> {
        let dev = self.get_device(dev_id)?;
        let pasids: Vec<u32> = dev
            .igroup
            .attaches
            .lock()
            .iter()
            .filter(|(_, a)| a.devices.contains(&dev_id))
            .map(|(&p, _)| p)
            .collect();
        for pasid in pasids.into_iter().rev() {
            self.device_detach(dev_id, pasid)?;
        }
        dev.hdr.put();
        self.table.lock().remove_unused(dev_id)?;
        if dev.pasid_only.is_none() {
            self.iommu.device_release_dma_owner(dev.bdf, &self.cookie)?;
        }
        Ok(())
    }

    pub(crate) fn get_device(&self, dev_id: u32) -> Result<Arc<Device>> {
        match self.table.lock().get(dev_id)? {
            Object::Device(d) => Ok(d),
            _ => Err(IommufdError::WrongType {
                id: dev_id,
                wanted: "a device",
                errno: rustix::io::Errno::NOENT,
            }),
        }
    }

    fn resolve_target(&self, pt_id: u32) -> Result<Target> {
        match self.table.lock().get(pt_id)? {
            Object::HwptPaging(h) => Ok(Target::Hwpt(HwptRef::Paging(ObjRef::new(&h)))),
            Object::HwptNested(h) => Ok(Target::Hwpt(HwptRef::Nested(ObjRef::new(&h)))),
            Object::Ioas(i) => Ok(Target::Ioas(i)),
            _ => Err(IommufdError::WrongType {
                id: pt_id,
                wanted: "an IOAS or HWPT",
                errno: rustix::io::Errno::INVAL,
            }),
        }
    }

    /// `iommufd_device_attach`: attaches `(dev, pasid)` to `pt_id` (an IOAS:
    /// an existing compatible auto HWPT or a new one; or a HWPT) and returns
    /// the HWPT id. EBUSY if already attached; EINVAL if the group is on
    /// another HWPT for this PASID or for PASID incompatibility.
    pub fn device_attach(&self, dev_id: u32, pasid: u32, pt_id: u32) -> Result<u32> {
        let dev = self.get_device(dev_id)?;
        dev.check_pasid(pasid)?;
        match self.resolve_target(pt_id)? {
            Target::Hwpt(hwpt) => self.change_explicit(&dev, pasid, hwpt, false),
            Target::Ioas(ioas) => self.auto_attach(&dev, pasid, &ioas, false),
        }
    }

    /// `iommufd_device_replace`: moves an attached `(dev, pasid)` — and so
    /// its whole group — to `pt_id`. EINVAL if it is not attached.
    pub fn device_replace(&self, dev_id: u32, pasid: u32, pt_id: u32) -> Result<u32> {
        let dev = self.get_device(dev_id)?;
        dev.check_pasid(pasid)?;
        match self.resolve_target(pt_id)? {
            Target::Hwpt(hwpt) => self.change_explicit(&dev, pasid, hwpt, true),
            Target::Ioas(ioas) => self.auto_attach(&dev, pasid, &ioas, true),
        }
    }

    /// Attach (or replace) onto a HWPT named by id. An automatic HWPT the
    /// call leaves unused is freed, as its last detach would.
    fn change_explicit(
        &self,
        dev: &Arc<Device>,
        pasid: u32,
        hwpt: HwptRef,
        replace: bool,
    ) -> Result<u32> {
        let id = hwpt.id();
        let auto = match &hwpt {
            HwptRef::Paging(h) if h.auto_domain() => Some(Arc::clone(h.arc())),
            _ => None,
        };
        match self.do_change(dev, pasid, hwpt, replace) {
            Ok(old) => {
                if let Some(old) = old {
                    self.put_hwpt(old);
                }
                Ok(id)
            }
            Err(e) => {
                if let Some(h) = auto {
                    self.try_destroy_auto(&h);
                }
                Err(e)
            }
        }
    }

    /// Attach, or replace returning the HWPT replaced (for the caller to
    /// put once it holds no lock).
    fn do_change(
        &self,
        dev: &Arc<Device>,
        pasid: u32,
        hwpt: HwptRef,
        replace: bool,
    ) -> Result<Option<HwptRef>> {
        if replace {
            self.do_replace(dev, pasid, hwpt)
        } else {
            self.do_attach(dev, pasid, hwpt).map(|()| None)
        }
    }

    /// `iommufd_lock_obj`: a reference on `hwpt` only if it is still the
    /// object in the table under its id (not destroyed meanwhile). Taken
    /// under the table lock, so a concurrent destroy (which needs the
    /// table's reference to be the only one) cannot race it.
    fn lock_hwpt(&self, hwpt: &Arc<HwptPaging>) -> Option<ObjRef<HwptPaging>> {
        let table = self.table.lock();
        match table.get(hwpt.id()) {
            Ok(Object::HwptPaging(h)) if Arc::ptr_eq(&h, hwpt) => Some(ObjRef::new(hwpt)),
            _ => None,
        }
    }

    /// `iommufd_device_auto_get_domain`: with the IOAS's HWPT list locked
    /// (the kernel's `ioas->mutex`), try every live auto HWPT of the IOAS
    /// (EINVAL means "incompatible, try the next"), else allocate one,
    /// publish it with the attach reference already held, and attach.
    fn auto_attach(
        &self,
        dev: &Arc<Device>,
        pasid: u32,
        ioas: &Arc<Ioas>,
        replace: bool,
    ) -> Result<u32> {
        let mut hwpts = ioas.hwpts.lock();
        hwpts.retain(|w| w.strong_count() > 0);
        let candidates: Vec<Arc<HwptPaging>> = hwpts
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|h| h.auto_domain())
            .collect();
        // HWPTs this call held and let go, to free once no lock is held.
        let mut released = Vec::new();
        let mut outcome = None;
        for h in candidates {
            let Some(r) = self.lock_hwpt(&h) else {
                continue;
            };
            match self.do_change(dev, pasid, HwptRef::Paging(r), replace) {
                Ok(old) => {
                    outcome = Some(Ok((h.id(), old)));
                    break;
                }
                Err(e) => {
                    released.push(h);
                    if e.errno() != rustix::io::Errno::INVAL {
                        outcome = Some(Err(e));
                        break;
                    }
                }
            }
        }
        let mut orphan = None;
        let outcome = outcome.unwrap_or_else(|| {
            let flags = PagingFlags {
                pasid: dev.pasid_only.is_some(),
                ..PagingFlags::default()
            };
            let h = HwptPaging::alloc_unlisted(&self.iommu, dev.bdf, ioas, flags, true, None)?;
            let r = ObjRef::new(&h);
            let inserted = self.table.lock().insert(Object::HwptPaging(Arc::clone(&h)));
            let id = match inserted {
                Ok(id) => id,
                Err(e) => {
                    orphan = Some(h);
                    return Err(e);
                }
            };
            hwpts.push(Arc::downgrade(&h));
            match self.do_change(dev, pasid, HwptRef::Paging(r), replace) {
                Ok(old) => Ok((id, old)),
                Err(e) => {
                    released.push(h);
                    Err(e)
                }
            }
        });
        drop(hwpts);
        if let Some(h) = orphan {
            h.remove_domain();
        }
        for h in released {
            self.try_destroy_auto(&h);
        }
        let (id, old) = outcome?;
        if let Some(old) = old {
            self.put_hwpt(old);
        }
        Ok(id)
    }

    /// `iommufd_hwpt_pasid_compat`.
    fn check_pasid_compat(
        attaches: &BTreeMap<u32, Attach>,
        hwpt: &HwptRef,
        pasid: u32,
    ) -> Result<()> {
        let bad = if pasid == IOMMU_NO_PASID {
            !hwpt.pasid_compat() && attaches.keys().any(|&p| p != IOMMU_NO_PASID)
        } else {
            !hwpt.pasid_compat()
                || attaches
                    .get(&IOMMU_NO_PASID)
                    .is_some_and(|a| !a.hwpt.pasid_compat())
        };
        if bad {
            return Err(IommufdError::Invalid {
                what: "HWPT is not PASID compatible",
            });
        }
        Ok(())
    }

    /// Reserves `dev`'s reserved regions (not DIRECT_RELAXABLE) in `ioas`
    /// (`iopt_table_enforce_dev_resv_regions`), all or nothing.
    fn enforce_resv_regions(&self, dev: &Device, ioas: &Ioas) -> Result<()> {
        let mut iopt = ioas.iopt.lock();
        let owner = ReservedOwner::Device(dev.key);
        for r in self.iommu.ops().resv_regions(dev.bdf) {
            if r.kind == ResvType::DirectRelaxable || r.length == 0 {
                continue;
            }
            let range = IovaRange::new(r.start, r.start + (r.length - 1));
            if let Err(errno) = iopt.reserve(range, owner) {
                iopt.remove_reserved(owner);
                return Err(IommufdError::Iopt {
                    op: "reserve device regions",
                    errno,
                });
            }
        }
        Ok(())
    }

    fn remove_resv_regions(dev_key: u64, ioas: &Ioas) {
        ioas.iopt
            .lock()
            .remove_reserved(ReservedOwner::Device(dev_key));
    }

    /// `iommufd_hw_pagetable_attach`, in its order: EBUSY if this device
    /// is already attached for `pasid`; EINVAL if its group is on another
    /// HWPT there; the device's reserved regions (RID); then only the
    /// group's first device attaches the domain
    /// (`iommufd_hwpt_attach_device`: PASID compatibility, then the core,
    /// which switches every device of the group).
    fn do_attach(&self, dev: &Arc<Device>, pasid: u32, hwpt: HwptRef) -> Result<()> {
        let mut attaches = dev.igroup.attaches.lock();
        if let Some(a) = attaches.get(&pasid) {
            if a.devices.contains(&dev.id()) {
                return Err(IommufdError::AlreadyAttached {
                    dev_id: dev.id(),
                    pasid,
                });
            }
            if !a.hwpt.same(&hwpt) {
                return Err(IommufdError::GroupHwptMismatch {
                    group: dev.igroup.group.id(),
                    pasid,
                });
            }
        }
        let ioas = Arc::clone(hwpt.paging().ioas());
        if pasid == IOMMU_NO_PASID {
            self.enforce_resv_regions(dev, &ioas)?;
        }
        if !attaches.contains_key(&pasid) {
            let attached = Self::check_pasid_compat(&attaches, &hwpt, pasid).and_then(|()| {
                let r = if pasid == IOMMU_NO_PASID {
                    self.iommu.attach_group(hwpt.domain(), &dev.igroup.group)
                } else {
                    self.iommu
                        .attach_device_pasid(hwpt.domain(), dev.bdf, pasid)
                };
                r.map_err(Into::into)
            });
            if let Err(e) = attached {
                if pasid == IOMMU_NO_PASID {
                    Self::remove_resv_regions(dev.key, &ioas);
                }
                return Err(e);
            }
            attaches.insert(
                pasid,
                Attach {
                    hwpt,
                    devices: BTreeSet::new(),
                },
            );
        }
        let attach = attaches.get_mut(&pasid).expect("attach exists");
        attach.devices.insert(dev.id());
        if let Some(iopf) = attach.hwpt.iopf() {
            iopf.add_device(dev.bdf, pasid, dev.id(), dev.igroup.group.id());
        }
        Ok(())
    }

    /// `iommufd_device_do_replace`: EINVAL unless this device is attached
    /// for `pasid`; the same HWPT is a no-op. The group's members get their
    /// reserved regions in the new IOAS (if it changed), then PASID
    /// compatibility and the core replace; on failure nothing changed.
    /// Faults outstanding on the old HWPT are answered INVALID.
    fn do_replace(&self, dev: &Arc<Device>, pasid: u32, hwpt: HwptRef) -> Result<Option<HwptRef>> {
        let mut attaches = dev.igroup.attaches.lock();
        let Some(cur) = attaches.get(&pasid) else {
            return Err(IommufdError::Invalid {
                what: "not attached",
            });
        };
        if !cur.devices.contains(&dev.id()) {
            return Err(IommufdError::Invalid {
                what: "not attached",
            });
        }
        if cur.hwpt.same(&hwpt) {
            return Ok(None);
        }
        let old_ioas = Arc::clone(cur.hwpt.paging().ioas());
        let new_ioas = Arc::clone(hwpt.paging().ioas());
        let resv = pasid == IOMMU_NO_PASID && !Arc::ptr_eq(&old_ioas, &new_ioas);
        let members: Vec<Arc<Device>> = cur
            .devices
            .iter()
            .filter_map(|&id| self.get_device(id).ok())
            .collect();
        if resv {
            for (n, m) in members.iter().enumerate() {
                if let Err(e) = self.enforce_resv_regions(m, &new_ioas) {
                    for done in &members[..n] {
                        Self::remove_resv_regions(done.key, &new_ioas);
                    }
                    return Err(e);
                }
            }
        }
        let replaced = Self::check_pasid_compat(&attaches, &hwpt, pasid).and_then(|()| {
            let r = if pasid == IOMMU_NO_PASID {
                self.iommu
                    .replace_group_domain(&dev.igroup.group, hwpt.domain())
            } else {
                self.iommu
                    .replace_device_pasid(hwpt.domain(), dev.bdf, pasid)
            };
            r.map_err(Into::into)
        });
        if let Err(e) = replaced {
            if resv {
                for m in &members {
                    Self::remove_resv_regions(m.key, &new_ioas);
                }
            }
            return Err(e);
        }
        if resv {
            for m in &members {
                Self::remove_resv_regions(m.key, &old_ioas);
            }
        }
        let group_id = dev.igroup.group.id();
        if let Some(iopf) = hwpt.iopf() {
            for m in &members {
                iopf.add_device(m.bdf, pasid, m.id(), group_id);
            }
        }
        let old = std::mem::replace(
            &mut attaches.get_mut(&pasid).expect("attach exists").hwpt,
            hwpt,
        );
        drop(attaches);
        if let Some(iopf) = old.iopf() {
            iopf.detach_attachment(group_id, pasid);
        }
        Ok(Some(old))
    }

    /// `iommufd_device_detach`: a no-op when nothing is attached. The last
    /// device of the group for `pasid` detaches the domain: the RID goes to
    /// the blocking domain (the group is owned), a PASID stops translating.
    pub fn device_detach(&self, dev_id: u32, pasid: u32) -> Result<()> {
        let dev = self.get_device(dev_id)?;
        let mut attaches = dev.igroup.attaches.lock();
        let Some(a) = attaches.get_mut(&pasid) else {
            return Ok(());
        };
        if !a.devices.remove(&dev_id) {
            return Ok(());
        }
        if pasid == IOMMU_NO_PASID {
            Self::remove_resv_regions(dev.key, a.hwpt.paging().ioas());
        }
        if let Some(iopf) = a.hwpt.iopf() {
            iopf.remove_device(dev.bdf, pasid);
        }
        if !a.devices.is_empty() {
            return Ok(());
        }
        let a = attaches.remove(&pasid).expect("attach exists");
        let r = if pasid == IOMMU_NO_PASID {
            self.iommu.detach_group(a.hwpt.domain(), &dev.igroup.group)
        } else {
            self.iommu
                .detach_device_pasid(a.hwpt.domain(), dev.bdf, pasid)
        };
        drop(attaches);
        // iommufd_hwpt_detach_device: outstanding faults are answered.
        if let Some(iopf) = a.hwpt.iopf() {
            iopf.detach_attachment(dev.igroup.group.id(), pasid);
        }
        self.put_hwpt(a.hwpt);
        r.map_err(Into::into)
    }

    /// Drops an attachment's reference; an auto HWPT nobody else uses is
    /// destroyed (its id becomes ENOENT).
    fn put_hwpt(&self, hwpt: HwptRef) {
        if let HwptRef::Paging(h) = hwpt {
            let arc = Arc::clone(h.arc());
            drop(h);
            if arc.auto_domain() {
                self.try_destroy_auto(&arc);
            }
        }
    }

    /// Frees an automatic HWPT nobody uses any more: only if the table
    /// still holds this very object (its id may have been reused) and
    /// holds the only reference.
    fn try_destroy_auto(&self, hwpt: &Arc<HwptPaging>) {
        let removed = {
            let mut table = self.table.lock();
            match table.get(hwpt.id()) {
                Ok(Object::HwptPaging(h)) if Arc::ptr_eq(&h, hwpt) => {
                    table.remove_unused(hwpt.id()).is_ok()
                }
                _ => false,
            }
        };
        if removed {
            hwpt.teardown();
        }
    }
}
