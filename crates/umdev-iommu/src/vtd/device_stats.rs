//! Per-requester counters: what one device (a requester ID, or one PASID
//! of it) made the unit do. The DMA path adds to its thread's shard (a
//! small ordered map behind an uncontended lock: a lookup is a few
//! compares, no hashing); readers merge the shards.
//!
//! Only DMA issued through a [`crate::dma::DmaPort`] is counted here (the unit
//! totals in [`super::UnitStats`] also count bare [`IommuUnit::translate`]
//! calls); faults are counted wherever they are reported.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use umdev_pci::Bdf;

use super::shard::{Padded, SHARDS, shard_index};
use super::stats::Tally;

/// Distinct (requester, PASID) keys one shard tracks; beyond it, a new
/// PASID of a requester is counted under the requester without a PASID,
/// so a client spraying PASIDs cannot grow the daemon's memory.
const KEYS_PER_SHARD: usize = 1024;

/// Counters of one (requester, PASID).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cells {
    iotlb_hits: u64,
    iotlb_misses: u64,
    dma_read_bytes: u64,
    dma_write_bytes: u64,
    faults: u64,
}

impl Cells {
    fn merge(&mut self, other: &Cells) {
        self.iotlb_hits += other.iotlb_hits;
        self.iotlb_misses += other.iotlb_misses;
        self.dma_read_bytes += other.dma_read_bytes;
        self.dma_write_bytes += other.dma_write_bytes;
        self.faults += other.faults;
    }
}

type Key = (Bdf, Option<u32>);

/// One shard: the counters its threads updated.
type Shard = Padded<Mutex<BTreeMap<Key, Cells>>>;

/// Sharded per-requester counters of one unit.
pub(crate) struct DeviceCounters {
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for DeviceCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCounters").finish_non_exhaustive()
    }
}

impl DeviceCounters {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
        }
    }

    fn update(&self, bdf: Bdf, pasid: Option<u32>, f: impl FnOnce(&mut Cells)) {
        let mut shard = self.shards[shard_index()].lock();
        let key =
            if pasid.is_none() || shard.len() < KEYS_PER_SHARD || shard.contains_key(&(bdf, pasid))
            {
                (bdf, pasid)
            } else {
                (bdf, None)
            };
        f(shard.entry(key).or_default());
    }

    fn snapshot(&self) -> BTreeMap<Key, Cells> {
        let mut all: BTreeMap<Key, Cells> = BTreeMap::new();
        for shard in self.shards.iter() {
            for (key, cells) in shard.lock().iter() {
                all.entry(*key).or_default().merge(cells);
            }
        }
        all
    }
}

/// What one requester (or one PASID of it) made the unit do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceStats {
    /// The requester ID DMA was tagged with.
    pub requester: Bdf,
    /// The PASID it was tagged with (`None`: requests without PASID).
    pub pasid: Option<u32>,
    /// Translations served by the IOTLB.
    pub iotlb_hits: u64,
    /// Translations that walked the page tables.
    pub iotlb_misses: u64,
    /// Bytes the device read from memory.
    pub dma_read_bytes: u64,
    /// Bytes the device wrote to memory.
    pub dma_write_bytes: u64,
    /// Faults its requests raised (recorded or suppressed by FPD).
    pub faults: u64,
}

impl DeviceStats {
    /// IOTLB hits over translations, `None` before the first translation.
    pub fn iotlb_hit_ratio(&self) -> Option<f64> {
        let total = self.iotlb_hits + self.iotlb_misses;
        (total != 0).then(|| self.iotlb_hits as f64 / total as f64)
    }
}

impl DeviceCounters {
    /// Counts a finished DMA of `bdf` (tagged `pasid`) in its requester's
    /// counters: the hook of [`crate::dma::DmaPort`].
    pub(crate) fn count(&self, bdf: Bdf, pasid: Option<u32>, tally: &Tally) {
        self.update(bdf, pasid, |c| {
            c.iotlb_hits += tally.hits;
            c.iotlb_misses += tally.misses;
            c.dma_read_bytes += tally.read_bytes;
            c.dma_write_bytes += tally.write_bytes;
        });
    }

    /// Counts a fault reported for `bdf` (tagged `pasid`).
    pub(crate) fn count_fault(&self, bdf: Bdf, pasid: Option<u32>) {
        self.update(bdf, pasid, |c| c.faults += 1);
    }

    /// A snapshot of the per-requester counters of every requester that
    /// issued DMA or faulted through this unit, in (requester, PASID)
    /// order.
    pub(crate) fn stats(&self) -> Vec<DeviceStats> {
        self.snapshot()
            .into_iter()
            .map(|((requester, pasid), c)| DeviceStats {
                requester,
                pasid,
                iotlb_hits: c.iotlb_hits,
                iotlb_misses: c.iotlb_misses,
                dma_read_bytes: c.dma_read_bytes,
                dma_write_bytes: c.dma_write_bytes,
                faults: c.faults,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdf(dev: u8) -> Bdf {
        Bdf::new(0, 1, dev, 0).unwrap()
    }

    #[test]
    fn shards_merge_per_key() {
        let counters = std::sync::Arc::new(DeviceCounters::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        c.update(bdf(1), None, |c| c.dma_read_bytes += 8);
                        c.update(bdf(1), Some(3), |c| c.faults += 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = counters.snapshot();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&(bdf(1), None)].dma_read_bytes, 3200);
        assert_eq!(all[&(bdf(1), Some(3))].faults, 400);
    }

    #[test]
    fn pasid_keys_are_bounded_per_shard() {
        let counters = DeviceCounters::new();
        for pasid in 0..(KEYS_PER_SHARD as u32 + 100) {
            counters.update(bdf(2), Some(pasid), |c| c.faults += 1);
        }
        let all = counters.snapshot();
        assert!(all.len() <= KEYS_PER_SHARD + 1);
        let total: u64 = all.values().map(|c| c.faults).sum();
        assert_eq!(total, KEYS_PER_SHARD as u64 + 100, "nothing lost");
        assert_eq!(all[&(bdf(2), None)].faults, 100, "overflow folded in");
    }
}
