//! Hardware page tables (hw_pagetable.c): IOMMUFD_OBJ_HWPT_PAGING, an IOMMU
//! domain that mirrors one IOAS, and IOMMUFD_OBJ_HWPT_NESTED, a user
//! stage-1 table over a nest-parent paging HWPT.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::{Domain, Iommu, PagingFlags, VtdS1Config};
use umdev_iommu::memory::PhysAddr;
use umdev_iommu::pgtable::Prot;
use umdev_pci::Bdf;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::{IoptDomain, next_key};
use crate::object::{ObjHeader, ObjRef};
use crate::private::{Fault, Ioas, IopfHandler};
pub use crate::private::{HwptNested, HwptPaging, HwptRef};

/// How an IOAS mirrors its areas into a core domain.
struct DomainMirror(Arc<Domain>);

impl IoptDomain for DomainMirror {
    fn aperture(&self) -> (u64, u64) {
        self.0.aperture()
    }

    fn pgsize_bitmap(&self) -> u64 {
        self.0.pgsize_bitmap()
    }

    fn map(
        &self,
        iova: u64,
        phys: PhysAddr,
        len: u64,
        prot: Prot,
    ) -> std::result::Result<(), Errno> {
        self.0.map(iova, phys, len, prot).map_err(|e| e.errno())
    }

    fn unmap(&self, iova: u64, len: u64) -> u64 {
        self.0.unmap(iova, len).unwrap_or(0)
    }
}

impl HwptPaging {
    /// Allocates a domain for `bdf` and fills it from `ioas`
    /// (`iommufd_hwpt_paging_alloc` + `iopt_table_add_domain`). The HWPT is
    /// in no context's object table until its caller inserts it; the legacy
    /// VFIO container (umdev-vfio) keeps its type1 domains this way.
    pub fn alloc(
        iommu: &Iommu,
        bdf: Bdf,
        ioas: &Arc<Ioas>,
        flags: PagingFlags,
        auto_domain: bool,
    ) -> Result<Arc<Self>> {
        Self::alloc_iopf(iommu, bdf, ioas, flags, auto_domain, None)
    }

    /// [`HwptPaging::alloc`] whose I/O page faults go to `fault`.
    pub(crate) fn alloc_iopf(
        iommu: &Iommu,
        bdf: Bdf,
        ioas: &Arc<Ioas>,
        flags: PagingFlags,
        auto_domain: bool,
        fault: Option<&Arc<Fault>>,
    ) -> Result<Arc<Self>> {
        let hwpt = Self::alloc_unlisted(iommu, bdf, ioas, flags, auto_domain, fault)?;
        ioas.add_hwpt(&hwpt);
        Ok(hwpt)
    }

    /// The HWPT filled from `ioas` but not yet on the IOAS's HWPT list: the
    /// automatic-domain path adds it under the list lock it already holds.
    pub(crate) fn alloc_unlisted(
        iommu: &Iommu,
        bdf: Bdf,
        ioas: &Arc<Ioas>,
        flags: PagingFlags,
        auto_domain: bool,
        fault: Option<&Arc<Fault>>,
    ) -> Result<Arc<Self>> {
        let domain = iommu.domain_alloc_paging(bdf, flags)?;
        let key = next_key();
        ioas.iopt
            .lock()
            .add_domain(key, Arc::new(DomainMirror(Arc::clone(&domain))))
            .map_err(IommufdError::iopt("add domain"))?;
        let iopf = fault.map(|f| install_iopf(&domain, f, key));
        let hwpt = Arc::new(Self {
            hdr: ObjHeader::new(),
            ioas: ObjRef::new(ioas),
            domain,
            auto_domain,
            nest_parent: flags.nest_parent,
            pasid_compat: flags.pasid,
            dirty_capable: flags.dirty_tracking,
            key,
            iopf,
        });
        Ok(hwpt)
    }

    /// The object id.
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// The IOAS it mirrors.
    pub fn ioas(&self) -> &Arc<Ioas> {
        self.ioas.arc()
    }

    /// The IOMMU domain.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// Created by an attach to an IOAS id (freed on its last detach).
    pub fn auto_domain(&self) -> bool {
        self.auto_domain
    }

    /// May parent nested HWPTs (IOMMU_HWPT_ALLOC_NEST_PARENT).
    pub fn nest_parent(&self) -> bool {
        self.nest_parent
    }

    /// Allocated with IOMMU_HWPT_ALLOC_PASID.
    pub fn pasid_compat(&self) -> bool {
        self.pasid_compat
    }

