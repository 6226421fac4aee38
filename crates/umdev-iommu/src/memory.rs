//! Memory objects placed in a simulated host-physical address space.
//!
//! Everything a DMA can reach is a [`MemoryObject`]: anonymous memory,
//! a memfd, a file a client passed in, or remote memory reached only
//! through a [`RemoteBackend`] (see [`remote`]). [`HostMemory`] gives each object a
//! range of host-physical addresses (HPAs), which is what page-table entries
//! hold. Addresses are handed out by a bump allocator and never reused, so a
//! stale translation to a released object faults instead of reaching
//! whatever memory came next.
//!
//! Memory may be shared with a client process, so it is only ever touched
//! through vm-memory's volatile accessors, never as `&[u8]`.

pub mod remote;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustix::fs::{MemfdFlags, memfd_create};
use rustix::io::Errno;
use vm_memory::{FileOffset, MmapRegion, VolatileMemory, VolatileSlice};

use remote::Remote;
pub use remote::{RemoteBackend, RemoteError};

/// A host-physical address in the simulated address space.
pub type PhysAddr = u64;

/// The base page size of the IOMMU and of the simulated host.
pub const PAGE_SIZE: u64 = 4096;

/// First HPA handed out; the range below stays unbacked so a zero or small
/// address in a PTE always faults.
const HPA_BASE: PhysAddr = 1 << 32;

/// Errors of the memory-object layer.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size is zero or not a multiple of [`PAGE_SIZE`].
    #[error("memory object size {0:#x} is zero or not a multiple of the page size")]
    BadSize(u64),
    /// The host refused the mapping or the memfd.
    #[error("cannot create {kind} memory object of {size:#x} bytes: {reason}")]
    Create {
        /// What was being created.
        kind: MemoryKind,
        /// Requested size in bytes.
        size: u64,
        /// The host's error text.
        reason: String,
    },
    /// No memory object backs the whole range.
    #[error("host-physical range {addr:#x}+{len:#x} is not backed by one memory object")]
    Unbacked {
        /// First address of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
    },
    /// An allocation failed by fault injection ([`crate::failpoint`]).
    #[error("allocation failed by fault injection at {site}")]
    Injected {
        /// The fail point.
        site: &'static str,
    },
    /// An atomic access that is not naturally aligned.
    #[error("host-physical address {0:#x} is not 8-byte aligned")]
    Misaligned(PhysAddr),
    /// A direct view (volatile slice, atomic) of remote memory, which is
    /// reached only through its backend.
    #[error("host-physical range {addr:#x}+{len:#x} is remote memory and has no direct view")]
    NotMapped {
        /// First address of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
    },
    /// The backend of a remote object failed the access.
    #[error("remote memory access {addr:#x}+{len:#x} failed: {source}")]
    Remote {
        /// First address of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
        /// The backend's error.
        source: RemoteError,
    },
}

impl MemoryError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            MemoryError::BadSize(_) | MemoryError::Misaligned(_) => Errno::INVAL,
            MemoryError::Create { .. } | MemoryError::Injected { .. } => Errno::NOMEM,
            MemoryError::Unbacked { .. } | MemoryError::NotMapped { .. } => Errno::FAULT,
            MemoryError::Remote { source, .. } => source.errno(),
        }
    }
}

/// What backs a memory object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Private anonymous memory.
    Anonymous,
    /// A memfd created here (shareable with a client by its fd).
    Memfd,
    /// A file or memfd that someone else created (a client's DMA_MAP fd).
    File,
    /// Memory of another process reached only through a [`RemoteBackend`]
    /// (a client's DMA_MAP without an fd).
    Remote,
}

impl std::fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryKind::Anonymous => "anonymous",
            MemoryKind::Memfd => "memfd",
            MemoryKind::File => "file",
            MemoryKind::Remote => "remote",
        })
    }
}

/// What holds an object's bytes.
#[derive(Debug)]
enum Backing {
    /// Mapped into this process (anonymous, memfd, client file).
    Mapped {
        region: MmapRegion<()>,
        file: Option<File>,
    },
    /// Reached through a backend only.
    Remote(Arc<Remote>),
}

/// One page-aligned piece of memory with a host-physical base.
#[derive(Debug)]
pub struct MemoryObject {
    kind: MemoryKind,
    base: PhysAddr,
    size: u64,
    backing: Backing,
}

