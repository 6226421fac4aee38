//! What the in-process tests share: this process is its own peer.

#![allow(dead_code)]

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::memory::HostMemory;
use umdev_iommufd::Ictx;
use umdev_iommufd::selftest::MockBus;
use umdev_uapi::file::{FileOps, NewFile, NewFiles};
use umdev_uapi::ioctl::{IommufdFile, dispatch, nr};
use umdev_uapi::peer_mem::PeerMemory;
use umdev_uapi::test_cmd::Selftest;
use umdev_uapi::uapi::{IommuIoasAlloc, IommuIoasMap, iommufd_io};
use umdev_uapi::user::Peer;

/// This process.
pub fn me() -> Peer {
    Peer::new(std::process::id() as i32)
}

/// An open of /dev/iommu with the selftest mock on `bus`.
pub fn open(bus: &Arc<MockBus>) -> IommufdFile {
    IommufdFile {
        ictx: Ictx::new(bus.iommu().clone()),
        memory: PeerMemory::new(HostMemory::new()),
        selftest: Some(Selftest::new(bus.clone())),
    }
}

/// ioctl(`nr`, `arg`), dropping any file it returns.
pub fn ioctl<T>(file: &IommufdFile, nr: u32, arg: &mut T) -> Result<i64, Errno> {
    ioctl_files(file, nr, arg).map(|(r, _)| r)
}

/// ioctl(`nr`, `arg`) and the files it returns.
pub fn ioctl_files<T>(
    file: &IommufdFile,
    nr: u32,
    arg: &mut T,
) -> Result<(i64, Vec<Box<dyn FileOps>>), Errno> {
    let mut fds = NewFiles::default();
    let r = dispatch(file, me(), iommufd_io(nr), arg as *mut T as u64, &mut fds)?;
    let files = fds
        .take()
        .into_iter()
        .map(|(f, _)| match f {
            NewFile::Served(f) => f,
            NewFile::Fd(_) => panic!("a served file"),
        })
        .collect();
    Ok((r, files))
}

/// IOMMU_IOAS_ALLOC.
pub fn ioas_alloc(file: &IommufdFile) -> u32 {
    let mut a = IommuIoasAlloc {
        size: 12,
        ..Default::default()
    };
    ioctl(file, nr::IOAS_ALLOC, &mut a).expect("ioas alloc");
    a.out_ioas_id
}

/// IOMMU_IOAS_MAP of `len` bytes at `va` (read/write, any IOVA or
/// `fixed`); returns the IOVA.
pub fn ioas_map(file: &IommufdFile, ioas_id: u32, va: u64, len: u64, fixed: Option<u64>) -> u64 {
    let mut m = IommuIoasMap {
        size: 40,
        flags: 6 | u32::from(fixed.is_some()),
        ioas_id,
        user_va: va,
        length: len,
        iova: fixed.unwrap_or(0),
        ..Default::default()
    };
    ioctl(file, nr::IOAS_MAP, &mut m).expect("ioas map");
    m.iova
}

/// Page-aligned private anonymous memory of `len` bytes, never freed
/// (the tests are short).
pub fn buffer(len: usize) -> u64 {
    // SAFETY: a fresh anonymous mapping at an address the kernel picks;
    // no existing memory is affected.
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE,
        )
    }
    .expect("mmap");
    // Touch every page so that it exists.
    // SAFETY: the mapping is `len` bytes, readable and writable.
    unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0xa5, len) };
    p as u64
}
