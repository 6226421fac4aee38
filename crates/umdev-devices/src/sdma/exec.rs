//! Running one descriptor: validation, then the operation over its
//! translated operands, ending in the completion record.
//!
//! Fault semantics: an operand is translated before its bytes are touched
//! and the engine streams in ascending order, so an operation that meets a
//! fault has processed exactly the bytes before the first inaccessible
//! operand byte, and reports that count and the faulting IOVA. Memmove
//! reads ahead of writing: a source fault past a destination fault may be
//! logged by the IOMMU too, but the record names the first one. A memmove
//! from an overlapping source below the destination runs descending and
//! translates both operands whole first, so a fault leaves nothing copied.

use umdev_iommu::dma::{Access, Dma, Span, SpanFault, copies_descending};

use super::completion::{CompletionRecord, FaultInfo, Status};
use super::crc32c::Crc32c;
use super::desc::{Descriptor, Opcode};

/// Bytes read at a time by compare and CRC.
const CHUNK: usize = 4096;

/// The engine context a descriptor runs in.
pub(super) struct Exec<'a> {
    /// DMA of the engine's function.
    pub(super) dma: &'a dyn Dma,
    /// The work queue's PASID.
    pub(super) pasid: Option<u32>,
    /// Largest `xfer_size`.
    pub(super) max_xfer: u32,
}

fn success(bytes: u64) -> CompletionRecord {
    CompletionRecord {
        bytes_completed: bytes as u32,
        ..CompletionRecord::new(Status::Success)
    }
}

fn page_fault(bytes: u64, fault: SpanFault) -> CompletionRecord {
    CompletionRecord {
        bytes_completed: bytes as u32,
        fault_addr: fault.addr,
        fault_info: if fault.write {
            FaultInfo::WRITE
        } else {
            FaultInfo::empty()
        },
        ..CompletionRecord::new(Status::PageFault)
    }
}

/// `len` bytes of `pattern` as seen from operand offset `at`.
fn pattern_bytes(pattern: u64, at: u64, buf: &mut [u8]) {
    let p = pattern.to_le_bytes();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = p[((at + i as u64) % 8) as usize];
    }
}

impl Exec<'_> {
    fn span(&self, iova: u64, len: u64, access: Access) -> Span<'_> {
        Span::translate(self.dma, self.pasid, iova, len, access)
    }

    /// Runs `desc` and returns its completion record.
    pub(super) fn run(&self, desc: &Descriptor) -> CompletionRecord {
        let Some(op) = desc.opcode() else {
            return CompletionRecord::new(Status::BadOpcode);
        };
        if desc.flags().is_none() {
            return CompletionRecord::new(Status::InvalidFlags);
        }
        if desc.xfer_size > self.max_xfer {
            return CompletionRecord::new(Status::XferSize);
        }
        let len = u64::from(desc.xfer_size);
        match op {
            Opcode::Noop => success(0),
            Opcode::Memmove => self.memmove(desc.src, desc.dst, len),
            Opcode::Fill => self.fill(desc.dst, desc.src, len),
            Opcode::Compare => self.compare(desc.src, desc.dst, len),
            Opcode::ComparePattern => self.compare_pattern(desc.src, desc.dst, len),
            Opcode::Crc32c => self.crc32c(desc.src, len, desc.crc_seed),
        }
    }

    /// Memmove through [`Dma::copy`]; a descending copy (source below an
    /// overlapping destination) sets `result` 1, as DSA reports it.
    fn memmove(&self, src: u64, dst: u64, len: u64) -> CompletionRecord {
        let record = match self.dma.copy(self.pasid, src, dst, len) {
            Ok(()) => success(len),
            Err(err) => page_fault(err.done, err.fault),
        };
        if copies_descending(src, dst, len) {
            CompletionRecord {
                result: 1,
                ..record
            }
        } else {
            record
        }
    }

    fn fill(&self, dst: u64, pattern: u64, len: u64) -> CompletionRecord {
        let d = self.span(dst, len, Access::Write);
        // A multiple of 8, so every chunk starts at pattern phase 0.
        let mut buf = [0u8; CHUNK];
        pattern_bytes(pattern, 0, &mut buf);
        let mut at = 0;
        while at < d.len() {
            let n = (d.len() - at).min(CHUNK as u64);
            if let Err(fault) = d.write(at, &buf[..n as usize]) {
                return page_fault(fault.at, fault);
            }
            at += n;
        }
        match d.fault {
            Some(fault) => page_fault(d.len(), fault),
            None => success(len),
        }
    }

    /// Compares `[0, n)` of `a` against `expected(at, buf)` chunk by
    /// chunk: the offset of the first difference, or the fault that
    /// stopped the reading.
    fn first_difference(
        a: &Span<'_>,
        n: u64,
        mut expected: impl FnMut(u64, &mut [u8]) -> Result<(), SpanFault>,
    ) -> Result<Option<u64>, SpanFault> {
        let mut got = [0u8; CHUNK];
        let mut want = [0u8; CHUNK];
        let mut at = 0;
        while at < n {
            let k = (n - at).min(CHUNK as u64) as usize;
            a.read(at, &mut got[..k])?;
            expected(at, &mut want[..k])?;
            if let Some(i) = got[..k].iter().zip(&want[..k]).position(|(x, y)| x != y) {
                return Ok(Some(at + i as u64));
            }
            at += k as u64;
        }
        Ok(None)
    }

    /// The record of a compare over `n` readable bytes that stopped, if
    /// `n < len`, at `fault`.
    fn compare_record(
        found: Result<Option<u64>, SpanFault>,
        n: u64,
        len: u64,
        fault: Option<SpanFault>,
    ) -> CompletionRecord {
        match (found, fault) {
            (Err(fault), _) => page_fault(fault.at, fault),
            (Ok(Some(at)), _) => CompletionRecord {
                result: 1,
                value: at,
                ..success(at)
            },
            (Ok(None), Some(fault)) => page_fault(n, fault),
            (Ok(None), None) => success(len),
        }
    }

    fn compare(&self, src1: u64, src2: u64, len: u64) -> CompletionRecord {
        let a = self.span(src1, len, Access::Read);
        let b = self.span(src2, a.len(), Access::Read);
        let n = b.len();
        let found = Self::first_difference(&a, n, |at, buf| b.read(at, buf));
        Self::compare_record(found, n, len, b.fault.or(a.fault))
    }

    fn compare_pattern(&self, src: u64, pattern: u64, len: u64) -> CompletionRecord {
        let a = self.span(src, len, Access::Read);
        let n = a.len();
        let found = Self::first_difference(&a, n, |at, buf| {
            pattern_bytes(pattern, at, buf);
            Ok(())
        });
        Self::compare_record(found, n, len, a.fault)
    }

    fn crc32c(&self, src: u64, len: u64, seed: u32) -> CompletionRecord {
        let a = self.span(src, len, Access::Read);
        let mut crc = Crc32c::new(seed);
        let mut buf = [0u8; CHUNK];
        let mut at = 0;
        let mut stop = a.fault.map(|fault| (a.len(), fault));
        while at < a.len() {
            let k = (a.len() - at).min(CHUNK as u64) as usize;
            if let Err(fault) = a.read(at, &mut buf[..k]) {
                stop = Some((at, fault));
                break;
            }
            crc.update(&buf[..k]);
            at += k as u64;
        }
        let record = match stop {
            Some((done, fault)) => page_fault(done, fault),
            None => success(len),
        };
        CompletionRecord {
            value: u64::from(crc.finish()),
            ..record
        }
    }
}
