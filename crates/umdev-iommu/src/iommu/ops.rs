//! The boundary between the IOMMU core and a hardware driver, as Linux
//! splits `struct iommu_ops` / `struct iommu_domain_ops`
//! (include/linux/iommu.h).
//!
//! The core (groups, ownership, attach rules) is written against these
//! traits only; the intel-iommu driver ([`crate::intel`]) over the VT-d
//! model ([`crate::vtd`]) implements them, and a back-end wrapping the
//! host kernel's iommufd could too.

use std::any::Any;
use std::sync::Arc;

use rustix::io::Errno;
use umdev_pci::Bdf;

use crate::dma::Dma;
use crate::memory::PhysAddr;
use crate::pgtable::Prot;
use crate::vtd::{FaultHandler, S1Flags};

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

    /// Whether the driver can attach this domain to a PASID at all (Linux:
    /// the domain's ops have `set_dev_pasid`); the core refuses a PASID
    /// attach with EOPNOTSUPP otherwise. VT-d domains of every type can.
    fn supports_set_dev_pasid(&self) -> bool {
        true
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

    /// Turns dirty tracking on or off (`set_dirty_tracking`); enabling
    /// clears the dirty state first. EOPNOTSUPP for domains that cannot.
    fn set_dirty_tracking(&self, _enable: bool) -> Result<(), Errno> {
        Err(Errno::OPNOTSUPP)
    }

    /// Reports every dirty range intersecting `[iova, iova + len)` to
    /// `record(iova, len)` and clears it unless `clear` is false
    /// (`read_and_clear_dirty`). EOPNOTSUPP for domains that cannot track.
    fn read_and_clear_dirty(
        &self,
        _iova: u64,
        _len: u64,
        _clear: bool,
        _record: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Errno> {
        Err(Errno::OPNOTSUPP)
    }

    /// Invalidates the user stage-1 caches of a nested domain
    /// (`cache_invalidate_user`, struct iommu_hwpt_vtd_s1_invalidate
    /// entries). On failure returns how many entries were handled and the
    /// errno. EOPNOTSUPP for other domains.
    fn cache_invalidate_user(&self, entries: &[VtdS1Invalidate]) -> Result<(), (usize, Errno)> {
        let _ = entries;
        Err((0, Errno::OPNOTSUPP))
    }

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

    /// The device's reserved IOVA regions (`get_resv_regions`): VT-d
    /// reports the x86 MSI window as IOMMU_RESV_MSI.
    fn resv_regions(&self, _bdf: Bdf) -> Vec<ResvRegion> {
        Vec::new()
    }

    /// Hardware information for IOMMU_GET_HW_INFO (`hw_info`): the unit's
    /// capability registers. None when the device is not translated.
    fn hw_info(&self, _bdf: Bdf) -> Option<HwInfo> {
        None
    }

    /// Stops translating `pasid` for `bdf` (`remove_dev_pasid`): its
    /// requests fault from now on.
    fn remove_dev_pasid(&self, bdf: Bdf, pasid: u32, domain: &Arc<dyn DomainOps>);

    /// DMA as requester `bdf` issues it, through the hardware that
    /// translates it; None when none does. Device models reach it through
    /// [`crate::iommu::Iommu::dma_for`].
    fn dma_for(&self, _bdf: Bdf) -> Option<Arc<dyn Dma>> {
        None
    }
}

/// One entry of a VT-d stage-1 cache invalidation
/// (struct iommu_hwpt_vtd_s1_invalidate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VtdS1Invalidate {
    /// First IOVA, 4 KiB aligned (0 with `npages == u64::MAX` = all).
    pub addr: u64,
    /// Number of 4 KiB pages.
    pub npages: u64,
    /// IOMMU_VTD_INV_FLAGS_LEAF = 1; other bits are EOPNOTSUPP.
    pub flags: u32,
}

/// Kind of a reserved region (Linux `enum iommu_resv_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResvType {
    /// Must stay identity-mapped (RMRR).
    Direct,
    /// Identity-mapped but may be relaxed for device assignment.
    DirectRelaxable,
    /// Never mappable.
    Reserved,
    /// Hardware MSI window (x86: 0xfee00000-0xfeefffff).
    Msi,
    /// Software-managed MSI window.
    SwMsi,
}

/// A reserved IOVA region of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResvRegion {
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// What it is.
    pub kind: ResvType,
}

/// What IOMMU_GET_HW_INFO reports for a device (struct iommu_hw_info_vtd
/// plus the generic fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HwInfo {
    /// VT-d CAP_REG.
    pub cap_reg: u64,
    /// VT-d ECAP_REG.
    pub ecap_reg: u64,
    /// log2 of the number of PASIDs (0 without PASID support).
    pub max_pasid_log2: u8,
    /// Dirty tracking available (IOMMU_HW_CAP_DIRTY_TRACKING).
    pub dirty_tracking: bool,
}
