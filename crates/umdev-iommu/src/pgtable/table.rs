//! A host-owned I/O page table.

use std::sync::Arc;

use parking_lot::Mutex;

use super::dirty::harvest;
use super::map::{MapCursor, map_range};
use super::pool::{ChunkList, PoolReader, Table, TablePool};
use super::pte::PTE_ADDR_MASK;
use super::unmap::unmap_range;
use super::walk::{lookup, walk};
use super::{Access, PgtableError, Prot, PtFormat, Translation, WalkFault};
use crate::memory::{HostMemory, PAGE_SIZE, PhysAddr};

/// Page sizes a table may use: 4 KiB, 2 MiB, 1 GiB.
pub const PGSIZE_4K_2M_1G: u64 = PAGE_SIZE | (2 << 20) | (1 << 30);

/// An I/O page table in a real VT-d format, its pages in host memory.
///
/// map / unmap / read_and_clear_dirty are serialised by a mutex; walks and
/// lookups take no lock and read entries atomically, as the hardware does.
/// A walk racing with an unmap of the same range may still see the old
/// translation (the caller's IOTLB flush orders that); freed table pages
/// stay in the pool, so it never reads unbacked memory.
#[derive(Debug)]
pub struct PageTable {
    format: PtFormat,
    pgsize_bitmap: u64,
    root: PhysAddr,
    /// The pool's chunks, for walks that take no lock.
    chunks: Arc<ChunkList>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    pool: TablePool,
    root: Table,
    mapped_bytes: u64,
}

impl PageTable {
    /// An empty table (one zeroed root page) of `format` that will use
    /// the page sizes of `pgsize_bitmap` (4 KiB required; 2 MiB and 1 GiB
    /// optional).
    pub fn new(
        mem: Arc<HostMemory>,
        format: PtFormat,
        pgsize_bitmap: u64,
    ) -> Result<Self, PgtableError> {
        if !format.is_valid() {
            return Err(PgtableError::BadFormat(format));
        }
        if pgsize_bitmap & PAGE_SIZE == 0 || pgsize_bitmap & !PGSIZE_4K_2M_1G != 0 {
            return Err(PgtableError::BadPageSizes(pgsize_bitmap));
        }
        let mut pool = TablePool::new(mem);
        let root = pool
            .alloc(format.levels())
            .map_err(PgtableError::NoMemory)?;
        Ok(Self {
            format,
            pgsize_bitmap,
            root: root.addr(),
            chunks: pool.chunks(),
            state: Mutex::new(State {
                pool,
                root,
                mapped_bytes: 0,
            }),
        })
    }

    /// The table format.
    pub fn format(&self) -> PtFormat {
        self.format
    }

    /// Host-physical address of the top-level table page (what a PASID
    /// entry's FLPTPTR / SLPTPTR holds).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The page sizes the table uses.
    pub fn pgsize_bitmap(&self) -> u64 {
        self.pgsize_bitmap
    }

    /// Maps `iova..iova + len` to `phys..phys + len` with `prot`, using
    /// the largest page sizes alignment and length allow.
    ///
    /// All or nothing: on error nothing new stays mapped. Errors, in
    /// Linux's order: unaligned → EINVAL (__iommu_map); a zero length maps
    /// nothing and succeeds; beyond the input limit → EFAULT
    /// (intel_iommu_map); no permission → EINVAL (__domain_mapping); any
    /// part already mapped → EEXIST (never replaced); no table memory →
    /// ENOMEM.
    pub fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), PgtableError> {
        if !(iova | phys | len).is_multiple_of(PAGE_SIZE) {
            return Err(PgtableError::Misaligned { iova, phys, len });
        }
        if len == 0 {
            return Ok(());
        }
        let limit = self.format.map_limit();
        if iova.checked_add(len).is_none_or(|end| end > limit) {
            return Err(PgtableError::OutOfRange { iova, len, limit });
        }
        if prot.is_empty() {
            return Err(PgtableError::NoPermission);
        }
        if phys
            .checked_add(len - 1)
            .is_none_or(|last| last & !PTE_ADDR_MASK & !(PAGE_SIZE - 1) != 0)
        {
            return Err(PgtableError::BadPhys { phys, len });
        }
        let mut state = self.state.lock();
        let State { pool, root, .. } = &mut *state;
        let mut cursor = MapCursor::new(iova, phys, len, prot, self.pgsize_bitmap);
        let top = self.format.levels();
        if let Err(err) = map_range(pool, self.format, root, top, &mut cursor) {
            // Everything from `iova` up to the cursor is this call's.
            unmap_range(pool, self.format, root, top, iova, cursor.iova);
            return Err(err);
        }
        state.mapped_bytes += len;
        Ok(())
    }

    /// Unmaps the leaves `iova..iova + len` touches and returns the bytes
    /// they mapped.
    ///
    /// As VT-d intel_iommu_unmap_pages, leaves go whole: a range starting
    /// or ending inside a superpage removes (and counts) the whole
    /// superpage. Unmapped holes are skipped and not counted. Tables left
    /// empty are freed, except the root. An unaligned `iova` or `len`
    /// unmaps nothing (__iommu_unmap); the range is clipped to the input
    /// limit.
    pub fn unmap(&self, iova: u64, len: u64) -> u64 {
        if !(iova | len).is_multiple_of(PAGE_SIZE) {
            return 0;
        }
        let end = iova.saturating_add(len).min(self.format.map_limit());
        if iova >= end {
            return 0;
        }
        let mut state = self.state.lock();
        let State { pool, root, .. } = &mut *state;
        let bytes = unmap_range(pool, self.format, root, self.format.levels(), iova, end);
        state.mapped_bytes -= bytes;
        bytes
    }

    /// The translation of `iova`, if mapped (intel_iommu_iova_to_phys): no
    /// permission check, no Accessed / Dirty update. Takes no lock.
    pub fn iova_to_phys(&self, iova: u64) -> Option<Translation> {
        lookup(&PoolReader::new(&self.chunks), self.format, self.root, iova)
    }

    /// The hardware walk of `iova` (see [`super::walk()`]). Takes no lock;
    /// reads the same memory a [`super::HostTableReader`] would, but only
    /// this table's own pages.
    pub fn walk(
        &self,
        iova: u64,
        access: Access,
        dirty_tracking: bool,
    ) -> Result<Translation, WalkFault> {
        let reader = PoolReader::new(&self.chunks);
        walk(
            &reader,
            self.format,
            self.root,
            iova,
            access,
            dirty_tracking,
        )
    }

    /// Calls `record(iova, size)` for every dirty leaf `iova..iova + len`
    /// touches (whole leaves, in IOVA order) and clears their Dirty bits
    /// unless `clear` is false (IOMMU_DIRTY_NO_CLEAR). Second-level leaves
    /// get Dirty from walks with dirty tracking; writable first-level
    /// leaves start dirty, as Linux presets the bit.
    pub fn read_and_clear_dirty(
        &self,
        iova: u64,
        len: u64,
        clear: bool,
        record: &mut dyn FnMut(u64, u64),
    ) {
        let end = iova.saturating_add(len).min(self.format.map_limit());
        if iova >= end {
            return;
        }
        let state = self.state.lock();
        let range = (iova, end);
        harvest(
            &state.pool,
            self.format,
            &state.root,
            self.format.levels(),
            range,
            clear,
            record,
        );
    }

    /// Bytes currently mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.state.lock().mapped_bytes
    }

    /// Table pages in use, the root included.
    pub fn table_pages(&self) -> usize {
        self.state.lock().pool.in_use()
    }
}