    /// Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING.
    pub fn dirty_capable(&self) -> bool {
        self.dirty_capable
    }

    /// `iommufd_hwpt_paging_destroy`: the domain leaves the IOAS and its
    /// fault queue (also how the legacy VFIO container frees its domains).
    pub fn teardown(&self) {
        self.remove_domain();
        self.ioas
            .hwpts
            .lock()
            .retain(|w| w.upgrade().is_some_and(|h| !std::ptr::eq(h.as_ref(), self)));
    }

    /// The domain leaves the IOAS (teardown of a HWPT that never made it
    /// onto the IOAS's list).
    pub(crate) fn remove_domain(&self) {
        remove_iopf(&self.domain, self.iopf.as_ref());
        self.ioas.iopt.lock().remove_domain(self.key);
    }
}

impl HwptNested {
    /// `iommufd_hwpt_nested_alloc` once the flags, data and parent are
    /// checked (see `Ictx::hwpt_alloc`).
    pub(crate) fn alloc(
        iommu: &Iommu,
        bdf: Bdf,
        parent: &Arc<HwptPaging>,
        config: VtdS1Config,
        pasid_compat: bool,
        fault: Option<&Arc<Fault>>,
    ) -> Result<Arc<Self>> {
        let domain = iommu.domain_alloc_nested(bdf, &parent.domain, config, pasid_compat)?;
        let iopf = fault.map(|f| install_iopf(&domain, f, next_key()));
        Ok(Arc::new(Self {
            hdr: ObjHeader::new(),
            parent: ObjRef::new(parent),
            domain,
            pasid_compat,
            iopf,
        }))
    }

    /// `iommufd_hwpt_nested_destroy`: the domain leaves its fault queue.
    pub(crate) fn teardown(&self) {
        remove_iopf(&self.domain, self.iopf.as_ref());
    }

    /// The object id.
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// The parent paging HWPT.
    pub fn parent(&self) -> &Arc<HwptPaging> {
        self.parent.arc()
    }

    /// The nested domain.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }
}

impl HwptRef {
    /// The HWPT's object id.
    pub fn id(&self) -> u32 {
        match self {
            HwptRef::Paging(h) => h.id(),
            HwptRef::Nested(h) => h.id(),
        }
    }

    /// The IOMMU domain to attach.
    pub fn domain(&self) -> &Arc<Domain> {
        match self {
            HwptRef::Paging(h) => &h.domain,
            HwptRef::Nested(h) => &h.domain,
        }
    }

    /// `hwpt->pasid_compat`.
    pub fn pasid_compat(&self) -> bool {
        match self {
            HwptRef::Paging(h) => h.pasid_compat,
            HwptRef::Nested(h) => h.pasid_compat,
        }
    }

    /// The paging HWPT whose IOAS holds the translations
    /// (`find_hwpt_paging`): itself, or a nested HWPT's parent.
    pub fn paging(&self) -> &Arc<HwptPaging> {
        match self {
            HwptRef::Paging(h) => h.arc(),
            HwptRef::Nested(h) => h.parent.arc(),
        }
    }

    /// The fault routing of a HWPT allocated with FAULT_ID_VALID.
    pub(crate) fn iopf(&self) -> Option<&Arc<IopfHandler>> {
        match self {
            HwptRef::Paging(h) => h.iopf.as_ref(),
            HwptRef::Nested(h) => h.iopf.as_ref(),
        }
    }

    /// Do both name the same HWPT?
    pub fn same(&self, other: &HwptRef) -> bool {
        match (self, other) {
            (HwptRef::Paging(a), HwptRef::Paging(b)) => Arc::ptr_eq(a.arc(), b.arc()),
            (HwptRef::Nested(a), HwptRef::Nested(b)) => Arc::ptr_eq(a.arc(), b.arc()),
            _ => false,
        }
    }
}

/// Routes `domain`'s faults to `fault` (`hwpt->domain->iopf_handler =
/// iommufd_fault_iopf_handler`, taking a reference on the queue).
fn install_iopf(domain: &Domain, fault: &Arc<Fault>, hwpt_key: u64) -> Arc<IopfHandler> {
    let handler = IopfHandler::new(fault, hwpt_key);
    domain.set_fault_handler(Some(Arc::clone(&handler) as _));
    handler
}

/// Undoes [`install_iopf`] when the HWPT is destroyed.
fn remove_iopf(domain: &Domain, iopf: Option<&Arc<IopfHandler>>) {
    if let Some(handler) = iopf {
        domain.set_fault_handler(None);
        handler.release();
    }
}
