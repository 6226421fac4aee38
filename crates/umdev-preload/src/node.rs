//! Opening a routed node: a connection to the daemon and an OPEN request.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use umdev_uapi::frame::{Op, Request};

use crate::transport::{self, Error};

/// The environment variable naming the daemon's socket.
pub(crate) const SOCKET_ENV: &CStr = c"UMDEV_UAPI_SOCKET";
/// The daemon's socket when [`SOCKET_ENV`] is unset or empty.
pub(crate) const DEFAULT_SOCKET: &CStr = c"/run/umdev/uapi.sock";

/// The daemon's socket path, as the daemon bound it.
pub(crate) fn socket_path() -> &'static CStr {
    // SAFETY: getenv reads the environment; the string it returns lives
    // until the variable is changed, which a program doing it while it
    // opens files races in plain C as well.
    let value = unsafe { libc::getenv(SOCKET_ENV.as_ptr()) };
    if value.is_null() {
        return DEFAULT_SOCKET;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    let value = unsafe { CStr::from_ptr(value) };
    if value.is_empty() {
        DEFAULT_SOCKET
    } else {
        value
    }
}

/// `open(path, flags)` of a node the daemon serves: the connection is the
/// open file. No daemon socket is ENOENT, as a missing node would be; any
/// other failure is its own errno, or the daemon's.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> Result<OwnedFd, Error> {
    let cloexec = if flags & libc::O_CLOEXEC != 0 {
        SocketFlags::CLOEXEC
    } else {
        SocketFlags::empty()
    };
    let sock = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, cloexec, None)?;
    rustix::net::connect(&sock, &SocketAddrUnix::new(socket_path())?)?;
    // The daemon reads the path from this process's memory.
    let req = Request::new(
        Op::OPEN,
        flags as u32,
        path.as_ptr() as u64,
        path.to_bytes().len() as u64,
        -1,
        transport::tid(),
    );
    transport::call(sock.as_fd(), &req)?;
    Ok(sock)
}
