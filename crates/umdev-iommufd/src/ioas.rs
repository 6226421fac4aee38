//! IOMMUFD_OBJ_IOAS (ioas.c): an I/O address space user space fills with
//! mappings; every paging HWPT created on it mirrors its areas. Also the
//! IOAS ioctls: ALLOC, MAP (and MAP_FILE), UNMAP, COPY, IOVA_RANGES,
//! ALLOW_IOVAS.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::{IoPagetable, IoptPages, IovaRange, IovaRequest, PinAccount, UnmapStop};
use crate::object::ObjHeader;
pub use crate::private::Ioas;
use crate::private::{Access, HwptPaging, Ictx, Object};

bitflags::bitflags! {
    /// enum iommufd_ioas_map_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u32 {
        /// IOMMU_IOAS_MAP_FIXED_IOVA.
        const FIXED_IOVA = 1 << 0;
        /// IOMMU_IOAS_MAP_WRITEABLE.
        const WRITEABLE = 1 << 1;
        /// IOMMU_IOAS_MAP_READABLE.
        const READABLE = 1 << 2;
    }
}

/// Unmap retries while accesses keep pins (io_pagetable.c: more than 100
/// rounds of `ops->unmap` without progress is EDEADLOCK).
const ACCESS_UNMAP_ROUNDS: u32 = 100;

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
                errno: Errno::NOENT,
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

/// Rejects unknown map flags (EOPNOTSUPP) and EOVERFLOW values, then
/// converts to IOMMU permissions (EINVAL without READABLE|WRITEABLE), in
/// ioas.c's order.
fn map_prot(flags: MapFlags, values: &[u64]) -> Result<Prot> {
    if !MapFlags::all().contains(flags) {
        return Err(IommufdError::Unsupported { what: "map flags" });
    }
    if values.contains(&u64::MAX) {
        return Err(IommufdError::Overflow {
            what: "iova or length",
        });
    }
    let mut prot = Prot::empty();
    if flags.contains(MapFlags::READABLE) {
        prot |= Prot::READ;
    }
    if flags.contains(MapFlags::WRITEABLE) {
        prot |= Prot::WRITE;
    }
    if prot.is_empty() {
        return Err(IommufdError::Invalid {
            what: "map needs READABLE or WRITEABLE",
        });
    }
    Ok(prot)
}

fn iova_request(flags: MapFlags, iova: u64) -> IovaRequest {
    if flags.contains(MapFlags::FIXED_IOVA) {
        IovaRequest::Fixed(iova)
    } else {
        IovaRequest::Auto
    }
}

impl Ictx {
    /// IOMMU_IOAS_ALLOC.
    pub fn ioas_alloc(&self) -> Result<u32> {
        let ioas = Ioas::new(Arc::clone(&self.account));
        self.table.lock().insert(Object::Ioas(ioas))
    }

    /// IOMMU_IOAS_MAP / IOMMU_IOAS_MAP_FILE: maps `length` bytes of
    /// `memory` from byte `offset` (the user address is the memory's
    /// host-physical address) at `iova` (FIXED_IOVA) or anywhere. Returns
    /// the IOVA. Errno order (ioas.c `iommufd_ioas_map`): EOPNOTSUPP for
    /// unknown flags, EOVERFLOW for iova/length = 2^64−1, EINVAL without
    /// READABLE|WRITEABLE, ENOENT bad IOAS, EINVAL for a range beyond the
    /// memory object, then the io_pagetable rules (kernel-semantics §2.2).
    pub fn ioas_map(
        &self,
        ioas_id: u32,
        flags: MapFlags,
        memory: &Arc<MemoryObject>,
        offset: u64,
        length: u64,
        iova: u64,
    ) -> Result<u64> {
        let prot = map_prot(flags, &[iova, length])?;
        let ioas = self.get_ioas(ioas_id)?;
        let pages = IoptPages::new(
            Arc::clone(memory),
            offset,
            length,
            true,
            Arc::clone(&self.account),
        )
        .map_err(IommufdError::iopt("map"))?;
        ioas.iopt
            .lock()
            .map(iova_request(flags, iova), pages, 0, length, prot)
            .map_err(IommufdError::iopt("map"))
    }

