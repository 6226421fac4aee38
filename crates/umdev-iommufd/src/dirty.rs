//! Dirty tracking on DIRTY_TRACKING paging HWPTs (hw_pagetable.c
//! `iommufd_hwpt_set_dirty_tracking` / `iommufd_hwpt_get_dirty_bitmap`,
//! io_pagetable.c `iopt_set_dirty_tracking` /
//! `iopt_read_and_clear_dirty_data`, iova_bitmap.c).
//!
//! The bitmap has one bit per `page_size` bytes from `iova`: bit `i`
//! stands for `[iova + i·page_size, +page_size)`, stored little-endian in
//! u64 words (`data[i / 64] & 1 << (i % 64)`), which is byte `i / 8` bit
//! `i % 8`. Reading ORs dirty bits in and, unless NO_CLEAR, clears the
//! dirty state in the page table.

use std::sync::Arc;

use rustix::io::Errno;

use crate::error::{IommufdError, Result};
use crate::private::{HwptPaging, Ictx, Object};

bitflags::bitflags! {
    /// enum iommufd_hwpt_set_dirty_tracking_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DirtyTrackingFlags: u32 {
        /// IOMMU_HWPT_DIRTY_TRACKING_ENABLE.
        const ENABLE = 1 << 0;
    }
}

bitflags::bitflags! {
    /// enum iommufd_hwpt_get_dirty_bitmap_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GetDirtyBitmapFlags: u32 {
        /// IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: read without clearing.
        const NO_CLEAR = 1 << 0;
    }
}

/// The IOVA range of a bitmap request (the iova / length / page_size of
/// struct iommu_hwpt_get_dirty_bitmap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyRange {
    /// First IOVA.
    pub iova: u64,
    /// Bytes covered.
    pub length: u64,
    /// Bytes per bit.
    pub page_size: u64,
}

impl DirtyRange {
    /// `iommufd_check_iova_range`: EOVERFLOW if the range wraps; EINVAL if
    /// it is not aligned to the IOAS alignment, `page_size` is 0, or it is
    /// not aligned to `page_size`. Returns the last IOVA.
    fn check(&self, iova_alignment: u64) -> Result<u64> {
        let last =
            self.iova
                .checked_add(self.length.wrapping_sub(1))
                .ok_or(IommufdError::Overflow {
                    what: "dirty bitmap range",
                })?;
        let end = last.wrapping_add(1);
        let misaligned = |mask: u64| self.iova & mask != 0 || end & mask != 0;
        if misaligned(iova_alignment - 1) {
            return Err(IommufdError::Invalid {
                what: "dirty range not aligned to the IOAS alignment",
            });
        }
        if self.page_size == 0 || misaligned(self.page_size.wrapping_sub(1)) {
            return Err(IommufdError::Invalid {
                what: "dirty range not aligned to page_size",
            });
        }
        if self.length == 0 {
            return Err(IommufdError::Invalid {
                what: "empty dirty range",
            });
        }
        Ok(last)
    }

    /// Bits the bitmap needs (`iova_bitmap`: one per 2^ffs(page_size)).
    fn nbits(&self, last: u64) -> u64 {
        ((last - self.iova) >> self.page_size.trailing_zeros()) + 1
    }
}

