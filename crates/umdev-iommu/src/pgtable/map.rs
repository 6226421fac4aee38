//! Installing leaves (Linux __domain_mapping, with iommu_pgsize's choice
//! of page size).

use super::pool::{Table, TablePool};
use super::pte::{PTE_ADDR_MASK, level_index, level_shift, level_size};
use super::{PgtableError, Prot, PtFormat};
use crate::memory::{PAGE_SIZE, PhysAddr};

/// Page sizes the tables can hold, largest first.
const LEAF_SIZES: [u64; 3] = [1 << 30, 2 << 20, PAGE_SIZE];

/// Where a map operation has got to.
#[derive(Debug)]
pub(super) struct MapCursor {
    /// Next IOVA to map; on failure, the first IOVA not mapped.
    pub(super) iova: u64,
    phys: PhysAddr,
    end: u64,
    prot: Prot,
    pgsize_bitmap: u64,
}

impl MapCursor {
    /// A cursor over `iova..iova + len` (all validated and page aligned).
    pub(super) fn new(iova: u64, phys: PhysAddr, len: u64, prot: Prot, pgsize_bitmap: u64) -> Self {
        Self {
            iova,
            phys,
            end: iova + len,
            prot,
            pgsize_bitmap,
        }
    }

    /// The largest allowed page size that fits the alignment of both
    /// addresses and the remaining length (iommu_pgsize). 4 KiB is always
    /// allowed and everything is 4 KiB aligned.
    fn next_size(&self) -> u64 {
        let remaining = self.end - self.iova;
        let align = self.iova | self.phys;
        LEAF_SIZES
            .into_iter()
            .find(|&size| {
                self.pgsize_bitmap & size != 0 && size <= remaining && align & (size - 1) == 0
            })
            .unwrap_or(PAGE_SIZE)
    }

    fn advance(&mut self, size: u64) {
        self.iova += size;
        self.phys += size;
    }
}

/// Maps the cursor's range from `table` (at `level`) down, stopping at the
/// end of the table's span. Tables this call allocates and leaves empty on
/// failure are freed again; leaves already installed stay for the caller
/// to unmap (everything below `cursor.iova` is new).
pub(super) fn map_range(
    pool: &mut TablePool,
    format: PtFormat,
    table: &Table,
    level: u8,
    cursor: &mut MapCursor,
) -> Result<(), PgtableError> {
    let here = level_size(level);
    let limit = if level == format.levels() {
        cursor.end
    } else {
        let span = 1u64 << (level_shift(level) + 9);
        cursor.end.min((cursor.iova & !(span - 1)) + span)
    };
    while cursor.iova < limit {
        let index = level_index(cursor.iova, level);
        let entry = table.load(index);
        let size = cursor.next_size();
        if size == here {
            if format.is_present(entry) {
                return Err(PgtableError::Exists { iova: cursor.iova });
            }
            table.store(index, format.leaf_entry(cursor.phys, level, cursor.prot));
            cursor.advance(size);
            continue;
        }
        // A smaller page: it goes in a lower table.
        let (child, fresh) = if !format.is_present(entry) {
            let child = pool.alloc(level - 1).map_err(PgtableError::NoMemory)?;
            table.store(index, format.table_entry(child.addr()));
            (child, true)
        } else if format.is_leaf(entry, level) {
            return Err(PgtableError::Exists { iova: cursor.iova });
        } else {
            let addr = entry & PTE_ADDR_MASK;
            let child = pool
                .table(addr)
                .ok_or(PgtableError::Corrupt { table: addr })?;
            (child, false)
        };
        let result = map_range(pool, format, &child, level - 1, cursor);
        if result.is_err() && fresh && child.is_clear() {
            table.store(index, 0);
            pool.free(child.addr(), level - 1);
        }
        result?;
    }
    Ok(())
}
