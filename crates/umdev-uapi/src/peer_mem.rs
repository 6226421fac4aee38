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

/// The peer's memory as objects of one host memory.
pub struct PeerMemory {
    peer: Peer,
    mem: Arc<HostMemory>,
    objects: Mutex<Vec<(Vma, Arc<MemoryObject>)>>,
}

impl std::fmt::Debug for PeerMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerMemory")
            .field("peer", &self.peer)
            .field("objects", &self.objects.lock().len())
            .finish()
    }
}

impl PeerMemory {
    /// No object yet for `peer`; objects are placed in `mem`.
    pub fn new(peer: Peer, mem: Arc<HostMemory>) -> Self {
        Self {
            peer,
            mem,
            objects: Mutex::new(Vec::new()),
        }
    }

    fn vma(&self, va: u64, len: u64) -> Result<Vma, PeerMemError> {
        let fault = UserError::Fault {
            addr: va,
            len: len as usize,
        };
        let end = va.checked_add(len.max(1)).ok_or(fault.clone())?;
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.peer.pid()))
            .map_err(PeerMemError::Maps)?;
        maps.lines()
            .filter_map(Vma::parse)
            .find(|v| v.start <= va && end <= v.end)
            .ok_or(PeerMemError::User(fault))
    }

    /// The object and offset behind `[va, va + len)`, which must lie in one
    /// VMA (EFAULT otherwise).
    pub fn resolve(&self, va: u64, len: u64) -> Result<(Arc<MemoryObject>, u64), PeerMemError> {
        let vma = self.vma(va, len)?;
        let mut objects = self.objects.lock();
        let end = va + len;
        if let Some((v, obj)) = objects
            .iter()
            .rev()
            .find(|(v, _)| v.same_backing(&vma) && v.start <= va && end <= v.end)
        {
            return Ok((Arc::clone(obj), va - v.start));
        }
        let size = vma.end - vma.start;
        let obj = if vma.shared && vma.inode != 0 {
            let path = format!(
                "/proc/{}/map_files/{:x}-{:x}",
                self.peer.pid(),
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
                peer: self.peer,
                base: vma.start,
            });
            self.mem.insert_remote(size, backend)?
        };
        objects.push((vma.clone(), Arc::clone(&obj)));
        Ok((obj, va - vma.start))
    }

    /// The host address of the user byte at `va`: the newest object that
    /// covers it, `None` if none does; EFAULT if `va` is not mapped.
    pub fn phys_of(&self, va: u64) -> Result<Option<u64>, PeerMemError> {
        let vma = self.vma(va, 1)?;
        Ok(self
            .objects
            .lock()
            .iter()
            .rev()
            .find(|(v, _)| v.same_backing(&vma) && v.start <= va && va < v.end)
            .map(|(v, o)| o.base() + (va - v.start)))
    }

    /// Releases every object (the context was closed).
    pub fn release(&self) {
        for (_, obj) in self.objects.lock().drain(..) {
            self.mem.release(&obj);
        }
    }
}
