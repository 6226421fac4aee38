//! The translation path: context → PASID entry → PGTT → IOTLB or page
//! walk, with permission checks and fault reporting. Nothing here takes a
//! lock: the PASID cache and IOTLB are seqlock caches, the walks read
//! entries atomically.

use umdev_pci::Bdf;

use super::iotlb::IotlbEntry;
use super::layout::{PASID_ENTRY_PGTT_PT, decode_pasid_entry};
use super::nested::{SecondStage, Stage, fault_reason, walk_nested};
use super::stats::{Counter, Tally};
use super::types::{DomainId, FaultReason, FaultRecord, IOMMU_NO_PASID, PasidEntry};
use super::unit::IommuUnit;
use crate::memory::PAGE_SIZE;
use crate::pgtable::{Access, HostTableReader, Prot, PtFormat, Translation, walk};

/// A fault before it is reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    pub(crate) reason: FaultReason,
    pub(crate) addr: u64,
    pub(crate) did: Option<DomainId>,
    /// FPD was set on the way: count, do not record.
    pub(crate) fpd: bool,
}

/// A requester's PASID entry, looked up once per DMA: the first three
/// words as cached. Only entries that decode and that the unit supports
/// are cached, so the hot path reads DID, FPD and PGTT straight from the
/// words and decodes the rest only to walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resolved {
    raw: [u64; 3],
    /// The PASID IOTLB entries are tagged with.
    tag: u32,
}

impl Resolved {
    /// DID (PASID entry bits 79:64).
    #[inline]
    pub(crate) fn did(&self) -> DomainId {
        self.raw[1] as DomainId
    }

    /// FPD, including one met in the context or directory entry.
    #[inline]
    pub(crate) fn fpd(&self) -> bool {
        self.raw[0] & 2 != 0
    }

    #[inline]
    fn pass_through(&self) -> bool {
        (self.raw[0] >> 6) & 7 == PASID_ENTRY_PGTT_PT
    }

    /// The full entry, for a walk.
    fn entry(&self) -> Result<PasidEntry, FaultReason> {
        decode_pasid_entry(self.raw).map(|d| d.entry)
    }
}

impl IommuUnit {
    /// Does the unit support what the entry asks for? Hardware treats
    /// anything else as reserved-field faults.
    fn check_supported(&self, entry: &PasidEntry) -> Result<(), FaultReason> {
        let (cap, ecap) = (self.cap(), self.ecap());
        let sl_ok = |levels: u8| ecap.slts() && cap.sagaw() & (1 << (levels - 2)) != 0;
        let fl_ok = |levels: u8| ecap.flts() && (levels == 4 || cap.fl5lp_support());
        let ok = match *entry {
            PasidEntry::FirstLevel { levels, .. } => fl_ok(levels),
            PasidEntry::SecondLevel {
                levels,
                dirty_tracking,
                ..
            } => sl_ok(levels) && (!dirty_tracking || ecap.slads()),
            PasidEntry::Nested {
                s1_levels,
                s1_flags,
                s2_levels,
                dirty_tracking,
                ..
            } => {
                ecap.nest()
                    && fl_ok(s1_levels)
                    && sl_ok(s2_levels)
                    && (!dirty_tracking || ecap.slads())
                    && (!s1_flags.sre || ecap.srs())
                    && (!s1_flags.eafe || ecap.eafs())
            }
            PasidEntry::PassThrough { .. } => ecap.pass_through(),
        };
        if ok {
            Ok(())
        } else {
            Err(FaultReason::Reserved)
        }
    }

    /// Finds the PASID entry a request from `bdf` with `pasid` uses.
    #[inline]
    pub(crate) fn resolve(
        &self,
        bdf: Bdf,
        pasid: Option<u32>,
        iova: u64,
        tally: &mut Tally,
    ) -> Result<Resolved, Fault> {
        if pasid.is_some_and(|p| u64::from(p) >= 1 << self.config().pasid_bits) {
            return Err(Fault {
                reason: FaultReason::PasidOutOfRange,
                addr: iova,
                did: None,
                fpd: false,
            });
        }
        let tag = pasid.unwrap_or(IOMMU_NO_PASID);
        if let Some(raw) = self.pasid_cache.lookup(bdf, pasid) {
            tally.pasid_hits += 1;
            return Ok(Resolved { raw, tag });
        }
        tally.pasid_misses += 1;
        let generation = self.pasid_cache.generation();
        let fault = |reason, fpd, did| Fault {
            reason,
            addr: iova,
            did,
            fpd,
        };
        let raw = self
            .read_structures(bdf, pasid)
            .map_err(|(reason, fpd)| fault(reason, fpd, None))?;
        let decoded = decode_pasid_entry(raw).map_err(|r| fault(r, raw[0] & 2 != 0, None))?;
        self.check_supported(&decoded.entry)
            .map_err(|r| fault(r, decoded.fpd, Some(decoded.entry.did())))?;
        self.pasid_cache.insert(bdf, pasid, raw, generation);
        Ok(Resolved { raw, tag })
    }

