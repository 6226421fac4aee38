//! The DMA interface device models use: read, write and copy at
//! (requester, PASID or none, IOVA), in the spirit of vm-memory's `Bytes`.
//!
//! A device model gets its requester's [`Dma`] from the IOMMU core by
//! requester id ([`crate::iommu::Iommu::dma_for`],
//! [`crate::system::System::dma_for`]) and never sees whether the memory
//! behind an IOVA is mapped locally or remote (vfio-user DMA messages), nor
//! the bounce buffering remote memory needs:
//! - [`Dma::read`] / [`Dma::write`]: the device reads or writes bytes;
//! - [`Dma::copy`]: a device-to-device copy with `memmove` semantics;
//! - [`Span`]: an operand translated once ([`Dma::translate_sg`]) and then
//!   read, written or copied ([`copy`]) piece by piece, for engines that
//!   stream several operands.
//!
//! Every DMA holds the unit's in-flight gate from before its first
//! translation until its last byte is copied, so a strict invalidation
//! that returns has waited for it; copies run outside every lock. A DMA
//! crossing pages is translated page by page like a stream of TLPs: when a
//! page faults, earlier bytes may already have been transferred. An
//! [`SgMapping`] (and so a [`Span`]) holds the gate while it lives: an
//! unmap of its range waits for it, so drop it promptly and never unmap
//! while holding one on the same thread.
//!
//! ```
//! use umdev_iommu::dma::Dma;
//! use umdev_iommu::iommu::{IommuOps, PagingFlags};
//! use umdev_iommu::pgtable::Prot;
//! use umdev_iommu::system::System;
//!
//! let sys = System::default_platform().unwrap();
//! let bdf = sys.platform.functions()[0];
//! let domain = sys.vtd.domain_alloc_paging(bdf, PagingFlags::default()).unwrap();
//! sys.vtd.attach_dev(&domain, bdf).unwrap();
//! let ram = sys.vtd.memory().alloc_anonymous(0x2000).unwrap();
//! domain.map(0x10_0000, ram.base(), 0x2000, Prot::READ | Prot::WRITE).unwrap();
//!
//! let dma = sys.iommu.dma_for(bdf).unwrap();
//! dma.write(None, 0x10_0000, b"hello").unwrap();
//! dma.copy(None, 0x10_0000, 0x10_1000, 5).unwrap();
//! let mut buf = [0u8; 5];
//! dma.read(None, 0x10_1000, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! // Unmapped IOVA: the IOMMU faults the access.
//! assert!(dma.read(None, 0x20_0000, &mut buf).is_err());
//! ```

mod copy;
mod port;
mod span;

pub use copy::{CopyError, copies_descending, copy};
pub use port::DmaPort;
pub use span::{Span, SpanFault};

use rustix::io::Errno;
use umdev_pci::Bdf;

use crate::memory::{HostMemory, PhysAddr};
pub use crate::pgtable::Access;
use crate::vtd::FaultRecord;
use crate::vtd::gate::GateGuard;

/// A host-physical piece of a DMA, inside one memory object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First host-physical byte.
    pub phys: PhysAddr,
    /// Length in bytes.
    pub len: u64,
}

/// A failed DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DmaError {
    /// The IOMMU refused the access; the record is in the unit's fault
    /// log (unless FPD) and went to the domain's handler.
    #[error("DMA fault: {0:?}")]
    Fault(FaultRecord),
}

impl DmaError {
    /// The Linux errno for this error (a failed DMA access is EFAULT, as
    /// vfio_dma_rw reports it).
    pub fn errno(&self) -> Errno {
        match self {
            DmaError::Fault(_) => Errno::FAULT,
        }
    }

    /// The fault record.
    pub fn record(&self) -> &FaultRecord {
        match self {
            DmaError::Fault(record) => record,
        }
    }
}

/// DMA as a device model issues it.
pub trait Dma: Send + Sync {
    /// The requester id DMA is tagged with.
    fn requester(&self) -> Bdf;

    /// The device reads `buf.len()` bytes at `iova`.
    fn read(&self, pasid: Option<u32>, iova: u64, buf: &mut [u8]) -> Result<(), DmaError>;

    /// The device writes `data` at `iova`.
    fn write(&self, pasid: Option<u32>, iova: u64, data: &[u8]) -> Result<(), DmaError>;

    /// Translates `[iova, iova + len)` for `access` into host-physical
    /// segments: physically contiguous pages form one segment, split only
    /// where a memory object ends. The mapping stays valid while the
    /// returned value lives (see the module documentation).
    fn translate_sg(
        &self,
        pasid: Option<u32>,
        iova: u64,
        len: u64,
        access: Access,
    ) -> Result<SgMapping<'_>, DmaError>;

    /// Copies `len` bytes from `src` to `dst` as a streaming engine does,
    /// with `memmove` semantics when they overlap, bouncing through a
    /// buffer when an operand is remote. On a fault, [`CopyError::done`]
    /// bytes were copied (from the start, or from the end when the copy
    /// runs descending: [`copies_descending`]).
    fn copy(&self, pasid: Option<u32>, src: u64, dst: u64, len: u64) -> Result<(), CopyError> {
        copy::memmove(self, pasid, (src, dst), len)
    }
}

/// The segments of a DMA, valid while this value lives.
#[derive(Debug)]
pub struct SgMapping<'a> {
    segments: Vec<Segment>,
    memory: &'a HostMemory,
    access: Access,
    _guard: GateGuard<'a>,
}

impl<'a> SgMapping<'a> {
    /// The mapping of `segments` in `memory`, kept valid by `guard`.
    pub(crate) fn new(
        segments: Vec<Segment>,
        memory: &'a HostMemory,
        access: Access,
        guard: GateGuard<'a>,
    ) -> Self {
        Self {
            segments,
            memory,
            access,
            _guard: guard,
        }
    }

    /// The segments, in IOVA order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Total bytes mapped.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Nothing mapped (a zero-length request).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The memory the segments point into.
    pub fn memory(&self) -> &HostMemory {
        self.memory
    }

    /// The access the mapping was translated for.
    pub fn access(&self) -> Access {
        self.access
    }
}
