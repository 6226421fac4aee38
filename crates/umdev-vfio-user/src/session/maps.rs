//! The client's DMA maps: IOVA ranges and the memory objects behind them
//! (what the session put into its IOAS). Ranges never overlap; an unmap
//! names a map exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use umdev_iommu::memory::MemoryObject;

use super::error::CmdError;
use crate::proto::MAX_DMA_MAPS;

/// One DMA_MAP.
#[derive(Debug)]
pub(super) struct DmaMapping {
    /// Size in bytes.
    pub size: u64,
    /// The memory placed in the host address space and mapped in the IOAS.
    pub memory: Arc<MemoryObject>,
}

/// The maps of one session, by IOVA.
#[derive(Debug, Default)]
pub(super) struct DmaMaps {
    maps: BTreeMap<u64, DmaMapping>,
}

impl DmaMaps {
    /// Number of maps.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Bytes of message-based (remote) memory mapped.
    pub fn remote_bytes(&self) -> u64 {
        self.maps
            .values()
            .filter(|m| m.memory.is_remote())
            .map(|m| m.size)
            .sum()
    }

    /// Whether `[addr, addr + size)` may be added: EEXIST if it overlaps a
    /// map, ENOSPC past `max_dma_maps`. `size` is non-zero and the range
    /// does not wrap (checked by the decoder).
    pub fn check_insert(&self, addr: u64, size: u64) -> Result<(), CmdError> {
        let end = addr + size;
        let before = self.maps.range(..end).next_back();
        if before.is_some_and(|(&a, m)| a + m.size > addr) {
            return Err(CmdError::MapExists { addr, size });
        }
        if self.maps.len() >= MAX_DMA_MAPS as usize {
            return Err(CmdError::TooManyMaps);
        }
        Ok(())
    }

    /// Records a map that [`DmaMaps::check_insert`] allowed.
    pub fn insert(&mut self, addr: u64, mapping: DmaMapping) {
        self.maps.insert(addr, mapping);
    }

    /// The map at exactly `[addr, addr + size)`: ENOENT otherwise.
    pub fn find_exact(&self, addr: u64, size: u64) -> Result<&DmaMapping, CmdError> {
        match self.maps.get(&addr) {
            Some(m) if m.size == size => Ok(m),
            _ => Err(CmdError::NoMap { addr, size }),
        }
    }

    /// Removes the map at `addr`.
    pub fn remove(&mut self, addr: u64) -> Option<DmaMapping> {
        self.maps.remove(&addr)
    }

    /// Removes every map.
    pub fn take_all(&mut self) -> Vec<DmaMapping> {
        std::mem::take(&mut self.maps).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use umdev_iommu::memory::HostMemory;

    use super::*;

    proptest! {
        /// Against a model of page sets: an insert is refused exactly when
        /// it shares a page with a live map.
        #[test]
        fn overlap_matches_a_page_model(ops in proptest::collection::vec((0u64..32, 1u64..6, any::<bool>()), 1..60)) {
            let mem = HostMemory::new();
            let obj = mem.alloc_anonymous(4096).unwrap();
            let mut maps = DmaMaps::default();
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            for (page, pages, unmap) in ops {
                let (addr, size) = (page * 4096, pages * 4096);
                if unmap {
                    let exact = model.get(&addr) == Some(&size);
                    prop_assert_eq!(maps.find_exact(addr, size).is_ok(), exact);
                    if exact {
                        maps.remove(addr);
                        model.remove(&addr);
                    }
                    continue;
                }
                let overlaps = model.iter().any(|(&a, &s)| a < addr + size && addr < a + s);
                let r = maps.check_insert(addr, size);
                prop_assert_eq!(r.is_err(), overlaps);
                if !overlaps {
                    maps.insert(addr, DmaMapping { size, memory: obj.clone() });
                    model.insert(addr, size);
                }
            }
            prop_assert_eq!(maps.len(), model.len());
        }
    }
}
