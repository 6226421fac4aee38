//! The frame format on a `/dev/iommu` socket (SOCK_SEQPACKET, one frame a
//! message, little-endian).
//!
//! Request, client → daemon, [`REQUEST_LEN`] bytes:
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `magic: u32` | [`REQUEST_MAGIC`] |
//! | 4 | `cmd: u32` | the ioctl number (`_IO(';', nr)`) |
//! | 8 | `arg: u64` | the ioctl argument: a user pointer in the caller |
//! | 16 | `tid: u32` | the calling thread (for fail-nth) |
//! | 20 | `flags: u32` | 0 |
//!
//! Reply, daemon → client, [`REPLY_LEN`] bytes, with `nfds` file
//! descriptors attached as SCM_RIGHTS:
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `magic: u32` | [`REPLY_MAGIC`] |
//! | 4 | `nfds: u32` | fds attached, at most [`MAX_FDS`] |
//! | 8 | `ret: i64` | the ioctl's return value, or −errno |
//! | 16 | `fd_slots: [u64; 4]` | for fd *i*, the user address where the client stores its fd number as a `u32` |
//!
//! Anything else (a short or long message, a bad magic, non-zero flags) is
//! a protocol error: the daemon closes the connection.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "UMI1": a request frame.
pub const REQUEST_MAGIC: u32 = 0x3149_4d55;
/// "UMR1": a reply frame.
pub const REPLY_MAGIC: u32 = 0x3152_4d55;
/// Bytes of a request.
pub const REQUEST_LEN: usize = 24;
/// Bytes of a reply.
pub const REPLY_LEN: usize = 48;
/// File descriptors one reply carries at most.
pub const MAX_FDS: usize = 4;

/// Why a frame does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message is not exactly one frame long.
    #[error("frame of {0} bytes")]
    Length(usize),
    /// The magic is wrong.
    #[error("bad frame magic {0:#x}")]
    Magic(u32),
    /// Reserved flags are set, or too many fds are announced.
    #[error("bad frame field {0}")]
    Field(&'static str),
}

impl FrameError {
    /// The errno a client sees for a reply it cannot decode.
    pub fn errno(&self) -> rustix::io::Errno {
        rustix::io::Errno::PROTO
    }
}

/// One ioctl call.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Request {
    /// [`REQUEST_MAGIC`].
    pub magic: u32,
    /// The ioctl number.
    pub cmd: u32,
    /// The ioctl argument (a user pointer).
    pub arg: u64,
    /// The calling thread id.
    pub tid: u32,
    /// 0.
    pub flags: u32,
}

impl Request {
    /// A request for `cmd` with `arg` from thread `tid`.
    pub fn new(cmd: u32, arg: u64, tid: u32) -> Self {
        Self {
            magic: REQUEST_MAGIC,
            cmd,
            arg,
            tid,
            flags: 0,
        }
    }

    /// Decodes one message.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let req = Self::read_from_bytes(bytes).map_err(|_| FrameError::Length(bytes.len()))?;
        if req.magic != REQUEST_MAGIC {
            return Err(FrameError::Magic(req.magic));
        }
        if req.flags != 0 {
            return Err(FrameError::Field("flags"));
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
        let r = Request::new(0x3b80, 0x7fff_0000, 42);
        assert_eq!(Request::decode(r.as_bytes()), Ok(r));
        assert_eq!(
            Request::decode(&r.as_bytes()[..23]),
            Err(FrameError::Length(23))
        );
        let mut bad = r;
        bad.flags = 1;
        assert_eq!(
            Request::decode(bad.as_bytes()),
            Err(FrameError::Field("flags"))
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
