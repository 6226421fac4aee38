//! [`IommuUnit`]: one VT-d unit in scalable mode, as silicon has it:
//! capability registers, a root table address register per segment, the
//! PASID cache, IOTLB, in-flight gate and fault log. It only reads the
//! structures software wrote ([`super::walk`]); software changes what it
//! cached through invalidation descriptors ([`IommuUnit::submit`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::device_stats::{DeviceCounters, DeviceStats};
use super::error::UnitError;
use super::fault::{FaultHandlers, FaultLog};
use super::gate::DmaGate;
use super::inv::InvDesc;
use super::iotlb::Iotlb;
use super::pasid_cache::PasidCache;
use super::regs::{Cap, Ecap, rtaddr_reg, width_to_agaw};
use super::shard::{Padded, backoff};
use super::stats::{Counter, Counters, UnitStats};
use super::types::{DomainId, FaultHandler, FaultReason};
use super::walk::{StructureFault, read_pasid_entry};
use crate::memory::{HostMemory, PhysAddr};
use crate::pgtable::PGSIZE_4K_2M_1G;
use umdev_pci::{Bdf, IommuUnitSpec};

/// IOTLB sets (of 4 ways): 4096 entries.
const IOTLB_SET_BITS: u32 = 10;
/// PASID-cache sets (of 4 ways): 1024 entries.
const PASID_CACHE_SET_BITS: u32 = 8;

/// One IOMMU unit (a DMAR unit in scalable mode).
pub struct IommuUnit {
    config: IommuUnitSpec,
    cap: Cap,
    ecap: Ecap,
    agaw: u8,
    pub(crate) mem: Arc<HostMemory>,
    /// RTADDR_REG per segment (0: not programmed).
    roots: Vec<(u16, AtomicU64)>,
    /// Seqlock over structure writes, so a hardware walk never sees a
    /// half-written entry (it stands in for the atomicity of one entry
    /// write on the memory bus).
    structures: Padded<AtomicU64>,
    pub(super) pasid_cache: PasidCache,
    pub(super) iotlb: Iotlb,
    pub(crate) gate: DmaGate,
    pub(crate) counters: Counters,
    pub(crate) device_counters: DeviceCounters,
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

fn check_config(config: &IommuUnitSpec) -> Result<(), &'static str> {
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
    /// Builds a unit with no root table programmed.
    pub fn new(mem: Arc<HostMemory>, config: IommuUnitSpec) -> Result<Arc<Self>, UnitError> {
        check_config(&config).map_err(|reason| UnitError::BadConfig {
            unit: config.name.clone(),
            reason,
        })?;
        let cap = Cap::from_config(&config);
        let ecap = Ecap::from_config(&config);
        Ok(Arc::new(Self {
            agaw: width_to_agaw(cap.mgaw()),
            roots: config
                .segments
                .iter()
                .map(|&s| (s, AtomicU64::new(0)))
                .collect(),
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
    pub fn config(&self) -> &IommuUnitSpec {
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

    /// Software sets `segment`'s root table address and the unit latches
    /// it (RTADDR_REG write + GCMD.SRTP, iommu_set_root_entry).
    pub fn set_root_table(&self, segment: u16, root: PhysAddr) {
        if let Some((_, reg)) = self.roots.iter().find(|(s, _)| *s == segment) {
            reg.store(root, Ordering::Release);
        }
    }

    /// Host-physical address of `segment`'s root table, once programmed.
    pub fn root_table(&self, segment: u16) -> Option<PhysAddr> {
        self.roots
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, reg)| reg.load(Ordering::Acquire))
            .filter(|&root| root != 0)
    }

    /// RTADDR_REG for `segment` (root table address with SMT set).
    pub fn rtaddr_reg(&self, segment: u16) -> Option<u64> {
        self.root_table(segment).map(rtaddr_reg)
    }

    /// Processes invalidation descriptors in order, as the invalidation
    /// queue does (qi_submit_sync): cache invalidations take effect when
    /// processed; [`InvDesc::Wait`] completes once every DMA that started
    /// before it has finished.
    pub fn submit(&self, descs: &[InvDesc]) {
        for desc in descs {
            match *desc {
                InvDesc::Iotlb(inv) => {
                    self.iotlb.invalidate(inv);
                    self.counters.add(Counter::IotlbInvalidations, 1);
                }
                InvDesc::PasidCache { bdf, pasid } => self.pasid_cache.invalidate_pasid(bdf, pasid),
                InvDesc::ContextCache(bdf) => self.pasid_cache.invalidate_device(bdf),
                InvDesc::Wait => {
                    self.gate.synchronize();
                    self.counters.add(Counter::Drains, 1);
                }
            }
        }
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

    pub(crate) fn fault_handler(&self, did: DomainId) -> Option<Arc<dyn FaultHandler>> {
        self.handlers.get(did)
    }

    /// A snapshot of the per-requester counters of every requester that
    /// issued DMA or faulted through this unit, in (requester, PASID)
    /// order.
    pub fn device_stats(&self) -> Vec<DeviceStats> {
        self.device_counters.stats()
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

    /// Runs a structure update by software with the structure seqlock held
    /// for writing; the caller serialises its writers.
    pub(crate) fn write_structures<R>(&self, update: impl FnOnce() -> R) -> R {
        let seq = self.structures.load(Ordering::Relaxed);
        self.structures.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let result = update();
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
            .ok_or((FaultReason::ContextNotPresent, false))?;
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
