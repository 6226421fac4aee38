//! VFIO type1 compatibility over an IOAS (drivers/iommu/iommufd/vfio_compat.c):
//! the `/dev/vfio/vfio` container ioctls answered from the context's compat
//! IOAS (`ictx->vfio_ioas`, set with [`Ictx::vfio_ioas`]).
//!
//! Type1 v1 and v2 differ only in partial unmaps: v1 (VFIO_TYPE1_IOMMU)
//! turns huge pages off on the compat IOAS at SET_IOMMU, so an unmap may
//! first cut the areas it crosses; v2 refuses a partial unmap with ENOENT.
//! Every MAP_DMA is a fixed-IOVA map.
//!
//! VFIO_IOMMU_GET_INFO writes into a caller buffer of `argsz` bytes exactly
//! as the kernel lays it out (the ABI structs below are little-endian):
//! `struct vfio_iommu_type1_info` (24 bytes), then the capability chain
//! DMA_AVAIL, IOVA_RANGE, each at an 8-byte aligned offset.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::memory::{HostMemory, MemoryObject, PAGE_SIZE};
use umdev_iommu::pgtable::Prot;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::{IoptPages, IovaRange, IovaRequest};
use crate::private::Ictx;
use crate::private::Ioas;

/// VFIO_API_VERSION, what VFIO_GET_API_VERSION returns.
pub const VFIO_API_VERSION: u32 = 0;
/// VFIO_TYPE1_IOMMU: type1 without partial-unmap restrictions.
pub const VFIO_TYPE1_IOMMU: u64 = 1;
/// VFIO_SPAPR_TCE_IOMMU (never offered here).
pub const VFIO_SPAPR_TCE_IOMMU: u64 = 2;
/// VFIO_TYPE1v2_IOMMU: type1 where only whole mappings may be unmapped.
#[doc(alias = "VFIO_TYPE1v2_IOMMU")]
pub const VFIO_TYPE1V2_IOMMU: u64 = 3;
/// VFIO_DMA_CC_IOMMU: every domain enforces DMA cache coherency.
pub const VFIO_DMA_CC_IOMMU: u64 = 4;
/// VFIO_TYPE1_NESTING_IOMMU (obsolete, always 0).
pub const VFIO_TYPE1_NESTING_IOMMU: u64 = 6;
/// VFIO_NOIOMMU_IOMMU (no no-IOMMU mode here, always 0).
pub const VFIO_NOIOMMU_IOMMU: u64 = 8;
/// VFIO_UNMAP_ALL: VFIO_DMA_UNMAP_FLAG_ALL is supported.
pub const VFIO_UNMAP_ALL: u64 = 9;
/// VFIO_UPDATE_VADDR (not supported, always 0).
pub const VFIO_UPDATE_VADDR: u64 = 10;

/// `struct vfio_iommu_type1_info` flag: `iova_pgsizes` is valid.
pub const VFIO_IOMMU_INFO_PGSIZES: u32 = 1 << 0;
/// `struct vfio_iommu_type1_info` flag: a capability chain is reported.
pub const VFIO_IOMMU_INFO_CAPS: u32 = 1 << 1;
/// Capability id of `struct vfio_iommu_type1_info_cap_iova_range`.
pub const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;
/// Capability id of `struct vfio_iommu_type1_info_dma_avail`.
pub const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: u16 = 3;

/// `sizeof(struct vfio_iommu_type1_info)`: argsz, flags, iova_pgsizes,
/// cap_offset, pad.
pub const VFIO_IOMMU_TYPE1_INFO_SIZE: u32 = 24;
/// `offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)`: the least
/// argsz VFIO_IOMMU_GET_INFO accepts.
pub const VFIO_IOMMU_TYPE1_INFO_MINSZ: u32 = 16;
/// `sizeof(struct vfio_iommu_type1_info_dma_avail)`: header + avail.
const DMA_AVAIL_CAP_SIZE: usize = 12;
/// `sizeof(struct vfio_iommu_type1_info_cap_iova_range)` without ranges.
const IOVA_RANGE_CAP_SIZE: usize = 16;
/// `sizeof(struct vfio_iova_range)`.
const IOVA_RANGE_SIZE: usize = 16;