    /// IOMMU_IOAS_UNMAP: `iova == 0 && length == u64::MAX` unmaps all (0 on
    /// an empty IOAS); otherwise whole areas only (a partly covered area or
    /// nothing → ENOENT). Returns the bytes unmapped.
    pub fn ioas_unmap(&self, ioas_id: u32, iova: u64, length: u64) -> Result<u64> {
        let ioas = self.get_ioas(ioas_id)?;
        if iova == 0 && length == u64::MAX {
            return ioas.unmap_range(IovaRange::new(0, u64::MAX), true);
        }
        if iova == u64::MAX || length == u64::MAX {
            return Err(IommufdError::Overflow {
                what: "iova or length",
            });
        }
        if length == 0 {
            return Err(IommufdError::Invalid {
                what: "zero length",
            });
        }
        let last = iova.checked_add(length - 1).ok_or(IommufdError::Overflow {
            what: "iova + length",
        })?;
        ioas.unmap_range(IovaRange::new(iova, last), false)
    }

    /// IOMMU_IOAS_COPY: maps the pages behind `[src_iova, +length)` of one
    /// IOAS into another (or the same), sharing them. Errnos as MAP, plus
    /// ENOENT when the source range is not covered by back-to-back areas.
    pub fn ioas_copy(
        &self,
        dst_ioas_id: u32,
        src_ioas_id: u32,
        flags: MapFlags,
        length: u64,
        src_iova: u64,
        dst_iova: u64,
    ) -> Result<u64> {
        let prot = map_prot(flags, &[length, src_iova, dst_iova])?;
        let src = self.get_ioas(src_ioas_id)?;
        let pieces = src
            .iopt
            .lock()
            .get_pages(src_iova, length)
            .map_err(IommufdError::iopt("copy"))?;
        let dst = self.get_ioas(dst_ioas_id)?;
        dst.iopt
            .lock()
            .map_pieces(iova_request(flags, dst_iova), &pieces, prot)
            .map_err(IommufdError::iopt("copy"))
    }

    /// IOMMU_IOAS_IOVA_RANGES: the usable ranges and the alignment.
    pub fn ioas_iova_ranges(&self, ioas_id: u32) -> Result<(Vec<IovaRange>, u64)> {
        let ioas = self.get_ioas(ioas_id)?;
        let iopt = ioas.iopt.lock();
        Ok((iopt.iova_ranges(), iopt.iova_alignment()))
    }

    /// IOMMU_IOAS_IOVA_RANGES into a caller array of `out.len()` entries
    /// (`num_iovas`): fills what fits and returns (`num_iovas` out, i.e.
    /// the total, `out_iova_alignment`). If the total does not fit, the
    /// entries that fit are written and EMSGSIZE carries the total.
    pub fn ioas_iova_ranges_into(&self, ioas_id: u32, out: &mut [IovaRange]) -> Result<(u32, u64)> {
        let (ranges, alignment) = self.ioas_iova_ranges(ioas_id)?;
        for (slot, range) in out.iter_mut().zip(&ranges) {
            *slot = *range;
        }
        let total = u32::try_from(ranges.len()).expect("few reserved ranges");
        if ranges.len() > out.len() {
            return Err(IommufdError::TooSmall {
                what: "iova ranges",
                needed: total,
            });
        }
        Ok((total, alignment))
    }

    /// IOMMU_IOAS_ALLOW_IOVAS.
    pub fn ioas_allow_iovas(&self, ioas_id: u32, ranges: &[IovaRange]) -> Result<()> {
        let ioas = self.get_ioas(ioas_id)?;
        ioas.iopt
            .lock()
            .set_allowed(ranges)
            .map_err(IommufdError::iopt("allow iovas"))
    }
}
