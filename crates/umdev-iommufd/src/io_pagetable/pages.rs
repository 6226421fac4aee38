//! The memory behind IOAS areas (Linux `struct iopt_pages`) and the
//! locked-memory accounting of pinned pages (pages.c `iopt_pages_*`,
//! `incr_user_locked_vm` / `update_mm_locked_vm`).
//!
//! Pages are pinned per host page: a domain fill pins an area's range,
//! an access pins the sub-range it asked for. A page of one `IoptPages` is
//! charged once, when its first pin arrives, however many areas (COPY) and
//! accesses share it; two separate MAPs of the same memory charge twice,
//! as in Linux.

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::memory::{MemoryError, MemoryObject, PAGE_SIZE, PhysAddr};

use super::refs::{PageRefs, PageRuns};

/// A byte range of one memory object that areas map, shared between the
/// areas IOAS_COPY creates from it (the kernel refcounts `iopt_pages`).
#[derive(Debug)]
pub struct IoptPages {
    object: Arc<MemoryObject>,
    start: u64,
    length: u64,
    writable: bool,
    /// Pins per host page (page number = host-physical address / PAGE_SIZE).
    pins: Mutex<PageRefs>,
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
            pins: Mutex::new(PageRefs::default()),
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

    /// Number of host pages the range touches.
    pub fn npages(&self) -> u64 {
        self.page_span(0, self.length).map_or(0, |(a, b)| b - a + 1)
    }

    /// Host page numbers touched by bytes `[offset, offset + len)`.
    fn page_span(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        (len > 0).then(|| {
            (
                self.phys(offset) / PAGE_SIZE,
                self.phys(offset + len - 1) / PAGE_SIZE,
            )
        })
    }

    /// Pins the pages under bytes `[offset, offset + len)` for a domain
    /// fill or an access; pages pinned for the first time are charged to
    /// the account (ENOMEM over the limit, and then nothing changes).
    pub(crate) fn pin(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let Some((first, last)) = self.page_span(offset, len) else {
            return Ok(());
        };
        let mut pins = self.pins.lock();
        let newly = pins.get(first, last);
        if let Err(e) = self.account.charge(&newly) {
            pins.put(first, last);
            return Err(e);
        }
        Ok(())
    }

    /// Undoes one [`IoptPages::pin`] of the same bytes; pages left without
    /// pins are uncharged.
    pub(crate) fn unpin(&self, offset: u64, len: u64) {
        let Some((first, last)) = self.page_span(offset, len) else {
            return;
        };
        let freed = self.pins.lock().put(first, last);
        self.account.uncharge(&freed);
    }
}

impl Drop for IoptPages {
    fn drop(&mut self) {
        debug_assert!(
            std::thread::panicking() || self.pins.get_mut().is_empty(),
            "iopt_pages freed while pinned"
        );
    }
}

/// How pinned pages are accounted (IOMMU_OPTION_RLIMIT_MODE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccountMode {
    /// IOPT_PAGES_ACCOUNT_USER (0): the user's locked_vm; the default on
    /// /dev/iommu.
    #[default]
    User,
    /// IOPT_PAGES_ACCOUNT_MM (1): the process's locked_vm, as VFIO type1
    /// does.
    Mm,
}

#[derive(Debug)]
struct AccountState {
    limit: u64,
    mode: AccountMode,
    pinned: u64,
    locked: u64,
    /// Pins per host page across every `IoptPages` charged here (what the
    /// selftest's MD_CHECK_REFS reads as page refcounts).
    host_pages: PageRefs,
}

/// Locked-memory accounting for one context: pinned pages against a limit
/// (RLIMIT_MEMLOCK in the kernel's user/mm accounting modes).
#[derive(Debug)]
pub struct PinAccount {
    state: Mutex<AccountState>,
}

impl PinAccount {
    /// An account with a limit in pages (`u64::MAX` = unlimited).
    pub fn new(limit_pages: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(AccountState {
                limit: limit_pages,
                mode: AccountMode::default(),
                pinned: 0,
                locked: 0,
                host_pages: PageRefs::default(),
            }),
        })
    }

    /// Changes the limit (the selftest's SET_TEMP_MEMORY_LIMIT); existing
    /// pins stay.
    pub fn set_limit(&self, limit_pages: u64) {
        self.state.lock().limit = limit_pages;
    }

    /// The limit in pages.
    pub fn limit(&self) -> u64 {
        self.state.lock().limit
    }

    /// Pages currently pinned (/proc VmPin: `mm->pinned_vm`).
    pub fn pinned(&self) -> u64 {
        self.state.lock().pinned
    }

    /// Pages currently counted in the process's locked_vm (/proc VmLck):
    /// the pinned pages in [`AccountMode::Mm`], none in user mode.
    pub fn locked(&self) -> u64 {
        self.state.lock().locked
    }

    /// The accounting mode.
    pub fn mode(&self) -> AccountMode {
        self.state.lock().mode
    }

    pub(crate) fn set_mode(&self, mode: AccountMode) {
        self.state.lock().mode = mode;
    }

    /// Pins held on the host page containing `phys`: one per `IoptPages`
    /// that pins it.
    pub fn page_pins(&self, phys: PhysAddr) -> u32 {
        self.state.lock().host_pages.count(phys / PAGE_SIZE)
    }

    /// Charges newly pinned pages: ENOMEM if the total would pass the limit.
    fn charge(&self, runs: &PageRuns) -> Result<(), Errno> {
        let npages: u64 = runs.iter().map(|(a, b)| b - a + 1).sum();
        if npages == 0 {
            return Ok(());
        }
        if umdev_iommu::failpoint::should_fail("iommufd: pin accounting") {
            return Err(Errno::NOMEM);
        }
        let mut st = self.state.lock();
        match st.pinned.checked_add(npages) {
            Some(total) if total <= st.limit => st.pinned = total,
            _ => return Err(Errno::NOMEM),
        }
        if st.mode == AccountMode::Mm {
            st.locked += npages;
        }
        for &(a, b) in runs {
            st.host_pages.get(a, b);
        }
        Ok(())
    }

    fn uncharge(&self, runs: &PageRuns) {
        let npages: u64 = runs.iter().map(|(a, b)| b - a + 1).sum();
        if npages == 0 {
            return;
        }
        let mut st = self.state.lock();
        st.pinned -= npages;
        if st.mode == AccountMode::Mm {
            st.locked -= npages;
        }
        for &(a, b) in runs {
            st.host_pages.put(a, b);
        }
    }
}
