//! Page-table entry bits of both formats, and the per-format rules built
//! on them (kernel-semantics §5.1; Linux drivers/iommu/intel/iommu.h).
//!
//! Level numbering follows VT-d: level 1 holds 4 KiB leaves, level 2 may
//! hold 2 MiB superpages, level 3 1 GiB superpages, and the top level is
//! `format.levels()`.

use super::{Prot, PtFormat};
use crate::memory::PhysAddr;

/// Entries per 4 KiB table page.
pub const ENTRIES_PER_TABLE: usize = 512;

/// The most levels a format has (5-level paging).
pub(crate) const MAX_LEVELS: usize = 5;

/// Output address field of every entry, bits 51:12 (`VTD_PAGE_MASK`
/// limited to a 52-bit host address width).
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// First level (x86-64 paging): Present (`DMA_FL_PTE_PRESENT`).
pub const DMA_FL_PTE_PRESENT: u64 = 1 << 0;
/// First level: R/W, writes allowed (x86 `_PAGE_RW`; Linux writes
/// `DMA_PTE_WRITE`, the same bit).
pub const DMA_FL_PTE_RW: u64 = 1 << 1;
/// First level: U/S, user-mode access allowed (`DMA_FL_PTE_US`). Requests
/// without the privileged bit are user accesses, so Linux sets it on every
/// entry it writes for DMA.
pub const DMA_FL_PTE_US: u64 = 1 << 2;
/// First level: Accessed (`DMA_FL_PTE_ACCESS`).
pub const DMA_FL_PTE_ACCESS: u64 = 1 << 5;
/// First level: Dirty, leaves only (`DMA_FL_PTE_DIRTY`).
pub const DMA_FL_PTE_DIRTY: u64 = 1 << 6;
/// First level: Execute-disable (`DMA_FL_PTE_XD`); never written here.
pub const DMA_FL_PTE_XD: u64 = 1 << 63;

/// Both formats: page size, a superpage leaf at level 2 (2 MiB) or 3
/// (1 GiB) (`DMA_PTE_LARGE_PAGE`); reserved at levels 4 and 5.
pub const DMA_PTE_LARGE_PAGE: u64 = 1 << 7;

/// Second level: Read (`DMA_PTE_READ`).
pub const DMA_PTE_READ: u64 = 1 << 0;
/// Second level: Write (`DMA_PTE_WRITE`).
pub const DMA_PTE_WRITE: u64 = 1 << 1;
/// Second level: Accessed, set by hardware only with SSADE (no kernel
/// name; the kernel never reads it).
pub const DMA_SL_PTE_ACCESS: u64 = 1 << 8;
/// Second level: Dirty, set by hardware on writes only with SSADE
/// (`DMA_SL_PTE_DIRTY`).
pub const DMA_SL_PTE_DIRTY: u64 = 1 << 9;
/// Second level: Snoop (`DMA_PTE_SNP`); never written here.
pub const DMA_PTE_SNP: u64 = 1 << 11;

/// Shift of the address bits one entry at `level` covers.
pub(crate) fn level_shift(level: u8) -> u32 {
    12 + 9 * (u32::from(level) - 1)
}

/// Bytes one entry at `level` covers (the leaf size there).
pub(crate) fn level_size(level: u8) -> u64 {
    1 << level_shift(level)
}

/// Index of `iova` in a table at `level`.
pub(crate) fn level_index(iova: u64, level: u8) -> usize {
    ((iova >> level_shift(level)) as usize) & (ENTRIES_PER_TABLE - 1)
}

/// One entry of a table at some level that a range touches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// Index of the entry in its table.
    pub(crate) index: usize,
    /// First IOVA the entry covers.
    pub(crate) base: u64,
    /// Bytes the entry covers.
    pub(crate) size: u64,
    /// The part of the range inside the entry: `start..end`.
    pub(crate) start: u64,
    /// End (exclusive) of the part of the range inside the entry.
    pub(crate) end: u64,
}

impl Slot {
    /// Does the range cover the whole entry?
    pub(crate) fn is_whole(&self) -> bool {
        self.start == self.base && self.end == self.base + self.size
    }
}

/// The entries of a table at `level` that `start..end` touches, in order;
/// the range must lie inside the table's span.
pub(crate) fn touched(level: u8, start: u64, end: u64) -> impl Iterator<Item = Slot> {
    let size = level_size(level);
    // An empty range touches nothing, even inside an entry.
    let first = if start < end {
        start & !(size - 1)
    } else {
        end
    };
    (first..end).step_by(size as usize).map(move |base| Slot {
        index: level_index(base, level),
        base,
        size,
        start: start.max(base),
        end: end.min(base + size),
    })
}

impl PtFormat {
    /// Is the format one VT-d has (first level 4/5, second level 3/4/5)?
    pub fn is_valid(self) -> bool {
        match self {
            PtFormat::FirstLevel { levels } => matches!(levels, 4 | 5),
            PtFormat::SecondLevel { levels } => matches!(levels, 3..=5),
        }
    }

    /// End (exclusive) of the IOVA range software may map.
    ///
    /// First level: the lower canonical half only, as Linux sets the
    /// aperture of a first-stage domain to `__DOMAIN_MAX_ADDR(gaw - 1)`
    /// (drivers/iommu/intel/iommu.c paging_domain_alloc). Second level: the
    /// whole input width.
    pub fn map_limit(self) -> u64 {
        match self {
            PtFormat::FirstLevel { .. } => 1 << (self.address_width() - 1),
            PtFormat::SecondLevel { .. } => 1 << self.address_width(),
        }
    }

