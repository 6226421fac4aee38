//! One call on a served file: a request, its reply, and the fds the reply
//! carries installed as the kernel's `fd_install` + `put_user` would.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendFlags,
};
use umdev_uapi::frame::{FrameError, MAX_FDS, REPLY_LEN, Reply, Request};
use zerocopy::IntoBytes;

/// Largest errno a reply may carry (include/linux/err.h `MAX_ERRNO`).
const MAX_ERRNO: i64 = 4095;

/// Why a call on a served file failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A socket call failed, or the daemon answered −errno.
    #[error("{0}")]
    Sys(#[from] Errno),
    /// The reply does not decode.
    #[error("bad reply: {0}")]
    Frame(#[from] FrameError),
    /// The daemon closed the connection instead of answering.
    #[error("the daemon closed the connection")]
    Closed,
}

impl Error {
    /// The errno the program sees: the daemon's or the socket's own; EPROTO
    /// for a reply that does not decode; EPIPE for a daemon gone mid-call,
    /// as for one gone before it (`sendmsg` to a closed peer).
    pub(crate) fn errno(&self) -> Errno {
        match self {
            Error::Sys(e) => *e,
            Error::Frame(e) => e.errno(),
            Error::Closed => Errno::PIPE,
        }
    }
}

/// The calling thread's id, for fail-nth.
pub(crate) fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Sends `req` on `sock` and returns the reply's value, its fds
/// installed; the caller serialises calls on one connection.
pub(crate) fn call(sock: BorrowedFd<'_>, req: &Request) -> Result<i64, Error> {
    send(sock, req.as_bytes())?;
    let mut bytes = [0u8; REPLY_LEN + 1];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = recv(sock, &mut bytes, &mut control)?;
    let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
    let mut nfds = 0;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            for fd in rights {
                if let Some(free) = fds.get_mut(nfds) {
                    *free = Some(fd);
                }
                nfds += 1;
            }
        }
    }
    if msg.bytes == 0 && nfds == 0 {
        return Err(Error::Closed);
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(FrameError::Field("nfds").into());
    }
    let len = msg.bytes.min(bytes.len());
    let reply = Reply::decode(bytes.get(..len).unwrap_or_default(), nfds)?;
    if reply.ret < 0 {
        return Err(errno_of(reply.ret)?.into());
    }
    install(fds, &reply)
}

/// The errno of a negative return value.
fn errno_of(ret: i64) -> Result<Errno, Error> {
    if ret < -MAX_ERRNO {
        return Err(FrameError::Field("ret").into());
    }
    Ok(Errno::from_raw_os_error(-ret as i32))
}

/// Stores each fd's number at its slot, then gives the fds to the
/// program; if a slot cannot be written every fd is closed (EFAULT, as a
/// failed `put_user`).
fn install(fds: [Option<OwnedFd>; MAX_FDS], reply: &Reply) -> Result<i64, Error> {
    for (fd, &slot) in fds.iter().zip(&reply.fd_slots) {
        if let (Some(fd), true) = (fd, slot != 0) {
            put_user_u32(slot, fd.as_raw_fd() as u32)?;
        }
    }
    let mut ret = reply.ret;
    for (fd, &slot) in fds.into_iter().zip(&reply.fd_slots) {
        if let Some(fd) = fd {
            let number = fd.into_raw_fd();
            if slot == 0 {
                ret = i64::from(number);
            }
        }
    }
    Ok(ret)
}

/// Writes `value` at `addr` in this process, EFAULT (not SIGSEGV) if it is
/// not mapped writable.
fn put_user_u32(addr: u64, value: u32) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: (&raw const value).cast_mut().cast(),
        iov_len: size_of::<u32>(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: size_of::<u32>(),
    };
    // SAFETY: the kernel reads 4 bytes from `value` (live on the stack) and
    // writes `remote` by its own checked copy, as for another process.
    let n = unsafe {
        libc::process_vm_writev(
            rustix::process::getpid().as_raw_nonzero().get(),
            &local,
            1,
            &remote,
            1,
            0,
        )
    };
    if n == size_of::<u32>() as isize {
        Ok(())
    } else {
        Err(Errno::FAULT)
    }
}

/// Sends one frame, through EINTR and a non-blocking socket.
fn send(sock: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), Errno> {
    loop {
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(bytes)],
            &mut SendAncillaryBuffer::default(),
            SendFlags::NOSIGNAL,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait(sock, PollFlags::OUT)?,
            Err(e) => return Err(e),
        }
    }
}

/// Receives one frame, through EINTR and a non-blocking socket (the
/// program may have set O_NONBLOCK on the fd: the request is sent, so its
/// reply must be read).
fn recv(
    sock: BorrowedFd<'_>,
    bytes: &mut [u8],
    control: &mut RecvAncillaryBuffer<'_>,
) -> Result<rustix::net::RecvMsg, Errno> {
    loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(bytes)],
            control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait(sock, PollFlags::IN)?,
            other => return other,
        }
    }
}

fn wait(sock: BorrowedFd<'_>, flags: PollFlags) -> Result<(), Errno> {
    match rustix::event::poll(&mut [PollFd::new(&sock.as_fd(), flags)], None) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}
