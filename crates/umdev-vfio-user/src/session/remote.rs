//! DMA_MAP without an fd: the client's memory is a remote memory object
//! whose reads and writes become DMA_READ / DMA_WRITE commands to the
//! client, each at most the client's `max_data_xfer_size`, answered
//! through the connection's reader thread (the device's DMA usually runs
//! on the worker, inside the REGION_WRITE that started it).

use std::sync::{Arc, Weak};

use rustix::io::Errno;
use umdev_iommu::memory::{MemoryObject, RemoteBackend, RemoteError};
use zerocopy::{FromBytes, IntoBytes};

use super::Session;
use super::conn::Conn;
use super::error::CmdError;
use crate::proto::{Command, wire};

/// The most message-based memory one session may map: such a map costs
/// the server no memory but page-table entries in the IOAS's domains, so
/// an absurd size is refused (ENOMEM, as a pinning limit is).
pub const MAX_REMOTE_BYTES: u64 = 64 << 30;

/// The client end of one fd-less map.
struct ClientDma {
    conn: Weak<Conn>,
    /// IOVA of the map's first byte (object offset 0).
    iova: u64,
    /// The client's `max_data_xfer_size`.
    max_xfer: u64,
}

fn remote_error(e: CmdError) -> RemoteError {
    match e.errno() {
        Errno::TIMEDOUT => RemoteError::TimedOut,
        Errno::NOTCONN => RemoteError::Disconnected,
        errno => RemoteError::Refused(errno.raw_os_error()),
    }
}

impl ClientDma {
    /// Runs `f` on each piece `(object offset, piece range in the buffer)`
    /// of an access of `len` bytes at `offset`.
    fn pieces(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&Conn, u64, std::ops::Range<usize>) -> Result<(), RemoteError>,
    ) -> Result<(), RemoteError> {
        let conn = self.conn.upgrade().ok_or(RemoteError::Disconnected)?;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(self.max_xfer as usize);
            f(&conn, self.iova + offset + done as u64, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

impl RemoteBackend for ClientDma {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError> {
        let len = buf.len();
        self.pieces(offset, len, |conn, addr, range| {
            let count = range.len();
            let req = wire::DmaAccess {
                addr,
                count: count as u64,
            };
            let reply = conn
                .request(Command::DMA_READ, req.as_bytes())
                .map_err(remote_error)?;
            // The reply echoes addr and count, then the data.
            let (echo, data) = wire::DmaAccess::read_from_prefix(&reply.payload)
                .map_err(|_| RemoteError::Refused(Errno::INVAL.raw_os_error()))?;
            if echo.addr != addr || echo.count != count as u64 || data.len() != count {
                return Err(RemoteError::Refused(Errno::INVAL.raw_os_error()));
            }
            buf[range].copy_from_slice(data);
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError> {
        self.pieces(offset, data.len(), |conn, addr, range| {
            let req = wire::DmaAccess {
                addr,
                count: range.len() as u64,
            };
            let mut payload = req.as_bytes().to_vec();
            payload.extend_from_slice(&data[range]);
            conn.request(Command::DMA_WRITE, &payload)
                .map_err(remote_error)?;
            Ok(())
        })
    }
}

impl Session {
    /// A remote memory object for `[addr, addr + size)` of the client.
    pub(super) fn remote_memory(
        &self,
        conn: &Arc<Conn>,
        addr: u64,
        size: u64,
    ) -> Result<Arc<MemoryObject>, CmdError> {
        if self.maps.remote_bytes().saturating_add(size) > MAX_REMOTE_BYTES {
            return Err(CmdError::RemoteLimit {
                limit: MAX_REMOTE_BYTES,
            });
        }
        let backend = ClientDma {
            conn: Arc::downgrade(conn),
            iova: addr,
            max_xfer: u64::from(self.caps.max_data_xfer_size),
        };
        Ok(self.memory.insert_remote(size, Arc::new(backend))?)
    }
}