    /// Can the hardware translate `iova` at all? First level: canonical
    /// (bits 63:N-1 equal); second level: below 2^N.
    pub fn accepts_input(self, iova: u64) -> bool {
        let width = self.address_width();
        match self {
            PtFormat::FirstLevel { .. } => {
                let unused = 64 - width;
                (((iova << unused) as i64) >> unused) as u64 == iova
            }
            PtFormat::SecondLevel { .. } => iova >> width == 0,
        }
    }

    /// Is `entry` present? First level: P. Second level: R or W.
    pub fn is_present(self, entry: u64) -> bool {
        match self {
            PtFormat::FirstLevel { .. } => entry & DMA_FL_PTE_PRESENT != 0,
            PtFormat::SecondLevel { .. } => entry & (DMA_PTE_READ | DMA_PTE_WRITE) != 0,
        }
    }

    /// Is the present `entry` at `level` a leaf (level 1, or PS set)?
    pub fn is_leaf(self, entry: u64, level: u8) -> bool {
        level == 1 || entry & DMA_PTE_LARGE_PAGE != 0
    }

    /// What a present entry allows, before combining with the levels above.
    /// First level: read always, write with R/W, nothing without U/S.
    pub fn entry_prot(self, entry: u64) -> Prot {
        match self {
            PtFormat::FirstLevel { .. } => {
                if entry & DMA_FL_PTE_US == 0 {
                    Prot::empty()
                } else if entry & DMA_FL_PTE_RW != 0 {
                    Prot::READ | Prot::WRITE
                } else {
                    Prot::READ
                }
            }
            PtFormat::SecondLevel { .. } => {
                let mut prot = Prot::empty();
                prot.set(Prot::READ, entry & DMA_PTE_READ != 0);
                prot.set(Prot::WRITE, entry & DMA_PTE_WRITE != 0);
                prot
            }
        }
    }

    /// The protection a mapping of `prot` really gets: x86 paging cannot
    /// express write-only, a present entry is always readable.
    pub fn effective_prot(self, prot: Prot) -> Prot {
        match self {
            PtFormat::FirstLevel { .. } if !prot.is_empty() => prot | Prot::READ,
            _ => prot,
        }
    }

    /// The Accessed bit.
    pub fn accessed_bit(self) -> u64 {
        match self {
            PtFormat::FirstLevel { .. } => DMA_FL_PTE_ACCESS,
            PtFormat::SecondLevel { .. } => DMA_SL_PTE_ACCESS,
        }
    }

    /// The Dirty bit.
    pub fn dirty_bit(self) -> u64 {
        match self {
            PtFormat::FirstLevel { .. } => DMA_FL_PTE_DIRTY,
            PtFormat::SecondLevel { .. } => DMA_SL_PTE_DIRTY,
        }
    }

    /// A table entry pointing at the table page `table`, allowing
    /// everything (the leaves restrict). As Linux pfn_to_dma_pte writes it:
    /// R|W, plus U/S and A for the first level.
    pub fn table_entry(self, table: PhysAddr) -> u64 {
        let addr = table & PTE_ADDR_MASK;
        match self {
            PtFormat::FirstLevel { .. } => {
                addr | DMA_FL_PTE_PRESENT | DMA_FL_PTE_RW | DMA_FL_PTE_US | DMA_FL_PTE_ACCESS
            }
            PtFormat::SecondLevel { .. } => addr | DMA_PTE_READ | DMA_PTE_WRITE,
        }
    }

    /// A leaf entry at `level` mapping `phys` with `prot` (not empty).
    ///
    /// As Linux __domain_mapping builds it: second level R/W per `prot`;
    /// first level P|U/S|A, R/W and D when writable (Linux presets A and D
    /// so the hardware need not set them); PS above level 1.
    pub fn leaf_entry(self, phys: PhysAddr, level: u8, prot: Prot) -> u64 {
        let mut entry = phys & PTE_ADDR_MASK;
        if level > 1 {
            entry |= DMA_PTE_LARGE_PAGE;
        }
        match self {
            PtFormat::FirstLevel { .. } => {
                entry |= DMA_FL_PTE_PRESENT | DMA_FL_PTE_US | DMA_FL_PTE_ACCESS;
                if prot.contains(Prot::WRITE) {
                    entry |= DMA_FL_PTE_RW | DMA_FL_PTE_DIRTY;
                }
            }
            PtFormat::SecondLevel { .. } => {
                if prot.contains(Prot::READ) {
                    entry |= DMA_PTE_READ;
                }
                if prot.contains(Prot::WRITE) {
                    entry |= DMA_PTE_WRITE;
                }
            }
        }
        entry
    }

    /// Does the present `entry` at `level` break a format rule? PS above
    /// level 3, or address bits below the superpage size (bit 12 is PAT in
    /// a first-level superpage, so it is allowed there).
    pub fn is_malformed(self, entry: u64, level: u8) -> bool {
        if !self.is_leaf(entry, level) {
            return false;
        }
        if level > 3 {
            return true;
        }
        let low = (level_size(level) - 1) & PTE_ADDR_MASK;
        let low = match self {
            PtFormat::FirstLevel { .. } if level > 1 => low & !(1 << 12),
            _ => low,
        };
        entry & low != 0
    }

    /// The output address of a leaf `entry` at `level` for `iova`.
    pub fn leaf_output(self, entry: u64, level: u8, iova: u64) -> PhysAddr {
        let offset_mask = level_size(level) - 1;
        (entry & PTE_ADDR_MASK & !offset_mask) | (iova & offset_mask)
    }
}
