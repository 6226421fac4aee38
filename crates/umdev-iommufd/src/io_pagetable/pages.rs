//! The memory behind IOAS areas (Linux `struct iopt_pages`) and the
//! locked-memory accounting of pinned pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rustix::io::Errno;
use umdev_iommu::memory::{MemoryError, MemoryObject, PAGE_SIZE, PhysAddr};

/// A byte range of one memory object that areas map, shared between the
/// areas IOAS_COPY creates from it (the kernel refcounts `iopt_pages`).
#[derive(Debug)]
pub struct IoptPages {
    object: Arc<MemoryObject>,
    start: u64,
    length: u64,
    writable: bool,
    pinners: AtomicUsize,
    account: Arc<PinAccount>,
}

impl IoptPages {
    /// `length` bytes of `object` from byte `start`. EINVAL for an empty
    /// range or one beyond the object (MAP_FILE past the end of the file).
    pub fn new(
        object: Arc<MemoryObject>,
        start: u64,
        length: u64,
        writable: bool,
        account: Arc<PinAccount>,
    ) -> Result<Arc<Self>, Errno> {
        let end = start.checked_add(length).ok_or(Errno::OVERFLOW)?;
        if length == 0 || end > object.size() {
            return Err(Errno::INVAL);
        }
        Ok(Arc::new(Self {
            object,
            start,
            length,
            writable,
            pinners: AtomicUsize::new(0),
            account,
        }))
    }

    /// Length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Whether device writes may be mapped.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The "user address" of byte `offset`: its host-physical address. It
    /// plays the part of `uptr` in the kernel (auto-IOVA alignment and the
    /// sub-page offset are derived from it).
    pub fn phys(&self, offset: u64) -> PhysAddr {
        self.object.base() + self.start + offset
    }

    /// Copies out of the pages (volatile accessors).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.object.read(self.start + offset, buf)
    }

    /// Copies into the pages (volatile accessors).
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), MemoryError> {
        self.object.write(self.start + offset, buf)
    }

    /// Number of pages the range touches (what pinning charges).
    pub fn npages(&self) -> u64 {
        let first = self.phys(0) / PAGE_SIZE;
        let last = (self.phys(self.length - 1)) / PAGE_SIZE;
        last - first + 1
    }

    /// Takes a pin on behalf of a domain fill or an access; the first pin
    /// charges the pages to the account (ENOMEM over the limit).
    pub(crate) fn pin(&self) -> Result<(), Errno> {
        if self.pinners.fetch_add(1, Ordering::AcqRel) == 0
            && let Err(e) = self.account.charge(self.npages())
        {
            self.pinners.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        Ok(())
    }

    /// Drops a pin; the last one uncharges.
    pub(crate) fn unpin(&self) {
        if self.pinners.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.account.uncharge(self.npages());
        }
    }
}

/// Locked-memory accounting for one context: pinned pages against a limit
/// (RLIMIT_MEMLOCK in the kernel's user/mm accounting modes).
#[derive(Debug)]
pub struct PinAccount {
    limit: AtomicU64,
    pinned: AtomicU64,
}

impl PinAccount {
    /// An account with a limit in pages (`u64::MAX` = unlimited).
    pub fn new(limit_pages: u64) -> Arc<Self> {
        Arc::new(Self {
            limit: AtomicU64::new(limit_pages),
            pinned: AtomicU64::new(0),
        })
    }

    /// Changes the limit; existing pins stay.
    pub fn set_limit(&self, limit_pages: u64) {
        self.limit.store(limit_pages, Ordering::Release);
    }

    /// Pages currently pinned.
    pub fn pinned(&self) -> u64 {
        self.pinned.load(Ordering::Acquire)
    }

    fn charge(&self, npages: u64) -> Result<(), Errno> {
        let limit = self.limit.load(Ordering::Acquire);
        self.pinned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(npages).filter(|&n| n <= limit)
            })
            .map(drop)
            .map_err(|_| Errno::NOMEM)
    }

    fn uncharge(&self, npages: u64) {
        self.pinned.fetch_sub(npages, Ordering::AcqRel);
    }
}
