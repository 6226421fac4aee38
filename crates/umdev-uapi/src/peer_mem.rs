//! User VAs as memory objects (what `pin_user_pages` gives the kernel's
//! IOAS_MAP, drivers/iommu/iommufd/pages.c): each VMA of the peer that an
//! IOAS_MAP names becomes one [`MemoryObject`], reused while the VMA stays,
//! so that one user page has one host address (MD_CHECK_MAP, MD_CHECK_REFS
//! and IOAS_COPY compare them).
//!
//! - a shared file mapping (memfd, tmpfs, a file) is opened through
//!   `/proc/<pid>/map_files/<start>-<end>` and mapped here: zero-copy, both
//!   sides see the same page cache;
//! - anything else (private anonymous memory) is a remote object
//!   ([`umdev_iommu::memory::RemoteBackend`]) whose reads and writes are
//!   `process_vm_readv` / `process_vm_writev` on the peer.
//!
//! Unlike the kernel's pins, a remote object reaches whatever the peer has
//! mapped at the VA at the time of the access.

use std::fs::File;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::memory::{HostMemory, MemoryError, MemoryObject, RemoteBackend, RemoteError};

use crate::user::{Peer, UserError};

/// Why a user range could not become memory.
#[derive(Debug, thiserror::Error)]
pub enum PeerMemError {
    /// No single VMA of the peer covers the range (EFAULT).
    #[error(transparent)]
    User(#[from] UserError),
    /// The peer's maps could not be read.
    #[error("reading the peer's maps: {0}")]
    Maps(std::io::Error),
    /// The memory object could not be made.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

impl PeerMemError {
    /// The errno: EFAULT for every failure to reach the user's pages
    /// (`pin_user_pages` failing).
    pub fn errno(&self) -> rustix::io::Errno {
        match self {
            PeerMemError::Memory(e) => e.errno(),
            _ => rustix::io::Errno::FAULT,
        }
    }
}

/// One line of /proc/<pid>/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vma {
    start: u64,
    end: u64,
    shared: bool,
    offset: u64,
    dev: String,
    inode: u64,
}

impl Vma {
    fn parse(line: &str) -> Option<Self> {
        let mut it = line.split_whitespace();
        let (start, end) = it.next()?.split_once('-')?;
        let perms = it.next()?;
        let offset = u64::from_str_radix(it.next()?, 16).ok()?;
        let dev = it.next()?.to_owned();
        let inode = it.next()?.parse().ok()?;
        Some(Self {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            shared: perms.as_bytes().get(3) == Some(&b's'),
            offset,
            dev,
            inode,
        })
    }
}

impl Vma {
    /// The same pages as `other` where both cover a VA: anonymous memory
    /// of the same process, or the same file at the same VA→offset shift.
    fn same_backing(&self, other: &Vma) -> bool {
        self.shared == other.shared
            && self.dev == other.dev
            && self.inode == other.inode
            && (self.inode == 0
                || self.offset.wrapping_sub(self.start) == other.offset.wrapping_sub(other.start))
    }
}

/// Reads and writes of the peer's VMA starting at `base`.
struct PeerBackend {
    peer: Peer,
    base: u64,
}

impl RemoteBackend for PeerBackend {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError> {
        self.peer
            .read(self.base + offset, buf)
            .map_err(|_| RemoteError::Refused(libc::EFAULT))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError> {
        self.peer
            .write(self.base + offset, data)
            .map_err(|_| RemoteError::Refused(libc::EFAULT))
    }
}

/// The user memory of the processes that use one open file, as objects
/// of one host memory. Each object belongs to the process whose VA it
/// maps: after a `fork`, the child's IOAS_MAP on the parent's fd maps the
/// child's pages, as the kernel's `current->mm` would.
pub struct PeerMemory {
    mem: Arc<HostMemory>,
    objects: Mutex<Vec<PeerObject>>,
}

/// One VMA of one process as a memory object.
struct PeerObject {
    peer: Peer,
    vma: Vma,
    obj: Arc<MemoryObject>,
}

impl PeerObject {
    fn covers(&self, peer: Peer, vma: &Vma, va: u64, end: u64) -> bool {
        self.peer == peer
            && self.vma.same_backing(vma)
            && self.vma.start <= va
            && end <= self.vma.end
    }
}

impl std::fmt::Debug for PeerMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerMemory")
            .field("objects", &self.objects.lock().len())
            .finish()
    }
}

