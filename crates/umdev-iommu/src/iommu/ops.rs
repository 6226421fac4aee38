//! The boundary between the IOMMU core and a hardware driver, as Linux
//! splits `struct iommu_ops` / `struct iommu_domain_ops`
//! (include/linux/iommu.h).
//!
//! The core (groups, ownership, attach rules) is written against these
//! traits only; the VT-d scalable-mode model in [`crate::unit`] implements
//! them, and a back-end wrapping the host kernel's iommufd could too.

use std::any::Any;
use std::sync::Arc;

use rustix::io::Errno;
use umdev_pci::Bdf;

use crate::memory::PhysAddr;
use crate::pgtable::Prot;
use crate::unit::{FaultHandler, S1Flags};

/// The kind of a domain (Linux `IOMMU_DOMAIN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainType {
    /// All DMA is blocked (`IOMMU_DOMAIN_BLOCKED`).
    Blocked,
    /// DMA is untranslated (`IOMMU_DOMAIN_IDENTITY`).
    Identity,
    /// A page table the kernel or a user fills (`IOMMU_DOMAIN_UNMANAGED` /
    /// `IOMMU_DOMAIN_DMA`; iommufd's HWPT_PAGING).
    Paging,
    /// A user-owned stage-1 table over a paging parent
    /// (`IOMMU_DOMAIN_NESTED`).
    Nested,
}

/// Options of a paging-domain allocation (iommufd
/// `IOMMU_HWPT_ALLOC_*` flags as `domain_alloc_paging_flags` sees them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PagingFlags {
    /// May be the parent of nested domains (second-level format).
    pub nest_parent: bool,
    /// Must support dirty tracking (EOPNOTSUPP where the unit cannot).
    pub dirty_tracking: bool,
    /// May be attached to a PASID (and be the RID domain of a device whose
    /// PASIDs are in use).
    pub pasid: bool,
}

/// The user stage-1 description of a nested domain
/// (struct iommu_hwpt_vtd_s1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VtdS1Config {
    /// SRE / WPE / EAFE.
    pub flags: S1Flags,
    /// Guest-physical address of the guest's top-level table.
    pub pgtbl_addr: PhysAddr,
    /// 48 or 57.
    pub addr_width: u32,
}

/// What the driver reports for a device at probe time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCaps {
    /// Number of PASIDs the device may use (0 = no PASID support).
    pub max_pasids: u32,
    /// The unit can track dirty pages for this device.
    pub dirty_tracking: bool,
    /// The unit supports nested translation for this device.
    pub nesting: bool,
}

/// The driver half of a domain (`struct iommu_domain` plus its ops).
pub trait DomainOps: Send + Sync + Any {
    /// What kind of domain this is.
    fn domain_type(&self) -> DomainType;

    /// The driver's name; domains of one driver cannot attach to another's
    /// devices (EINVAL).
    fn driver_name(&self) -> &str;

    /// For downcasting to the driver's own domain type.
    fn as_any(&self) -> &dyn Any;

    /// Inclusive IOVA aperture `[first, last]` (paging domains; others
    /// report the whole space).
    fn aperture(&self) -> (u64, u64);

    /// Supported page sizes, bit n = 2^n bytes.
    fn pgsize_bitmap(&self) -> u64;

    /// Whether this paging domain may be attached to a PASID.
    fn pasid_compat(&self) -> bool {
        false
    }

    /// Maps `[iova, iova + len)` to `[phys, phys + len)` (`map_pages`):
    /// all or nothing; EINVAL for misalignment or a non-paging domain,
    /// EEXIST over an existing mapping, EFAULT outside the aperture.
    fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), Errno>;

    /// Unmaps `[iova, iova + len)` (`unmap_pages` + strict `iotlb_sync`)
    /// and returns the bytes unmapped; when it returns, no DMA can use the
    /// old translations.
    fn unmap(&self, iova: u64, len: u64) -> u64;

    /// Software walk (`iova_to_phys`).
    fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr>;

    /// Routes faults of DMA translated by this domain to `handler`
    /// (`iommu_set_fault_handler`); `None` removes it.
    fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>);
}

/// The driver half of the IOMMU (`struct iommu_ops`).
pub trait IommuOps: Send + Sync {
    /// Driver name (`intel-iommu`-like).
    fn name(&self) -> &str;

    /// A device appeared behind this IOMMU (`probe_device`); ENODEV when no
    /// unit translates its segment.
    fn probe_device(&self, bdf: Bdf) -> Result<DeviceCaps, Errno>;

    /// The device went away (`release_device`): its entries are cleared.
    fn release_device(&self, bdf: Bdf);

    /// The driver's blocking domain (static, shared).
    fn blocked_domain(&self) -> Arc<dyn DomainOps>;

    /// The driver's identity domain (static, shared).
    fn identity_domain(&self) -> Arc<dyn DomainOps>;

    /// A new, empty paging domain suitable for `bdf`
    /// (`domain_alloc_paging_flags`): EOPNOTSUPP for flags the unit cannot
    /// honour.
    fn domain_alloc_paging(
        &self,
        bdf: Bdf,
        flags: PagingFlags,
    ) -> Result<Arc<dyn DomainOps>, Errno>;

    /// A nested domain over `parent` (`domain_alloc_nested`): EINVAL if the
    /// parent is not a nest parent of this driver or the config is invalid,
    /// EOPNOTSUPP without nesting support.
    fn domain_alloc_nested(
        &self,
        bdf: Bdf,
        parent: &Arc<dyn DomainOps>,
        config: VtdS1Config,
        pasid: bool,
    ) -> Result<Arc<dyn DomainOps>, Errno>;

    /// Makes `domain` translate requests without PASID from `bdf`
    /// (`attach_dev`); the blocked domain makes them fault.
    fn attach_dev(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno>;

    /// Makes `domain` translate requests tagged `pasid` from `bdf`
    /// (`set_dev_pasid`); `old` is the domain being replaced, if any.
    fn set_dev_pasid(
        &self,
        domain: &Arc<dyn DomainOps>,
        bdf: Bdf,
        pasid: u32,
        old: Option<&Arc<dyn DomainOps>>,
    ) -> Result<(), Errno>;

    /// Stops translating `pasid` for `bdf` (`remove_dev_pasid`): its
    /// requests fault from now on.
    fn remove_dev_pasid(&self, bdf: Bdf, pasid: u32, domain: &Arc<dyn DomainOps>);
}