bitflags::bitflags! {
    /// `struct vfio_iommu_type1_dma_map` flags. Unknown bits are kept so
    /// that they can be refused.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VfioDmaMapFlags: u32 {
        /// VFIO_DMA_MAP_FLAG_READ: the device may read.
        const READ = 1 << 0;
        /// VFIO_DMA_MAP_FLAG_WRITE: the device may write.
        const WRITE = 1 << 1;
        /// VFIO_DMA_MAP_FLAG_VADDR (type1 only; refused here).
        const VADDR = 1 << 2;
    }
}

bitflags::bitflags! {
    /// `struct vfio_iommu_type1_dma_unmap` flags. Unknown bits are kept so
    /// that they can be refused.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VfioDmaUnmapFlags: u32 {
        /// VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (obsolete; refused here).
        const GET_DIRTY_BITMAP = 1 << 0;
        /// VFIO_DMA_UNMAP_FLAG_ALL: unmap everything (iova = size = 0).
        const ALL = 1 << 1;
        /// VFIO_DMA_UNMAP_FLAG_VADDR (type1 only; refused here).
        const VADDR = 1 << 2;
    }
}

/// `struct vfio_iommu_type1_dma_map` (VFIO_IOMMU_MAP_DMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfioDmaMap {
    /// Size the caller claims the struct has.
    pub argsz: u32,
    /// Permissions.
    pub flags: VfioDmaMapFlags,
    /// The "process virtual address" of the memory: an address of the
    /// [`HostMemory`] passed to the map call.
    pub vaddr: u64,
    /// IOVA to map at (always fixed).
    pub iova: u64,
    /// Bytes to map.
    pub size: u64,
}

impl VfioDmaMap {
    /// `offsetofend(struct vfio_iommu_type1_dma_map, size)`.
    pub const MINSZ: u32 = 32;

    /// A map request with `argsz` set to the full struct size.
    pub fn new(flags: VfioDmaMapFlags, vaddr: u64, iova: u64, size: u64) -> Self {
        Self {
            argsz: Self::MINSZ,
            flags,
            vaddr,
            iova,
            size,
        }
    }
}

/// `struct vfio_iommu_type1_dma_unmap` (VFIO_IOMMU_UNMAP_DMA). `size` is
/// also the output: the bytes unmapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfioDmaUnmap {
    /// Size the caller claims the struct has.
    pub argsz: u32,
    /// VFIO_DMA_UNMAP_FLAG_*.
    pub flags: VfioDmaUnmapFlags,
    /// First IOVA.
    pub iova: u64,
    /// In: bytes to unmap; out: bytes unmapped.
    pub size: u64,
}

impl VfioDmaUnmap {
    /// `offsetofend(struct vfio_iommu_type1_dma_unmap, size)`.
    pub const MINSZ: u32 = 24;

    /// An unmap request with `argsz` set to the full struct size.
    pub fn new(flags: VfioDmaUnmapFlags, iova: u64, size: u64) -> Self {
        Self {
            argsz: Self::MINSZ,
            flags,
            iova,
            size,
        }
    }
}

fn einval(what: &'static str) -> IommufdError {
    IommufdError::Invalid { what }
}

fn efault(what: &'static str) -> IommufdError {
    IommufdError::Errno {
        what,
        errno: Errno::FAULT,
    }
}

fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes `struct vfio_info_cap_header { u16 id; u16 version; u32 next; }`
/// with `next = 0`.
fn put_cap_header(buf: &mut [u8], off: usize, id: u16) {
    put_u16(buf, off, id);
    put_u16(buf, off + 2, 1);
    put_u32(buf, off + 4, 0);
}

/// The capabilities of VFIO_IOMMU_GET_INFO, in chain order (the kernel's
/// `fill_fns`).
#[derive(Clone, Copy)]
enum InfoCap {
    DmaAvail,
    IovaRange,
}

