//! [`IommuUnit`]: one VT-d-like unit in scalable mode. Software programs
//! context and PASID entries through it (with the invalidation sequence
//! the VT-d spec asks for after each change); devices translate through it
//! ([`super::translate`], [`super::dma`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use parking_lot::Mutex;
use umdev_pci::Bdf;

use super::device_stats::DeviceCounters;
use super::did::DomainIds;
use super::fault::{FaultHandlers, FaultLog};
use super::gate::DmaGate;
use super::iotlb::{Iotlb, IotlbInvalidation};
use super::layout::{DecodedPasid, decode_pasid_entry, encode_pasid_entry};
use super::pasid_cache::PasidCache;
use super::regs::{Cap, Ecap, rtaddr_reg, width_to_agaw};
use super::shard::{Padded, backoff};
use super::stats::{Counter, Counters, UnitStats};
use super::tables::{StructureFault, Tables, read_pasid_entry};
use super::{DomainId, FaultHandler, PasidEntry, UnitConfig, UnitError};
use crate::memory::{HostMemory, PhysAddr};
use crate::pgtable::PGSIZE_4K_2M_1G;

/// IOTLB sets (of 4 ways): 4096 entries.
const IOTLB_SET_BITS: u32 = 10;
/// PASID-cache sets (of 4 ways): 1024 entries.
const PASID_CACHE_SET_BITS: u32 = 8;

/// What software owns: the structures and the domain ids.
struct Control {
    tables: Tables,
    dids: DomainIds,
}

/// One IOMMU unit (a DMAR unit in scalable mode).
pub struct IommuUnit {
    config: UnitConfig,
    cap: Cap,
    ecap: Ecap,
    agaw: u8,
    pub(super) mem: Arc<HostMemory>,
    roots: Vec<(u16, PhysAddr)>,
    control: Mutex<Control>,
    /// Seqlock over structure writes, so a hardware walk never sees a
    /// half-written entry.
    structures: Padded<AtomicU64>,
    pub(super) pasid_cache: PasidCache,
    pub(super) iotlb: Iotlb,
    pub(super) gate: DmaGate,
    pub(super) counters: Counters,
    pub(super) device_counters: DeviceCounters,
    faults: FaultLog,
    handlers: FaultHandlers,
}

impl std::fmt::Debug for IommuUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IommuUnit")
            .field("name", &self.config.name)
            .field("segments", &self.config.segments)
            .field("cap", &format_args!("{:#x}", self.cap.0))
            .field("ecap", &format_args!("{:#x}", self.ecap.0))
            .finish_non_exhaustive()
    }
}

fn check_config(config: &UnitConfig) -> Result<(), &'static str> {
    if config.segments.is_empty() {
        return Err("translates no segment");
    }
    if config.address_widths.is_empty()
        || config
            .address_widths
            .iter()
            .any(|w| ![39, 48, 57].contains(w))
    {
        return Err("address widths must be 39, 48 or 57");
    }
    if config.pasid_bits > 20 {
        return Err("PASIDs are at most 20 bits");
    }
    if config.pgsize_bitmap & (1 << 12) == 0 || config.pgsize_bitmap & !PGSIZE_4K_2M_1G != 0 {
        return Err("page sizes must include 4K and be among 4K/2M/1G");
    }
    if config.fault_log_size == 0 {
        return Err("the fault log needs room for one record");
    }
    Ok(())
}

