//! IOMMUFD_OBJ_ACCESS (device.c `iommufd_access_*`): how a device with
//! vendor-defined isolation (an emulated mdev) reaches an IOAS without an
//! IOMMU: it pins pages and copies bytes in software, and must unpin when
//! user space unmaps (kernel-semantics §2.6).
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::memory::PhysAddr;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::next_key;
use crate::object::{HasHeader, ObjHeader, ObjRef};
pub use crate::private::{Access, AccessOps};
use crate::private::{Ictx, Ioas, Object};

impl Access {
    pub(crate) fn new(ops: Arc<dyn AccessOps>) -> Arc<Self> {
        Arc::new(Self {
            hdr: ObjHeader::new(),
            ops,
            ioas: Mutex::new(None),
            key: next_key(),
        })
    }

    /// The object id (what VFIO reports as the emulated device's devid).
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// The IOAS it is attached to.
    pub fn ioas_id(&self) -> Option<u32> {
        self.ioas.lock().as_ref().map(|i| i.id())
    }

    pub(crate) fn notify_unmap(&self, iova: u64, length: u64) {
        self.ops.unmap(iova, length);
    }

    fn current(&self) -> Result<ObjRef<Ioas>> {
        self.ioas.lock().clone().ok_or(IommufdError::Errno {
            what: "access is not attached to an IOAS",
            errno: rustix::io::Errno::NOENT,
        })
    }

    /// `iommufd_access_change_ioas`: joins `new` (EADDRINUSE if its areas
    /// cannot take the access's alignment) after making the owner drop
    /// every pin in the old one.
    pub(crate) fn change_ioas(self: &Arc<Self>, new: Option<&Arc<Ioas>>) -> Result<()> {
        let old = self.ioas.lock().clone();
        if let (Some(old), Some(new)) = (&old, new)
            && Arc::ptr_eq(old.arc(), new)
        {
            return Ok(());
        }
        if let Some(new) = new {
            new.iopt
                .lock()
                .add_access(self.key, self.ops.needs_pin_pages())
                .map_err(IommufdError::iopt("attach access"))?;
        }
        if let Some(old) = &old {
            self.ops.unmap(0, u64::MAX);
            old.iopt.lock().remove_access(self.key);
            old.remove_access(self);
        }
        if let Some(new) = new {
            new.add_access(self);
        }
        *self.ioas.lock() = new.map(ObjRef::new);
        Ok(())
    }

    /// `iommufd_access_pin_pages`: pins `[iova, iova + length)` and returns
    /// each page's host-physical address. EINVAL for length 0, a range not
    /// page-aligned within its pages or an area being unmapped; EOVERFLOW;
    /// EPERM without the permission; ENOENT not covered or not attached;
    /// ENOMEM over the locked-memory limit.
    pub fn pin_pages(&self, iova: u64, length: u64, write: bool) -> Result<Vec<PhysAddr>> {
        let ioas = self.current()?;
        let mut iopt = ioas.iopt.lock();
        iopt.access_pin(iova, length, write)
            .map_err(IommufdError::iopt("pin pages"))
    }

    /// `iommufd_access_unpin_pages`: drops the pins of a previous
    /// [`Access::pin_pages`] of exactly the same range.
    pub fn unpin_pages(&self, iova: u64, length: u64) {
        if let Ok(ioas) = self.current() {
            ioas.iopt.lock().access_unpin(iova, length);
        }
    }

    /// `iommufd_access_rw`: byte-granular copy between `buf` and the IOAS
    /// (`write` = into the IOAS). Same errnos as [`Access::pin_pages`]
    /// except the alignment rule.
    pub fn rw(&self, iova: u64, buf: &mut [u8], write: bool) -> Result<()> {
        let ioas = self.current()?;
        let iopt = ioas.iopt.lock();
        iopt.access_rw(iova, buf, write)
            .map_err(IommufdError::iopt("access rw"))
    }
}

impl Ictx {
    /// `iommufd_access_create`: a new ACCESS object owned by `ops`.
    pub fn access_create(&self, ops: Arc<dyn AccessOps>) -> Result<(u32, Arc<Access>)> {
        let access = Access::new(ops);
        // The owner's reference: user space cannot DESTROY an access.
        access.header().get();
        let id = self
            .table
            .lock()
            .insert(Object::Access(Arc::clone(&access)))?;
        Ok((id, access))
    }

    fn get_access(&self, id: u32) -> Result<Arc<Access>> {
        match self.table.lock().get(id)? {
            Object::Access(a) => Ok(a),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "an access",
                errno: rustix::io::Errno::NOENT,
            }),
        }
    }

    /// `iommufd_access_attach`: only an IOAS (ENOENT otherwise); EINVAL if
    /// already attached.
    pub fn access_attach(&self, access_id: u32, ioas_id: u32) -> Result<()> {
        let access = self.get_access(access_id)?;
        if access.ioas_id().is_some() {
            return Err(IommufdError::Invalid {
                what: "access already attached",
            });
        }
        let ioas = self.get_ioas(ioas_id)?;
        access.change_ioas(Some(&ioas))
    }

    /// `iommufd_access_replace`: ENOENT if not attached.
    pub fn access_replace(&self, access_id: u32, ioas_id: u32) -> Result<()> {
        let access = self.get_access(access_id)?;
        if access.ioas_id().is_none() {
            return Err(IommufdError::Errno {
                what: "access not attached",
                errno: rustix::io::Errno::NOENT,
            });
        }
        let ioas = self.get_ioas(ioas_id)?;
        access.change_ioas(Some(&ioas))
    }

    /// `iommufd_access_detach`.
    pub fn access_detach(&self, access_id: u32) -> Result<()> {
        let access = self.get_access(access_id)?;
        access.change_ioas(None)
    }

    /// `iommufd_access_destroy`: detaches and removes the object.
    pub fn access_destroy(&self, access_id: u32) -> Result<()> {
        let _once = self.access_teardown.lock();
        let access = self.get_access(access_id)?;
        access.change_ioas(None)?;
        access.header().put();
        self.table.lock().remove_unused(access_id)?;
        Ok(())
    }
}