    /// Translates one address through a resolved PASID entry.
    #[inline]
    pub(crate) fn translate_resolved(
        &self,
        resolved: &Resolved,
        iova: u64,
        access: Access,
        tally: &mut Tally,
    ) -> Result<Translation, Fault> {
        let did = resolved.did();
        let fault = |reason, addr| Fault {
            reason,
            addr,
            did: Some(did),
            fpd: resolved.fpd(),
        };
        if resolved.pass_through() {
            if iova >> self.cap().mgaw() != 0 {
                return Err(fault(FaultReason::OutOfAperture, iova));
            }
            return Ok(Translation {
                phys: iova,
                page_size: PAGE_SIZE,
                prot: Prot::READ | Prot::WRITE,
            });
        }
        if let Some(hit) = self.iotlb.lookup(did, resolved.tag, iova) {
            // A write through an entry filled by a read walks again, so
            // the leaf's Dirty bit gets set (as a CPU TLB does).
            if access == Access::Read || hit.dirty {
                tally.hits += 1;
                if !hit.translation.prot.contains(access.needs()) {
                    return Err(fault(FaultReason::Permission, iova));
                }
                return Ok(hit.translation);
            }
        }
        tally.misses += 1;
        let generation = self.iotlb.generation();
        let entry = resolved.entry().map_err(|r| fault(r, iova))?;
        let translation = self
            .walk(&entry, iova, access)
            .map_err(|(reason, addr)| fault(reason, addr))?;
        let cached = IotlbEntry {
            translation,
            dirty: access == Access::Write,
        };
        self.iotlb
            .insert(did, resolved.tag, iova, cached, generation);
        Ok(translation)
    }

    /// The page walk for a translating entry.
    fn walk(
        &self,
        entry: &PasidEntry,
        iova: u64,
        access: Access,
    ) -> Result<Translation, (FaultReason, u64)> {
        let host = HostTableReader::new(&self.mem);
        match *entry {
            PasidEntry::FirstLevel { root, levels, .. } => walk(
                &host,
                PtFormat::FirstLevel { levels },
                root,
                iova,
                access,
                false,
            )
            .map_err(|f| (fault_reason(f, Stage::First), iova)),
            PasidEntry::SecondLevel {
                root,
                levels,
                dirty_tracking,
                ..
            } => walk(
                &host,
                PtFormat::SecondLevel { levels },
                root,
                iova,
                access,
                dirty_tracking,
            )
            .map_err(|f| (fault_reason(f, Stage::Second), iova)),
            PasidEntry::Nested {
                s1_root,
                s1_levels,
                s2_root,
                s2_levels,
                dirty_tracking,
                ..
            } => walk_nested(
                host,
                (s1_root, PtFormat::FirstLevel { levels: s1_levels }),
                SecondStage {
                    root: s2_root,
                    format: PtFormat::SecondLevel { levels: s2_levels },
                    dirty_tracking,
                },
                iova,
                access,
            ),
            PasidEntry::PassThrough { .. } => Ok(Translation {
                phys: iova,
                page_size: PAGE_SIZE,
                prot: Prot::READ | Prot::WRITE,
            }),
        }
    }

    pub(crate) fn count(&self, tally: &Tally) {
        let local = self.counters.local();
        local.add(Counter::PasidCacheHit, tally.pasid_hits);
        local.add(Counter::PasidCacheMiss, tally.pasid_misses);
        local.add(Counter::IotlbHit, tally.hits);
        local.add(Counter::IotlbMiss, tally.misses);
        local.add(Counter::DmaReadBytes, tally.read_bytes);
        local.add(Counter::DmaWriteBytes, tally.write_bytes);
    }

    /// A translation request from `bdf` (with `pasid`, or none) for `iova`:
    /// the host-physical address and the leaf it came from, or the fault,
    /// which is also logged (unless FPD) and handed to the domain's
    /// handler. The result is a snapshot: only DMA through a
    /// [`crate::dma::DmaPort`] is protected against a concurrent unmap.
    pub fn translate(
        &self,
        bdf: Bdf,
        pasid: Option<u32>,
        iova: u64,
        access: Access,
    ) -> Result<Translation, FaultRecord> {
        let mut tally = Tally::default();
        let result = self
            .resolve(bdf, pasid, iova, &mut tally)
            .and_then(|r| self.translate_resolved(&r, iova, access, &mut tally));
        self.count(&tally);
        result.map_err(|fault| self.report(bdf, pasid, access, fault))
    }

    /// Logs a fault (or counts it as suppressed under FPD) and delivers it
    /// to the handler registered for its domain id. Called with no DMA
    /// guard held, so a handler may unmap.
    pub(crate) fn report(
        &self,
        bdf: Bdf,
        pasid: Option<u32>,
        access: Access,
        fault: Fault,
    ) -> FaultRecord {
        let record = FaultRecord {
            requester: bdf,
            pasid,
            addr: fault.addr,
            access,
            reason: fault.reason,
            did: fault.did,
        };
        self.device_counters.count_fault(bdf, pasid);
        if fault.fpd {
            self.fault_log().suppress();
            return record;
        }
        self.fault_log().record(record);
        if let Some(handler) = fault.did.and_then(|did| self.fault_handler(did)) {
            handler.report(&record);
        }
        record
    }
}
