//! [`DmaPort`]: one requester's DMA through a VT-d unit, the
//! implementation of [`Dma`] device models get.
//!
//! Pieces that land in remote memory ([`MemoryObject::is_remote`]) are not
//! copied under the gate: the DMA takes an in-flight reference on the
//! object there ([`MemoryObject::remote_access`]) and calls the backend
//! after leaving the gate, so a slow or dead remote peer never delays an
//! invalidation of the unit. Whoever unmaps remote memory ends its use with
//! [`crate::memory::HostMemory::release`] + [`MemoryObject::drain`].
//! Memory is touched only through [`MemoryObject`] volatile accessors.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_pci::Bdf;

use super::{Access, Dma, DmaError, Segment, SgMapping};
use crate::memory::{HostMemory, MemoryError, MemoryObject, PhysAddr, RemoteAccess};
use crate::vtd::stats::Tally;
use crate::vtd::translate::{Fault, Resolved};
use crate::vtd::{FaultReason, IommuUnit};

/// Runs `op(object, offset_in_object, done, n)` over the memory objects
/// backing `[phys, phys + len)`; on an unbacked byte returns how many bytes
/// were handled before it.
fn copy_run(
    mem: &HostMemory,
    phys: PhysAddr,
    len: u64,
    mut op: impl FnMut(&Arc<MemoryObject>, u64, u64, u64) -> Result<(), MemoryError>,
) -> Result<(), u64> {
    let mut done = 0;
    while done < len {
        let n = mem
            .with_object(phys + done, 1, |object, offset| {
                let n = (object.size() - offset).min(len - done);
                op(object, offset, done, n).map(|()| n)
            })
            .map_err(|_| done)?
            .map_err(|_| done)?;
        done += n;
    }
    Ok(())
}

/// A piece of a DMA into remote memory: counted in flight on the object
/// under the gate, moved through the backend after the gate is left.
struct RemotePiece {
    access: RemoteAccess,
    /// Offset in the object.
    offset: u64,
    /// Offset in the DMA.
    at: u64,
    /// Length.
    n: u64,
}

impl RemotePiece {
    fn new(object: &Arc<MemoryObject>, offset: u64, at: u64, n: u64) -> Result<Self, MemoryError> {
        Ok(Self {
            access: object.remote_access()?,
            offset,
            at,
            n,
        })
    }
}

/// The caller's side of a DMA: the buffer a read fills or a write drains.
enum Buffer<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Buffer<'_> {
    fn access(&self) -> Access {
        match self {
            Self::Read(_) => Access::Read,
            Self::Write(_) => Access::Write,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Self::Read(buf) => buf.len() as u64,
            Self::Write(data) => data.len() as u64,
        }
    }

    /// Moves bytes `[at, at + n)` of the DMA to or from `memory` at
    /// `offset`.
    fn copy(
        &mut self,
        memory: &impl Backing,
        offset: u64,
        at: u64,
        n: u64,
    ) -> Result<(), MemoryError> {
        let range = at as usize..(at + n) as usize;
        match self {
            Self::Read(buf) => memory.read(offset, &mut buf[range]),
            Self::Write(data) => memory.write(offset, &data[range]),
        }
    }
}

/// Memory a DMA piece lands in: a local object, or a remote one's backend.
trait Backing {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MemoryError>;
}

impl Backing for MemoryObject {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        MemoryObject::read(self, offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MemoryError> {
        MemoryObject::write(self, offset, data)
    }
}

impl Backing for RemoteAccess {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        RemoteAccess::read(self, offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MemoryError> {
        RemoteAccess::write(self, offset, data)
    }
}

/// DMA from one requester through one unit.
#[derive(Clone, Debug)]
pub struct DmaPort {
    unit: Arc<IommuUnit>,
    bdf: Bdf,
}

impl DmaPort {
    /// DMA from `bdf` through whichever of `units` translates its segment;
    /// ENODEV when none does.
    pub fn for_requester(units: &[Arc<IommuUnit>], bdf: Bdf) -> Result<Self, Errno> {
        let unit = units
            .iter()
            .find(|u| u.covers(bdf.segment()))
            .ok_or(Errno::NODEV)?;
        Ok(Self {
            unit: Arc::clone(unit),
            bdf,
        })
    }

    /// The unit.
    pub fn unit(&self) -> &Arc<IommuUnit> {
        &self.unit
    }

    /// Translates `[iova, iova + len)` page by page and calls
    /// `run(phys, offset, n)` for each maximal physically contiguous piece,
    /// in order, stopping at the first fault.
    fn for_each_run(
        &self,
        resolved: &Resolved,
        (iova, len): (u64, u64),
        access: Access,
        tally: &mut Tally,
        mut run: impl FnMut(PhysAddr, u64, u64) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let mut pending: Option<(PhysAddr, u64, u64)> = None;
        let mut done = 0;
        while done < len {
            let Some(addr) = iova.checked_add(done) else {
                return Err(Fault {
                    reason: FaultReason::OutOfAperture,
                    addr: iova,
                    did: Some(resolved.did()),
                    fpd: resolved.fpd(),
                });
            };
            let t = self
                .unit
                .translate_resolved(resolved, addr, access, tally)?;
            let n = (t.page_size - (t.phys & (t.page_size - 1))).min(len - done);
            match &mut pending {
                Some((phys, _, l)) if *phys + *l == t.phys => *l += n,
                _ => {
                    if let Some((phys, at, l)) = pending.take() {
                        run(phys, at, l)?;
                    }
                    pending = Some((t.phys, done, n));
                }
            }
            done += n;
        }
        match pending {
            Some((phys, at, l)) => run(phys, at, l),
            None => Ok(()),
        }
    }

