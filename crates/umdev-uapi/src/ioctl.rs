//! The ioctl layer (drivers/iommu/iommufd/main.c `iommufd_fops_ioctl`):
//! one table of every ioctl with its struct's size and minimum size
//! (`IOCTL_OP`), and the rules every call goes through before its handler:
//! the `size` word is read from the user pointer (EFAULT), a `size` below
//! the minimum is EINVAL, non-zero bytes past the struct this kernel knows
//! are E2BIG, an ioctl number not in the table is ENOTTY.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommufd::{Ictx, IommufdError};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::file::{FdSlot, FileOps, NewFile, NewFiles};
use crate::iommufd::{self as ops, device, fault, hwpt, ioas, option, vfio_compat};
use crate::peer_mem::PeerMemory;
use crate::test_cmd::{self, Selftest};
use crate::uapi::{self, IOMMUFD_CMD_BASE, IOMMUFD_TYPE, ioc_nr, ioc_type, iommufd_io};
use crate::user::Peer;

/// What one open of `/dev/iommu` is (`struct file` with its
/// `iommufd_ctx`): the context, the user memory it maps, and the selftest
/// state when the mock is enabled.
pub struct IommufdFile {
    /// The iommufd context.
    pub ictx: Arc<Ictx>,
    /// User VAs of its callers as memory objects.
    pub memory: PeerMemory,
    /// IOMMU_TEST_CMD state (the kernel's CONFIG_IOMMUFD_TEST).
    pub selftest: Option<Selftest>,
}

impl std::fmt::Debug for IommufdFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IommufdFile")
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl IommufdFile {
    /// `iommufd_fops_release`: everything the file owned goes.
    pub fn release(&self) {
        if let Some(st) = &self.selftest {
            st.release(&self.ictx);
        }
        self.ictx.close();
        self.memory.release();
    }
}

/// One ioctl in flight (`struct iommufd_ucmd`).
pub struct Ucmd<'a> {
    /// The file the ioctl is on.
    pub file: &'a IommufdFile,
    /// The calling process (`current`): the sender of this request, whose
    /// memory the user pointers name.
    pub peer: Peer,
    /// The user pointer argument.
    pub ubuffer: u64,
    /// The struct's `size` as the user gave it.
    pub user_size: u32,
    /// The struct, `op.size` bytes, zero-extended.
    pub cmd: Vec<u8>,
    /// Files to hand back.
    pub fds: &'a mut NewFiles,
}

impl Ucmd<'_> {
    /// The struct as `T`.
    pub fn get<T: FromBytes>(&self) -> T {
        T::read_from_prefix(&self.cmd)
            .expect("the table's size fits T")
            .0
    }

    /// `iommufd_ucmd_respond`: copies `min(user_size, sizeof)` bytes of
    /// `v` back to the user struct.
    pub fn respond<T: IntoBytes + Immutable + ?Sized>(&self, v: &T) -> Result<(), Errno> {
        let bytes = v.as_bytes();
        let n = bytes.len().min(self.user_size as usize);
        self.peer
            .write(self.ubuffer, &bytes[..n])
            .map_err(|e| e.errno())
    }

    /// Hands a new file back to the caller, its fd number stored as a
    /// `u32` at user address `slot` (`fd_install` + `put_user`).
    pub fn return_file(&mut self, file: Box<dyn FileOps>, slot: u64) -> Result<(), Errno> {
        self.fds.push(NewFile::Served(file), FdSlot::User(slot))
    }
}

/// The errno of a layer error.
pub fn errno(e: IommufdError) -> Errno {
    e.errno()
}

