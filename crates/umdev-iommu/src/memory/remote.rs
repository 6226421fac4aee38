//! Remote memory: a memory object whose bytes live in another process and
//! are reached only by messages (vfio-user DMA_MAP without an fd, served
//! by DMA_READ / DMA_WRITE).
//!
//! The object still owns a host-physical range, so page tables, IOAS
//! areas and pin accounting treat it like any other object. Its bytes are
//! never mapped here: [`super::MemoryObject::read`] and
//! [`super::MemoryObject::write`] call the [`RemoteBackend`] the higher
//! layer registered, and every direct view (`slice`, `atomic_u64`) fails
//! with EFAULT.
//!
//! Each backend call is counted in flight on the object. Releasing the
//! object revokes it (later calls fail without reaching the backend), and
//! [`super::MemoryObject::drain`] waits for the calls already in flight, so
//! the owner can finish an unmap only once no DMA can still reach the
//! client's memory (the vfio-user rule that DMA_UNMAP drops in-flight DMA
//! before it is answered).

use parking_lot::{Condvar, Mutex};
use rustix::io::Errno;

/// Why a remote backend could not move the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The peer is gone (socket closed, session torn down).
    #[error("remote memory peer disconnected")]
    Disconnected,
    /// The peer answered with an error (vfio-user reply with ERROR set).
    #[error("remote memory peer refused the access: errno {0}")]
    Refused(i32),
    /// The peer did not answer in time.
    #[error("remote memory peer timed out")]
    TimedOut,
    /// The object was released; nothing reaches the backend any more.
    #[error("remote memory object revoked")]
    Revoked,
}

impl RemoteError {
    /// The Linux errno for this error: every failed remote access is a
    /// failed DMA, EFAULT as `vfio_dma_rw` reports one.
    pub fn errno(&self) -> Errno {
        match self {
            RemoteError::Disconnected
            | RemoteError::Refused(_)
            | RemoteError::TimedOut
            | RemoteError::Revoked => Errno::FAULT,
        }
    }
}

/// The transport behind a remote memory object. `offset` is relative to
/// the start of the object; the caller has checked that the whole access
/// lies inside it. Implementations must return (with an error if need be)
/// rather than block forever: a DMA waits for the call to finish.
pub trait RemoteBackend: Send + Sync {
    /// Fills `buf` with the bytes at `offset`.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError>;

    /// Stores `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError>;
}

#[derive(Debug, Default)]
struct Flight {
    in_flight: u64,
    revoked: bool,
}

/// The backend of one remote object and its in-flight accounting.
pub(super) struct Remote {
    backend: std::sync::Arc<dyn RemoteBackend>,
    flight: Mutex<Flight>,
    idle: Condvar,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("flight", &*self.flight.lock())
            .finish_non_exhaustive()
    }
}

impl Remote {
    pub(super) fn new(backend: std::sync::Arc<dyn RemoteBackend>) -> Self {
        Self {
            backend,
            flight: Mutex::new(Flight::default()),
            idle: Condvar::new(),
        }
    }

    /// Counts one access in flight; fails once revoked. Pair with
    /// [`Remote::exit`].
    pub(super) fn enter(&self) -> Result<(), RemoteError> {
        let mut flight = self.flight.lock();
        if flight.revoked {
            return Err(RemoteError::Revoked);
        }
        flight.in_flight += 1;
        Ok(())
    }

    /// Ends an access [`Remote::enter`] counted.
    pub(super) fn exit(&self) {
        let mut flight = self.flight.lock();
        flight.in_flight -= 1;
        if flight.in_flight == 0 {
            self.idle.notify_all();
        }
    }

    /// Runs `f` on the backend, counted in flight. No lock is held while
    /// `f` runs.
    fn call(
        &self,
        f: impl FnOnce(&dyn RemoteBackend) -> Result<(), RemoteError>,
    ) -> Result<(), RemoteError> {
        self.enter()?;
        let result = f(&*self.backend);
        self.exit();
        result
    }

    /// Reads through the backend (counted in flight).
    pub(super) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError> {
        self.call(|b| b.read(offset, buf))
    }

    /// Writes through the backend (counted in flight).
    pub(super) fn write(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError> {
        self.call(|b| b.write(offset, data))
    }

    /// Reads through the backend for an access already entered.
    pub(super) fn read_entered(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError> {
        self.backend.read(offset, buf)
    }

    /// Writes through the backend for an access already entered.
    pub(super) fn write_entered(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError> {
        self.backend.write(offset, data)
    }

    /// Refuses every later call.
    pub(super) fn revoke(&self) {
        self.flight.lock().revoked = true;
    }

    /// Waits until no call is in flight.
    pub(super) fn drain(&self) {
        let mut flight = self.flight.lock();
        while flight.in_flight > 0 {
            self.idle.wait(&mut flight);
        }
    }

    /// Calls in flight now.
    pub(super) fn in_flight(&self) -> u64 {
        self.flight.lock().in_flight
    }
}