    /// Translates and hands each backed piece to `op(object,
    /// offset_in_object, offset_in_dma, n)`. Runs under the caller's gate
    /// guard. Returns the requester's resolved entry (for faults found
    /// later, in remote pieces).
    fn transfer(
        &self,
        pasid: Option<u32>,
        (iova, len): (u64, u64),
        access: Access,
        tally: &mut Tally,
        mut op: impl FnMut(&Arc<MemoryObject>, u64, u64, u64) -> Result<(), MemoryError>,
    ) -> Result<Resolved, Fault> {
        let resolved = self.unit.resolve(self.bdf, pasid, iova, tally)?;
        self.copy_runs(&resolved, (iova, len), access, tally, &mut op)?;
        Ok(resolved)
    }

    /// Moves the remote pieces of a DMA through their backends, in order,
    /// after the gate guard is gone: `op(access, offset_in_object,
    /// offset_in_dma, n)`. A failing backend is an unbacked-memory fault at
    /// the piece's first byte.
    fn finish_remote(
        resolved: &Resolved,
        iova: u64,
        pieces: Vec<RemotePiece>,
        mut op: impl FnMut(&RemoteAccess, u64, u64, u64) -> Result<(), MemoryError>,
    ) -> Result<(), Fault> {
        for piece in pieces {
            op(&piece.access, piece.offset, piece.at, piece.n).map_err(|_| Fault {
                reason: FaultReason::Unbacked,
                addr: iova + piece.at,
                did: Some(resolved.did()),
                fpd: resolved.fpd(),
            })?;
        }
        Ok(())
    }

    fn copy_runs(
        &self,
        resolved: &Resolved,
        (iova, len): (u64, u64),
        access: Access,
        tally: &mut Tally,
        op: &mut impl FnMut(&Arc<MemoryObject>, u64, u64, u64) -> Result<(), MemoryError>,
    ) -> Result<(), Fault> {
        self.for_each_run(resolved, (iova, len), access, tally, |phys, at, n| {
            copy_run(&self.unit.mem, phys, n, |object, offset, d, k| {
                op(object, offset, at + d, k)
            })
            .map_err(|d| Fault {
                reason: FaultReason::Unbacked,
                addr: iova + at + d,
                did: Some(resolved.did()),
                fpd: resolved.fpd(),
            })
        })
    }

    /// A DMA read into or write from `buf` at `iova`: the local pieces
    /// under the gate, then the remote ones after it.
    fn copy(&self, pasid: Option<u32>, iova: u64, mut buf: Buffer<'_>) -> Result<(), DmaError> {
        let (access, len) = (buf.access(), buf.len());
        if len == 0 {
            return Ok(());
        }
        let mut tally = Tally::default();
        let mut remote = Vec::new();
        let result = {
            let _guard = self.unit.gate.enter();
            self.transfer(
                pasid,
                (iova, len),
                access,
                &mut tally,
                |object, offset, at, n| {
                    if object.is_remote() {
                        remote.push(RemotePiece::new(object, offset, at, n)?);
                        return Ok(());
                    }
                    buf.copy(&**object, offset, at, n)
                },
            )
        };
        let result = result.and_then(|resolved| {
            Self::finish_remote(&resolved, iova, remote, |remote, offset, at, n| {
                buf.copy(remote, offset, at, n)
            })
        });
        self.finish((pasid, access, len), tally, result)
    }

    /// Counts a finished DMA and reports its fault, if any (after the
    /// gate guard is gone, so a fault handler may unmap).
    fn finish(
        &self,
        (pasid, access, len): (Option<u32>, Access, u64),
        mut tally: Tally,
        result: Result<(), Fault>,
    ) -> Result<(), DmaError> {
        if result.is_ok() {
            tally.transferred(access, len);
        }
        self.unit.count(&tally);
        self.unit.device_counters.count(self.bdf, pasid, &tally);
        result.map_err(|fault| DmaError::Fault(self.unit.report(self.bdf, pasid, access, fault)))
    }
}

impl Dma for DmaPort {
    fn requester(&self) -> Bdf {
        self.bdf
    }

    fn read(&self, pasid: Option<u32>, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.copy(pasid, iova, Buffer::Read(buf))
    }

    fn write(&self, pasid: Option<u32>, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        self.copy(pasid, iova, Buffer::Write(data))
    }

    fn translate_sg(
        &self,
        pasid: Option<u32>,
        iova: u64,
        len: u64,
        access: Access,
    ) -> Result<SgMapping<'_>, DmaError> {
        let guard = self.unit.gate.enter();
        let mut segments = Vec::new();
        let mut tally = Tally::default();
        let result = if len == 0 {
            Ok(())
        } else {
            self.transfer(
                pasid,
                (iova, len),
                access,
                &mut tally,
                |object, offset, _, n| {
                    // Runs are maximal, so pieces never merge.
                    segments.push(Segment {
                        phys: object.base() + offset,
                        len: n,
                    });
                    Ok(())
                },
            )
            .map(drop)
        };
        // The device moves what it mapped: count it as transferred.
        if result.is_ok() {
            tally.transferred(access, len);
        }
        self.unit.count(&tally);
        self.unit.device_counters.count(self.bdf, pasid, &tally);
        match result {
            Ok(()) => Ok(SgMapping::new(segments, &self.unit.mem, access, guard)),
            Err(fault) => {
                drop(guard);
                Err(DmaError::Fault(
                    self.unit.report(self.bdf, pasid, access, fault),
                ))
            }
        }
    }
}
