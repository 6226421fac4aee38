//! The selftest access driver (selftest.c `struct selftest_access`):
//! IOMMU_TEST_OP_CREATE_ACCESS makes an access on an IOAS, owned by an fd
//! whose release unpins everything and destroys it; ACCESS_PAGES pins
//! ranges as numbered items, which the access's unmap callback drops when
//! user space unmaps under them.

use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use umdev_iommu::memory::PhysAddr;

use crate::access::{Access, AccessOps};
use crate::error::{IommufdError, Result};
use crate::ictx::Ictx;

/// MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES.
pub const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES: u32 = 1 << 0;
/// MOCK_FLAGS_ACCESS_WRITE (ACCESS_PAGES).
pub const MOCK_FLAGS_ACCESS_WRITE: u32 = 1 << 0;
/// MOCK_FLAGS_ACCESS_SYZ (syzkaller's IOVA conversion; accepted, unused).
pub const MOCK_FLAGS_ACCESS_SYZ: u32 = 1 << 16;
/// MOCK_ACCESS_RW_WRITE.
pub const MOCK_ACCESS_RW_WRITE: u32 = 1 << 0;
/// MOCK_ACCESS_RW_SLOW_PATH (the kernel's page-by-page copy; one path here).
pub const MOCK_ACCESS_RW_SLOW_PATH: u32 = 1 << 2;
/// The largest ACCESS_PAGES / ACCESS_RW length ("prevent syzkaller from
/// triggering a WARN_ON in kvzalloc()"): ENOMEM beyond.
pub const ACCESS_MAX_LENGTH: u64 = 16 << 20;

#[derive(Debug)]
struct Item {
    iova: u64,
    length: u64,
    id: u32,
}

#[derive(Debug, Default)]
struct Items {
    list: Vec<Item>,
    next_id: u32,
}

struct StaccessOps {
    needs_pin_pages: bool,
    access: OnceLock<Weak<Access>>,
    items: Mutex<Items>,
}

impl StaccessOps {
    fn access(&self) -> Option<Arc<Access>> {
        self.access.get().and_then(Weak::upgrade)
    }
}

impl AccessOps for StaccessOps {
    fn needs_pin_pages(&self) -> bool {
        self.needs_pin_pages
    }

    /// `iommufd_test_access_unmap`: drops every item intersecting the range.
    fn unmap(&self, iova: u64, length: u64) {
        let Some(access) = self.access() else {
            return;
        };
        let last = iova.saturating_add(length.saturating_sub(1));
        self.items.lock().list.retain(|item| {
            let hit = iova <= item.iova + (item.length - 1) && last >= item.iova;
            if hit {
                access.unpin_pages(item.iova, item.length);
            }
            !hit
        });
    }
}

/// One selftest access (what the access fd refers to).
pub struct SelftestAccess {
    id: u32,
    access: Arc<Access>,
    ops: Arc<StaccessOps>,
}

impl std::fmt::Debug for SelftestAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelftestAccess")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SelftestAccess {
    /// IOMMU_TEST_OP_CREATE_ACCESS (`iommufd_test_create_access`):
    /// EOPNOTSUPP for unknown flags, then the access create and attach
    /// errors.
    pub fn create(ictx: &Ictx, ioas_id: u32, flags: u32) -> Result<Self> {
        if flags & !MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES != 0 {
            return Err(IommufdError::Unsupported {
                what: "create access flags",
            });
        }
        let ops = Arc::new(StaccessOps {
            needs_pin_pages: flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES != 0,
            access: OnceLock::new(),
            items: Mutex::new(Items::default()),
        });
        let (id, access) = ictx.access_create(ops.clone())?;
        ops.access
            .set(Arc::downgrade(&access))
            .expect("set once, here");
        if let Err(e) = ictx.access_attach(id, ioas_id) {
            let _ = ictx.access_destroy(id);
            return Err(e);
        }
        Ok(Self { id, access, ops })
    }

    /// IOMMU_TEST_OP_ACCESS_PAGES (`iommufd_test_access_pages`): pins and
    /// returns (item id, the host page of each page). ENOMEM for more than
    /// 16 MiB, EOPNOTSUPP for unknown flags or an access made without
    /// NEEDS_PIN_PAGES.
    pub fn pages(&self, iova: u64, length: u64, flags: u32) -> Result<(u32, Vec<PhysAddr>)> {
        check_length(length)?;
        if flags & !(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ) != 0 {
            return Err(IommufdError::Unsupported {
                what: "access pages flags",
            });
        }
        if !self.ops.needs_pin_pages {
            return Err(IommufdError::Unsupported {
                what: "pinning through an access without NEEDS_PIN_PAGES",
            });
        }
        let mut items = self.ops.items.lock();
        let pages = self
            .access
            .pin_pages(iova, length, flags & MOCK_FLAGS_ACCESS_WRITE != 0)?;
        let id = items.next_id;
        items.next_id = items.next_id.wrapping_add(1);
        items.list.push(Item { iova, length, id });
        Ok((id, pages))
    }

    /// Drops item `id` again (the caller could not report it).
    pub fn abort_pages(&self, id: u32) {
        let _ = self.destroy_pages(id);
    }

    /// IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: ENOENT if no such item (the
    /// unmap callback may have dropped it).
    pub fn destroy_pages(&self, id: u32) -> Result<()> {
        let mut items = self.ops.items.lock();
        let at = items
            .list
            .iter()
            .position(|i| i.id == id)
            .ok_or(IommufdError::NoObject { id })?;
        let item = items.list.remove(at);
        self.access.unpin_pages(item.iova, item.length);
        Ok(())
    }

    /// IOMMU_TEST_OP_ACCESS_RW (`iommufd_test_access_rw`): ENOMEM beyond 16
    /// MiB, EOPNOTSUPP for unknown flags; `buf` holds the bytes to write
    /// (MOCK_ACCESS_RW_WRITE) or receives the bytes read.
    pub fn rw(&self, iova: u64, buf: &mut [u8], flags: u32) -> Result<()> {
        check_length(buf.len() as u64)?;
        if flags & !(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ) != 0 {
            return Err(IommufdError::Unsupported {
                what: "access rw flags",
            });
        }
        self.access.rw(iova, buf, flags & MOCK_ACCESS_RW_WRITE != 0)
    }

    /// IOMMU_TEST_OP_ACCESS_REPLACE_IOAS.
    pub fn replace_ioas(&self, ictx: &Ictx, ioas_id: u32) -> Result<()> {
        ictx.access_replace(self.id, ioas_id)
    }

    /// The fd's release (`iommufd_test_staccess_release`): every item
    /// unpinned, the access destroyed.
    pub fn release(&self, ictx: &Ictx) {
        self.ops.unmap(0, u64::MAX);
        let _ = ictx.access_destroy(self.id);
    }
}

fn check_length(length: u64) -> Result<()> {
    if length > ACCESS_MAX_LENGTH {
        return Err(IommufdError::Errno {
            what: "access length over 16 MiB",
            errno: rustix::io::Errno::NOMEM,
        });
    }
    Ok(())
}
