//! Translated operand ranges and the byte movement over them.
//!
//! An operation first translates each operand through the [`Dma`] trait
//! (with the work queue's PASID) and then moves bytes between the
//! host-physical pieces, outside every IOMMU lock and, for memory with a
//! direct view, without a bounce buffer for copies. A range that faults part-way is kept as its
//! translatable prefix plus the fault, so an operation can do what a
//! streaming engine would have done before reaching the faulting page.
//!
//! The operands of one operation are held together while bytes move, so a
//! fault on a later operand is reported (to the domain's fault handler)
//! while an earlier operand's mapping is held: as in Linux, where
//! `report_iommu_fault` runs in interrupt context, a fault handler must
//! queue the fault and not unmap on the reporting thread (iommufd's
//! handler queues it).

use umdev_iommu::memory::{HostMemory, PhysAddr};
use umdev_iommu::pgtable::Access;
use umdev_iommu::unit::{Dma, SgMapping};

/// Where an operand stopped being accessible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fault {
    /// Offset into the operand of the first byte not accessible.
    pub(super) at: u64,
    /// The faulting IOVA.
    pub(super) addr: u64,
    /// The access was a write.
    pub(super) write: bool,
}

/// The translated prefix of one operand `[iova, iova + len)`.
pub(super) struct Span<'a> {
    map: SgMapping<'a>,
    /// Operand offset at which each segment starts.
    starts: Vec<u64>,
    iova: u64,
    write: bool,
    /// Why the prefix is shorter than asked, if it is.
    pub(super) fault: Option<Fault>,
}

impl<'a> Span<'a> {
    /// Translates `[iova, iova + len)` for `access`. On a fault the
    /// translatable prefix before the faulting address is kept (translated
    /// again, so a concurrent unmap can only shorten it further).
    pub(super) fn translate(
        dma: &'a dyn Dma,
        pasid: Option<u32>,
        iova: u64,
        len: u64,
        access: Access,
    ) -> Self {
        let write = access == Access::Write;
        let mut want = len;
        let mut fault = None;
        let map = loop {
            match dma.translate_sg(pasid, iova, want, access) {
                Ok(map) => break map,
                Err(err) => {
                    let addr = err.record().addr;
                    // A fault outside the range (a nested stage-2 GPA)
                    // leaves nothing translatable.
                    let at = addr.checked_sub(iova).filter(|&at| at < want).unwrap_or(0);
                    fault = Some(Fault { at, addr, write });
                    want = at;
                }
            }
        };
        let mut starts = Vec::with_capacity(map.segments().len());
        let mut at = 0;
        for seg in map.segments() {
            starts.push(at);
            at += seg.len;
        }
        Self {
            map,
            starts,
            iova,
            write,
            fault,
        }
    }

    /// Bytes translated.
    pub(super) fn len(&self) -> u64 {
        self.map.len()
    }

    fn memory(&self) -> &HostMemory {
        self.map.memory()
    }

    fn fault_at(&self, at: u64) -> Fault {
        Fault {
            at,
            addr: self.iova.wrapping_add(at),
            write: self.write,
        }
    }

    /// The host-physical pieces of `[at, at + len)` (inside the prefix),
    /// each inside one memory object, as `(offset, phys, n)`.
    fn pieces(&self, at: u64, len: u64) -> impl Iterator<Item = (u64, PhysAddr, u64)> + '_ {
        let first = self.starts.partition_point(|&s| s <= at).saturating_sub(1);
        let end = at + len;
        self.map.segments()[first..]
            .iter()
            .zip(&self.starts[first..])
            .map_while(move |(seg, &start)| {
                (start < end).then(|| {
                    let from = at.max(start);
                    let to = end.min(start + seg.len);
                    (from, seg.phys + (from - start), to - from)
                })
            })
            .filter(|&(_, _, n)| n > 0)
    }

    /// Reads `buf.len()` bytes at operand offset `at`.
    pub(super) fn read(&self, at: u64, buf: &mut [u8]) -> Result<(), Fault> {
        for (off, phys, n) in self.pieces(at, buf.len() as u64) {
            let dst = &mut buf[(off - at) as usize..(off - at + n) as usize];
            self.memory()
                .read(phys, dst)
                .map_err(|_| self.fault_at(off))?;
        }
        Ok(())
    }

    /// Writes `data` at operand offset `at`.
    pub(super) fn write(&self, at: u64, data: &[u8]) -> Result<(), Fault> {
        for (off, phys, n) in self.pieces(at, data.len() as u64) {
            let src = &data[(off - at) as usize..(off - at + n) as usize];
            self.memory()
                .write(phys, src)
                .map_err(|_| self.fault_at(off))?;
        }
        Ok(())
    }
}

