//! Harvesting Dirty bits (Linux intel_iommu_read_and_clear_dirty).

use super::PtFormat;
use super::pool::{Table, TablePool};
use super::pte::{PTE_ADDR_MASK, touched};

/// Reports `(iova, size)` of every dirty leaf under `table` (at `level`)
/// that `start..end` touches, clearing Dirty when `clear` is set. The
/// clear is an atomic AND, so a Dirty bit hardware sets concurrently is
/// either reported now or kept for the next harvest.
pub(super) fn harvest(
    pool: &TablePool,
    format: PtFormat,
    table: &Table,
    level: u8,
    (start, end): (u64, u64),
    clear: bool,
    record: &mut dyn FnMut(u64, u64),
) {
    let dirty = format.dirty_bit();
    for slot in touched(level, start, end) {
        let entry = table.load(slot.index);
        if !format.is_present(entry) {
            continue;
        }
        if !format.is_leaf(entry, level) {
            if let Some(child) = pool.table(entry & PTE_ADDR_MASK) {
                harvest(
                    pool,
                    format,
                    &child,
                    level - 1,
                    (slot.start, slot.end),
                    clear,
                    record,
                );
            }
            continue;
        }
        if entry & dirty == 0 {
            continue;
        }
        let was_dirty = !clear || table.clear_bits(slot.index, dirty) & dirty != 0;
        if was_dirty {
            record(slot.base, slot.size);
        }
    }
}
