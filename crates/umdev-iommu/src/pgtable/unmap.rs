//! Removing leaves (Linux intel_iommu_unmap_pages / dma_pte_clear_level)
//! and freeing the tables that become empty.

use super::PtFormat;
use super::pool::{Table, TablePool};
use super::pte::{PTE_ADDR_MASK, touched};

/// Clears every leaf under `table` (at `level`) that `start..end`
/// touches, whole leaves only: a superpage the range starts or ends inside
/// is removed entirely. Child tables left empty are unlinked and freed.
/// Returns the bytes the removed leaves mapped.
pub(super) fn unmap_range(
    pool: &mut TablePool,
    format: PtFormat,
    table: &Table,
    level: u8,
    start: u64,
    end: u64,
) -> u64 {
    let mut bytes = 0;
    for slot in touched(level, start, end) {
        let entry = table.load(slot.index);
        if !format.is_present(entry) {
            continue;
        }
        if format.is_leaf(entry, level) {
            table.store(slot.index, 0);
            bytes += slot.size;
            continue;
        }
        // An entry pointing outside the pool is left alone.
        let Some(child) = pool.table(entry & PTE_ADDR_MASK) else {
            continue;
        };
        bytes += unmap_range(pool, format, &child, level - 1, slot.start, slot.end);
        if slot.is_whole() || child.is_clear() {
            // Unlink before the page can be reused.
            table.store(slot.index, 0);
            pool.free(child.addr(), level - 1);
        }
    }
    bytes
}
