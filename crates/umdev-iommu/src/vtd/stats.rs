//! Unit counters. The DMA path adds to its thread's shard; readers sum.

use std::sync::atomic::{AtomicU64, Ordering};

use super::shard::{Padded, SHARDS, shard_index};
use crate::pgtable::Access;

/// A counter the DMA path updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    IotlbHit,
    IotlbMiss,
    PasidCacheHit,
    PasidCacheMiss,
    DmaReadBytes,
    DmaWriteBytes,
    IotlbInvalidations,
    Drains,
}

const COUNTERS: usize = 8;

/// Sharded counters of one unit.
pub(crate) struct Counters {
    shards: Box<[Padded<[AtomicU64; COUNTERS]>]>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.local().add(counter, n);
    }

    /// The calling thread's shard, for several adds.
    #[inline]
    pub(crate) fn local(&self) -> LocalCounters<'_> {
        LocalCounters(&self.shards[shard_index()])
    }

    pub(crate) fn get(&self, counter: Counter) -> u64 {
        self.shards
            .iter()
            .map(|s| s[counter as usize].load(Ordering::Relaxed))
            .sum()
    }
}

/// One shard of the counters.
pub(crate) struct LocalCounters<'a>(&'a [AtomicU64; COUNTERS]);

impl LocalCounters<'_> {
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if n != 0 {
            self.0[counter as usize].fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// A snapshot of a unit's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitStats {
    /// Translations served by the IOTLB.
    pub iotlb_hits: u64,
    /// Translations that walked the page tables.
    pub iotlb_misses: u64,
    /// PASID-entry lookups served by the PASID cache.
    pub pasid_cache_hits: u64,
    /// PASID-entry lookups that walked root / context / PASID tables.
    pub pasid_cache_misses: u64,
    /// Bytes devices read from memory.
    pub dma_read_bytes: u64,
    /// Bytes devices wrote to memory.
    pub dma_write_bytes: u64,
    /// IOTLB invalidations processed.
    pub iotlb_invalidations: u64,
    /// In-flight DMA drains waited for (one per strict flush).
    pub drains: u64,
    /// Faults recorded in the log (including ones since dropped).
    pub faults: u64,
    /// Faults dropped because the log was full.
    pub faults_dropped: u64,
    /// Faults not recorded because fault processing was disabled (FPD).
    pub faults_suppressed: u64,
}

/// Cache hits and misses of one request, added to the counters at once.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) pasid_hits: u64,
    pub(crate) pasid_misses: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) read_bytes: u64,
    pub(crate) write_bytes: u64,
}

impl Tally {
    /// Counts the bytes of a finished DMA.
    pub(crate) fn transferred(&mut self, access: Access, len: u64) {
        match access {
            Access::Read => self.read_bytes += len,
            Access::Write => self.write_bytes += len,
        }
    }
}
