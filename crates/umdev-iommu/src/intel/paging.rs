//! Paging domains: a [`PageTable`] in first-level format (the default) or
//! second-level format (nest parents and dirty tracking), as Linux's
//! intel_iommu_domain_alloc_paging_flags picks.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;

use super::DRIVER_NAME;
use super::attach::{Attachments, flush_all};
use super::iommu::Registry;
use crate::iommu::{DomainOps, DomainType, PagingFlags};
use crate::memory::PhysAddr;
use crate::pgtable::{PageTable, Prot, PtFormat};
use crate::vtd::{DomainId, FaultHandler, IommuUnit, IotlbInvalidation, PasidEntry};

/// A nested domain as its nest parent sees it: where it is attached and
/// the PASID entry it programs, which dirty tracking and strict flushes
/// of the parent rewrite or reach. The nested domain implements it, so
/// the parent does not name its children's type.
pub(super) trait NestedChild: Send + Sync {
    /// Where the child is attached.
    fn attachments(&self) -> &Attachments;
    /// The child's PASID entry with the parent's SSADE `dirty_tracking`.
    fn pasid_entry(&self, did: DomainId, dirty_tracking: bool) -> PasidEntry;
}

/// A paging domain of the VT-d driver (`struct dmar_domain` with
/// `use_first_level` or a second-stage table).
#[derive(Debug)]
pub struct VtdPagingDomain {
    table: PageTable,
    flags: PagingFlags,
    /// SSADE is set in its PASID entries (and its nested children's).
    dirty_tracking: AtomicBool,
    /// Serialises map against unmap + flush: a table page freed by an
    /// unmap is not reused by a map before the flush has drained every
    /// walk that might still read it.
    update: Mutex<()>,
    pub(super) attachments: Attachments,
    /// Nested domains over this one (Linux `dmar_domain::s1_domains`).
    children: Mutex<Vec<Weak<dyn NestedChild>>>,
    pub(super) registry: Arc<Registry>,
}

impl VtdPagingDomain {
    pub(super) fn new(table: PageTable, flags: PagingFlags, registry: Arc<Registry>) -> Self {
        Self {
            table,
            flags,
            dirty_tracking: AtomicBool::new(false),
            update: Mutex::new(()),
            attachments: Attachments::default(),
            children: Mutex::new(Vec::new()),
            registry,
        }
    }

    /// The page table.
    pub fn page_table(&self) -> &PageTable {
        &self.table
    }

    /// The table format.
    pub fn format(&self) -> PtFormat {
        self.table.format()
    }

    /// The allocation flags.
    pub fn flags(&self) -> PagingFlags {
        self.flags
    }

    /// Whether DMA through the domain currently sets dirty bits.
    pub fn dirty_tracking_enabled(&self) -> bool {
        self.dirty_tracking.load(Ordering::Acquire)
    }

    /// The domain's id on `unit`, while attached there.
    pub fn domain_id(&self, unit: &IommuUnit) -> Option<DomainId> {
        self.attachments.did_on(unit)
    }

    /// The PASID entry that makes a device use this domain.
    pub(super) fn pasid_entry(&self, did: DomainId, dirty_tracking: bool) -> PasidEntry {
        let root = self.table.root();
        match self.table.format() {
            PtFormat::FirstLevel { levels } => PasidEntry::FirstLevel { did, root, levels },
            PtFormat::SecondLevel { levels } => PasidEntry::SecondLevel {
                did,
                root,
                levels,
                dirty_tracking,
            },
        }
    }

    /// Can `unit` walk this table (Linux paging_domain_compatible)?
    pub(super) fn compatible(&self, unit: &IommuUnit) -> bool {
        let (cap, ecap) = (unit.cap(), unit.ecap());
        let format = self.table.format();
        let (format_ok, large) = match format {
            PtFormat::FirstLevel { levels } => (
                ecap.flts() && (levels == 4 || cap.fl5lp_support()),
                1 << 21 | u64::from(cap.fl1gp_support()) << 30,
            ),
            PtFormat::SecondLevel { levels } => (
                ecap.slts() && cap.sagaw() & (1 << (levels - 2)) != 0,
                u64::from(cap.super_page_val() & 1) << 21
                    | u64::from(cap.super_page_val() >> 1 & 1) << 30,
            ),
        };
        format_ok
            && self.table.pgsize_bitmap() & !(large | 1 << 12) == 0
            && format.address_width() <= cap.mgaw()
            && (!self.flags.dirty_tracking || ecap.slads())
            && (!self.flags.nest_parent || ecap.nest())
    }

    pub(super) fn add_child(&self, child: Weak<dyn NestedChild>) {
        let mut children = self.children.lock();
        children.retain(|c| c.strong_count() > 0);
        children.push(child);
    }