impl MemoryObject {
    /// First host-physical address of the object.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// Size in bytes (a multiple of [`PAGE_SIZE`]).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What backs the object.
    pub fn kind(&self) -> MemoryKind {
        self.kind
    }

    /// The backing file, for objects that have one (memfd or client file).
    pub fn file(&self) -> Option<&File> {
        match &self.backing {
            Backing::Mapped { file, .. } => file.as_ref(),
            Backing::Remote(_) => None,
        }
    }

    /// Is this a remote object (no direct view; reads and writes go
    /// through its backend)?
    pub fn is_remote(&self) -> bool {
        matches!(self.backing, Backing::Remote(_))
    }

    /// Checks that `[offset, offset + len)` lies inside the object.
    #[inline]
    fn check_range(&self, offset: u64, len: u64) -> Result<(), MemoryError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemoryError::Unbacked {
                addr: self.base.wrapping_add(offset),
                len,
            }),
        }
    }

    /// A volatile view of `len` bytes at `offset` into the object. Remote
    /// objects have none (EFAULT, [`MemoryError::NotMapped`]).
    pub fn slice(&self, offset: u64, len: u64) -> Result<VolatileSlice<'_>, MemoryError> {
        self.check_range(offset, len)?;
        match &self.backing {
            Backing::Mapped { region, .. } => region
                .get_slice(offset as usize, len as usize)
                .map_err(|_| MemoryError::Unbacked {
                    addr: self.base.wrapping_add(offset),
                    len,
                }),
            Backing::Remote(_) => Err(MemoryError::NotMapped {
                addr: self.base.wrapping_add(offset),
                len,
            }),
        }
    }

    /// Copies bytes out of the object into a buffer the caller owns (for a
    /// remote object: through its backend, with no lock held).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        match &self.backing {
            Backing::Mapped { .. } => {
                self.slice(offset, buf.len() as u64)?.copy_to(buf);
                Ok(())
            }
            Backing::Remote(remote) => {
                self.check_range(offset, buf.len() as u64)?;
                remote
                    .read(offset, buf)
                    .map_err(|e| self.remote_error(offset, buf.len(), e))
            }
        }
    }

    /// Copies bytes from a buffer the caller owns into the object (for a
    /// remote object: through its backend, with no lock held).
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), MemoryError> {
        match &self.backing {
            Backing::Mapped { .. } => {
                self.slice(offset, buf.len() as u64)?.copy_from(buf);
                Ok(())
            }
            Backing::Remote(remote) => {
                self.check_range(offset, buf.len() as u64)?;
                remote
                    .write(offset, buf)
                    .map_err(|e| self.remote_error(offset, buf.len(), e))
            }
        }
    }

    fn remote_error(&self, offset: u64, len: usize, source: RemoteError) -> MemoryError {
        MemoryError::Remote {
            addr: self.base.wrapping_add(offset),
            len: len as u64,
            source,
        }
    }

    /// Counts one access to this remote object in flight and returns it,
    /// so that the bytes can be moved later, after the caller has dropped
    /// its own locks (the DMA path takes it under the IOMMU's in-flight
    /// gate and calls the backend after leaving the gate). Fails with
    /// [`MemoryError::NotMapped`] for a mapped object and with
    /// [`RemoteError::Revoked`] once the object was released.
    pub fn remote_access(self: &Arc<Self>) -> Result<RemoteAccess, MemoryError> {
        match &self.backing {
            Backing::Remote(remote) => {
                remote.enter().map_err(|e| self.remote_error(0, 0, e))?;
                Ok(RemoteAccess {
                    object: Arc::clone(self),
                    remote: Arc::clone(remote),
                })
            }
            Backing::Mapped { .. } => Err(MemoryError::NotMapped {
                addr: self.base,
                len: self.size,
            }),
        }
    }

    /// Waits until no backend call of this remote object is in flight
    /// (including [`RemoteAccess`]es not yet dropped). Returns at once for
    /// a mapped object. After [`HostMemory::release`] no new call starts,
    /// so `release` + `drain` is the end of every access to the client's
    /// memory. Must not be called by the thread that answers the backend
    /// or that holds a [`RemoteAccess`] of this object.
    pub fn drain(&self) {
        if let Backing::Remote(remote) = &self.backing {
            remote.drain();
        }
    }

    /// Backend calls (and live [`RemoteAccess`]es) of this remote object
    /// in flight now; 0 for a mapped object.
    pub fn remote_in_flight(&self) -> u64 {
        match &self.backing {
            Backing::Remote(remote) => remote.in_flight(),
            Backing::Mapped { .. } => 0,
        }
    }

    /// The naturally aligned little-endian u64 at `offset`, as an atomic
    /// (page-table entries, descriptor words).
    /// Remote objects have none (EFAULT, [`MemoryError::NotMapped`]).
    // Called once per page-table entry (512 times per `Table::is_clear`):
    // inlined, its checks fold into the caller's loop.
    #[inline]
    pub fn atomic_u64(&self, offset: u64) -> Result<&AtomicU64, MemoryError> {
        if !offset.is_multiple_of(8) {
            return Err(MemoryError::Misaligned(self.base.wrapping_add(offset)));
        }
        self.check_range(offset, 8)?;
        match &self.backing {
            Backing::Mapped { region, .. } => region
                .get_atomic_ref::<AtomicU64>(offset as usize)
                .map_err(|_| MemoryError::Misaligned(self.base.wrapping_add(offset))),
            Backing::Remote(_) => Err(MemoryError::NotMapped {
                addr: self.base.wrapping_add(offset),
                len: 8,
            }),
        }
    }

    /// Does `[addr, addr + len)` lie inside this object?
    fn contains(&self, addr: PhysAddr, len: u64) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }
}

