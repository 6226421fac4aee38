//! Open files of the uAPI face (`struct file` with its
//! `struct file_operations`): one per connection. A node's open makes one
//! (the server routes the path), an ioctl that returns an fd makes
//! another (the kernel's `anon_inode_getfd`: a fault queue, a selftest
//! access); every request on the connection is a call of its
//! [`FileOps`], and the connection's end is its `release`.

use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;

use crate::frame::MAX_FDS;
use crate::user::Peer;

/// A file's operations. What a file does not implement answers as the
/// kernel does for a missing `file_operations` member.
pub trait FileOps: Send + Sync {
    /// `unlocked_ioctl`: `cmd` with the user pointer `arg` from `peer`;
    /// fds the call hands back go into `out`. Default: ENOTTY.
    fn ioctl(&self, peer: Peer, cmd: u32, arg: u64, out: &mut NewFiles) -> Result<i64, Errno> {
        let _ = (peer, cmd, arg, out);
        Err(Errno::NOTTY)
    }

    /// `read` / `pread` of `len` bytes into the user buffer `buf`;
    /// `offset` is `None` for `read`. Default: EINVAL (no `read` member).
    fn read(&self, peer: Peer, buf: u64, len: u64, offset: Option<u64>) -> Result<i64, Errno> {
        let _ = (peer, buf, len, offset);
        Err(Errno::INVAL)
    }

    /// `write` / `pwrite` of `len` bytes from the user buffer `buf`.
    /// Default: EINVAL.
    fn write(&self, peer: Peer, buf: u64, len: u64, offset: Option<u64>) -> Result<i64, Errno> {
        let _ = (peer, buf, len, offset);
        Err(Errno::INVAL)
    }

    /// Whether the calling thread's fail-nth count applies to this file's
    /// calls (every file but the fail-nth file itself).
    fn injects_faults(&self) -> bool {
        true
    }

    /// `release`: the last reference to the file went (every fd that
    /// shared the connection is closed, or the process died).
    fn release(&self) {}

    /// The server made the caller's fd for this file: `id` names it, so
    /// that a later ioctl naming that fd number finds this file (the
    /// kernel's `fget` + `f_op` check). Default: nothing to record.
    fn installed(&self, id: FileId) {
        let _ = id;
    }
}

/// What an fd refers to, as `fstat` tells it (`st_dev`, `st_ino`): the
/// caller's end of a served file's connection, found again from an fd
/// number by `pidfd_getfd` + `fstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of `fd`.
    pub fn of(fd: impl AsFd) -> Result<Self, Errno> {
        let st = rustix::fs::fstat(fd)?;
        Ok(Self {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }
}

/// Where a new fd's number goes in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdSlot {
    /// A `u32` at this user address (`out_fault_fd`, `out_access_fd`).
    User(u64),
    /// The call's return value (`VFIO_GROUP_GET_DEVICE_FD`).
    Return,
}

impl FdSlot {
    /// The frame's encoding (0: the return value).
    pub fn encode(self) -> u64 {
        match self {
            FdSlot::User(addr) => addr,
            FdSlot::Return => 0,
        }
    }
}

/// A file an ioctl created, or a file of the daemon's own (a memfd) to
/// hand back as is.
pub enum NewFile {
    /// Served by the daemon on a new connection.
    Served(Box<dyn FileOps>),
    /// Passed as it is.
    Fd(OwnedFd),
}

/// The fds one call hands back, at most [`MAX_FDS`].
#[derive(Default)]
pub struct NewFiles {
    files: Vec<(NewFile, FdSlot)>,
}

impl std::fmt::Debug for NewFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFiles")
            .field("len", &self.files.len())
            .finish()
    }
}

impl NewFiles {
    /// Hands `file` back, its number stored at `slot` (the kernel's
    /// `fd_install` + `put_user`); EMFILE past [`MAX_FDS`].
    pub fn push(&mut self, file: NewFile, slot: FdSlot) -> Result<(), Errno> {
        if self.files.len() == MAX_FDS {
            return Err(Errno::MFILE);
        }
        self.files.push((file, slot));
        Ok(())
    }

    /// Drops them all (the call failed: `put_unused_fd`).
    pub fn clear(&mut self) {
        self.files.clear();
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Takes them, in order.
    pub fn take(&mut self) -> Vec<(NewFile, FdSlot)> {
        std::mem::take(&mut self.files)
    }
}
