//! The HWPT ioctls (hw_pagetable.c): ALLOC, SET_DIRTY_TRACKING,
//! GET_DIRTY_BITMAP, INVALIDATE.

use rustix::io::Errno;
use umdev_iommufd::selftest::ops::{
    self, INVALIDATE_SELFTEST_LEN, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
};
use umdev_iommufd::{
    DirtyRange, DirtyTrackingFlags, GetDirtyBitmapFlags, HwptAllocFlags, HwptData,
    HwptInvalidateData, IommufdError,
};

use crate::ioctl::{Ucmd, errno};
use crate::uapi::{
    IOMMU_HWPT_DATA_NONE, IommuHwptAlloc, IommuHwptGetDirtyBitmap, IommuHwptInvalidate,
    IommuHwptSetDirtyTracking,
};

/// Bytes of a dirty bitmap handled per step.
const BITMAP_WINDOW: u64 = 4096;
/// IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX.
const INVALIDATE_ENTRY_NUM_MAX: u32 = 1 << 19;
/// Invalidation entries handed to the driver per step.
const INVALIDATE_BATCH: usize = 512;

/// IOMMU_HWPT_ALLOC (`iommufd_hwpt_alloc`): EOPNOTSUPP for a non-zero
/// `__reserved`; EINVAL if `data_type` and `data_len` disagree (NONE with
/// data, a type without); then the context's rules (device, `pt_id`,
/// flags, nesting, `fault_id`). The HWPT goes again if the id cannot be
/// written back.
pub fn hwpt_alloc(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuHwptAlloc = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    if (c.data_type == IOMMU_HWPT_DATA_NONE) != (c.data_len == 0) {
        return Err(Errno::INVAL);
    }
    let data = user_data(ucmd, &c)?;
    let ictx = &ucmd.file.ictx;
    let flags = HwptAllocFlags::from_bits_retain(c.flags);
    c.out_hwpt_id = ictx
        .hwpt_alloc_fault(c.dev_id, c.pt_id, flags, data, c.fault_id)
        .map_err(errno)?;
    if let Err(e) = ucmd.respond(&c) {
        let _ = ictx.destroy(c.out_hwpt_id);
        return Err(e);
    }
    Ok(0)
}

/// The driver's user data of HWPT_ALLOC. A paging HWPT (on an IOAS)
/// refuses any data without reading it; a nested one reads it as the
/// driver does (`iommu_copy_struct_from_user`: EINVAL for a length other
/// than the struct's, EFAULT). Only the selftest's type is decoded here;
/// any other type is refused by the driver (EOPNOTSUPP).
fn user_data(ucmd: &Ucmd<'_>, c: &IommuHwptAlloc) -> Result<HwptData, Errno> {
    let file = ucmd.file;
    if c.data_type == IOMMU_HWPT_DATA_NONE {
        return Ok(HwptData::None);
    }
    if file.selftest.is_none()
        || c.data_type != ops::IOMMU_HWPT_DATA_SELFTEST
        || file.ictx.ioas(c.pt_id).is_ok()
    {
        return Ok(HwptData::Unknown(c.data_type));
    }
    // struct iommu_hwpt_selftest { __u32 iotlb; }.
    let mut cfg = [0u8; 4];
    if c.data_len as usize != cfg.len() {
        return Err(Errno::INVAL);
    }
    ucmd.peer
        .read(c.data_uptr, &mut cfg)
        .map_err(|e| e.errno())?;
    ops::hwpt_data(c.data_type, &cfg).map_err(errno)
}

/// IOMMU_HWPT_SET_DIRTY_TRACKING (`iommufd_hwpt_set_dirty_tracking`).
pub fn hwpt_set_dirty_tracking(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let c: IommuHwptSetDirtyTracking = ucmd.get();
    let flags = DirtyTrackingFlags::from_bits_retain(c.flags);
    ucmd.file
        .ictx
        .hwpt_set_dirty_tracking(c.hwpt_id, flags)
        .map_err(errno)?;
    Ok(0)
}