impl IommuUnit {
    /// Builds a unit with an empty root table per segment.
    pub fn new(mem: Arc<HostMemory>, config: UnitConfig) -> Result<Arc<Self>, UnitError> {
        check_config(&config).map_err(|reason| UnitError::BadConfig {
            unit: config.name.clone(),
            reason,
        })?;
        let cap = Cap::from_config(&config);
        let ecap = Ecap::from_config(&config);
        let tables = Tables::new(Arc::clone(&mem), &config.segments)?;
        Ok(Arc::new(Self {
            agaw: width_to_agaw(cap.mgaw()),
            roots: tables.root_addrs(),
            control: Mutex::new(Control {
                tables,
                dids: DomainIds::new(cap.ndoms()),
            }),
            structures: Padded(AtomicU64::new(0)),
            pasid_cache: PasidCache::new(PASID_CACHE_SET_BITS),
            iotlb: Iotlb::new(IOTLB_SET_BITS),
            gate: DmaGate::new(),
            counters: Counters::new(),
            device_counters: DeviceCounters::new(),
            faults: FaultLog::new(config.fault_log_size),
            handlers: FaultHandlers::default(),
            mem,
            cap,
            ecap,
            config,
        }))
    }

    /// The unit's name (`dmar0`).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The description it was built from.
    pub fn config(&self) -> &UnitConfig {
        &self.config
    }

    /// CAP_REG.
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// ECAP_REG.
    pub fn ecap(&self) -> Ecap {
        self.ecap
    }

    /// The widest supported AGAW (Linux `iommu->agaw`).
    pub fn agaw(&self) -> u8 {
        self.agaw
    }

    /// The host memory its structures and page tables live in.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }

    /// Whether the unit translates requesters of `segment`.
    pub fn covers(&self, segment: u16) -> bool {
        self.roots.iter().any(|&(s, _)| s == segment)
    }

    /// Host-physical address of `segment`'s root table.
    pub fn root_table(&self, segment: u16) -> Option<PhysAddr> {
        self.roots
            .iter()
            .find_map(|&(s, root)| (s == segment).then_some(root))
    }

