//! The transfer engine: a copy or fill, in chunks, by DMA through the
//! IOMMU with the device's requester ID.

use umdev_iommu::dma::Dma;

use super::regs::*;

/// Bytes moved per DMA read / write pair.
const CHUNK: usize = 4096;

/// An operation latched by a write of START.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    /// `DMATEST_OP_*`.
    pub op: u32,
    pub src: u64,
    pub dst: u64,
    pub len: u32,
    pub fill: u64,
}

/// A failed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    /// `DMATEST_ERR_*`.
    pub code: u32,
    /// The faulting IOVA (0 when no access faulted).
    pub fault: u64,
    /// Bytes known to be in the destination.
    pub done: u32,
}

impl Failure {
    fn invalid() -> Self {
        Self {
            code: DMATEST_ERR_INVALID,
            fault: 0,
            done: 0,
        }
    }
}

/// Runs `job`; `Ok` is the number of bytes transferred (all of them).
pub(super) fn run(dma: &dyn Dma, job: &Job) -> Result<u32, Failure> {
    let len = u64::from(job.len);
    let wraps = |base: u64| base.checked_add(len).is_none();
    if job.len > DMATEST_MAX_LEN || wraps(job.dst) {
        return Err(Failure::invalid());
    }
    match job.op {
        DMATEST_OP_COPY if !wraps(job.src) => copy(dma, job),
        DMATEST_OP_FILL => fill(dma, job),
        _ => Err(Failure::invalid()),
    }
}

/// Source to destination, chunk by chunk. A fault leaves the destination
/// complete up to the faulting chunk; of a chunk whose write faults, bytes
/// before the faulting page may have landed (DMA goes in address order,
/// a page at a time).
fn copy(dma: &dyn Dma, job: &Job) -> Result<u32, Failure> {
    let mut buf = vec![0u8; CHUNK.min(job.len as usize)];
    let mut off = 0u32;
    while off < job.len {
        let n = CHUNK.min((job.len - off) as usize);
        let chunk = &mut buf[..n];
        let at = u64::from(off);
        dma.read(None, job.src + at, chunk).map_err(|e| Failure {
            code: DMATEST_ERR_READ_FAULT,
            fault: e.record().addr,
            done: off,
        })?;
        write(dma, job, at, chunk, off)?;
        off += n as u32;
    }
    Ok(job.len)
}

/// The 8-byte pattern, little-endian, repeated from the destination's
/// first byte.
fn fill(dma: &dyn Dma, job: &Job) -> Result<u32, Failure> {
    let pattern = job.fill.to_le_bytes();
    let buf: Vec<u8> = (0..CHUNK.min(job.len as usize))
        .map(|i| pattern[i % 8])
        .collect();
    let mut off = 0u32;
    while off < job.len {
        let n = CHUNK.min((job.len - off) as usize);
        // Chunks start at multiples of 8, so the pattern stays in phase.
        write(dma, job, u64::from(off), &buf[..n], off)?;
        off += n as u32;
    }
    Ok(job.len)
}

/// Writes one chunk at `at` into the destination; `done` bytes before it
/// are complete.
fn write(dma: &dyn Dma, job: &Job, at: u64, data: &[u8], done: u32) -> Result<(), Failure> {
    dma.write(None, job.dst + at, data).map_err(|e| Failure {
        code: DMATEST_ERR_WRITE_FAULT,
        fault: e.record().addr,
        done,
    })
}
