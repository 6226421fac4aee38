//! IOMMUFD_OBJ_IOAS (ioas.c): an I/O address space user space fills with
//! mappings; every paging HWPT created on it mirrors its areas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::access::Access;
use crate::error::{IommufdError, Result};
use crate::hwpt::HwptPaging;
use crate::io_pagetable::{IoPagetable, IovaRange, PinAccount, UnmapStop};
use crate::object::{HasHeader, ObjHeader};

/// Unmap retries while accesses keep pins (io_pagetable.c: more than 100
/// rounds of `ops->unmap` without progress is EDEADLOCK).
const ACCESS_UNMAP_ROUNDS: u32 = 100;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A process-unique key for io_pagetable bookkeeping (domains, devices and
/// accesses are told apart by it).
pub(crate) fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// An I/O address space.
///
/// Lock order inside iommufd: `hwpts` (the kernel's `ioas->mutex`) →
/// device group → `iopt` → the IOMMU core's locks.
#[derive(Debug)]
pub struct Ioas {
    hdr: ObjHeader,
    pub(crate) iopt: Mutex<IoPagetable>,
    pub(crate) hwpts: Mutex<Vec<Weak<HwptPaging>>>,
    pub(crate) accesses: Mutex<Vec<Weak<Access>>>,
}

impl HasHeader for Ioas {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

impl Ioas {
    pub(crate) fn new(account: Arc<PinAccount>) -> Arc<Self> {
        Arc::new(Self {
            hdr: ObjHeader::new(),
            iopt: Mutex::new(IoPagetable::new(account)),
            hwpts: Mutex::new(Vec::new()),
            accesses: Mutex::new(Vec::new()),
        })
    }

    /// The object id.
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// Locks the address space for inspection.
    pub fn iopt(&self) -> parking_lot::MutexGuard<'_, IoPagetable> {
        self.iopt.lock()
    }

    /// Unmaps whole areas in `range`, making accesses unpin first
    /// (`iopt_unmap_iova_range`). Returns the bytes unmapped; ENOENT if a
    /// ranged unmap found nothing (`all == false`).
    pub(crate) fn unmap_range(&self, range: IovaRange, all: bool) -> Result<u64> {
        let mut unmapped = 0;
        let mut rounds = 0;
        loop {
            let stop = self.iopt.lock().unmap_range(range, &mut unmapped);
            match stop {
                Ok(()) => break,
                Err(UnmapStop::Error(errno)) => {
                    return Err(IommufdError::Iopt { op: "unmap", errno });
                }
                Err(UnmapStop::AccessPinned { iova, length }) => {
                    rounds += 1;
                    if rounds > ACCESS_UNMAP_ROUNDS {
                        return Err(IommufdError::AccessDeadlock { iova, length });
                    }
                    // iommufd_access_notify_unmap: with no lock held, every
                    // access of this IOAS must drop its pins in the range.
                    let accesses: Vec<Arc<Access>> = self
                        .accesses
                        .lock()
                        .iter()
                        .filter_map(Weak::upgrade)
                        .collect();
                    for access in accesses {
                        access.notify_unmap(iova, length);
                    }
                }
            }
        }
        if unmapped == 0 && !all {
            return Err(IommufdError::Iopt {
                op: "unmap",
                errno: rustix::io::Errno::NOENT,
            });
        }
        Ok(unmapped)
    }

    pub(crate) fn add_hwpt(&self, hwpt: &Arc<HwptPaging>) {
        let mut list = self.hwpts.lock();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(hwpt));
    }

    pub(crate) fn add_access(&self, access: &Arc<Access>) {
        let mut list = self.accesses.lock();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(access));
    }

    pub(crate) fn remove_access(&self, access: &Access) {
        self.accesses.lock().retain(|w| {
            w.upgrade()
                .is_some_and(|a| !std::ptr::eq(a.as_ref(), access))
        });
    }
}