    fn children(&self) -> Vec<Arc<dyn NestedChild>> {
        self.children
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Enables or disables dirty tracking (Linux
    /// intel_iommu_set_dirty_tracking): rewrites SSADE in the PASID entry
    /// of every device using the domain or one of its nested children.
    /// EOPNOTSUPP unless allocated with dirty tracking (iommufd
    /// iopt_set_dirty_tracking without dirty_ops).
    pub fn set_dirty_tracking(&self, enable: bool) -> Result<(), Errno> {
        if !self.flags.dirty_tracking {
            return Err(Errno::OPNOTSUPP);
        }
        let _devices = self.registry.lock();
        if self.dirty_tracking_enabled() == enable {
            return Ok(());
        }
        let mut programmed = Vec::new();
        let mut entries: Vec<_> = self
            .attachments
            .users()
            .into_iter()
            .map(|(unit, did, bdf, pasid)| (unit, bdf, pasid, self.pasid_entry(did, enable)))
            .collect();
        for child in self.children() {
            entries.extend(
                child
                    .attachments()
                    .users()
                    .into_iter()
                    .map(|(unit, did, bdf, pasid)| {
                        (unit, bdf, pasid, child.pasid_entry(did, enable))
                    }),
            );
        }
        for (unit, bdf, pasid, entry) in entries {
            match unit.replace_pasid_entry(bdf, pasid, entry) {
                Ok(old) => programmed.push((unit, bdf, pasid, old)),
                Err(err) => {
                    // Roll back what was switched, as Linux does.
                    for (unit, bdf, pasid, old) in programmed {
                        let _ = unit.replace_pasid_entry(bdf, pasid, old);
                    }
                    return Err(err.errno());
                }
            }
        }
        self.dirty_tracking.store(enable, Ordering::Release);
        Ok(())
    }

    /// Reports `(iova, size)` of every dirty leaf in `[iova, iova + len)`
    /// and, with `clear`, clears their dirty bits and flushes the IOTLB
    /// for the range so later writes set them again (Linux
    /// intel_iommu_read_and_clear_dirty + the gather's iotlb_sync). EINVAL
    /// while tracking is off.
    pub fn read_and_clear_dirty(
        &self,
        iova: u64,
        len: u64,
        clear: bool,
        record: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Errno> {
        if !self.dirty_tracking_enabled() {
            return Err(Errno::INVAL);
        }
        self.table.read_and_clear_dirty(iova, len, clear, record);
        if clear {
            self.flush_range(iova, len);
        }
        Ok(())
    }

    /// Strict flush of `[iova, iova + len)` on every unit the domain is
    /// attached to, and of everything its nested children cached (their
    /// first stage may map any IOVA onto the range).
    fn flush_range(&self, iova: u64, len: u64) {
        let mut flushes: Vec<_> = self
            .attachments
            .targets()
            .into_iter()
            .map(|(unit, did)| {
                let inv = IotlbInvalidation::Range {
                    did,
                    pasid: None,
                    iova,
                    len,
                };
                (unit, inv)
            })
            .collect();
        for child in self.children() {
            flushes.extend(
                child
                    .attachments()
                    .targets()
                    .into_iter()
                    .map(|(unit, did)| (unit, IotlbInvalidation::Domain(did))),
            );
        }
        flush_all(flushes);
    }
}

impl DomainOps for VtdPagingDomain {
    fn domain_type(&self) -> DomainType {
        DomainType::Paging
    }

    fn driver_name(&self) -> &str {
        DRIVER_NAME
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn aperture(&self) -> (u64, u64) {
        (0, self.table.format().map_limit() - 1)
    }

    fn pgsize_bitmap(&self) -> u64 {
        self.table.pgsize_bitmap()
    }

    fn pasid_compat(&self) -> bool {
        self.flags.pasid
    }

    fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), Errno> {
        let _update = self.update.lock();
        self.table.map(iova, phys, len, prot).map_err(|e| e.errno())
    }

    /// PTEs cleared, then a strict IOTLB flush of every (unit, did) the
    /// domain and its nested children use, then return.
    fn unmap(&self, iova: u64, len: u64) -> u64 {
        let _update = self.update.lock();
        let bytes = self.table.unmap(iova, len);
        if bytes != 0 {
            self.flush_range(iova, len);
        }
        bytes
    }

    fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr> {
        self.table.iova_to_phys(iova).map(|t| t.phys)
    }

    fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>) {
        self.attachments.set_fault_handler(handler);
    }

    /// iommufd `iopt_set_dirty_tracking`: enabling first clears the dirty
    /// state left from before (`iopt_clear_dirty_data`), then the driver
    /// switches SSADE.
    fn set_dirty_tracking(&self, enable: bool) -> Result<(), Errno> {
        if enable && self.flags.dirty_tracking && !self.dirty_tracking_enabled() {
            let _update = self.update.lock();
            let (first, last) = DomainOps::aperture(self);
            self.table
                .read_and_clear_dirty(first, last - first + 1, true, &mut |_, _| {});
        }
        VtdPagingDomain::set_dirty_tracking(self, enable)
    }

    fn read_and_clear_dirty(
        &self,
        iova: u64,
        len: u64,
        clear: bool,
        record: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Errno> {
        if !self.flags.dirty_tracking {
            return Err(Errno::OPNOTSUPP);
        }
        VtdPagingDomain::read_and_clear_dirty(self, iova, len, clear, record)
    }
}
