//! Whether an fd is a file the daemon serves.
//!
//! An fd is ours iff it is a UNIX socket and either its peer is the
//! daemon's socket (a node this process opened: [`crate::node`]) or its own
//! address starts with [`SERVED_NAME_PREFIX`] (a file the daemon handed
//! back, one end of a socketpair it bound; the name survives dup, fork and
//! exec). Answers are cached by (st_dev, st_ino), so a call on anything
//! but a socket costs one `fstat` and a call on a known socket one
//! `fstat` and a table look-up. sockfs numbers its inodes with
//! `get_next_ino()` (net/socket.c `sock_alloc`, fs/inode.c), a counter that
//! does not hand a number out again until it wraps at 2^32, so an entry
//! does not outlive its socket's identity.

use std::os::fd::BorrowedFd;

use rustix::fs::FileType;
use rustix::net::SocketAddrUnix;
use umdev_uapi::frame::SERVED_NAME_PREFIX;

use crate::lock::Lock;
use crate::node;

/// The identity of an open socket: (st_dev, st_ino).
pub(crate) type FileKey = (u64, u64);

/// Cache entries (direct-mapped by inode).
const ENTRIES: usize = 256;

#[derive(Clone, Copy)]
struct Entry {
    key: FileKey,
    ours: bool,
    valid: bool,
}

const EMPTY: Entry = Entry {
    key: (0, 0),
    ours: false,
    valid: false,
};

static CACHE: [Lock<Entry>; ENTRIES] = [const { Lock::new(EMPTY) }; ENTRIES];

fn entry(key: FileKey) -> &'static Lock<Entry> {
    &CACHE[(key.1 % ENTRIES as u64) as usize]
}

/// The key of `fd` if the daemon serves it.
pub(crate) fn served(fd: BorrowedFd<'_>) -> Option<FileKey> {
    let st = rustix::fs::fstat(fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return None;
    }
    let key = (st.st_dev, st.st_ino);
    let cached = *entry(key).lock();
    let ours = if cached.valid && cached.key == key {
        cached.ours
    } else {
        let ours = ask(fd)?;
        *entry(key).lock() = Entry {
            key,
            ours,
            valid: true,
        };
        ours
    };
    ours.then_some(key)
}

/// Asks the socket itself; `None` while the answer may still change (an
/// unconnected UNIX socket), which is then not cached.
fn ask(fd: BorrowedFd<'_>) -> Option<bool> {
    let Ok(own) = SocketAddrUnix::try_from(rustix::net::getsockname(fd).ok()?) else {
        return Some(false);
    };
    if own.abstract_name().is_some_and(is_served_name) {
        return Some(true);
    }
    let peer = rustix::net::getpeername(fd).ok()??;
    let path = SocketAddrUnix::try_from(peer).ok();
    Some(
        path.and_then(|p| p.path_bytes().map(|b| b == node::socket_path().to_bytes()))
            == Some(true),
    )
}

/// Whether an abstract name (without its leading NUL) is a served file's.
fn is_served_name(name: &[u8]) -> bool {
    matches!(SERVED_NAME_PREFIX.split_first(), Some((0, prefix)) if name.starts_with(prefix))
}

/// The child's side of `fork`: frees the cache's locks and forgets it.
pub(crate) fn reset() {
    for e in &CACHE {
        e.force_unlock();
        *e.lock() = EMPTY;
    }
}
