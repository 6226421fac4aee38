//! The PASID-entry cache: the first three words of present PASID-table
//! entries, keyed by (segment, requester id, PASID), as hardware caches
//! them after a walk of root, context, PASID directory and PASID table.

use umdev_pci::Bdf;

use super::seqcache::{KEY_VALID, Key, SeqCache};

/// Tags requests without a PASID (they use RID_PASID, but a request that
/// carries PASID 0 is checked against PASIDE, so the two are cached apart).
const NO_PASID_TAG: u64 = 1 << 20;
const RID_SHIFT: u32 = 24;
const SEGMENT_SHIFT: u32 = 40;
const DEVICE_MASK: u64 = 0xffff_ffff << RID_SHIFT;

fn device_bits(bdf: Bdf) -> u64 {
    u64::from(bdf.segment()) << SEGMENT_SHIFT | u64::from(bdf.rid()) << RID_SHIFT
}

fn key(bdf: Bdf, pasid: Option<u32>) -> Key {
    let pasid = pasid.map_or(NO_PASID_TAG, u64::from);
    [KEY_VALID | device_bits(bdf) | pasid, 0]
}

/// One unit's PASID-entry cache.
#[derive(Debug)]
pub(crate) struct PasidCache {
    cache: SeqCache<3>,
}

impl PasidCache {
    /// A cache of `4 << set_bits` entries.
    pub(crate) fn new(set_bits: u32) -> Self {
        Self {
            cache: SeqCache::new(set_bits, u64::MAX),
        }
    }

    /// The cached entry words for a request from `bdf` with `pasid`.
    #[inline]
    pub(crate) fn lookup(&self, bdf: Bdf, pasid: Option<u32>) -> Option<[u64; 3]> {
        self.cache.lookup(key(bdf, pasid))
    }

    /// Read before walking the structures.
    pub(crate) fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Caches entry words found by a walk.
    pub(crate) fn insert(&self, bdf: Bdf, pasid: Option<u32>, val: [u64; 3], generation: u64) {
        self.cache.insert(key(bdf, pasid), val, generation);
    }

    /// PASID-selective invalidation. The RID_PASID entry is also cached
    /// under the no-PASID tag, so `pasid` 0 removes both.
    pub(crate) fn invalidate_pasid(&self, bdf: Bdf, pasid: u32) {
        self.cache.begin_invalidation();
        let tagged = key(bdf, Some(pasid));
        self.cache.invalidate_set_of(tagged, |k| k == tagged);
        if pasid == super::IOMMU_NO_PASID {
            let untagged = key(bdf, None);
            self.cache.invalidate_set_of(untagged, |k| k == untagged);
        }
    }

    /// Every entry of one requester (after a context-entry change).
    pub(crate) fn invalidate_device(&self, bdf: Bdf) {
        self.cache.begin_invalidation();
        let device = device_bits(bdf);
        self.cache.invalidate_all(|k| k[0] & DEVICE_MASK == device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_by_device_and_pasid() {
        let pc = PasidCache::new(3);
        let a = Bdf::new(0, 1, 0, 0).unwrap();
        let b = Bdf::new(1, 1, 0, 0).unwrap();
        let g = pc.generation();
        pc.insert(a, None, [1, 2, 3], g);
        pc.insert(a, Some(0), [4, 5, 6], g);
        pc.insert(a, Some(7), [7, 8, 9], g);
        pc.insert(b, Some(7), [10, 11, 12], g);
        assert_eq!(pc.lookup(a, None), Some([1, 2, 3]));
        assert_eq!(pc.lookup(a, Some(0)), Some([4, 5, 6]));
        assert_eq!(pc.lookup(b, Some(7)), Some([10, 11, 12]));
        pc.invalidate_pasid(a, 0);
        assert_eq!(pc.lookup(a, None), None);
        assert_eq!(pc.lookup(a, Some(0)), None);
        assert_eq!(pc.lookup(a, Some(7)), Some([7, 8, 9]));
        pc.invalidate_device(a);
        assert_eq!(pc.lookup(a, Some(7)), None);
        assert_eq!(pc.lookup(b, Some(7)), Some([10, 11, 12]));
    }
}
