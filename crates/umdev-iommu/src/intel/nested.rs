//! Nested domains: a user (guest) first-level table over a nest-parent
//! paging domain (Linux drivers/iommu/intel/nested.c).

use std::any::Any;
use std::sync::{Arc, Weak};

use rustix::io::Errno;

use super::DRIVER_NAME;
use super::attach::{Attachments, flush_all};
use super::paging::{NestedChild, VtdPagingDomain};
use crate::iommu::ops::VtdS1Invalidate;
use crate::iommu::{DomainOps, DomainType, VtdS1Config};
use crate::memory::{PAGE_SIZE, PhysAddr};
use crate::pgtable::{Prot, PtFormat};
use crate::vtd::{DomainId, FaultHandler, IommuUnit, IotlbInvalidation, PasidEntry};

/// A nested domain of the VT-d driver.
#[derive(Debug)]
pub struct VtdNestedDomain {
    parent: Arc<VtdPagingDomain>,
    config: VtdS1Config,
    pasid: bool,
    pub(super) attachments: Attachments,
}

/// Stage-1 levels of a user address width.
fn s1_levels(addr_width: u32) -> u8 {
    if addr_width == 57 { 5 } else { 4 }
}

impl VtdNestedDomain {
    pub(super) fn new(parent: Arc<VtdPagingDomain>, config: VtdS1Config, pasid: bool) -> Arc<Self> {
        let domain = Arc::new(Self {
            parent,
            config,
            pasid,
            attachments: Attachments::default(),
        });
        let child: Weak<VtdNestedDomain> = Arc::downgrade(&domain);
        domain.parent.add_child(child);
        domain
    }

    /// The nest-parent paging domain (the second stage).
    pub fn parent(&self) -> &Arc<VtdPagingDomain> {
        &self.parent
    }

    /// The user stage-1 description.
    pub fn config(&self) -> VtdS1Config {
        self.config
    }

    /// The domain's id on `unit`, while attached there.
    pub fn domain_id(&self, unit: &IommuUnit) -> Option<DomainId> {
        self.attachments.did_on(unit)
    }

    /// Strict flush of what the unit cached from the user's stage 1, for
    /// `[iova, iova + len)` or everything (Linux
    /// intel_nested_cache_invalidate_user, for IOMMU_HWPT_INVALIDATE).
    pub fn cache_invalidate(&self, range: Option<(u64, u64)>) {
        let flushes = self
            .attachments
            .targets()
            .into_iter()
            .map(|(unit, did)| {
                let inv = match range {
                    Some((iova, len)) => IotlbInvalidation::Range {
                        did,
                        pasid: None,
                        iova,
                        len,
                    },
                    None => IotlbInvalidation::Domain(did),
                };
                (unit, inv)
            })
            .collect();
        flush_all(flushes);
    }

    /// The stage-1 checks of intel_pasid_setup_nested, each EINVAL: an
    /// address width other than 48 or 57, 57 without CAP.FL5LP, SRE
    /// without ECAP.SRS, EAFE without ECAP.EAFS.
    pub(super) fn check_unit(&self, unit: &IommuUnit) -> Result<(), Errno> {
        let flags = self.config.flags;
        let width_ok = match self.config.addr_width {
            48 => true,
            57 => unit.cap().fl5lp_support(),
            _ => false,
        };
        if !width_ok
            || (flags.sre && !unit.ecap().srs())
            || (flags.eafe && !unit.ecap().eafs())
            || !unit.ecap().nest()
        {
            return Err(Errno::INVAL);
        }
        Ok(())
    }

    /// The PGTT-nested entry; `dirty_tracking` is the parent's SSADE.
    pub(super) fn pasid_entry(&self, did: DomainId, dirty_tracking: bool) -> PasidEntry {
        let table = self.parent.page_table();
        PasidEntry::Nested {
            did,
            s1_root: self.config.pgtbl_addr,
            s1_levels: s1_levels(self.config.addr_width),
            s1_flags: self.config.flags,
            s2_root: table.root(),
            s2_levels: table.format().levels(),
            dirty_tracking,
        }
    }
}

impl NestedChild for VtdNestedDomain {
    fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    fn pasid_entry(&self, did: DomainId, dirty_tracking: bool) -> PasidEntry {
        VtdNestedDomain::pasid_entry(self, did, dirty_tracking)
    }
}

impl DomainOps for VtdNestedDomain {
    fn domain_type(&self) -> DomainType {
        DomainType::Nested
    }

    fn driver_name(&self) -> &str {
        DRIVER_NAME
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn aperture(&self) -> (u64, u64) {
        let format = PtFormat::FirstLevel {
            levels: s1_levels(self.config.addr_width),
        };
        (0, format.map_limit() - 1)
    }

    fn pgsize_bitmap(&self) -> u64 {
        0
    }

    fn pasid_compat(&self) -> bool {
        self.pasid
    }

    /// The user owns the stage-1 table: not a paging domain, EINVAL
    /// (__iommu_map).
    fn map(&self, _iova: u64, _phys: PhysAddr, _len: u64, _prot: Prot) -> Result<(), Errno> {
        Err(Errno::INVAL)
    }

    fn unmap(&self, _iova: u64, _len: u64) -> u64 {
        0
    }

    fn iova_to_phys(&self, _iova: u64) -> Option<PhysAddr> {
        None
    }

    fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>) {
        self.attachments.set_fault_handler(handler);
    }

    /// intel_nested_cache_invalidate_user: entries in order; unknown flag
    /// bits → EOPNOTSUPP; an address not 4 KiB aligned, or `npages ==
    /// u64::MAX` with a non-zero address → EINVAL. On failure reports how
    /// many entries were handled.
    fn cache_invalidate_user(&self, entries: &[VtdS1Invalidate]) -> Result<(), (usize, Errno)> {
        for (done, e) in entries.iter().enumerate() {
            if e.flags & !IOMMU_VTD_INV_FLAGS_LEAF != 0 {
                return Err((done, Errno::OPNOTSUPP));
            }
            if e.addr % PAGE_SIZE != 0 || (e.npages == u64::MAX && e.addr != 0) {
                return Err((done, Errno::INVAL));
            }
            let range = (e.npages != u64::MAX)
                .then(|| (e.addr, e.npages.saturating_mul(PAGE_SIZE)))
                .filter(|&(_, len)| len != 0);
            if e.npages == 0 {
                continue;
            }
            self.cache_invalidate(range);
        }
        Ok(())
    }
}

/// IOMMU_VTD_INV_FLAGS_LEAF (include/uapi/linux/iommufd.h).
pub const IOMMU_VTD_INV_FLAGS_LEAF: u32 = 1 << 0;