fn vma_of(peer: Peer, va: u64, len: u64) -> Result<Vma, PeerMemError> {
    let fault = UserError::Fault {
        addr: va,
        len: len as usize,
    };
    let end = va.checked_add(len.max(1)).ok_or(fault.clone())?;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", peer.pid()))
        .map_err(|_| PeerMemError::User(fault.clone()))?;
    maps.lines()
        .filter_map(Vma::parse)
        .find(|v| v.start <= va && end <= v.end)
        .ok_or(PeerMemError::User(fault))
}

impl PeerMemory {
    /// No object yet; objects are placed in `mem`.
    pub fn new(mem: Arc<HostMemory>) -> Self {
        Self {
            mem,
            objects: Mutex::new(Vec::new()),
        }
    }

    /// The object and offset behind `[va, va + len)` of `peer`, which must
    /// lie in one VMA (EFAULT otherwise).
    pub fn resolve(
        &self,
        peer: Peer,
        va: u64,
        len: u64,
    ) -> Result<(Arc<MemoryObject>, u64), PeerMemError> {
        let vma = vma_of(peer, va, len)?;
        let mut objects = self.objects.lock();
        self.sweep(&mut objects);
        let end = va + len;
        if let Some(o) = objects.iter().rev().find(|o| o.covers(peer, &vma, va, end)) {
            return Ok((Arc::clone(&o.obj), va - o.vma.start));
        }
        let size = vma.end - vma.start;
        let obj = if vma.shared && vma.inode != 0 {
            let path = format!(
                "/proc/{}/map_files/{:x}-{:x}",
                peer.pid(),
                vma.start,
                vma.end
            );
            let file = File::options()
                .read(true)
                .write(true)
                .open(path)
                .map_err(PeerMemError::Maps)?;
            self.mem.insert_file(file, vma.offset, size)?
        } else {
            let backend = Arc::new(PeerBackend {
                peer,
                base: vma.start,
            });
            self.mem.insert_remote(size, backend)?
        };
        let offset = va - vma.start;
        objects.push(PeerObject {
            peer,
            vma,
            obj: Arc::clone(&obj),
        });
        Ok((obj, offset))
    }

    /// Objects no IOAS holds any more go (the kernel unpins on unmap), so
    /// the list is bounded by what is mapped.
    fn sweep(&self, objects: &mut Vec<PeerObject>) {
        objects.retain(|o| {
            // This list and the host memory's index hold one each; any
            // other holder is an IOAS mapping or an access in flight.
            let held = Arc::strong_count(&o.obj) > 2;
            if !held {
                self.mem.release(&o.obj);
            }
            held
        });
    }

    /// The host address of `peer`'s user byte at `va`: the newest object
    /// that covers it, `None` if none does; EFAULT if `va` is not mapped.
    pub fn phys_of(&self, peer: Peer, va: u64) -> Result<Option<u64>, PeerMemError> {
        let vma = vma_of(peer, va, 1)?;
        Ok(self
            .objects
            .lock()
            .iter()
            .rev()
            .find(|o| o.covers(peer, &vma, va, va + 1))
            .map(|o| o.obj.base() + (va - o.vma.start)))
    }

    /// Releases every object (the file was closed).
    pub fn release(&self) {
        for o in self.objects.lock().drain(..) {
            self.mem.release(&o.obj);
        }
    }
}