/// An access to a remote object counted in flight
/// ([`MemoryObject::remote_access`]); the object's
/// [`MemoryObject::drain`] waits until it is dropped.
#[derive(Debug)]
pub struct RemoteAccess {
    object: Arc<MemoryObject>,
    remote: Arc<Remote>,
}

impl RemoteAccess {
    /// The object.
    pub fn object(&self) -> &Arc<MemoryObject> {
        &self.object
    }

    /// Reads `buf.len()` bytes at `offset` through the backend.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.object.check_range(offset, buf.len() as u64)?;
        self.remote
            .read_entered(offset, buf)
            .map_err(|e| self.object.remote_error(offset, buf.len(), e))
    }

    /// Writes `data` at `offset` through the backend.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.object.check_range(offset, data.len() as u64)?;
        self.remote
            .write_entered(offset, data)
            .map_err(|e| self.object.remote_error(offset, data.len(), e))
    }
}

impl Drop for RemoteAccess {
    fn drop(&mut self) {
        self.remote.exit();
    }
}

/// The simulated host-physical address space.
///
/// Lookups (the DMA path) read an immutable snapshot through `ArcSwap` and
/// take no lock; only placing or releasing an object takes the writer lock.
#[derive(Debug)]
pub struct HostMemory {
    objects: ArcSwap<Vec<Arc<MemoryObject>>>,
    writer: Mutex<PhysAddr>,
}

