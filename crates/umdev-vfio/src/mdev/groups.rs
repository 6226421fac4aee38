//! Group numbers for devices that are their own singleton group (mdevs,
//! and any emulated device with vendor-defined isolation): one allocator,
//! [`SingletonGroups::global`], numbers both (an [`super::MdevBus`] uses it
//! unless given another, and `VfioDevice::new_emulated` takes from it).
//!
//! Linux allocates every `iommu_group->id` from one IDA, so a VFIO
//! emulated-IOMMU group (`vfio_noiommu_group_alloc` → `iommu_group_alloc`)
//! never shares a number with a platform IOMMU group. Here the platform's
//! groups are numbered by the PCI layer (lowest free, from 0, in probe
//! order), which sits below this crate and cannot be asked to share its
//! allocator. Singleton groups are therefore numbered lowest free from
//! [`SINGLETON_GROUP_BASE`] = 2^31 upwards. A platform group number is
//! always below the number of platform groups alive at once, and each
//! group holds at least one PCI function with its own 4 KiB config space,
//! so a platform number reaching 2^31 would need 2^31 functions (8 TiB of
//! config space): the two ranges cannot meet.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::MdevError;

/// First singleton group number; see the module documentation.
pub const SINGLETON_GROUP_BASE: u32 = 1 << 31;

/// Allocator of singleton group numbers (lowest free, as `ida_alloc`).
/// Share one between every registry of singleton groups so their numbers
/// stay unique.
#[derive(Debug, Default)]
pub struct SingletonGroups {
    used: Mutex<BTreeSet<u32>>,
}

impl SingletonGroups {
    /// An empty allocator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide allocator, as Linux numbers every `iommu_group`
    /// of the system from one IDA.
    pub fn global() -> &'static Arc<SingletonGroups> {
        static GLOBAL: OnceLock<Arc<SingletonGroups>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(SingletonGroups::new()))
    }

    /// The lowest free number at or above [`SINGLETON_GROUP_BASE`];
    /// ENOSPC when all are used.
    pub fn alloc(&self) -> Result<u32, MdevError> {
        let mut used = self.used.lock();
        let mut candidate = SINGLETON_GROUP_BASE;
        for &n in used.iter() {
            if n != candidate {
                break;
            }
            candidate = candidate.checked_add(1).ok_or(MdevError::NoGroupNumber)?;
        }
        used.insert(candidate);
        Ok(candidate)
    }

    /// Gives `number` back.
    pub fn free(&self, number: u32) {
        self.used.lock().remove(&number);
    }

    /// Whether `number` is currently allocated.
    pub fn is_allocated(&self, number: u32) -> bool {
        self.used.lock().contains(&number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_and_reuse() {
        let g = SingletonGroups::new();
        let a = g.alloc().unwrap();
        let b = g.alloc().unwrap();
        let c = g.alloc().unwrap();
        assert_eq!(
            [a, b, c],
            [
                SINGLETON_GROUP_BASE,
                SINGLETON_GROUP_BASE + 1,
                SINGLETON_GROUP_BASE + 2
            ]
        );
        g.free(b);
        assert!(!g.is_allocated(b));
        assert_eq!(g.alloc().unwrap(), b);
        assert_eq!(g.alloc().unwrap(), SINGLETON_GROUP_BASE + 3);
    }
}
