//! One operand of a DMA engine's operation, translated once: its
//! translatable prefix (kept valid while the [`Span`] lives) and the fault
//! that ended it, then read or written at operand offsets without further
//! translation.
//!
//! A range that faults part-way is kept as its translatable prefix plus the
//! fault, so an operation can do what a streaming engine would have done
//! before reaching the faulting page. The operands of one operation are
//! held together while bytes move, so a fault on a later operand is
//! reported (to the domain's fault handler) while an earlier operand's
//! mapping is held: as in Linux, where `report_iommu_fault` runs in
//! interrupt context, a fault handler must queue the fault and not unmap
//! on the reporting thread (iommufd's handler queues it).

use super::{Access, Dma, SgMapping};
use crate::memory::{HostMemory, PhysAddr};

/// Where an operand stopped being accessible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanFault {
    /// Offset into the operand of the first byte not accessible.
    pub at: u64,
    /// The faulting IOVA.
    pub addr: u64,
    /// The access was a write.
    pub write: bool,
}

/// The translated prefix of one operand `[iova, iova + len)`.
pub struct Span<'a> {
    map: SgMapping<'a>,
    /// Operand offset at which each segment starts.
    starts: Vec<u64>,
    iova: u64,
    write: bool,
    /// Why the prefix is shorter than asked, if it is.
    pub fault: Option<SpanFault>,
}

impl<'a> Span<'a> {
    /// Translates `[iova, iova + len)` for `access`. On a fault the
    /// translatable prefix before the faulting address is kept (translated
    /// again, so a concurrent unmap can only shorten it further).
    pub fn translate<D: Dma + ?Sized>(
        dma: &'a D,
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
                    fault = Some(SpanFault { at, addr, write });
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
    pub fn len(&self) -> u64 {
        self.map.len()
    }

    /// Nothing translated.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(super) fn memory(&self) -> &HostMemory {
        self.map.memory()
    }

    pub(super) fn fault_at(&self, at: u64) -> SpanFault {
        SpanFault {
            at,
            addr: self.iova.wrapping_add(at),
            write: self.write,
        }
    }

    /// The host-physical pieces of `[at, at + len)` (inside the prefix),
    /// each inside one memory object, as `(offset, phys, n)`.
    pub(super) fn pieces(
        &self,
        at: u64,
        len: u64,
    ) -> impl Iterator<Item = (u64, PhysAddr, u64)> + '_ {
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
    pub fn read(&self, at: u64, buf: &mut [u8]) -> Result<(), SpanFault> {
        for (off, phys, n) in self.pieces(at, buf.len() as u64) {
            let dst = &mut buf[(off - at) as usize..(off - at + n) as usize];
            self.memory()
                .read(phys, dst)
                .map_err(|_| self.fault_at(off))?;
        }
        Ok(())
    }

    /// Writes `data` at operand offset `at`.
    pub fn write(&self, at: u64, data: &[u8]) -> Result<(), SpanFault> {
        for (off, phys, n) in self.pieces(at, data.len() as u64) {
            let src = &data[(off - at) as usize..(off - at + n) as usize];
            self.memory()
                .write(phys, src)
                .map_err(|_| self.fault_at(off))?;
        }
        Ok(())
    }
}
