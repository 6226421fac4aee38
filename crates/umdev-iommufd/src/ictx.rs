//! The iommufd context (main.c; `struct iommufd_ctx` is in private.rs): the object table, the
//! DMA-ownership cookie its devices share, the pin account, DESTROY,
//! IOMMU_VFIO_IOAS and close(). The other ioctls live with their objects
//! (ioas.rs, hwpt_alloc.rs, device.rs, access.rs, fault.rs, ...), as
//! `impl Ictx` blocks.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::{Domain, Iommu, OwnerCookie};

use crate::error::{IommufdError, Result};
use crate::io_pagetable::{IovaRange, PinAccount};
use crate::object::ObjTable;
pub use crate::private::Ictx;
use crate::private::{Ioas, Object};

/// enum iommufd_vfio_ioas_op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfioIoasOp {
    /// IOMMU_VFIO_IOAS_GET.
    Get,
    /// IOMMU_VFIO_IOAS_SET.
    Set(u32),
    /// IOMMU_VFIO_IOAS_CLEAR.
    Clear,
}

impl Ictx {
    /// A new, empty context over `iommu` with no locked-memory limit.
    pub fn new(iommu: Arc<Iommu>) -> Arc<Self> {
        Arc::new(Self {
            iommu,
            cookie: OwnerCookie::new(),
            table: Mutex::new(ObjTable::default()),
            igroups: Mutex::new(BTreeMap::new()),
            vfio_ioas: Mutex::new(None),
            account: PinAccount::new(u64::MAX),
            access_teardown: Mutex::new(()),
        })
    }

    /// The IOMMU core.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The DMA-ownership cookie of this context's devices.
    pub fn cookie(&self) -> &OwnerCookie {
        &self.cookie
    }

    /// The pin account (locked-memory limit and pinned pages).
    pub fn account(&self) -> &Arc<PinAccount> {
        &self.account
    }

    /// Every object as (id, kind).
    pub fn objects(&self) -> Vec<(u32, &'static str)> {
        self.table
            .lock()
            .all()
            .into_iter()
            .map(|(id, o)| (id, o.kind()))
            .collect()
    }

    /// IOMMU_DESTROY: ENOENT for an unknown id, EBUSY while referenced.
    /// Destroying the VFIO-compat IOAS clears it.
    pub fn destroy(&self, id: u32) -> Result<()> {
        let obj = self.table.lock().remove_unused(id)?;
        if matches!(obj, Object::Ioas(_)) {
            let mut vfio = self.vfio_ioas.lock();
            if *vfio == Some(id) {
                *vfio = None;
            }
        }
        Self::teardown(obj);
        Ok(())
    }

    /// IOMMU_VFIO_IOAS: GET (ENODEV when none), SET (ENOENT for a bad id),
    /// CLEAR. Returns the compat IOAS id after the call (0 for none).
    pub fn vfio_ioas(&self, op: VfioIoasOp) -> Result<u32> {
        let mut cur = self.vfio_ioas.lock();
        match op {
            VfioIoasOp::Get => cur.ok_or(IommufdError::Errno {
                what: "no VFIO compat IOAS",
                errno: Errno::NODEV,
            }),
            VfioIoasOp::Set(id) => {
                self.get_ioas(id)?;
                *cur = Some(id);
                Ok(id)
            }
            VfioIoasOp::Clear => {
                *cur = None;
                Ok(0)
            }
        }
    }

    /// The object's destroy op, once it has left the table.
    pub(crate) fn teardown(obj: Object) {
        match obj {
            Object::HwptPaging(h) => h.teardown(),
            Object::HwptNested(h) => h.teardown(),
            Object::Ioas(ioas) => {
                // The IOAS is unreferenced, so no domain or access remains.
                let _ = ioas.unmap_range(IovaRange::new(0, u64::MAX), true);
            }
            Object::Fault(f) => f.teardown(),
            Object::Device(_) | Object::Access(_) => {}
        }
    }

    /// close() (`iommufd_fops_release`): unbinds devices and destroys
    /// accesses the way their drivers would, then destroys leaf-first until
    /// nothing is left. Fault queues whose fd is still open go last: their
    /// outstanding faults are answered INVALID and the fd reads nothing
    /// more. Dropping the last `Arc<Ictx>` closes it too.
    pub fn close(&self) {
        let devices: Vec<u32> = self
            .table
            .lock()
            .all()
            .into_iter()
            .filter(|(_, o)| matches!(o, Object::Device(_)))
            .map(|(id, _)| id)
            .collect();
        for id in devices {
            let _ = self.device_unbind(id);
        }
        let accesses: Vec<u32> = self
            .table
            .lock()
            .all()
            .into_iter()
            .filter(|(_, o)| matches!(o, Object::Access(_)))
            .map(|(id, _)| id)
            .collect();
        for id in accesses {
            let _ = self.access_destroy(id);
        }
        loop {
            let ids = self.table.lock().unused_ids();
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let _ = self.destroy(id);
            }
        }
        let held_by_fds: Vec<u32> = self
            .table
            .lock()
            .all()
            .into_iter()
            .filter(|(_, o)| matches!(o, Object::Fault(_)))
            .map(|(id, _)| id)
            .collect();
        for id in held_by_fds {
            if let Some(obj) = self.table.lock().remove(id) {
                Self::teardown(obj);
            }
        }
    }

    pub(crate) fn get_ioas(&self, id: u32) -> Result<Arc<Ioas>> {
        match self.table.lock().get(id)? {
            Object::Ioas(i) => Ok(i),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "an IOAS",
                errno: Errno::NOENT,
            }),
        }
    }

    /// The IOAS `id` (ENOENT otherwise), for inspection and for what the
    /// selftest reaches directly (IOMMU_TEST_OP_ADD_RESERVED).
    pub fn ioas(&self, id: u32) -> Result<Arc<Ioas>> {
        self.get_ioas(id)
    }

    /// The IOMMU domain of HWPT `id`, paging or nested (ENOENT otherwise):
    /// what the selftest's MD_CHECK_* and PASID_CHECK_HWPT look at.
    pub fn hwpt_domain(&self, id: u32) -> Result<Arc<Domain>> {
        match self.table.lock().get(id)? {
            Object::HwptPaging(h) => Ok(Arc::clone(h.domain())),
            Object::HwptNested(h) => Ok(Arc::clone(h.domain())),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "a HWPT",
                errno: Errno::NOENT,
            }),
        }
    }
}

impl Drop for Ictx {
    fn drop(&mut self) {
        self.close();
    }
}
