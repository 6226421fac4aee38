//! DMA_MAP / DMA_UNMAP: the client's memory into and out of the session's
//! IOAS. A map with an fd is mmapped (shared) and placed in the host
//! address space as a memory object, then mapped at its IOVA with the
//! client's permissions, so the device's DMA reaches exactly that memory.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use umdev_iommufd::MapFlags;
use zerocopy::IntoBytes;

use super::Session;
use super::conn::{Conn, Reply};
use super::error::CmdError;
use super::maps::DmaMapping;
use crate::proto::{ProtoError, flags, wire};

/// The IOAS permissions of DMA_MAP flags (at least one is set, checked by
/// the decoder).
fn map_flags(f: u32) -> MapFlags {
    let mut m = MapFlags::FIXED_IOVA;
    if f & flags::DMA_MAP_READ != 0 {
        m |= MapFlags::READABLE;
    }
    if f & flags::DMA_MAP_WRITE != 0 {
        m |= MapFlags::WRITEABLE;
    }
    m
}

impl Session {
    /// DMA_MAP. EEXIST over an existing map, ENOSPC past `max_dma_maps`,
    /// EINVAL if the fd is not mappable that far (a range past the end of
    /// the file would fault the server on access), the IOAS's errno for
    /// reserved IOVAs.
    pub(super) fn dma_map(
        &mut self,
        conn: &Arc<Conn>,
        mflags: u32,
        offset: u64,
        addr: u64,
        size: u64,
        fd: Option<OwnedFd>,
    ) -> Result<Reply, CmdError> {
        self.maps.check_insert(addr, size)?;
        let memory = match fd {
            Some(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|errno| CmdError::BadFd { errno })?;
                let end = offset + size;
                if u64::try_from(st.st_size).unwrap_or(0) < end {
                    return Err(ProtoError::BadRange {
                        cmd: crate::proto::Command::DMA_MAP,
                        addr,
                        size,
                    }
                    .into());
                }
                // The file must not shrink under the mapping (an access
                // past its end would fault the server): seal a memfd that
                // allows it (QEMU's memfd backends come sealed already).
                // Other files stay a documented risk.
                let _ = rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK);
                self.memory.insert_file(File::from(fd), offset, size)?
            }
            None => self.remote_memory(conn, addr, size)?,
        };
        if let Err(e) = self
            .ictx
            .ioas_map(self.ioas, map_flags(mflags), &memory, 0, size, addr)
        {
            self.memory.release(&memory);
            return Err(e.into());
        }
        self.maps.insert(addr, DmaMapping { size, memory });
        Ok(Reply::empty())
    }

    /// DMA_UNMAP: an exact earlier map (ENOENT otherwise), or everything
    /// with UNMAP_ALL. With GET_DIRTY_BITMAP the bitmap of the range is
    /// read (and cleared) first; EINVAL unless DMA logging is on. The
    /// reply echoes the request, then the bitmap header and bits.
    pub(super) fn dma_unmap(
        &mut self,
        argsz: u32,
        uflags: u32,
        addr: u64,
        size: u64,
        bitmap: Option<wire::DirtyBitmap>,
    ) -> Result<Reply, CmdError> {
        let echo = wire::DmaUnmap {
            argsz,
            flags: uflags,
            addr,
            size,
        };
        let mut payload = echo.as_bytes().to_vec();
        if uflags & flags::DMA_UNMAP_ALL != 0 {
            self.unmap_all()?;
            return Ok(Reply::data(payload));
        }
        self.maps.find_exact(addr, size)?;
        if let Some(b) = bitmap {
            let bits = self.dirty_bitmap(addr, size, b.pgsize, b.size)?;
            payload.extend_from_slice(b.as_bytes());
            payload.extend(bits);
        }
        self.ictx.ioas_unmap(self.ioas, addr, size)?;
        if let Some(m) = self.maps.remove(addr) {
            // No DMA may reach the client's memory once it is answered:
            // revoke the object and wait for accesses in flight.
            self.memory.release(&m.memory);
            m.memory.drain();
        }
        Ok(Reply::data(payload))
    }
}
