//! The selftest's access fds (selftest.c `struct selftest_access`): an
//! access on an IOAS owned by a file whose release unpins and destroys it.
//! Later ops name the access by that fd's number in the caller
//! (`iommufd_access_get`: `fget` + an `f_op` check, EBADFD otherwise);
//! here the number is looked up by `pidfd_getfd` + `fstat` among the
//! access files the server installed ([`FileOps::installed`]).

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::memory::PAGE_SIZE;
use umdev_iommufd::Ictx;
use umdev_iommufd::selftest::access::{ACCESS_MAX_LENGTH, MOCK_ACCESS_RW_WRITE, SelftestAccess};

use super::{PAYLOAD, Selftest, U32s, U64s, payload, respond_at};
use crate::file::{FileId, FileOps};
use crate::ioctl::{Ucmd, errno};
use crate::user::Peer;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `access_pages` { flags, out_access_pages_id, iova, length, uptr }.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct AccessPages {
    flags: u32,
    out_access_pages_id: u32,
    iova: u64,
    length: u64,
    uptr: u64,
}

/// The access files of one iommufd file, by the identity of the caller's
/// fd.
#[derive(Default)]
pub struct AccessTable {
    files: Mutex<Vec<(FileId, Weak<SelftestAccess>)>>,
}

impl AccessTable {
    /// `iommufd_access_get(fd)`: EBADFD unless the caller's `fd` is one of
    /// these access files.
    fn get(&self, peer: Peer, fd: u32) -> Result<Arc<SelftestAccess>, Errno> {
        let fd = i32::try_from(fd).map_err(|_| Errno::BADFD)?;
        let dup = peer.get_fd(fd).map_err(|_| Errno::BADFD)?;
        let id = FileId::of(&dup).map_err(|_| Errno::BADFD)?;
        self.files
            .lock()
            .iter()
            .find(|(f, _)| *f == id)
            .and_then(|(_, a)| a.upgrade())
            .ok_or(Errno::BADFD)
    }
}

/// An access fd (`iommfd_test_staccess_fops`).
pub struct AccessFile {
    access: Arc<SelftestAccess>,
    ictx: Arc<Ictx>,
    table: Arc<AccessTable>,
}

impl FileOps for AccessFile {
    fn installed(&self, id: FileId) {
        self.table
            .files
            .lock()
            .push((id, Arc::downgrade(&self.access)));
    }

    /// `iommufd_test_staccess_release`.
    fn release(&self) {
        self.table
            .files
            .lock()
            .retain(|(_, a)| !std::ptr::eq(a.as_ptr(), Arc::as_ptr(&self.access)));
        self.access.release(&self.ictx);
    }
}

/// IOMMU_TEST_OP_CREATE_ACCESS (`iommufd_test_create_access`): an access
/// on IOAS `ioas_id`; its fd goes to `create_access.out_access_fd`.
pub(super) fn create_access(ucmd: &mut Ucmd<'_>, st: &Selftest, ioas_id: u32) -> Result<(), Errno> {
    let p: U32s = payload(ucmd);
    let ictx = Arc::clone(&ucmd.file.ictx);
    let access = Arc::new(SelftestAccess::create(&ictx, ioas_id, p.w[1]).map_err(errno)?);
    let file = AccessFile {
        access: Arc::clone(&access),
        ictx: Arc::clone(&ictx),
        table: Arc::clone(&st.accesses),
    };
    let slot = ucmd.ubuffer + PAYLOAD as u64;
    ucmd.return_file(Box::new(file), slot)
        .inspect_err(|_| access.release(&ictx))
}

/// IOMMU_TEST_OP_ACCESS_REPLACE_IOAS.
pub(super) fn replace_ioas(ucmd: &Ucmd<'_>, st: &Selftest, fd: u32) -> Result<(), Errno> {
    let p: U32s = payload(ucmd);
    let access = st.accesses.get(ucmd.peer, fd)?;
    access.replace_ioas(&ucmd.file.ictx, p.w[0]).map_err(errno)
}

/// IOMMU_TEST_OP_ACCESS_PAGES (`iommufd_test_access_pages`): pins
/// `[iova, +length)` as a new item; with a `uptr`, each pinned page must be
/// the caller's page at the same offset (EBADE otherwise). The item id
/// goes to `out_access_pages_id`.
pub(super) fn access_pages(ucmd: &Ucmd<'_>, st: &Selftest, fd: u32) -> Result<(), Errno> {
    let p: AccessPages = payload(ucmd);
    if p.length > ACCESS_MAX_LENGTH {
        return Err(Errno::NOMEM);
    }
    let access = st.accesses.get(ucmd.peer, fd)?;
    let (item, pages) = access.pages(p.iova, p.length, p.flags).map_err(errno)?;
    let checked = check_pages(ucmd, p.uptr, p.iova, &pages).and_then(|()| {
        respond_at(
            ucmd,
            std::mem::offset_of!(AccessPages, out_access_pages_id),
            &item.to_le_bytes(),
        )
    });
    checked.inspect_err(|_| access.abort_pages(item))
}

/// `iommufd_test_check_pages`: the caller's page at each page of the
/// range is the pinned one.
fn check_pages(ucmd: &Ucmd<'_>, uptr: u64, iova: u64, pages: &[u64]) -> Result<(), Errno> {
    if uptr == 0 {
        return Ok(());
    }
    let first = uptr.wrapping_sub(iova % PAGE_SIZE);
    for (i, &page) in pages.iter().enumerate() {
        let va = first.wrapping_add(i as u64 * PAGE_SIZE);
        let phys = ucmd
            .file
            .memory
            .phys_of(ucmd.peer, va)
            .map_err(|e| e.errno())?;
        if phys.map(|p| p & !(PAGE_SIZE - 1)) != Some(page) {
            return Err(Errno::BADE);
        }
    }
    Ok(())
}

/// IOMMU_TEST_OP_ACCESS_RW (`iommufd_test_access_rw`): copies `length`
/// bytes between the IOAS at `iova` and the caller's buffer at `uptr`
/// (ENOMEM over 16 MiB).
pub(super) fn access_rw(ucmd: &Ucmd<'_>, st: &Selftest, fd: u32) -> Result<(), Errno> {
    // { iova, length, uptr, flags }.
    let p: U64s = payload(ucmd);
    if p.b > ACCESS_MAX_LENGTH {
        return Err(Errno::NOMEM);
    }
    let access = st.accesses.get(ucmd.peer, fd)?;
    let mut buf = vec![0u8; p.b as usize];
    let write = p.d & MOCK_ACCESS_RW_WRITE != 0;
    if write {
        ucmd.peer.read(p.c, &mut buf).map_err(|e| e.errno())?;
    }
    access.rw(p.a, &mut buf, p.d).map_err(errno)?;
    if !write {
        ucmd.peer.write(p.c, &buf).map_err(|e| e.errno())?;
    }
    Ok(())
}

/// IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: unpins item
/// `destroy_access_pages.access_pages_id` (ENOENT if it is gone).
pub(super) fn destroy_pages(ucmd: &Ucmd<'_>, st: &Selftest, fd: u32) -> Result<(), Errno> {
    let p: U32s = payload(ucmd);
    let access = st.accesses.get(ucmd.peer, fd)?;
    access.destroy_pages(p.w[0]).map_err(errno)
}
