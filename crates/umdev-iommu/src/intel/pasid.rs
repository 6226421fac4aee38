//! Context and PASID-entry programming (drivers/iommu/intel/pasid.c): the
//! device's scalable-mode context entry and PASID directory
//! (`intel_pasid_alloc_table`, `intel_pasid_setup_sm_context`), PASID
//! entries set up, replaced in one step or torn down
//! (`intel_pasid_setup_*`, `intel_pasid_replace_*`,
//! `intel_pasid_tear_down_entry`), each change followed by the
//! invalidation sequence VT-d asks for (kernel-semantics §5.1).

use umdev_pci::Bdf;

use super::unit::IntelIommu;
use crate::memory::PhysAddr;
use crate::vtd::layout::{DecodedPasid, decode_pasid_entry, encode_pasid_entry};
use crate::vtd::{InvDesc, IotlbInvalidation, PasidEntry, UnitError};

/// The IOTLB invalidation VT-d asks for after a present PASID entry
/// changes: PASID-based for first-level and pass-through entries,
/// domain-selective when the entry used a second stage.
fn flush_for(old: &DecodedPasid, pasid: u32) -> IotlbInvalidation {
    match old.entry {
        PasidEntry::SecondLevel { did, .. } | PasidEntry::Nested { did, .. } => {
            IotlbInvalidation::Domain(did)
        }
        PasidEntry::FirstLevel { did, .. } | PasidEntry::PassThrough { did } => {
            IotlbInvalidation::Pasid { did, pasid }
        }
    }
}

impl IntelIommu {
    /// Writes the device's scalable-mode context entry and allocates a
    /// PASID directory for `max_pasids` (0: no PASID support, PASIDE
    /// clear). Not-present to present needs no invalidation.
    pub fn setup_context(&self, bdf: Bdf, max_pasids: u32) -> Result<(), UnitError> {
        self.write_structures(|c| c.tables.setup_context(bdf, max_pasids))
    }

    /// Clears the device's context entry and frees its PASID structures,
    /// then invalidates the context / PASID caches and the IOTLB entries
    /// of every PASID entry that was present, and drains in-flight DMA.
    pub fn teardown_context(&self, bdf: Bdf) {
        let present = self.write_structures(|c| c.tables.teardown_context(bdf));
        let mut descs = vec![InvDesc::ContextCache(bdf)];
        descs.extend(present.into_iter().filter_map(|(pasid, raw)| {
            let old = decode_pasid_entry(raw).ok()?;
            Some(InvDesc::Iotlb(flush_for(&old, pasid)))
        }));
        descs.push(InvDesc::Wait);
        self.unit().submit(&descs);
    }

    /// Whether the device has a context entry.
    pub fn has_context(&self, bdf: Bdf) -> bool {
        self.control().tables.has_context(bdf)
    }

    fn check_pasid(&self, bdf: Bdf, pasid: u32) -> Result<(), UnitError> {
        if u64::from(pasid) >= 1 << self.unit().config().pasid_bits {
            return Err(UnitError::PasidRange { bdf, pasid });
        }
        Ok(())
    }

    fn encode(&self, entry: &PasidEntry) -> [u64; 8] {
        encode_pasid_entry(entry, self.unit().agaw(), self.unit().ecap().smpwc())
    }

    /// Programs a PASID entry that is not present (intel_pasid_setup_*):
    /// EBUSY if one is, EINVAL for a PASID beyond the unit or the device's
    /// directory, ENODEV without a context entry. Not-present to present
    /// needs no invalidation (the unit does not cache absent entries).
    pub fn set_pasid_entry(
        &self,
        bdf: Bdf,
        pasid: u32,
        entry: PasidEntry,
    ) -> Result<(), UnitError> {
        self.check_pasid(bdf, pasid)?;
        let raw = self.encode(&entry);
        self.write_structures(|c| {
            let slot = c.tables.entry_slot_alloc(bdf, pasid)?;
            if slot.read()?[0] & 1 != 0 {
                return Err(UnitError::Busy { bdf, pasid });
            }
            slot.write(raw)?;
            Ok(())
        })
    }

    /// Replaces a present PASID entry in one step (intel_pasid_replace_*)
    /// and flushes what the old one cached; EINVAL if none is present.
    /// Returns the old entry.
    pub fn replace_pasid_entry(
        &self,
        bdf: Bdf,
        pasid: u32,
        entry: PasidEntry,
    ) -> Result<PasidEntry, UnitError> {
        self.check_pasid(bdf, pasid)?;
        let raw = self.encode(&entry);
        let old = self.write_structures(|c| {
            let slot = c
                .tables
                .entry_slot(bdf, pasid)?
                .ok_or(UnitError::NotPresent { bdf, pasid })?;
            let old = decode_pasid_entry(slot.read()?)
                .map_err(|_| UnitError::NotPresent { bdf, pasid })?;
            slot.write(raw)?;
            Ok::<_, UnitError>(old)
        })?;
        self.flush_pasid_change(bdf, pasid, &old);
        Ok(old.entry)
    }

    /// Clears a PASID entry (intel_pasid_tear_down_entry) and flushes what
    /// it cached; requests through it fault from the moment this returns.
    /// Returns the old entry, if one was present.
    pub fn clear_pasid_entry(&self, bdf: Bdf, pasid: u32) -> Result<Option<PasidEntry>, UnitError> {
        self.check_pasid(bdf, pasid)?;
        let old = self.write_structures(|c| {
            let Some(slot) = c.tables.entry_slot(bdf, pasid)? else {
                return Ok(None);
            };
            let old = decode_pasid_entry(slot.read()?).ok();
            slot.clear()?;
            Ok::<_, UnitError>(old)
        })?;
        if let Some(old) = &old {
            self.flush_pasid_change(bdf, pasid, old);
        }
        Ok(old.map(|d| d.entry))
    }

    /// The PASID entry as decoded from memory, if present.
    pub fn pasid_entry(&self, bdf: Bdf, pasid: u32) -> Option<PasidEntry> {
        let control = self.control();
        let slot = control.tables.entry_slot(bdf, pasid).ok()??;
        decode_pasid_entry(slot.read().ok()?).ok().map(|d| d.entry)
    }

    /// Host-physical address of the PASID entry, if its table exists.
    pub fn pasid_entry_addr(&self, bdf: Bdf, pasid: u32) -> Option<PhysAddr> {
        let control = self.control();
        Some(control.tables.entry_slot(bdf, pasid).ok()??.addr())
    }

    /// PASID-cache invalidation, then IOTLB (kernel-semantics §5.1), then
    /// the in-flight drain.
    fn flush_pasid_change(&self, bdf: Bdf, pasid: u32, old: &DecodedPasid) {
        self.unit().submit(&[
            InvDesc::PasidCache { bdf, pasid },
            InvDesc::Iotlb(flush_for(old, pasid)),
            InvDesc::Wait,
        ]);
    }
}
