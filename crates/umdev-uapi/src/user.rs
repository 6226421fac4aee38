//! The caller's memory: `copy_from_user` / `copy_to_user` are
//! `process_vm_readv` / `process_vm_writev` on the peer process (its pid
//! from SO_PEERCRED, never one the client names), and `fdget` of an fd
//! number in an argument is `pidfd_getfd` (include/linux/uaccess.h
//! `copy_struct_from_user`).

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use zerocopy::FromBytes;

/// Bytes copied per step where a user length bounds a loop.
const RECORD_CHUNK: usize = 4096;

/// Why the peer's memory or fds could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The address range is not (wholly) mapped in the peer.
    #[error("bad user address {addr:#x} (+{len})")]
    Fault {
        /// First byte.
        addr: u64,
        /// Length.
        len: usize,
    },
    /// Bytes past what this kernel knows are not zero (`copy_struct_from_user`).
    #[error("non-zero bytes past the known struct")]
    TooBig,
    /// The fd number is not open in the peer.
    #[error("bad fd {0} in the peer")]
    BadFd(i32),
}

impl UserError {
    /// The kernel's errno: EFAULT, E2BIG, EBADF.
    pub fn errno(&self) -> Errno {
        match self {
            UserError::Fault { .. } => Errno::FAULT,
            UserError::TooBig => Errno::TOOBIG,
            UserError::BadFd(_) => Errno::BADF,
        }
    }
}

/// The peer process of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pid: i32,
}

impl Peer {
    /// The process `pid` (from SO_PEERCRED).
    pub fn new(pid: i32) -> Self {
        Self { pid }
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `copy_from_user`: all of `buf` or EFAULT.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), UserError> {
        if buf.is_empty() {
            return Ok(());
        }
        let fault = UserError::Fault {
            addr,
            len: buf.len(),
        };
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: usize::try_from(addr).map_err(|_| fault.clone())? as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, which is valid for writes of its
        // length for the duration of the call; the remote iovec is only an
        // address in another process, checked by the kernel.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if n != buf.len() as isize {
            return Err(fault);
        }
        Ok(())
    }

    /// `copy_to_user`: all of `data` or EFAULT.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), UserError> {
        if data.is_empty() {
            return Ok(());
        }
        let fault = UserError::Fault {
            addr,
            len: data.len(),
        };
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: usize::try_from(addr).map_err(|_| fault.clone())? as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: `local` describes `data`, valid for reads of its length;
        // the kernel only reads through it. The remote iovec is checked by
        // the kernel against the peer's address space.
        let n = unsafe { libc::process_vm_writev(self.pid, &local, 1, &remote, 1, 0) };
        if n != data.len() as isize {
            return Err(fault);
        }
        Ok(())
    }

    /// `copy_struct_from_user`: the first `ksize` bytes of the user struct
    /// of `usize` bytes at `addr`, zero-extended; E2BIG if the user's bytes
    /// past `ksize` are not all zero.
    pub fn copy_struct(&self, addr: u64, ksize: usize, usize_: u32) -> Result<Vec<u8>, UserError> {
        let usize_ = usize_ as usize;
        let mut out = vec![0u8; ksize];
        self.read(addr, &mut out[..ksize.min(usize_)])?;
        let mut off = ksize;
        let mut chunk = [0u8; 4096];
        while off < usize_ {
            let n = (usize_ - off).min(chunk.len());
            self.read(addr + off as u64, &mut chunk[..n])?;
            if chunk[..n].iter().any(|&b| b != 0) {
                return Err(UserError::TooBig);
            }
            off += n;
        }
        Ok(out)
    }

    /// `count` records of `T` from the user array at `addr`, in order,
    /// each handed to `f` (which may stop with its errno), read a page's
    /// worth at a time so that no user count sizes an allocation. A record
    /// that cannot be read is EFAULT once the records before it are done,
    /// as a `copy_from_user` per element would give.
    pub fn for_each_record<T: FromBytes>(
        &self,
        addr: u64,
        count: u64,
        mut f: impl FnMut(T) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let size = std::mem::size_of::<T>();
        let per = (RECORD_CHUNK / size).max(1);
        let mut buf = vec![0u8; per * size];
        let mut done = 0u64;
        while done < count {
            let n = (count - done).min(per as u64) as usize;
            let at = (done * size as u64).checked_add(addr).ok_or(Errno::FAULT)?;
            let chunk = &mut buf[..n * size];
            // A fault inside the chunk: take its records one by one, so
            // those before the bad one still count.
            let whole = self.read(at, chunk).is_ok();
            for (i, rec) in chunk.chunks_exact_mut(size).enumerate() {
                if !whole {
                    self.read(at + (i * size) as u64, rec)
                        .map_err(|_| Errno::FAULT)?;
                }
                f(T::read_from_bytes(rec).expect("one record"))?;
            }
            done += n as u64;
        }
        Ok(())
    }

    /// `clear_user`: `len` zero bytes at `addr`, a page at a time.
    pub fn clear(&self, addr: u64, len: u64) -> Result<(), UserError> {
        let zeros = [0u8; RECORD_CHUNK];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(RECORD_CHUNK as u64) as usize;
            self.write(addr.wrapping_add(off), &zeros[..n])?;
            off += n as u64;
        }
        Ok(())
    }

    /// `fdget` of the peer's fd `fd`: a duplicate in this process.
    pub fn get_fd(&self, fd: i32) -> Result<OwnedFd, UserError> {
        let pid = Pid::from_raw(self.pid).ok_or(UserError::BadFd(fd))?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|_| UserError::BadFd(fd))?;
        pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).map_err(|_| UserError::BadFd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_round_trip_and_faults() {
        let me = Peer::new(std::process::id() as i32);
        let src = [1u8, 2, 3, 4, 0, 0, 0, 0];
        let mut dst = [0u8; 4];
        me.read(src.as_ptr() as u64, &mut dst).unwrap();
        assert_eq!(dst, [1, 2, 3, 4]);
        assert_eq!(me.read(8, &mut dst).unwrap_err().errno(), Errno::FAULT);
        // Zero tail: fine; a non-zero byte past ksize: E2BIG.
        assert_eq!(
            me.copy_struct(src.as_ptr() as u64, 4, 8).unwrap(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            me.copy_struct(src.as_ptr() as u64, 2, 8),
            Err(UserError::TooBig)
        );
        // Short user struct: zero-extended.
        assert_eq!(
            me.copy_struct(src.as_ptr() as u64, 6, 2).unwrap(),
            [1, 2, 0, 0, 0, 0]
        );
    }
}
