//! The IOAS ioctls (drivers/iommu/iommufd/ioas.c).

use rustix::io::Errno;
use umdev_iommufd::MapFlags;
use umdev_iommufd::io_pagetable::IovaRange;
use zerocopy::IntoBytes;

use crate::ioctl::{Ucmd, errno};
use crate::uapi::{
    IommuIoasAlloc, IommuIoasAllowIovas, IommuIoasCopy, IommuIoasIovaRanges, IommuIoasMap,
    IommuIoasUnmap, IommuIovaRange,
};

/// IOMMU_IOAS_ALLOC (`iommufd_ioas_alloc_ioctl`): flags must be 0
/// (EOPNOTSUPP); the IOAS goes again if the id cannot be written back.
pub fn ioas_alloc(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuIoasAlloc = ucmd.get();
    if c.flags != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let ictx = &ucmd.file.ictx;
    c.out_ioas_id = ictx.ioas_alloc().map_err(errno)?;
    if let Err(e) = ucmd.respond(&c) {
        let _ = ictx.destroy(c.out_ioas_id);
        return Err(e);
    }
    Ok(0)
}

/// IOMMU_IOAS_IOVA_RANGES (`iommufd_ioas_iova_ranges`): EOPNOTSUPP for a
/// non-zero `__reserved`; writes the ranges that fit at `allowed_iovas`,
/// the total into `num_iovas`, EMSGSIZE if they did not all fit.
pub fn ioas_iova_ranges(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuIoasIovaRanges = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let (ranges, alignment) = ucmd.file.ictx.ioas_iova_ranges(c.ioas_id).map_err(errno)?;
    let fit = ranges.len().min(c.num_iovas as usize);
    let out: Vec<IommuIovaRange> = ranges[..fit]
        .iter()
        .map(|r| IommuIovaRange {
            start: r.start,
            last: r.last,
        })
        .collect();
    ucmd.peer
        .write(c.allowed_iovas, out.as_bytes())
        .map_err(|e| e.errno())?;
    let total = ranges.len() as u32;
    let too_small = total > c.num_iovas;
    c.num_iovas = total;
    c.out_iova_alignment = alignment;
    ucmd.respond(&c)?;
    if too_small {
        return Err(Errno::MSGSIZE);
    }
    Ok(0)
}

/// IOMMU_IOAS_MAP (`iommufd_ioas_map`): EOPNOTSUPP for unknown flags or a
/// non-zero `__reserved`; the user range must be mapped in the caller
/// (EFAULT); the chosen IOVA is written back.
pub fn ioas_map(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuIoasMap = ucmd.get();
    let flags = MapFlags::from_bits(c.flags).ok_or(Errno::OPNOTSUPP)?;
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    if c.iova == u64::MAX || c.length == u64::MAX {
        return Err(Errno::OVERFLOW);
    }
    let file = ucmd.file;
    let (memory, offset) = file
        .memory
        .resolve(ucmd.peer, c.user_va, c.length)
        .map_err(|e| e.errno())?;
    c.iova = file
        .ictx
        .ioas_map(c.ioas_id, flags, &memory, offset, c.length, c.iova)
        .map_err(errno)?;
    if let Err(e) = ucmd.respond(&c) {
        let _ = file.ictx.ioas_unmap(c.ioas_id, c.iova, c.length);
        return Err(e);
    }
    Ok(0)
}

/// IOMMU_IOAS_UNMAP (`iommufd_ioas_unmap`): the bytes unmapped go back in
/// `length`.
pub fn ioas_unmap(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuIoasUnmap = ucmd.get();
    c.length = ucmd
        .file
        .ictx
        .ioas_unmap(c.ioas_id, c.iova, c.length)
        .map_err(errno)?;
    ucmd.respond(&c)?;
    Ok(0)
}

/// IOMMU_IOAS_ALLOW_IOVAS (`iommufd_ioas_allow_iovas`): EOPNOTSUPP for a
/// non-zero `__reserved`, ENOENT for a bad IOAS; the ranges are read one
/// by one (`iommufd_ioas_load_iovas`): EFAULT, EINVAL for `start >= last`
/// or a range overlapping an earlier one; then the IOAS's rules.
pub fn ioas_allow_iovas(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let c: IommuIoasAllowIovas = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let ictx = &ucmd.file.ictx;
    ictx.ioas(c.ioas_id).map_err(errno)?;
    // start -> last of the ranges so far, to find overlaps as the
    // kernel's interval tree does.
    let mut tree = std::collections::BTreeMap::<u64, u64>::new();
    ucmd.peer.for_each_record(
        c.allowed_iovas,
        u64::from(c.num_iovas),
        |r: IommuIovaRange| {
            if r.start >= r.last {
                return Err(Errno::INVAL);
            }
            let before = tree.range(..=r.last).next_back();
            if before.is_some_and(|(_, &last)| last >= r.start) {
                return Err(Errno::INVAL);
            }
            tree.insert(r.start, r.last);
            Ok(())
        },
    )?;
    let ranges: Vec<IovaRange> = tree
        .into_iter()
        .map(|(s, l)| IovaRange::new(s, l))
        .collect();
    ictx.ioas_allow_iovas(c.ioas_id, &ranges).map_err(errno)?;
    Ok(0)
}

/// IOMMU_IOAS_COPY (`iommufd_ioas_copy`): the flags of MAP, then the
/// source range must be mapped; the chosen `dst_iova` is written back.
pub fn ioas_copy(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuIoasCopy = ucmd.get();
    let flags = MapFlags::from_bits(c.flags).ok_or(Errno::OPNOTSUPP)?;
    let ictx = &ucmd.file.ictx;
    c.dst_iova = ictx
        .ioas_copy(
            c.dst_ioas_id,
            c.src_ioas_id,
            flags,
            c.length,
            c.src_iova,
            c.dst_iova,
        )
        .map_err(errno)?;
    if let Err(e) = ucmd.respond(&c) {
        let _ = ictx.ioas_unmap(c.dst_ioas_id, c.dst_iova, c.length);
        return Err(e);
    }
    Ok(0)
}
