//! The IOTLB: leaf translations keyed by (domain id, PASID, page), any
//! page size, with the invalidation granularities of VT-d (global,
//! domain-selective, PASID-selective, page-selective).

use std::sync::atomic::{AtomicU8, Ordering};

use super::DomainId;
use super::seqcache::{KEY_VALID, Key, SeqCache};
use crate::memory::PhysAddr;
use crate::pgtable::{Prot, Translation};

/// The leaf sizes an entry may have, by size code.
const PAGE_SIZES: [u64; 3] = [1 << 12, 1 << 21, 1 << 30];

/// Above this many probes a range invalidation scans the whole IOTLB
/// (as Linux falls back from PSI to DSI beyond CAP.MAMV).
const MAX_PROBES: u64 = 64;

const DID_SHIFT: u32 = 32;
const PASID_MASK: u64 = 0xf_ffff;
const DIRTY: u64 = 1 << 2;

/// What an IOTLB invalidation removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IotlbInvalidation {
    /// Every entry (global invalidation).
    Global,
    /// Every entry of a domain id, all PASIDs (domain-selective).
    Domain(DomainId),
    /// Every entry of a domain id for one PASID (PASID-selective
    /// PASID-based IOTLB invalidation).
    Pasid {
        /// Domain id.
        did: DomainId,
        /// PASID.
        pasid: u32,
    },
    /// Entries of a domain id whose page overlaps `[iova, iova + len)`,
    /// for one PASID or all (page-selective).
    Range {
        /// Domain id.
        did: DomainId,
        /// One PASID, or all.
        pasid: Option<u32>,
        /// First byte.
        iova: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// A cached leaf translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IotlbEntry {
    /// The translation of the looked-up address.
    pub(crate) translation: Translation,
    /// Filled by a write walk (the leaf's dirty bit is set): a write may use
    /// it without walking again.
    pub(crate) dirty: bool,
}

fn key(did: DomainId, pasid: u32, code: usize, page: u64) -> Key {
    [
        KEY_VALID | u64::from(did) << DID_SHIFT | u64::from(pasid),
        page | code as u64,
    ]
}

fn key_did(key: Key) -> DomainId {
    (key[0] >> DID_SHIFT) as DomainId
}

fn key_pasid(key: Key) -> u32 {
    (key[0] & PASID_MASK) as u32
}

fn key_page(key: Key) -> (u64, u64) {
    let size = PAGE_SIZES[(key[1] & 3) as usize];
    (key[1] & !3, size)
}

/// One unit's IOTLB.
#[derive(Debug)]
pub(crate) struct Iotlb {
    cache: SeqCache<1>,
    /// Bit n set once an entry of size code n was inserted: lookups only
    /// probe sizes that can hit.
    sizes: AtomicU8,
}

impl Iotlb {
    /// An IOTLB of `4 << set_bits` entries.
    pub(crate) fn new(set_bits: u32) -> Self {
        // The set depends on the domain id and page only, so a range
        // invalidation for all PASIDs can probe.
        Self {
            cache: SeqCache::new(set_bits, KEY_VALID | 0xffff << DID_SHIFT),
            sizes: AtomicU8::new(0),
        }
    }

    /// Number of entries it holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// The cached translation of `iova` for (did, pasid).
    #[inline]
    pub(crate) fn lookup(&self, did: DomainId, pasid: u32, iova: u64) -> Option<IotlbEntry> {
        let sizes = self.sizes.load(Ordering::Relaxed);
        for (code, size) in PAGE_SIZES.iter().enumerate() {
            if sizes & (1 << code) == 0 {
                continue;
            }
            let page = iova & !(size - 1);
            if let Some([val]) = self.cache.lookup(key(did, pasid, code, page)) {
                let base: PhysAddr = val & !(size - 1);
                return Some(IotlbEntry {
                    translation: Translation {
                        phys: base | (iova & (size - 1)),
                        page_size: *size,
                        prot: Prot::from_bits_truncate(val as u32 & 3),
                    },
                    dirty: val & DIRTY != 0,
                });
            }
        }
        None
    }