/// Sets the bits of `[addr, addr + len)`, clipped to `[iova, last]`
/// (`iova_bitmap_set`).
fn set_bits(bitmap: &mut [u8], range: &DirtyRange, last: u64, addr: u64, len: u64) {
    let Some(end) = len.checked_sub(1).and_then(|l| addr.checked_add(l)) else {
        return;
    };
    if end < range.iova || addr > last {
        return;
    }
    let shift = range.page_size.trailing_zeros();
    let first = (addr.max(range.iova) - range.iova) >> shift;
    let final_bit = (end.min(last) - range.iova) >> shift;
    for bit in first..=final_bit {
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

impl Ictx {
    /// A paging HWPT by id: ENOENT otherwise (`iommufd_get_hwpt_paging`).
    pub(crate) fn get_hwpt_paging(&self, id: u32) -> Result<Arc<HwptPaging>> {
        match self.table.lock().get(id)? {
            Object::HwptPaging(h) => Ok(h),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "a paging HWPT",
                errno: Errno::NOENT,
            }),
        }
    }

    /// IOMMU_HWPT_SET_DIRTY_TRACKING: EOPNOTSUPP for unknown flags or a
    /// HWPT allocated without DIRTY_TRACKING, ENOENT unless `hwpt_id` is a
    /// paging HWPT. Enabling starts from a clean state (the driver clears
    /// the dirty bits, `iopt_clear_dirty_data`).
    pub fn hwpt_set_dirty_tracking(&self, hwpt_id: u32, flags: DirtyTrackingFlags) -> Result<()> {
        if !DirtyTrackingFlags::all().contains(flags) {
            return Err(IommufdError::Unsupported {
                what: "dirty tracking flags",
            });
        }
        let hwpt = self.get_hwpt_paging(hwpt_id)?;
        if !hwpt.dirty_capable() {
            return Err(IommufdError::Unsupported {
                what: "dirty tracking on a HWPT without DIRTY_TRACKING",
            });
        }
        let _iopt = hwpt.ioas().iopt.lock();
        hwpt.domain()
            .ops()
            .set_dirty_tracking(flags.contains(DirtyTrackingFlags::ENABLE))
            .map_err(|errno| IommufdError::Errno {
                what: "set_dirty_tracking",
                errno,
            })
    }

    /// IOMMU_HWPT_GET_DIRTY_BITMAP into `bitmap` (the user buffer, at any
    /// byte offset): ORs in a bit per dirty `page_size` unit of `range`.
    /// Errnos in Linux's order: EOPNOTSUPP unknown flags; ENOENT not a
    /// paging HWPT; EOVERFLOW / EINVAL for the range (see [`DirtyRange`]);
    /// EOPNOTSUPP for a HWPT without DIRTY_TRACKING; EFAULT if `bitmap` is
    /// shorter than the bits need; the driver's error (EINVAL while
    /// tracking is off); EINVAL if the range is not covered by
    /// back-to-back areas (the areas before the gap are read).
    pub fn hwpt_get_dirty_bitmap_into(
        &self,
        hwpt_id: u32,
        flags: GetDirtyBitmapFlags,
        range: DirtyRange,
        bitmap: &mut [u8],
    ) -> Result<()> {
        if !GetDirtyBitmapFlags::all().contains(flags) {
            return Err(IommufdError::Unsupported {
                what: "dirty bitmap flags",
            });
        }
        let hwpt = self.get_hwpt_paging(hwpt_id)?;
        let iopt = hwpt.ioas().iopt.lock();
        let last = range.check(iopt.iova_alignment())?;
        if !hwpt.dirty_capable() {
            return Err(IommufdError::Unsupported {
                what: "dirty bitmap of a HWPT without DIRTY_TRACKING",
            });
        }
        let needed = range.nbits(last).div_ceil(8);
        if (bitmap.len() as u64) < needed {
            return Err(IommufdError::BadBuffer {
                what: "dirty bitmap",
                len: bitmap.len(),
                needed: usize::try_from(needed).unwrap_or(usize::MAX),
            });
        }
        let clear = !flags.contains(GetDirtyBitmapFlags::NO_CLEAR);
        let (pieces, complete) = iopt.contig_pieces(range.iova, last);
        let ops = hwpt.domain().ops();
        for piece in pieces {
            ops.read_and_clear_dirty(
                piece.start,
                piece.last - piece.start + 1,
                clear,
                &mut |addr, len| set_bits(bitmap, &range, last, addr, len),
            )
            .map_err(|errno| IommufdError::Errno {
                what: "read_and_clear_dirty",
                errno,
            })?;
        }
        if !complete {
            return Err(IommufdError::Invalid {
                what: "dirty range not covered by contiguous areas",
            });
        }
        Ok(())
    }

    /// IOMMU_HWPT_GET_DIRTY_BITMAP into a new zeroed bitmap of
    /// `ceil(nbits / 64)` u64 words; errnos as
    /// [`Ictx::hwpt_get_dirty_bitmap_into`].
    pub fn hwpt_get_dirty_bitmap(
        &self,
        hwpt_id: u32,
        flags: GetDirtyBitmapFlags,
        range: DirtyRange,
    ) -> Result<Vec<u64>> {
        let nbits = range
            .length
            .checked_shr(range.page_size.trailing_zeros())
            .unwrap_or(0);
        let mut bytes = vec![0u8; usize::try_from(nbits.div_ceil(64) * 8).unwrap_or(0)];
        self.hwpt_get_dirty_bitmap_into(hwpt_id, flags, range, &mut bytes)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(iova: u64, length: u64, page_size: u64) -> DirtyRange {
        DirtyRange {
            iova,
            length,
            page_size,
        }
    }

    #[test]
    fn range_checks_follow_iommufd_check_iova_range() {
        let errno = |r: DirtyRange, align| r.check(align).map_err(|e| e.errno());
        assert_eq!(errno(range(0x1000, 0x2000, 0x1000), 1), Ok(0x2fff));
        assert_eq!(
            errno(range(u64::MAX - 0xfff, 0x2000, 0x1000), 1),
            Err(Errno::OVERFLOW)
        );
        assert_eq!(
            errno(range(0x800, 0x1000, 0x800), 0x1000),
            Err(Errno::INVAL)
        );
        assert_eq!(
            errno(range(0x1000, 0x1800, 0x800), 0x1000),
            Err(Errno::INVAL)
        );
        assert_eq!(errno(range(0x1000, 0x1000, 0), 1), Err(Errno::INVAL));
        assert_eq!(
            errno(range(0x1800, 0x1000, 0x1000), 0x800),
            Err(Errno::INVAL)
        );
        // A range ending at the top of the address space is not an overflow.
        assert_eq!(
            errno(range(u64::MAX - 0xfff, 0x1000, 0x1000), 1),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn set_bits_clips_to_the_range_and_spans_pages() {
        let r = range(0x10000, 0x8000, 0x800);
        let last = 0x17fff;
        let mut bm = [0u8; 2];
        // A 4 KiB dirty page starting before the range: only its in-range half.
        set_bits(&mut bm, &r, last, 0xf800, 0x1000);
        // A 1 MiB dirty huge page covering the end of the range.
        set_bits(&mut bm, &r, last, 0x17000, 0x100000);
        assert_eq!(bm, [0b0000_0001, 0b1100_0000]);
        set_bits(&mut bm, &r, last, 0x20000, 0x800);
        assert_eq!(bm, [0b0000_0001, 0b1100_0000]);
    }
}