/// A handler: the return value of the ioctl or its errno.
pub type Execute = fn(&mut Ucmd<'_>) -> Result<i64, Errno>;

/// `struct iommufd_ioctl_op`.
#[derive(Clone, Copy)]
pub struct IoctlOp {
    /// The ioctl number.
    pub ioctl_num: u32,
    /// sizeof the struct.
    pub size: usize,
    /// `offsetofend` of its last mandatory field.
    pub min_size: usize,
    /// The handler.
    pub execute: Execute,
}

const fn op(nr: u32, size: usize, min_size: usize, execute: Execute) -> IoctlOp {
    IoctlOp {
        ioctl_num: iommufd_io(nr),
        size,
        min_size,
        execute,
    }
}

/// IOMMUFD_CMD_* numbers (include/uapi/linux/iommufd.h).
pub mod nr {
    /// IOMMUFD_CMD_DESTROY.
    pub const DESTROY: u32 = 0x80;
    /// IOMMUFD_CMD_IOAS_ALLOC.
    pub const IOAS_ALLOC: u32 = 0x81;
    /// IOMMUFD_CMD_IOAS_ALLOW_IOVAS.
    pub const IOAS_ALLOW_IOVAS: u32 = 0x82;
    /// IOMMUFD_CMD_IOAS_COPY.
    pub const IOAS_COPY: u32 = 0x83;
    /// IOMMUFD_CMD_IOAS_IOVA_RANGES.
    pub const IOAS_IOVA_RANGES: u32 = 0x84;
    /// IOMMUFD_CMD_IOAS_MAP.
    pub const IOAS_MAP: u32 = 0x85;
    /// IOMMUFD_CMD_IOAS_UNMAP.
    pub const IOAS_UNMAP: u32 = 0x86;
    /// IOMMUFD_CMD_OPTION.
    pub const OPTION: u32 = 0x87;
    /// IOMMUFD_CMD_VFIO_IOAS.
    pub const VFIO_IOAS: u32 = 0x88;
    /// IOMMUFD_CMD_HWPT_ALLOC.
    pub const HWPT_ALLOC: u32 = 0x89;
    /// IOMMUFD_CMD_GET_HW_INFO.
    pub const GET_HW_INFO: u32 = 0x8a;
    /// IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING.
    pub const HWPT_SET_DIRTY_TRACKING: u32 = 0x8b;
    /// IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP.
    pub const HWPT_GET_DIRTY_BITMAP: u32 = 0x8c;
    /// IOMMUFD_CMD_HWPT_INVALIDATE.
    pub const HWPT_INVALIDATE: u32 = 0x8d;
    /// IOMMUFD_CMD_FAULT_QUEUE_ALLOC.
    pub const FAULT_QUEUE_ALLOC: u32 = 0x8e;
    /// IOMMU_TEST_CMD (IOMMUFD_CMD_BASE + 32).
    pub const TEST_CMD: u32 = 0xa0;
}

use std::mem::size_of as sz;

/// `iommufd_ioctl_ops`, in the kernel's order, with `min_size` =
/// `offsetofend(struct, last)` of the `IOCTL_OP` line.
pub static IOMMUFD_IOCTL_OPS: &[IoctlOp] = &[
    op(nr::DESTROY, sz::<uapi::IommuDestroy>(), 8, ops::destroy),
    op(
        nr::FAULT_QUEUE_ALLOC,
        sz::<uapi::IommuFaultAlloc>(),
        16,
        fault::fault_queue_alloc,
    ),
    op(
        nr::GET_HW_INFO,
        sz::<uapi::IommuHwInfo>(),
        32,
        device::get_hw_info,
    ),
    op(
        nr::HWPT_ALLOC,
        sz::<uapi::IommuHwptAlloc>(),
        24,
        hwpt::hwpt_alloc,
    ),
    op(
        nr::HWPT_GET_DIRTY_BITMAP,
        sz::<uapi::IommuHwptGetDirtyBitmap>(),
        48,
        hwpt::hwpt_get_dirty_bitmap,
    ),
    op(
        nr::HWPT_INVALIDATE,
        sz::<uapi::IommuHwptInvalidate>(),
        32,
        hwpt::hwpt_invalidate,
    ),
    op(
        nr::HWPT_SET_DIRTY_TRACKING,
        sz::<uapi::IommuHwptSetDirtyTracking>(),
        16,
        hwpt::hwpt_set_dirty_tracking,
    ),
    op(
        nr::IOAS_ALLOC,
        sz::<uapi::IommuIoasAlloc>(),
        12,
        ioas::ioas_alloc,
    ),
    op(
        nr::IOAS_ALLOW_IOVAS,
        sz::<uapi::IommuIoasAllowIovas>(),
        24,
        ioas::ioas_allow_iovas,
    ),
    op(
        nr::IOAS_COPY,
        sz::<uapi::IommuIoasCopy>(),
        40,
        ioas::ioas_copy,
    ),
    op(
        nr::IOAS_IOVA_RANGES,
        sz::<uapi::IommuIoasIovaRanges>(),
        32,
        ioas::ioas_iova_ranges,
    ),
    op(nr::IOAS_MAP, sz::<uapi::IommuIoasMap>(), 40, ioas::ioas_map),
    op(
        nr::IOAS_UNMAP,
        sz::<uapi::IommuIoasUnmap>(),
        24,
        ioas::ioas_unmap,
    ),
    op(nr::OPTION, sz::<uapi::IommuOption>(), 24, option::option),
    op(
        nr::VFIO_IOAS,
        sz::<uapi::IommuVfioIoas>(),
        12,
        vfio_compat::vfio_ioas,
    ),
    op(
        nr::TEST_CMD,
        test_cmd::TEST_CMD_SIZE,
        test_cmd::TEST_CMD_MIN_SIZE,
        test_cmd::execute,
    ),
];

/// `iommufd_fops_ioctl`: the ioctl `cmd` with argument `arg` from `peer`
/// on `file`; returns its value (or errno); the files it hands back go
/// into `fds` (none on failure).
pub fn dispatch(
    file: &IommufdFile,
    peer: Peer,
    cmd: u32,
    arg: u64,
    fds: &mut NewFiles,
) -> Result<i64, Errno> {
    let Some(op) = lookup(cmd) else {
        // Not an iommufd number: maybe a VFIO container ioctl; else
        // -ENOIOCTLCMD, which reaches user space as ENOTTY.
        return crate::vfio_type1::ioctl(file, peer, cmd, arg).unwrap_or(Err(Errno::NOTTY));
    };
    if op.ioctl_num == iommufd_io(nr::TEST_CMD) && file.selftest.is_none() {
        return Err(Errno::NOTTY);
    }
    let mut size = [0u8; 4];
    peer.read(arg, &mut size).map_err(|e| e.errno())?;
    let user_size = u32::from_le_bytes(size);
    if (user_size as usize) < op.min_size {
        return Err(Errno::INVAL);
    }
    let cmd = peer
        .copy_struct(arg, op.size, user_size)
        .map_err(|e| e.errno())?;
    let mut ucmd = Ucmd {
        file,
        peer,
        ubuffer: arg,
        user_size,
        cmd,
        fds,
    };
    let ret = (op.execute)(&mut ucmd);
    if ret.is_err() {
        ucmd.fds.clear();
    }
    ret
}

impl FileOps for IommufdFile {
    fn ioctl(&self, peer: Peer, cmd: u32, arg: u64, out: &mut NewFiles) -> Result<i64, Errno> {
        dispatch(self, peer, cmd, arg, out)
    }

    fn release(&self) {
        IommufdFile::release(self);
    }
}

fn lookup(cmd: u32) -> Option<&'static IoctlOp> {
    if ioc_type(cmd) != IOMMUFD_TYPE || ioc_nr(cmd) < IOMMUFD_CMD_BASE {
        return None;
    }
    IOMMUFD_IOCTL_OPS.iter().find(|op| op.ioctl_num == cmd)
}