    /// Read before a walk whose result will be inserted.
    pub(crate) fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Caches the walk result `t` for `iova` (dropped if an invalidation
    /// began after `generation`, or for a leaf size the IOTLB has no tag
    /// for).
    pub(crate) fn insert(
        &self,
        did: DomainId,
        pasid: u32,
        iova: u64,
        entry: IotlbEntry,
        generation: u64,
    ) {
        let t = entry.translation;
        let Some(code) = PAGE_SIZES.iter().position(|&s| s == t.page_size) else {
            return;
        };
        self.sizes.fetch_or(1 << code, Ordering::Relaxed);
        let mask = t.page_size - 1;
        let val =
            (t.phys & !mask) | u64::from(t.prot.bits() & 3) | (u64::from(entry.dirty) * DIRTY);
        self.cache
            .insert(key(did, pasid, code, iova & !mask), [val], generation);
    }

    /// Removes what `inv` names; returns the number of entries removed.
    pub(crate) fn invalidate(&self, inv: IotlbInvalidation) -> usize {
        self.cache.begin_invalidation();
        match inv {
            IotlbInvalidation::Global => self.cache.invalidate_all(|_| true),
            IotlbInvalidation::Domain(did) => self.cache.invalidate_all(|k| key_did(k) == did),
            IotlbInvalidation::Pasid { did, pasid } => self
                .cache
                .invalidate_all(|k| key_did(k) == did && key_pasid(k) == pasid),
            IotlbInvalidation::Range {
                did,
                pasid,
                iova,
                len,
            } => {
                let last = iova.saturating_add(len.max(1) - 1);
                let hit = |k: Key| {
                    let (page, size) = key_page(k);
                    key_did(k) == did
                        && pasid.is_none_or(|p| key_pasid(k) == p)
                        && page <= last
                        && page + (size - 1) >= iova
                };
                let probes: u64 = PAGE_SIZES
                    .iter()
                    .map(|size| (last / size).saturating_sub(iova / size).saturating_add(1))
                    .sum();
                if probes > MAX_PROBES {
                    return self.cache.invalidate_all(hit);
                }
                let mut removed = 0;
                for (code, size) in PAGE_SIZES.iter().enumerate() {
                    let mut page = iova & !(size - 1);
                    while page <= last {
                        // Any PASID maps to the same set as PASID 0.
                        removed += self.cache.invalidate_set_of(key(did, 0, code, page), hit);
                        page += size;
                    }
                }
                removed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phys: u64, size: u64) -> IotlbEntry {
        IotlbEntry {
            translation: Translation {
                phys,
                page_size: size,
                prot: Prot::READ | Prot::WRITE,
            },
            dirty: false,
        }
    }

    #[test]
    fn lookups_find_any_page_size() {
        let tlb = Iotlb::new(4);
        let g = tlb.generation();
        tlb.insert(3, 0, 0x1234_5000, entry(0x9_0000_0000, 1 << 12), g);
        tlb.insert(3, 0, 0x4020_0000, entry(0xa_0020_0000, 1 << 21), g);
        tlb.insert(3, 0, 0x8000_0000, entry(0xc_0000_0000, 1 << 30), g);
        let hit = tlb.lookup(3, 0, 0x1234_5abc).unwrap();
        assert_eq!(hit.translation.phys, 0x9_0000_0abc);
        let hit = tlb.lookup(3, 0, 0x4031_2345).unwrap();
        assert_eq!(hit.translation.phys, 0xa_0031_2345);
        assert_eq!(hit.translation.page_size, 1 << 21);
        let hit = tlb.lookup(3, 0, 0xbfff_ffff).unwrap();
        assert_eq!(hit.translation.phys, 0xc_3fff_ffff);
        assert!(tlb.lookup(3, 1, 0x1234_5000).is_none(), "other PASID");
        assert!(tlb.lookup(4, 0, 0x1234_5000).is_none(), "other domain");
        assert!(tlb.lookup(3, 0, 0x1234_6000).is_none(), "next page");
    }

    #[test]
    fn invalidation_granularities() {
        let tlb = Iotlb::new(6);
        let fill = || {
            let g = tlb.generation();
            for pasid in [0, 5] {
                for did in [2, 3] {
                    tlb.insert(did, pasid, 0x1000, entry(0x1_0000_0000, 1 << 12), g);
                    tlb.insert(did, pasid, 0x20_0000, entry(0x1_0020_0000, 1 << 21), g);
                }
            }
        };
        let present = |did, pasid, iova| tlb.lookup(did, pasid, iova).is_some();

        fill();
        assert_eq!(tlb.invalidate(IotlbInvalidation::Domain(2)), 4);
        assert!(!present(2, 0, 0x1000) && !present(2, 5, 0x20_0000) && present(3, 5, 0x1000));

        fill();
        assert_eq!(
            tlb.invalidate(IotlbInvalidation::Pasid { did: 3, pasid: 5 }),
            2
        );
        assert!(present(3, 0, 0x1000) && !present(3, 5, 0x1000) && present(2, 5, 0x1000));

        fill();
        let range = |pasid, iova, len| IotlbInvalidation::Range {
            did: 2,
            pasid,
            iova,
            len,
        };
        // A 4K range inside the 2M page removes that 2M entry only.
        assert_eq!(tlb.invalidate(range(Some(0), 0x30_0000, 0x1000)), 1);
        assert!(!present(2, 0, 0x20_0000) && present(2, 0, 0x1000) && present(2, 5, 0x20_0000));
        // All PASIDs, probing.
        assert_eq!(tlb.invalidate(range(None, 0x1000, 0x1000)), 2);
        assert!(!present(2, 5, 0x1000) && present(3, 0, 0x1000));
        // A huge range scans.
        fill();
        assert_eq!(tlb.invalidate(range(None, 0, 1 << 40)), 4);
        assert!(present(3, 0, 0x1000) && present(3, 5, 0x20_0000));
        assert_eq!(tlb.invalidate(IotlbInvalidation::Global), 4);
        assert!(!present(3, 0, 0x1000));
    }

    #[test]
    fn dirty_flag_and_prot_are_kept() {
        let tlb = Iotlb::new(2);
        let mut e = entry(0x2_0000_0000, 1 << 12);
        e.translation.prot = Prot::READ;
        e.dirty = true;
        tlb.insert(9, 0, 0x7000, e, tlb.generation());
        let hit = tlb.lookup(9, 0, 0x7008).unwrap();
        assert_eq!(hit.translation.prot, Prot::READ);
        assert!(hit.dirty);
    }
}
