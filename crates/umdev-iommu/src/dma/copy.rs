//! Device-to-device copies: `memmove` between two translated operands,
//! directly between memory objects' views, or through a bounce buffer in
//! chunks when an operand is remote (vfio-user DMA messages).

use super::span::{Span, SpanFault};
use super::{Access, Dma};
use crate::memory::{HostMemory, PhysAddr};

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
pub fn copy(src: &Span<'_>, dst: &Span<'_>, len: u64, descending: bool) -> Result<(), CopyError> {
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
        CopyError { done, fault }
    })
}

/// A copy that stopped at a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DMA copy faulted at {:#x} after {done} bytes", fault.addr)]
pub struct CopyError {
    /// Bytes copied: from the start, or from the end when the copy ran
    /// descending.
    pub done: u64,
    /// Where it stopped.
    pub fault: SpanFault,
}

impl CopyError {
    /// The Linux errno for this error (EFAULT, as for any failed DMA).
    pub fn errno(&self) -> rustix::io::Errno {
        rustix::io::Errno::FAULT
    }
}

/// Whether a `memmove` of `len` bytes from `src` to `dst` runs descending:
/// the source overlaps the destination from below.
pub fn copies_descending(src: u64, dst: u64, len: u64) -> bool {
    src < dst && dst < src.saturating_add(len)
}

/// [`Dma::copy`]. The engine streams in ascending order, so a copy that
/// meets a fault has copied exactly the bytes before the first inaccessible
/// operand byte. It reads ahead of writing: a source fault past a
/// destination fault may be logged by the IOMMU too, but the error names
/// the first one. A descending copy translates both operands whole first,
/// so a fault leaves nothing copied.
pub(super) fn memmove<D: Dma + ?Sized>(
    dma: &D,
    pasid: Option<u32>,
    (src, dst): (u64, u64),
    len: u64,
) -> Result<(), CopyError> {
    if copies_descending(src, dst, len) {
        let s = Span::translate(dma, pasid, src, len, Access::Read);
        let d = Span::translate(dma, pasid, dst, len, Access::Write);
        return match s.fault.or(d.fault) {
            Some(fault) => Err(CopyError { done: 0, fault }),
            None => copy(&s, &d, len, true),
        };
    }
    let s = Span::translate(dma, pasid, src, len, Access::Read);
    let d = Span::translate(dma, pasid, dst, s.len(), Access::Write);
    let n = d.len();
    copy(&s, &d, n, false)?;
    match d.fault.or(s.fault) {
        Some(fault) => Err(CopyError { done: n, fault }),
        None => Ok(()),
    }
}
