//! The system-wide PASID name space (Linux `ioasid_alloc` of v5.x, today
//! `iommu_alloc_global_pasid`): PASIDs handed out by the kernel side, e.g.
//! the default PASID of an auxiliary domain.

use std::collections::BTreeSet;

use parking_lot::Mutex;

/// Lowest PASID the allocator hands out (`IOMMU_FIRST_GLOBAL_PASID`;
/// PASID 0 is `IOMMU_NO_PASID`).
pub const FIRST_GLOBAL_PASID: u32 = 1;

/// Allocates PASIDs from one global space; a PASID stays allocated until it
/// is freed, whichever device it is used on.
#[derive(Debug, Default)]
pub struct IoasidAllocator {
    used: Mutex<BTreeSet<u32>>,
}

impl IoasidAllocator {
    /// An allocator with every PASID free.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lowest free PASID in `[min, max]` (inclusive), marked used; `None`
    /// when the range is empty or full.
    pub fn alloc(&self, min: u32, max: u32) -> Option<u32> {
        if min > max {
            return None;
        }
        let mut used = self.used.lock();
        let mut candidate = min;
        for &taken in used.range(min..=max) {
            if taken != candidate {
                break;
            }
            candidate = candidate.checked_add(1)?;
        }
        if candidate > max {
            return None;
        }
        used.insert(candidate);
        Some(candidate)
    }

    /// Returns `pasid` to the pool; freeing a free PASID does nothing.
    pub fn free(&self, pasid: u32) {
        self.used.lock().remove(&pasid);
    }

    /// Whether `pasid` is currently allocated.
    pub fn is_allocated(&self, pasid: u32) -> bool {
        self.used.lock().contains(&pasid)
    }

    /// Number of allocated PASIDs.
    pub fn allocated(&self) -> usize {
        self.used.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lowest_free_first_and_bounded() {
        let a = IoasidAllocator::new();
        assert_eq!(a.alloc(1, 3), Some(1));
        assert_eq!(a.alloc(1, 3), Some(2));
        assert_eq!(a.alloc(1, 3), Some(3));
        assert_eq!(a.alloc(1, 3), None);
        a.free(2);
        assert_eq!(a.alloc(1, 3), Some(2));
        assert_eq!(a.alloc(5, 4), None);
        assert_eq!(a.alloc(u32::MAX, u32::MAX), Some(u32::MAX));
        assert_eq!(a.alloc(u32::MAX, u32::MAX), None);
    }

    proptest! {
        /// Against a set model: alloc returns the lowest free PASID in range.
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec((any::<bool>(), 0u32..40, 0u32..40), 1..400)) {
            let a = IoasidAllocator::new();
            let mut model = BTreeSet::new();
            for (is_alloc, x, y) in ops {
                if is_alloc {
                    let (min, max) = (x.min(y), x.max(y));
                    let expect = (min..=max).find(|p| !model.contains(p));
                    if let Some(p) = expect {
                        model.insert(p);
                    }
                    prop_assert_eq!(a.alloc(min, max), expect);
                } else {
                    model.remove(&x);
                    a.free(x);
                }
                prop_assert_eq!(a.allocated(), model.len());
            }
        }
    }
}
