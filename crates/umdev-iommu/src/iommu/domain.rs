//! Domains as the core sees them (`struct iommu_domain`): the driver's
//! translation object plus the core's bookkeeping (identity, owner, fault
//! handler, the default PASID of the legacy auxiliary-domain API).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::IommuError;
use super::ioasid::IoasidAllocator;
use super::ops::{DomainOps, DomainType};
use crate::memory::PhysAddr;
use crate::pgtable::Prot;
use crate::vtd::FaultHandler;

/// Source of [`Domain::id`]s, unique in the process.
static NEXT_DOMAIN_ID: AtomicU64 = AtomicU64::new(1);

/// A translation context devices (or PASIDs of devices) are attached to.
///
/// Shared as `Arc<Domain>`; groups hold a reference while the domain is
/// attached, a nested domain holds its parent. The blocked and identity
/// domains are one static pair per [`super::Iommu`].
pub struct Domain {
    id: u64,
    /// The core that allocated it (Linux `domain->owner`).
    owner: u64,
    ops: Arc<dyn DomainOps>,
    domain_type: DomainType,
    parent: Option<Arc<Domain>>,
    fault_handler: Mutex<Option<Arc<dyn FaultHandler>>>,
    /// Default PASID of an auxiliary domain (VT-d `dmar_domain->default_pasid`),
    /// allocated on the first aux attach and freed with the domain.
    aux_pasid: Mutex<Option<u32>>,
    ioasids: Arc<IoasidAllocator>,
}

impl Domain {
    pub(super) fn new(
        owner: u64,
        ops: Arc<dyn DomainOps>,
        parent: Option<Arc<Domain>>,
        ioasids: Arc<IoasidAllocator>,
    ) -> Arc<Self> {
        let domain_type = ops.domain_type();
        Arc::new(Self {
            id: NEXT_DOMAIN_ID.fetch_add(1, Ordering::Relaxed),
            owner,
            ops,
            domain_type,
            parent,
            fault_handler: Mutex::new(None),
            aux_pasid: Mutex::new(None),
            ioasids,
        })
    }

    /// Process-unique id of this domain (for listings and errors; not the
    /// VT-d domain id, which the driver assigns).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Blocked, identity, paging or nested.
    pub fn domain_type(&self) -> DomainType {
        self.domain_type
    }

    /// Whether the domain has a page table the core may map into
    /// (`__IOMMU_DOMAIN_PAGING`).
    pub fn is_paging(&self) -> bool {
        self.domain_type == DomainType::Paging
    }

    /// The driver's half, e.g. to downcast to the driver's own domain type.
    pub fn ops(&self) -> &Arc<dyn DomainOps> {
        &self.ops
    }

    /// The driver that owns it.
    pub fn driver_name(&self) -> &str {
        self.ops.driver_name()
    }

    /// The paging parent of a nested domain.
    pub fn parent(&self) -> Option<&Arc<Domain>> {
        self.parent.as_ref()
    }

    /// Whether the driver lets this domain be attached to a PASID at all
    /// (Linux: `domain->ops->set_dev_pasid` is set).
    pub fn supports_pasid(&self) -> bool {
        self.ops.supports_set_dev_pasid()
    }

    /// Whether this paging domain was allocated PASID-compatible
    /// (`IOMMU_HWPT_ALLOC_PASID`).
    pub fn pasid_compat(&self) -> bool {
        self.ops.pasid_compat()
    }

    /// Inclusive IOVA aperture.
    pub fn aperture(&self) -> (u64, u64) {
        self.ops.aperture()
    }

    /// Supported page sizes, bit n = 2^n bytes.
    pub fn pgsize_bitmap(&self) -> u64 {
        self.ops.pgsize_bitmap()
    }

    /// Maps `[iova, iova + len)` to `[phys, phys + len)`, all or nothing
    /// (`iommu_map`): EINVAL on a domain that is not paging, otherwise what
    /// the driver returns (EINVAL misaligned, EEXIST, EFAULT).
    pub fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), IommuError> {
        self.require_paging()?;
        self.ops
            .map(iova, phys, len, prot)
            .map_err(|errno| IommuError::DomainDriver { op: "map", errno })
    }

    /// Unmaps `[iova, iova + len)` and returns the bytes unmapped
    /// (`iommu_unmap`, strict); EINVAL on a domain that is not paging.
    pub fn unmap(&self, iova: u64, len: u64) -> Result<u64, IommuError> {
        self.require_paging()?;
        Ok(self.ops.unmap(iova, len))
    }

    /// Software walk (`iommu_iova_to_phys`): identity returns the IOVA,
    /// blocked returns `None`.
    pub fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr> {
        match self.domain_type {
            DomainType::Identity => Some(iova),
            DomainType::Blocked => None,
            DomainType::Paging | DomainType::Nested => self.ops.iova_to_phys(iova),
        }
    }

    /// Routes faults of DMA translated by this domain to `handler`
    /// (`iommu_set_fault_handler`); `None` removes it.
    pub fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>) {
        let mut slot = self.fault_handler.lock();
        self.ops.set_fault_handler(handler.clone());
        *slot = handler;
    }

    /// The handler registered with [`Self::set_fault_handler`].
    pub fn fault_handler(&self) -> Option<Arc<dyn FaultHandler>> {
        self.fault_handler.lock().clone()
    }

    /// The default PASID the legacy aux API gave this domain, if any.
    pub fn aux_pasid(&self) -> Option<u32> {
        *self.aux_pasid.lock()
    }

    /// The aux default PASID, allocating it in `[1, max_pasids - 1]` on
    /// first use (VT-d `aux_domain_add_dev`).
    pub(super) fn aux_pasid_or_alloc(&self, max_pasids: u32) -> Option<u32> {
        let mut slot = self.aux_pasid.lock();
        if slot.is_none() {
            *slot = self.ioasids.alloc(
                super::ioasid::FIRST_GLOBAL_PASID,
                max_pasids.checked_sub(1)?,
            );
        }
        *slot
    }

    /// Whether `self` was allocated by the core identified by `owner`.
    pub(super) fn owned_by(&self, owner: u64) -> bool {
        self.owner == owner
    }

    fn require_paging(&self) -> Result<(), IommuError> {
        if self.is_paging() {
            Ok(())
        } else {
            Err(IommuError::NotPaging {
                domain: self.id,
                domain_type: self.domain_type,
            })
        }
    }
}

impl Drop for Domain {
    /// Frees the aux default PASID (VT-d `intel_iommu_domain_free`).
    fn drop(&mut self) {
        if let Some(pasid) = self.aux_pasid.get_mut().take() {
            self.ioasids.free(pasid);
        }
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Domain")
            .field("id", &self.id)
            .field("type", &self.domain_type)
            .field("driver", &self.driver_name())
            .field("parent", &self.parent.as_ref().map(|p| p.id))
            .field("aux_pasid", &self.aux_pasid())
            .finish()
    }
}
