//! The eventfds interrupts are signalled through.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};
use rustix::io::Errno;

/// An eventfd a consumer passed for an interrupt (or one made here).
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd.
    pub fn new() -> Result<Self, Errno> {
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map(Self)
    }

    /// Wraps a descriptor received from a consumer (SCM_RIGHTS).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Signals it: adds 1 to the counter. A full counter (EAGAIN) means the
    /// consumer is already notified; any error is ignored, as the kernel's
    /// `eventfd_signal` does.
    pub fn signal(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Reads and resets the counter (0 when nothing was signalled).
    pub fn take(&self) -> u64 {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.0, &mut buf) {
            Ok(8) => u64::from_ne_bytes(buf),
            _ => 0,
        }
    }

    /// Another handle on the same eventfd.
    pub fn try_clone(&self) -> Result<Self, Errno> {
        rustix::io::fcntl_dupfd_cloexec(&self.0, 0).map(Self)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