impl HostMemory {
    /// An empty address space.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            objects: ArcSwap::from_pointee(Vec::new()),
            writer: Mutex::new(HPA_BASE),
        })
    }

    /// Allocates private anonymous memory and places it.
    pub fn alloc_anonymous(&self, size: u64) -> Result<Arc<MemoryObject>, MemoryError> {
        check_size(size)?;
        if crate::failpoint::should_fail("memory: anonymous object") {
            return Err(MemoryError::Injected {
                site: "memory: anonymous object",
            });
        }
        let region = MmapRegion::new(size as usize).map_err(|e| MemoryError::Create {
            kind: MemoryKind::Anonymous,
            size,
            reason: e.to_string(),
        })?;
        Ok(self.place(
            MemoryKind::Anonymous,
            size,
            Backing::Mapped { region, file: None },
        ))
    }

    /// Creates a memfd of `size` bytes, maps it shared and places it.
    pub fn alloc_memfd(&self, name: &str, size: u64) -> Result<Arc<MemoryObject>, MemoryError> {
        check_size(size)?;
        let create_err = |reason: String| MemoryError::Create {
            kind: MemoryKind::Memfd,
            size,
            reason,
        };
        let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| create_err(e.to_string()))?;
        rustix::fs::ftruncate(&fd, size).map_err(|e| create_err(e.to_string()))?;
        let file = File::from(fd);
        let region = map_file(&file, 0, size).map_err(create_err)?;
        Ok(self.place(
            MemoryKind::Memfd,
            size,
            Backing::Mapped {
                region,
                file: Some(file),
            },
        ))
    }

    /// Maps `size` bytes of someone else's file (a client's memfd) at
    /// `offset` shared and places it.
    pub fn insert_file(
        &self,
        file: File,
        offset: u64,
        size: u64,
    ) -> Result<Arc<MemoryObject>, MemoryError> {
        check_size(size)?;
        let region = map_file(&file, offset, size).map_err(|reason| MemoryError::Create {
            kind: MemoryKind::File,
            size,
            reason,
        })?;
        Ok(self.place(
            MemoryKind::File,
            size,
            Backing::Mapped {
                region,
                file: Some(file),
            },
        ))
    }

    /// Places `size` bytes of remote memory whose reads and writes go
    /// through `backend` (byte 0 of the object is backend offset 0). It
    /// gets a host-physical range like any object, so it can be mapped in
    /// an IOAS and reached by device DMA; it has no file and no direct
    /// view.
    pub fn insert_remote(
        &self,
        size: u64,
        backend: Arc<dyn RemoteBackend>,
    ) -> Result<Arc<MemoryObject>, MemoryError> {
        check_size(size)?;
        Ok(self.place(
            MemoryKind::Remote,
            size,
            Backing::Remote(Arc::new(Remote::new(backend))),
        ))
    }

    /// Removes an object from the address space. Translations that still
    /// name its addresses fault from now on; the mapping itself lives until
    /// the last `Arc` goes. A remote object is also revoked: no backend
    /// call starts after this returns (see [`MemoryObject::drain`] for the
    /// ones in flight).
    pub fn release(&self, object: &MemoryObject) {
        if let Backing::Remote(remote) = &object.backing {
            remote.revoke();
        }
        let _writer = self.writer.lock();
        let mut next: Vec<_> = (**self.objects.load()).clone();
        next.retain(|o| o.base != object.base);
        self.objects.store(Arc::new(next));
    }

    /// The object holding all of `[addr, addr + len)` and the offset of
    /// `addr` inside it.
    pub fn resolve(
        &self,
        addr: PhysAddr,
        len: u64,
    ) -> Result<(Arc<MemoryObject>, u64), MemoryError> {
        self.with_object(addr, len, |o, off| (Arc::clone(o), off))
    }

    /// Runs `f` on the object holding `[addr, addr + len)` and the offset
    /// of `addr`, without taking a reference (the hot path of table walks
    /// and DMA copies).
    pub fn with_object<R>(
        &self,
        addr: PhysAddr,
        len: u64,
        f: impl FnOnce(&Arc<MemoryObject>, u64) -> R,
    ) -> Result<R, MemoryError> {
        let objects = self.objects.load();
        let idx = objects.partition_point(|o| o.base <= addr);
        match idx.checked_sub(1).map(|i| &objects[i]) {
            Some(o) if o.contains(addr, len) => Ok(f(o, addr - o.base)),
            _ => Err(MemoryError::Unbacked { addr, len }),
        }
    }

    /// Reads `buf.len()` bytes at `addr` (one object must hold them all).
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.with_object(addr, buf.len() as u64, |o, off| o.read(off, buf))?
    }

    /// Writes `buf` at `addr` (one object must hold it all).
    pub fn write(&self, addr: PhysAddr, buf: &[u8]) -> Result<(), MemoryError> {
        self.with_object(addr, buf.len() as u64, |o, off| o.write(off, buf))?
    }

    /// Loads the little-endian u64 at `addr` (Acquire).
    pub fn read_u64(&self, addr: PhysAddr) -> Result<u64, MemoryError> {
        self.with_object(addr, 8, |o, off| {
            Ok(u64::from_le(o.atomic_u64(off)?.load(Ordering::Acquire)))
        })?
    }

    /// Stores the little-endian u64 at `addr` (Release).
    pub fn write_u64(&self, addr: PhysAddr, value: u64) -> Result<(), MemoryError> {
        self.with_object(addr, 8, |o, off| {
            o.atomic_u64(off)?.store(value.to_le(), Ordering::Release);
            Ok(())
        })?
    }

    /// Number of bytes of memory currently placed.
    pub fn placed_bytes(&self) -> u64 {
        self.objects.load().iter().map(|o| o.size).sum()
    }

    fn place(&self, kind: MemoryKind, size: u64, backing: Backing) -> Arc<MemoryObject> {
        let mut next_free = self.writer.lock();
        // Natural alignment up to 1 GiB, so that superpage mappings of the
        // object are possible whenever the IOVA allows them.
        let align = size.next_power_of_two().clamp(PAGE_SIZE, 1 << 30);
        let base = next_free.next_multiple_of(align);
        *next_free = base + size;
        let object = Arc::new(MemoryObject {
            kind,
            base,
            size,
            backing,
        });
        let mut next: Vec<_> = (**self.objects.load()).clone();
        next.push(Arc::clone(&object));
        self.objects.store(Arc::new(next));
        object
    }
}