/// IOMMU_HWPT_GET_DIRTY_BITMAP (`iommufd_hwpt_get_dirty_bitmap`):
/// EOPNOTSUPP for unknown flags or a non-zero `__reserved`, then the
/// context's rules. The user bitmap at `data` gets the dirty bits ORed
/// in, `BITMAP_WINDOW` bytes at a time (read, filled, written back).
pub fn hwpt_get_dirty_bitmap(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let c: IommuHwptGetDirtyBitmap = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let ictx = &ucmd.file.ictx;
    let flags = GetDirtyBitmapFlags::from_bits_retain(c.flags);
    let range = DirtyRange {
        iova: c.iova,
        length: c.length,
        page_size: c.page_size,
    };
    // An empty bitmap answers every check made before the bitmap is
    // touched, and says how many bytes it needs.
    let needed = match ictx.hwpt_get_dirty_bitmap_into(c.hwpt_id, flags, range, &mut []) {
        Err(IommufdError::BadBuffer { needed, .. }) => needed as u64,
        Err(e) => return Err(errno(e)),
        Ok(()) => return Ok(0),
    };
    let shift = c.page_size.trailing_zeros();
    let mut buf = vec![0u8; BITMAP_WINDOW as usize];
    let mut off = 0;
    while off < needed {
        let n = (needed - off).min(BITMAP_WINDOW);
        let start = (off * 8) << shift;
        let window = DirtyRange {
            iova: c.iova + start,
            length: (n * 8).saturating_mul(1 << shift).min(c.length - start),
            page_size: c.page_size,
        };
        let bytes = &mut buf[..n as usize];
        let at = c.data.wrapping_add(off);
        ucmd.peer.read(at, bytes).map_err(|e| e.errno())?;
        ictx.hwpt_get_dirty_bitmap_into(c.hwpt_id, flags, window, bytes)
            .map_err(errno)?;
        ucmd.peer.write(at, bytes).map_err(|e| e.errno())?;
        off += n;
    }
    Ok(0)
}

/// IOMMU_HWPT_INVALIDATE (`iommufd_hwpt_invalidate`): `entry_num` is
/// written back with the entries handled, whatever the result.
pub fn hwpt_invalidate(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuHwptInvalidate = ucmd.get();
    let (done, result) = invalidate(ucmd, &c);
    c.entry_num = done;
    ucmd.respond(&c).map_err(|_| Errno::FAULT)?;
    result.map(|()| 0)
}

/// The rules of HWPT_INVALIDATE in the kernel's order: EOPNOTSUPP for a
/// non-zero `__reserved`; EINVAL for a non-empty array without a pointer,
/// with an entry length of 0 or over a page, or over 2^19 entries;
/// ENOENT unless `hwpt_id` is a nested HWPT (6.12's
/// `iommufd_get_hwpt_nested` is a typed lookup); then the driver's
/// (EINVAL for a data type or entry length it does not take, EFAULT,
/// per-entry errors). Returns the entries handled and the result.
fn invalidate(ucmd: &Ucmd<'_>, c: &IommuHwptInvalidate) -> (u32, Result<(), Errno>) {
    if c.reserved != 0 {
        return (0, Err(Errno::OPNOTSUPP));
    }
    if c.entry_num != 0
        && (c.data_uptr == 0
            || c.entry_len == 0
            || c.entry_len as u64 > umdev_iommu::memory::PAGE_SIZE
            || c.entry_num > INVALIDATE_ENTRY_NUM_MAX)
    {
        return (0, Err(Errno::INVAL));
    }
    let file = ucmd.file;
    let selftest = file.selftest.is_some() && c.data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    let probe = if selftest {
        HwptInvalidateData::VtdS1(&[])
    } else {
        HwptInvalidateData::Unknown(c.data_type)
    };
    let typed = |e: IommufdError| match e {
        IommufdError::WrongType { .. } => Errno::NOENT,
        e => errno(e),
    };
    if let Err(e) = file.ictx.hwpt_invalidate(c.hwpt_id, probe).result {
        return (0, Err(typed(e)));
    }
    if c.entry_num == 0 {
        return (0, Ok(()));
    }
    if c.entry_len != INVALIDATE_SELFTEST_LEN {
        return (0, Err(Errno::INVAL));
    }
    let mut done = 0u32;
    let mut batch: Vec<u8> = Vec::with_capacity(INVALIDATE_BATCH * 8);
    let mut flush = |batch: &mut Vec<u8>| -> Result<(), Errno> {
        let (entries, bad) = ops::invalidate_entries(batch);
        batch.clear();
        let r = file
            .ictx
            .hwpt_invalidate(c.hwpt_id, HwptInvalidateData::VtdS1(&entries));
        done += r.entry_num;
        r.result.map_err(typed)?;
        bad.map_or(Ok(()), |e| Err(errno(e)))
    };
    let read = ucmd
        .peer
        .for_each_record(c.data_uptr, u64::from(c.entry_num), |e: [u8; 8]| {
            batch.extend_from_slice(&e);
            if batch.len() == INVALIDATE_BATCH * 8 {
                flush(&mut batch)?;
            }
            Ok(())
        });
    // The entries read before a fault are handled before it is reported.
    let result = match flush(&mut batch) {
        Ok(()) => read,
        Err(e) => Err(e),
    };
    (done, result)
}