impl InfoCap {
    /// Fills the capability at `buf[off..]` with `avail` bytes of room,
    /// writing only what fits as the kernel does, and returns its unaligned
    /// size (`iommufd_fill_cap_dma_avail` / `iommufd_fill_cap_iova`).
    fn fill(self, buf: &mut [u8], off: usize, avail: usize, ranges: &[IovaRange]) -> usize {
        match self {
            InfoCap::DmaAvail => {
                if avail >= DMA_AVAIL_CAP_SIZE {
                    put_cap_header(buf, off, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
                    // iommufd's limit is the memory cgroup's; like the
                    // kernel, report U32_MAX.
                    put_u32(buf, off + 8, u32::MAX);
                }
                DMA_AVAIL_CAP_SIZE
            }
            InfoCap::IovaRange => {
                for (i, r) in ranges.iter().enumerate() {
                    let at = IOVA_RANGE_CAP_SIZE + i * IOVA_RANGE_SIZE;
                    if avail >= at + IOVA_RANGE_SIZE {
                        put_u64(buf, off + at, r.start);
                        put_u64(buf, off + at + 8, r.last);
                    }
                }
                let size = IOVA_RANGE_CAP_SIZE + ranges.len() * IOVA_RANGE_SIZE;
                if avail >= size {
                    put_cap_header(buf, off, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
                    put_u32(buf, off + 8, ranges.len() as u32);
                    put_u32(buf, off + 12, 0);
                }
                size
            }
        }
    }
}

impl Ictx {
    /// `get_compat_ioas`: the compat IOAS, ENODEV when there is none.
    fn compat_ioas(&self) -> Result<Arc<Ioas>> {
        let no_ioas = IommufdError::Errno {
            what: "no VFIO compat IOAS",
            errno: Errno::NODEV,
        };
        let id = (*self.vfio_ioas.lock()).ok_or(no_ioas.clone())?;
        self.get_ioas(id).map_err(|_| no_ioas)
    }

    /// VFIO_GET_API_VERSION.
    pub fn vfio_get_api_version(&self) -> u32 {
        VFIO_API_VERSION
    }

    /// VFIO_CHECK_EXTENSION (`iommufd_vfio_check_extension`): 1 for TYPE1,
    /// TYPE1v2 and UNMAP_ALL; for DMA_CC_IOMMU, 1 when a compat IOAS exists
    /// (ENODEV otherwise) because every umdev domain is cache coherent (DMA
    /// is performed on coherent host memory); 0 for anything else.
    pub fn vfio_check_extension(&self, extension: u64) -> Result<u32> {
        match extension {
            VFIO_TYPE1_IOMMU | VFIO_TYPE1V2_IOMMU | VFIO_UNMAP_ALL => Ok(1),
            VFIO_DMA_CC_IOMMU => self.compat_ioas().map(|_| 1),
            _ => Ok(0),
        }
    }

    /// VFIO_SET_IOMMU (`iommufd_vfio_set_iommu`): EINVAL for a type other
    /// than TYPE1 / TYPE1v2, ENODEV without a compat IOAS. TYPE1 turns huge
    /// pages off on the compat IOAS (EINVAL while it has both domains and
    /// mappings), so that partial unmaps can split areas.
    pub fn vfio_set_iommu(&self, iommu_type: u64) -> Result<()> {
        if iommu_type != VFIO_TYPE1_IOMMU && iommu_type != VFIO_TYPE1V2_IOMMU {
            return Err(einval("VFIO_SET_IOMMU type"));
        }
        let ioas = self.compat_ioas()?;
        if iommu_type == VFIO_TYPE1_IOMMU {
            ioas.iopt
                .lock()
                .set_huge_pages(false)
                .map_err(IommufdError::iopt("VFIO_SET_IOMMU"))?;
        }
        Ok(())
    }

    /// VFIO_IOMMU_MAP_DMA (`iommufd_vfio_map_dma`): maps `map.size` bytes
    /// of `mem` at address `map.vaddr` to `map.iova` (always fixed). EINVAL
    /// for `argsz < 32` or flags other than READ|WRITE, ENODEV without a
    /// compat IOAS, EFAULT if `mem` does not back the range, then the
    /// io_pagetable's errnos for a fixed map.
    pub fn vfio_map_dma(&self, mem: &HostMemory, map: &VfioDmaMap) -> Result<()> {
        self.vfio_map_dma_with(map, || {
            mem.resolve(map.vaddr, map.size)
                .map_err(|_| efault("VFIO_IOMMU_MAP_DMA vaddr"))
        })
    }

    /// VFIO_IOMMU_MAP_DMA whose `vaddr` the caller resolves (a uAPI
    /// client's user VA) once the arguments passed their checks.
    pub fn vfio_map_dma_with(
        &self,
        map: &VfioDmaMap,
        resolve: impl FnOnce() -> Result<(Arc<MemoryObject>, u64)>,
    ) -> Result<()> {
        let supported = VfioDmaMapFlags::READ | VfioDmaMapFlags::WRITE;
        if map.argsz < VfioDmaMap::MINSZ || !supported.contains(map.flags) {
            return Err(einval("VFIO_IOMMU_MAP_DMA argsz or flags"));
        }
        let mut prot = Prot::empty();
        if map.flags.contains(VfioDmaMapFlags::READ) {
            prot |= Prot::READ;
        }
        if map.flags.contains(VfioDmaMapFlags::WRITE) {
            prot |= Prot::WRITE;
        }
        let ioas = self.compat_ioas()?;
        if map.size == 0 {
            return Err(einval("VFIO_IOMMU_MAP_DMA size 0"));
        }
        let (object, offset) = resolve()?;
        let pages = IoptPages::new(object, offset, map.size, true, Arc::clone(self.account()))
            .map_err(IommufdError::iopt("VFIO_IOMMU_MAP_DMA"))?;
        ioas.iopt
            .lock()
            .map(IovaRequest::Fixed(map.iova), pages, 0, map.size, prot)
            .map(drop)
            .map_err(IommufdError::iopt("VFIO_IOMMU_MAP_DMA"))
    }

    /// VFIO_IOMMU_UNMAP_DMA (`iommufd_vfio_unmap_dma`). EINVAL for
    /// `argsz < 24` or flags other than ALL, ENODEV without a compat IOAS;
    /// UNMAP_FLAG_ALL needs `iova == size == 0` (EINVAL) and unmaps
    /// everything. Otherwise, in type1 v1 mode the areas are first cut at
    /// `iova` and `iova + size`; then every area inside the range is
    /// unmapped (`size == 0` EINVAL, overflow EOVERFLOW, an area only
    /// partly inside ENOENT). A range with nothing mapped succeeds.
    /// `unmap.size` receives the bytes unmapped, also on the errors that
    /// happen while unmapping (the kernel copies the struct back then).
    pub fn vfio_unmap_dma(&self, unmap: &mut VfioDmaUnmap) -> Result<()> {
        if unmap.argsz < VfioDmaUnmap::MINSZ || !VfioDmaUnmapFlags::ALL.contains(unmap.flags) {
            return Err(einval("VFIO_IOMMU_UNMAP_DMA argsz or flags"));
        }
        let ioas = self.compat_ioas()?;
        let result = if unmap.flags.contains(VfioDmaUnmapFlags::ALL) {
            if unmap.iova != 0 || unmap.size != 0 {
                return Err(einval("UNMAP_FLAG_ALL with iova or size"));
            }
            ioas.unmap_range(IovaRange::new(0, u64::MAX), true)
        } else {
            if !ioas.iopt.lock().huge_pages() {
                Self::cut_for_unmap(&ioas, unmap.iova, unmap.size)?;
            }
            Self::unmap_iova(&ioas, unmap.iova, unmap.size)
        };
        unmap.size = *result.as_ref().unwrap_or(&0);
        result.map(drop)
    }

    /// The type1 v1 cuts: the kernel splits areas after `iova + size - 1`
    /// and after `iova - 1` (not when `iova == 0`), i.e. new areas start at
    /// `iova + size` and `iova` (`iopt_cut_iova`). A cut after the last
    /// IOVA is a no-op.
    fn cut_for_unmap(ioas: &Ioas, iova: u64, size: u64) -> Result<()> {
        let mut iopt = ioas.iopt.lock();
        let after_last = iova.wrapping_add(size).wrapping_sub(1);
        let cuts = [Some(after_last), iova.checked_sub(1)];
        for after in cuts.into_iter().flatten() {
            if let Some(start) = after.checked_add(1) {
                iopt.cut(start)
                    .map_err(IommufdError::iopt("type1 v1 cut"))?;
            }
        }
        Ok(())
    }

    /// `iopt_unmap_iova`: whole areas in `[iova, iova + size)`, nothing
    /// mapped being success.
    fn unmap_iova(ioas: &Ioas, iova: u64, size: u64) -> Result<u64> {
        if size == 0 {
            return Err(einval("VFIO_IOMMU_UNMAP_DMA size 0"));
        }
        let last = iova.checked_add(size - 1).ok_or(IommufdError::Overflow {
            what: "iova + size",
        })?;
        ioas.unmap_range(IovaRange::new(iova, last), true)
    }

    /// `iommufd_get_pagesizes`: the page sizes every domain of the IOAS
    /// supports, with sub-page sizes folded into PAGE_SIZE, and at least
    /// the IOAS alignment.
    fn compat_pgsizes(ioas: &Ioas) -> u64 {
        let domains: u64 = ioas
            .hwpts
            .lock()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .fold(u64::MAX, |acc, h| acc & h.domain().pgsize_bitmap());
        let mut pgsizes = domains;
        if pgsizes & (PAGE_SIZE - 1) != 0 {
            pgsizes &= !(PAGE_SIZE - 1);
            pgsizes |= PAGE_SIZE;
        }
        pgsizes.max(ioas.iopt.lock().iova_alignment())
    }

    /// VFIO_IOMMU_GET_INFO (`iommufd_vfio_iommu_get_info`) into the caller
    /// buffer `buf`, whose first u32 is `argsz`. At least 16 readable bytes
    /// are needed (EFAULT), `argsz < 16` is EINVAL, no compat IOAS ENODEV,
    /// and `buf` shorter than `argsz` EFAULT.
    ///
    /// Writes `min(argsz, 24)` bytes of `struct vfio_iommu_type1_info`:
    /// `argsz` becomes the size the whole chain needs, `flags` is
    /// PGSIZES|CAPS, `cap_offset` is 24 only if everything fit. Each
    /// capability is written only if it fits in `argsz`, at 8-byte aligned
    /// offsets, and nothing at or past `argsz` is ever written.
    pub fn vfio_iommu_get_info(&self, buf: &mut [u8]) -> Result<()> {
        let minsz = VFIO_IOMMU_TYPE1_INFO_MINSZ as usize;
        if buf.len() < minsz {
            return Err(efault("VFIO_IOMMU_GET_INFO buffer"));
        }
        let argsz = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if argsz < minsz {
            return Err(einval("VFIO_IOMMU_GET_INFO argsz"));
        }
        let ioas = self.compat_ioas()?;
        if buf.len() < argsz {
            return Err(efault("VFIO_IOMMU_GET_INFO buffer shorter than argsz"));
        }
        let buf = &mut buf[..argsz];
        let pgsizes = Self::compat_pgsizes(&ioas);
        let ranges = ioas.iopt.lock().iova_ranges();

        let info_size = VFIO_IOMMU_TYPE1_INFO_SIZE as usize;
        let mut total = info_size;
        let mut last_cap: Option<usize> = None;
        for cap in [InfoCap::DmaAvail, InfoCap::IovaRange] {
            let avail = argsz.saturating_sub(total);
            let size = cap.fill(buf, total, avail, &ranges).next_multiple_of(8);
            if let Some(last) = last_cap
                && argsz >= total
            {
                put_u32(buf, last + 4, total as u32);
            }
            last_cap = Some(total);
            total += size;
        }

        let mut info = [0u8; VFIO_IOMMU_TYPE1_INFO_SIZE as usize];
        put_u32(&mut info, 0, total as u32);
        put_u32(&mut info, 4, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
        put_u64(&mut info, 8, pgsizes);
        let cap_offset = if argsz >= total { info_size as u32 } else { 0 };
        put_u32(&mut info, 16, cap_offset);
        let n = argsz.min(info_size);
        buf[..n].copy_from_slice(&info[..n]);
        Ok(())
    }
}
