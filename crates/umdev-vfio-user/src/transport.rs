//! Messages on the AF_UNIX stream. Exactly one 16-byte header is taken per
//! `recvmsg` (the fds of a message arrive with its first byte, and Linux
//! stops a read right after the skb that carried them), then the payload
//! with plain reads, so fds always stay with their message.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::proto::wire::Header;
use crate::proto::{Limits, Message};

/// Why the connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer closed the stream in the middle of a message: EPIPE.
    #[error("connection closed mid-message")]
    Truncated,
    /// A header whose `msg_size` is below 16 or above the server's limit:
    /// the stream cannot be trusted any more (EMSGSIZE).
    #[error("message size {size} outside 16..={max}")]
    BadSize {
        /// The size announced.
        size: u32,
        /// The largest accepted.
        max: u32,
    },
    /// The socket failed.
    #[error("socket: {0}")]
    Io(Errno),
}

impl TransportError {
    /// The errno of this error.
    pub fn errno(&self) -> Errno {
        match self {
            TransportError::Truncated => Errno::PIPE,
            TransportError::BadSize { .. } => Errno::MSGSIZE,
            TransportError::Io(e) => *e,
        }
    }
}

/// Size of the ancillary buffer for `n` fds.
fn cmsg_len(n: usize) -> usize {
    rustix::cmsg_space!(ScmRights(n))
}

/// Receives one message: `Ok(None)` on a clean end of stream before a
/// header. fds come only with the header's first byte; a message with more
/// than `limits.max_msg_fds` fds is returned with `fds_truncated` set (the
/// kernel has closed the excess), so it can be refused in order.
pub fn recv_message(
    sock: BorrowedFd<'_>,
    limits: &Limits,
) -> Result<Option<Message>, TransportError> {
    let mut hdr = [0u8; size_of::<Header>()];
    let mut space = vec![MaybeUninit::uninit(); cmsg_len(limits.max_msg_fds as usize)];
    let mut fds = Vec::new();
    let mut truncated = false;
    let mut got = 0;
    while got < hdr.len() {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut hdr[got..])];
        let r = match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(TransportError::Io(e)),
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        truncated |= r.flags.contains(ReturnFlags::CTRUNC);
        if r.bytes == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(TransportError::Truncated)
            };
        }
        got += r.bytes;
    }
    let header = Header::read_from_bytes(&hdr).expect("header-sized buffer");
    let max = limits.max_msg_size();
    if (header.msg_size as usize) < hdr.len() || header.msg_size > max {
        return Err(TransportError::BadSize {
            size: header.msg_size,
            max,
        });
    }
    let mut payload = vec![0u8; header.msg_size as usize - hdr.len()];
    read_exact(sock, &mut payload)?;
    Ok(Some(Message {
        header,
        payload,
        fds,
        fds_truncated: truncated,
    }))
}

fn read_exact(sock: BorrowedFd<'_>, mut buf: &mut [u8]) -> Result<(), TransportError> {
    while !buf.is_empty() {
        match rustix::io::read(sock, &mut *buf) {
            Ok(0) => return Err(TransportError::Truncated),
            Ok(n) => buf = &mut buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
    Ok(())
}

/// Sends `header` followed by `parts`, with `fds` attached to the first
/// byte. Loops over short writes (fds go only once). No SIGPIPE: a gone
/// peer is EPIPE.
pub fn send_message(
    sock: BorrowedFd<'_>,
    header: &Header,
    parts: &[&[u8]],
    fds: &[BorrowedFd<'_>],
) -> Result<(), TransportError> {
    let mut bufs: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    bufs.push(header.as_bytes());
    bufs.extend(parts.iter().copied().filter(|p| !p.is_empty()));
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let mut space = vec![MaybeUninit::uninit(); cmsg_len(fds.len().max(1))];
    let mut sent = 0;
    let mut first = true;
    while sent < total {
        // The iovecs from the current position on.
        let mut skip = sent;
        let iov: Vec<IoSlice<'_>> = bufs
            .iter()
            .filter_map(|b| {
                if skip >= b.len() {
                    skip -= b.len();
                    None
                } else {
                    let s = IoSlice::new(&b[skip..]);
                    skip = 0;
                    Some(s)
                }
            })
            .collect();
        let mut control = SendAncillaryBuffer::new(&mut space);
        if first && !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => {
                sent += n;
                first = false;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
    Ok(())
}
