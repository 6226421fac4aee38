//! Table pages: 4 KiB pages carved out of anonymous memory objects.
//!
//! A page table grows its pool in chunks (16 pages first, doubling up to
//! 2 MiB); chunks go back to host memory only when the pool is dropped, so
//! a walk racing with an unmap always reads table memory, never a hole.
//!
//! Freed pages are all-zero (a table is freed only once every entry is
//! clear, and hardware Accessed / Dirty updates never touch a clear entry,
//! see [`super::set_bits_if_present`]) and are reused only at the level
//! they served. A walk that read a table address before an unmap freed the
//! page, and reads the page after a map reused it, therefore sees entries
//! of the same level of the same table: a translation this domain maps,
//! never a leaf misread as a table pointer (which, through a
//! [`super::HostTableReader`], could make a DMA data page act as a table).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};

use super::pte::{ENTRIES_PER_TABLE, MAX_LEVELS};
use super::walk::set_bits_if_present;
use super::{TableReader, WalkFault};
use crate::memory::{HostMemory, MemoryError, MemoryObject, PAGE_SIZE, PhysAddr};

/// Pages in the first chunk; each later chunk doubles, up to the maximum.
const FIRST_CHUNK_PAGES: u64 = 16;
/// Pages in the largest chunk (2 MiB).
const MAX_CHUNK_PAGES: u64 = 512;

/// A pool's chunks by ascending base, published for lock-free walks.
pub(crate) type ChunkList = ArcSwap<Vec<Arc<MemoryObject>>>;

/// The chunk of `chunks` holding the whole table page at `addr`, and the
/// page's offset in it.
fn find(chunks: &[Arc<MemoryObject>], addr: PhysAddr) -> Option<(&Arc<MemoryObject>, u64)> {
    let i = chunks
        .partition_point(|c| c.base() <= addr)
        .checked_sub(1)?;
    let chunk = &chunks[i];
    let offset = addr - chunk.base();
    let whole = offset.is_multiple_of(PAGE_SIZE) && offset + PAGE_SIZE <= chunk.size();
    whole.then_some((chunk, offset))
}

/// The table pages of one page table.
#[derive(Debug)]
pub(crate) struct TablePool {
    mem: Arc<HostMemory>,
    chunks: Arc<ChunkList>,
    /// Pages never used as a table.
    fresh: Vec<PhysAddr>,
    /// Freed pages, by the level they served (index `level - 1`).
    freed: [Vec<PhysAddr>; MAX_LEVELS],
    in_use: usize,
}

impl TablePool {
    /// An empty pool drawing from `mem`.
    pub(crate) fn new(mem: Arc<HostMemory>) -> Self {
        Self {
            mem,
            chunks: Arc::new(ArcSwap::from_pointee(Vec::new())),
            fresh: Vec::new(),
            freed: Default::default(),
            in_use: 0,
        }
    }

    /// The pool's chunk list, for [`PoolReader`]s.
    pub(crate) fn chunks(&self) -> Arc<ChunkList> {
        Arc::clone(&self.chunks)
    }

    /// A zeroed page for a table at `level`.
    pub(crate) fn alloc(&mut self, level: u8) -> Result<Table, MemoryError> {
        const SITE: &str = "pgtable: table page";
        if crate::failpoint::should_fail(SITE) {
            return Err(MemoryError::Injected { site: SITE });
        }
        let reused = self.freed[usize::from(level) - 1].pop();
        let addr = match reused.or_else(|| self.fresh.pop()) {
            Some(addr) => addr,
            None => self.grow()?,
        };
        // Fresh and freed pages all lie inside the pool's chunks.
        let table = self.table(addr).ok_or(MemoryError::Unbacked {
            addr,
            len: PAGE_SIZE,
        })?;
        self.in_use += 1;
        Ok(table)
    }

    /// Takes back the all-zero page of a table at `level`.
    pub(crate) fn free(&mut self, page: PhysAddr, level: u8) {
        self.freed[usize::from(level) - 1].push(page);
        self.in_use -= 1;
    }