/// Which operand of a copy a memory error hit.
#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// Bounce-buffer chunk for copies that touch remote memory.
const BOUNCE: u64 = 64 * 1024;

/// Copies `n` host-physical bytes with `memmove` semantics: directly
/// between the two objects' views, or through [`bounce_phys`] when either
/// is remote.
fn copy_phys(mem: &HostMemory, src: PhysAddr, dst: PhysAddr, n: u64) -> Result<(), Side> {
    let copied = mem
        .with_object(src, n, |from, from_off| {
            mem.with_object(dst, n, |to, to_off| {
                if from.is_remote() || to.is_remote() {
                    return Ok(false);
                }
                let from = from.slice(from_off, n).map_err(|_| Side::Src)?;
                from.copy_to_volatile_slice(to.slice(to_off, n).map_err(|_| Side::Dst)?);
                Ok(true)
            })
            .map_err(|_| Side::Dst)?
        })
        .map_err(|_| Side::Src)??;
    if copied {
        Ok(())
    } else {
        bounce_phys(mem, src, dst, n)
    }
}

/// [`copy_phys`] through a bounce buffer, for memory without a direct view
/// (guest RAM reached by vfio-user DMA_READ / DMA_WRITE messages). Chunks
/// run downwards when `dst` is above `src`, so an overlapping range is
/// still moved as by `memmove`.
fn bounce_phys(mem: &HostMemory, src: PhysAddr, dst: PhysAddr, n: u64) -> Result<(), Side> {
    let mut buf = vec![0u8; n.min(BOUNCE) as usize];
    let mut chunks = (0..n.div_ceil(BOUNCE)).map(|i| i * BOUNCE);
    let mut step = |at: u64| {
        let chunk = &mut buf[..(n - at).min(BOUNCE) as usize];
        mem.read(src + at, chunk).map_err(|_| Side::Src)?;
        mem.write(dst + at, chunk).map_err(|_| Side::Dst)
    };
    if dst > src {
        chunks.rev().try_for_each(&mut step)
    } else {
        chunks.try_for_each(&mut step)
    }
}

/// Copies the first `len` bytes of `src` to `dst` (both translated that
/// far), piece by piece in ascending order, or descending with
/// `descending`. On a memory error returns the bytes completed (from the
/// start, or from the end when descending) and where it failed.
pub(super) fn copy(
    src: &Span<'_>,
    dst: &Span<'_>,
    len: u64,
    descending: bool,
) -> Result<(), (u64, Fault)> {
    let mut pairs = Vec::new();
    let mut dst_pieces = dst.pieces(0, len);
    let mut cur = dst_pieces.next();
    for (at, src_phys, n) in src.pieces(0, len) {
        let mut done = 0;
        while done < n {
            let Some((d_at, d_phys, d_n)) = cur else {
                break;
            };
            let skip = at + done - d_at;
            let k = (n - done).min(d_n - skip);
            pairs.push((at + done, src_phys + done, d_phys + skip, k));
            done += k;
            cur = if skip + k == d_n {
                dst_pieces.next()
            } else {
                Some((d_at, d_phys, d_n))
            };
        }
    }
    let step = |&(at, s, d, k): &(u64, PhysAddr, PhysAddr, u64)| {
        copy_phys(src.memory(), s, d, k).map_err(|side| (at, k, side))
    };
    let result = if descending {
        pairs.iter().rev().try_for_each(step)
    } else {
        pairs.iter().try_for_each(step)
    };
    result.map_err(|(at, k, side)| {
        let done = if descending { len - (at + k) } else { at };
        let fault = match side {
            Side::Src => src.fault_at(at),
            Side::Dst => dst.fault_at(at),
        };
        (done, fault)
    })
}