fn check_size(size: u64) -> Result<(), MemoryError> {
    if size == 0 || !size.is_multiple_of(PAGE_SIZE) || usize::try_from(size).is_err() {
        return Err(MemoryError::BadSize(size));
    }
    Ok(())
}

fn map_file(file: &File, offset: u64, size: u64) -> Result<MmapRegion<()>, String> {
    let dup = file.try_clone().map_err(|e| e.to_string())?;
    MmapRegion::from_file(FileOffset::new(dup, offset), size as usize).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_get_disjoint_aligned_addresses() {
        let mem = HostMemory::new();
        let a = mem.alloc_anonymous(3 * PAGE_SIZE).unwrap();
        let b = mem.alloc_memfd("t", 2 << 20).unwrap();
        assert!(a.base() >= HPA_BASE);
        assert_eq!(b.base() % (2 << 20), 0);
        assert!(b.base() >= a.base() + a.size());
        assert_eq!(mem.placed_bytes(), 3 * PAGE_SIZE + (2 << 20));
    }

    #[test]
    fn read_write_through_hpa() {
        let mem = HostMemory::new();
        let a = mem.alloc_anonymous(2 * PAGE_SIZE).unwrap();
        mem.write(a.base() + 100, b"hello").unwrap();
        let mut buf = [0u8; 5];
        a.read(100, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        mem.write_u64(a.base() + 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(mem.read_u64(a.base() + 8).unwrap(), 0x1122_3344_5566_7788);
        let mut raw = [0u8; 8];
        a.read(8, &mut raw).unwrap();
        assert_eq!(raw, 0x1122_3344_5566_7788u64.to_le_bytes());
    }

    #[test]
    fn unbacked_and_straddling_accesses_fault() {
        let mem = HostMemory::new();
        let a = mem.alloc_anonymous(PAGE_SIZE).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(mem.read(0, &mut buf).unwrap_err().errno(), Errno::FAULT);
        let err = mem.read(a.base() + PAGE_SIZE - 8, &mut buf).unwrap_err();
        assert!(matches!(err, MemoryError::Unbacked { .. }));
        assert_eq!(
            mem.read_u64(a.base() + 4).unwrap_err().errno(),
            Errno::INVAL
        );
    }

    #[test]
    fn released_objects_fault_and_addresses_are_not_reused() {
        let mem = HostMemory::new();
        let a = mem.alloc_anonymous(PAGE_SIZE).unwrap();
        let base = a.base();
        mem.release(&a);
        assert!(mem.read_u64(base).is_err());
        let b = mem.alloc_anonymous(PAGE_SIZE).unwrap();
        assert_ne!(b.base(), base);
    }

    #[test]
    fn bad_sizes_are_einval() {
        let mem = HostMemory::new();
        assert_eq!(mem.alloc_anonymous(0).unwrap_err().errno(), Errno::INVAL);
        assert_eq!(mem.alloc_anonymous(100).unwrap_err().errno(), Errno::INVAL);
    }

    #[test]
    fn memfd_is_shared_through_its_file() {
        use std::os::unix::fs::FileExt;
        let mem = HostMemory::new();
        let m = mem.alloc_memfd("share", PAGE_SIZE).unwrap();
        m.write(10, b"abc").unwrap();
        let mut buf = [0u8; 3];
        m.file().unwrap().read_exact_at(&mut buf, 10).unwrap();
        assert_eq!(&buf, b"abc");
        let other = mem
            .insert_file(m.file().unwrap().try_clone().unwrap(), 0, PAGE_SIZE)
            .unwrap();
        let mut buf2 = [0u8; 3];
        other.read(10, &mut buf2).unwrap();
        assert_eq!(&buf2, b"abc");
    }
}