    /// Table pages currently handed out.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// The table page at `addr`, if it is one of this pool's pages.
    pub(crate) fn table(&self, addr: PhysAddr) -> Option<Table> {
        let chunks = self.chunks.load();
        let (chunk, offset) = find(&chunks, addr)?;
        Some(Table {
            object: Arc::clone(chunk),
            offset,
        })
    }

    /// Adds a chunk: its first page is returned, the others are fresh.
    fn grow(&mut self) -> Result<PhysAddr, MemoryError> {
        let mut chunks = Vec::clone(&self.chunks.load());
        let shift = chunks.len().min(MAX_CHUNK_PAGES.ilog2() as usize);
        let pages = (FIRST_CHUNK_PAGES << shift).min(MAX_CHUNK_PAGES);
        let chunk = self.mem.alloc_anonymous(pages * PAGE_SIZE)?;
        let first = chunk.base();
        // Popped from the back: pages go out in ascending order.
        self.fresh
            .extend((1..pages).rev().map(|i| first + i * PAGE_SIZE));
        let at = chunks.partition_point(|c| c.base() < first);
        chunks.insert(at, chunk);
        self.chunks.store(Arc::new(chunks));
        Ok(first)
    }
}

impl Drop for TablePool {
    fn drop(&mut self) {
        for chunk in self.chunks.load().iter() {
            self.mem.release(chunk);
        }
    }
}

/// [`TableReader`] over a pool's pages only, taking no lock: the hardware
/// walk of a host-owned table. An entry pointing outside the pool is a
/// [`WalkFault::TableRead`].
pub(crate) struct PoolReader {
    chunks: Guard<Arc<Vec<Arc<MemoryObject>>>>,
}

impl PoolReader {
    /// A reader of the pool's chunks as they are now.
    pub(crate) fn new(chunks: &ChunkList) -> Self {
        Self {
            chunks: chunks.load(),
        }
    }

    fn entry(&self, table: PhysAddr, index: usize) -> Option<&AtomicU64> {
        if index >= ENTRIES_PER_TABLE {
            return None;
        }
        let (chunk, offset) = find(&self.chunks, table)?;
        chunk.atomic_u64(offset + index as u64 * 8).ok()
    }
}

impl TableReader for PoolReader {
    fn read_entry(&self, table: PhysAddr, index: usize) -> Result<u64, WalkFault> {
        self.entry(table, index)
            .map(|e| u64::from_le(e.load(Ordering::Acquire)))
            .ok_or(WalkFault::TableRead { addr: table })
    }

    fn set_entry_bits(&self, table: PhysAddr, index: usize, bits: u64) {
        if let Some(entry) = self.entry(table, index) {
            set_bits_if_present(entry, bits);
        }
    }
}

/// One table page: 512 little-endian u64 entries, accessed atomically.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    object: Arc<MemoryObject>,
    offset: u64,
}

impl Table {
    /// Host-physical address of the page.
    pub(crate) fn addr(&self) -> PhysAddr {
        self.object.base() + self.offset
    }

    #[inline]
    fn entry(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < ENTRIES_PER_TABLE);
        let offset = self.offset + (index % ENTRIES_PER_TABLE) as u64 * 8;
        // `find` checked the page is aligned and inside the object, so
        // every 8-byte slot of it is too.
        self.object
            .atomic_u64(offset)
            .expect("table page slots are aligned and inside their chunk")
    }

    /// Loads entry `index` (Acquire).
    pub(crate) fn load(&self, index: usize) -> u64 {
        u64::from_le(self.entry(index).load(Ordering::Acquire))
    }

    /// Stores entry `index` (Release).
    pub(crate) fn store(&self, index: usize, value: u64) {
        self.entry(index).store(value.to_le(), Ordering::Release);
    }

    /// Atomically clears `bits` in entry `index`, returning the old value.
    pub(crate) fn clear_bits(&self, index: usize, bits: u64) -> u64 {
        u64::from_le(self.entry(index).fetch_and(!bits.to_le(), Ordering::AcqRel))
    }

    /// Is every entry zero?
    pub(crate) fn is_clear(&self) -> bool {
        (0..ENTRIES_PER_TABLE).all(|i| self.load(i) == 0)
    }
}
