//! The frame format on a uAPI socket (SOCK_SEQPACKET, one frame a message,
//! little-endian). One connection is one open file description: the
//! preload opens a node by connecting and sending [`Op::OPEN`]; every
//! later call on that fd is one request and one reply.
//!
//! Request, client → daemon, [`REQUEST_LEN`] bytes:
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `magic: u32` | [`REQUEST_MAGIC`] |
//! | 4 | `op: u32` | [`Op`]: OPEN, IOCTL, READ, WRITE |
//! | 8 | `cmd: u32` | IOCTL: the ioctl number; OPEN: the `open` flags; else 0 |
//! | 12 | `tid: u32` | the calling thread (for fail-nth) |
//! | 16 | `arg: u64` | a user pointer in the caller: the ioctl argument, the read/write buffer, the path |
//! | 24 | `len: u64` | READ/WRITE: the byte count; OPEN: the path's length |
//! | 32 | `offset: i64` | READ/WRITE: the file offset (`pread`/`pwrite`), −1 for `read`/`write` |
//!
//! The daemon learns who sent a request from the kernel, never from the
//! frame: every message carries the sender's credentials (SO_PASSCRED), and
//! the user pointers are read in that process.
//!
//! Reply, daemon → client, [`REPLY_LEN`] bytes, with `nfds` file
//! descriptors attached as SCM_RIGHTS:
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `magic: u32` | [`REPLY_MAGIC`] |
//! | 4 | `nfds: u32` | fds attached, at most [`MAX_FDS`] |
//! | 8 | `ret: i64` | the call's return value, or −errno |
//! | 16 | `fd_slots: [u64; 4]` | for fd *i*, the user address where the client stores its fd number as a `u32`; 0: the fd number is the call's return value |
//!
//! Anything else (a short or long message, a bad magic, an unknown op) is
//! a protocol error: the daemon closes the connection.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "UMI2": a request frame.
pub const REQUEST_MAGIC: u32 = 0x3249_4d55;
/// "UMR2": a reply frame.
pub const REPLY_MAGIC: u32 = 0x3252_4d55;
/// Bytes of a request.
pub const REQUEST_LEN: usize = 40;
/// Bytes of a reply.
pub const REPLY_LEN: usize = 48;
/// File descriptors one reply carries at most.
pub const MAX_FDS: usize = 4;
/// Longest path an OPEN names (PATH_MAX).
pub const MAX_PATH: u64 = 4096;
/// The start of the address a served file's socket is bound to, as it
/// appears in `sun_path` (an abstract name: a leading NUL). A file an ioctl
/// hands back is one end of a `socketpair`; the daemon binds the end it
/// sends to `"\0umdev-uapi/<daemon pid>/<n>"`, and the preload knows the fd
/// as served by this name (`getsockname`), which survives dup, fork and
/// exec. A node the program opened is known by its peer instead: the
/// daemon's socket path.
pub const SERVED_NAME_PREFIX: &[u8] = b"\0umdev-uapi/";

/// Why a frame does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message is not exactly one frame long.
    #[error("frame of {0} bytes")]
    Length(usize),
    /// The magic is wrong.
    #[error("bad frame magic {0:#x}")]
    Magic(u32),
    /// An unknown op, or too many fds announced.
    #[error("bad frame field {0}")]
    Field(&'static str),
}

impl FrameError {
    /// The errno a client sees for a reply it cannot decode.
    pub fn errno(&self) -> rustix::io::Errno {
        rustix::io::Errno::PROTO
    }
}

/// What a request asks (an open newtype: unknown values decode, and are
/// refused by the daemon).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct Op(pub u32);

impl Op {
    /// Open the node whose path is at `arg` (`len` bytes); the first and
    /// only first request of a connection.
    pub const OPEN: Op = Op(1);
    /// `ioctl(fd, cmd, arg)`.
    pub const IOCTL: Op = Op(2);
    /// `read`/`pread(fd, arg, len, offset)`.
    pub const READ: Op = Op(3);
    /// `write`/`pwrite(fd, arg, len, offset)`.
    pub const WRITE: Op = Op(4);

    /// Whether the daemon knows this op.
    pub fn is_known(self) -> bool {
        (1..=4).contains(&self.0)
    }
}

/// One call on an fd.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Request {
    /// [`REQUEST_MAGIC`].
    pub magic: u32,
    /// What is asked.
    pub op: Op,
    /// The ioctl number, or the open flags.
    pub cmd: u32,
    /// The calling thread id.
    pub tid: u32,
    /// A user pointer.
    pub arg: u64,
    /// A byte count.
    pub len: u64,
    /// A file offset, −1 for none.
    pub offset: i64,
}

impl Request {
    /// `ioctl(cmd, arg)` from thread `tid`.
    pub fn ioctl(cmd: u32, arg: u64, tid: u32) -> Self {
        Self::new(Op::IOCTL, cmd, arg, 0, -1, tid)
    }

    /// A request of any op.
    pub fn new(op: Op, cmd: u32, arg: u64, len: u64, offset: i64, tid: u32) -> Self {
        Self {
            magic: REQUEST_MAGIC,
            op,
            cmd,
            tid,
            arg,
            len,
            offset,
        }
    }

    /// Decodes one message.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let req = Self::read_from_bytes(bytes).map_err(|_| FrameError::Length(bytes.len()))?;
        if req.magic != REQUEST_MAGIC {
            return Err(FrameError::Magic(req.magic));
        }
        if !req.op.is_known() {
            return Err(FrameError::Field("op"));
        }
        Ok(req)
    }
}

/// The answer to one request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Reply {
    /// [`REPLY_MAGIC`].
    pub magic: u32,
    /// Attached fds.
    pub nfds: u32,
    /// Return value or −errno.
    pub ret: i64,
    /// Where each fd's number goes in the caller's memory.
    pub fd_slots: [u64; MAX_FDS],
}

impl Reply {
    /// A reply with return value `ret` (−errno on failure).
    pub fn new(ret: i64) -> Self {
        Self {
            magic: REPLY_MAGIC,
            ret,
            ..Default::default()
        }
    }

    /// Decodes one message that came with `nfds` fds.
    pub fn decode(bytes: &[u8], nfds: usize) -> Result<Self, FrameError> {
        let rep = Self::read_from_bytes(bytes).map_err(|_| FrameError::Length(bytes.len()))?;
        if rep.magic != REPLY_MAGIC {
            return Err(FrameError::Magic(rep.magic));
        }
        if rep.nfds as usize > MAX_FDS || rep.nfds as usize != nfds {
            return Err(FrameError::Field("nfds"));
        }
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let r = Request::ioctl(0x3b80, 0x7fff_0000, 42);
        assert_eq!(Request::decode(r.as_bytes()), Ok(r));
        assert_eq!(
            Request::decode(&r.as_bytes()[..39]),
            Err(FrameError::Length(39))
        );
        let mut bad = r;
        bad.op = Op(9);
        assert_eq!(
            Request::decode(bad.as_bytes()),
            Err(FrameError::Field("op"))
        );
        bad = r;
        bad.magic = 0;
        assert_eq!(Request::decode(bad.as_bytes()), Err(FrameError::Magic(0)));
        let mut rep = Reply::new(-22);
        rep.nfds = 1;
        assert_eq!(Reply::decode(rep.as_bytes(), 1), Ok(rep));
        assert_eq!(
            Reply::decode(rep.as_bytes(), 0),
            Err(FrameError::Field("nfds"))
        );
        assert_eq!(std::mem::size_of::<Request>(), REQUEST_LEN);
        assert_eq!(std::mem::size_of::<Reply>(), REPLY_LEN);
    }
}