    /// RTADDR_REG for `segment` (root table address with SMT set).
    pub fn rtaddr_reg(&self, segment: u16) -> Option<u64> {
        self.root_table(segment).map(rtaddr_reg)
    }

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
        self.pasid_cache.invalidate_device(bdf);
        for (pasid, raw) in present {
            if let Ok(old) = decode_pasid_entry(raw) {
                self.invalidate_iotlb(Self::flush_for(&old, pasid));
            }
        }
        self.drain();
    }

    /// Whether the device has a context entry.
    pub fn has_context(&self, bdf: Bdf) -> bool {
        self.control.lock().tables.has_context(bdf)
    }

    /// A free domain id (never 0 or 1); ENOSPC when all are in use.
    pub fn alloc_domain_id(&self) -> Result<DomainId, UnitError> {
        if crate::failpoint::should_fail("unit: domain id") {
            return Err(UnitError::NoDomainId);
        }
        self.control
            .lock()
            .dids
            .alloc()
            .ok_or(UnitError::NoDomainId)
    }

    /// Returns a domain id: its IOTLB entries are flushed and its fault
    /// handler removed first, so a later owner of the id inherits nothing.
    pub fn free_domain_id(&self, did: DomainId) {
        self.flush_iotlb(IotlbInvalidation::Domain(did));
        self.handlers.set(did, None);
        self.control.lock().dids.free(did);
    }

    /// Domain ids in use.
    pub fn domain_ids_in_use(&self) -> usize {
        self.control.lock().dids.in_use()
    }

    fn check_pasid(&self, bdf: Bdf, pasid: u32) -> Result<(), UnitError> {
        if u64::from(pasid) >= 1 << self.config.pasid_bits {
            return Err(UnitError::PasidRange { bdf, pasid });
        }
        Ok(())
    }

    fn encode(&self, entry: &PasidEntry) -> [u64; 8] {
        encode_pasid_entry(entry, self.agaw, self.ecap.smpwc())
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
        let control = self.control.lock();
        let slot = control.tables.entry_slot(bdf, pasid).ok()??;
        decode_pasid_entry(slot.read().ok()?).ok().map(|d| d.entry)
    }

    /// Host-physical address of the PASID entry, if its table exists.
    pub fn pasid_entry_addr(&self, bdf: Bdf, pasid: u32) -> Option<PhysAddr> {
        let control = self.control.lock();
        Some(control.tables.entry_slot(bdf, pasid).ok()??.addr())
    }

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

    /// PASID-cache invalidation, then IOTLB (kernel-semantics §5.1), then
    /// the in-flight drain.
    fn flush_pasid_change(&self, bdf: Bdf, pasid: u32, old: &DecodedPasid) {
        self.pasid_cache.invalidate_pasid(bdf, pasid);
        self.invalidate_iotlb(Self::flush_for(old, pasid));
        self.drain();
    }

    /// Strict IOTLB flush: removes the entries, then waits for every DMA
    /// that may still use them. When it returns, no DMA uses them.
    pub fn flush_iotlb(&self, inv: IotlbInvalidation) {
        self.invalidate_iotlb(inv);
        self.drain();
    }

    /// Removes IOTLB entries without waiting for in-flight DMA (the caller
    /// batches several and then calls [`IommuUnit::drain`]).
    pub(crate) fn invalidate_iotlb(&self, inv: IotlbInvalidation) {
        self.iotlb.invalidate(inv);
        self.counters.add(Counter::IotlbInvalidations, 1);
    }

    /// Waits until every DMA that started before this call has finished.
    /// Must not be called while the same thread holds a DMA mapping.
    pub(crate) fn drain(&self) {
        self.gate.synchronize();
        self.counters.add(Counter::Drains, 1);
    }

    /// Number of entries the IOTLB holds at most.
    pub fn iotlb_capacity(&self) -> usize {
        self.iotlb.capacity()
    }

    /// The fault log.
    pub fn fault_log(&self) -> &FaultLog {
        &self.faults
    }

    /// Routes faults of translations tagged `did` to `handler` (`None`
    /// removes it).
    pub fn set_fault_handler(&self, did: DomainId, handler: Option<Arc<dyn FaultHandler>>) {
        self.handlers.set(did, handler);
    }

    pub(super) fn fault_handler(&self, did: DomainId) -> Option<Arc<dyn FaultHandler>> {
        self.handlers.get(did)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> UnitStats {
        let c = &self.counters;
        UnitStats {
            iotlb_hits: c.get(Counter::IotlbHit),
            iotlb_misses: c.get(Counter::IotlbMiss),
            pasid_cache_hits: c.get(Counter::PasidCacheHit),
            pasid_cache_misses: c.get(Counter::PasidCacheMiss),
            dma_read_bytes: c.get(Counter::DmaReadBytes),
            dma_write_bytes: c.get(Counter::DmaWriteBytes),
            iotlb_invalidations: c.get(Counter::IotlbInvalidations),
            drains: c.get(Counter::Drains),
            faults: self.faults.total(),
            faults_dropped: self.faults.dropped(),
            faults_suppressed: self.faults.suppressed(),
        }
    }

    /// Runs a structure update under the control lock with the structure
    /// seqlock held for writing.
    fn write_structures<R>(&self, update: impl FnOnce(&mut Control) -> R) -> R {
        let mut control = self.control.lock();
        let seq = self.structures.load(Ordering::Relaxed);
        self.structures.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let result = update(&mut control);
        self.structures.store(seq + 2, Ordering::Release);
        result
    }

    /// The hardware's walk of root, context, PASID directory and PASID
    /// table, retried while software is writing them.
    pub(super) fn read_structures(
        &self,
        bdf: Bdf,
        pasid: Option<u32>,
    ) -> Result<[u64; 3], StructureFault> {
        let root = self
            .root_table(bdf.segment())
            .ok_or((super::FaultReason::ContextNotPresent, false))?;
        let mut spins = 0;
        loop {
            let seq = self.structures.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let result = read_pasid_entry(&self.mem, root, bdf, pasid);
                fence(Ordering::Acquire);
                if self.structures.load(Ordering::Relaxed) == seq {
                    return result;
                }
            }
            backoff(&mut spins);
        }
    }
}
