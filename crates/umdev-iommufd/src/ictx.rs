//! The iommufd context (main.c `struct iommufd_ctx`): the object table, the
//! DMA-ownership cookie its devices share, the pin account, and the IOAS
//! and HWPT operations of the uAPI.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::{Iommu, OwnerCookie, PagingFlags, VtdS1Config};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;

use crate::access::{Access, AccessOps};
use crate::device::IGroup;
use crate::error::{IommufdError, Result};
use crate::hwpt::{HwptNested, HwptPaging};
use crate::io_pagetable::{IoptPages, IovaRange, IovaRequest, PinAccount};
use crate::ioas::Ioas;
use crate::object::{ObjTable, Object};

bitflags::bitflags! {
    /// enum iommufd_ioas_map_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u32 {
        /// IOMMU_IOAS_MAP_FIXED_IOVA.
        const FIXED_IOVA = 1 << 0;
        /// IOMMU_IOAS_MAP_WRITEABLE.
        const WRITEABLE = 1 << 1;
        /// IOMMU_IOAS_MAP_READABLE.
        const READABLE = 1 << 2;
    }
}

bitflags::bitflags! {
    /// enum iommufd_hwpt_alloc_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HwptAllocFlags: u32 {
        /// IOMMU_HWPT_ALLOC_NEST_PARENT.
        const NEST_PARENT = 1 << 0;
        /// IOMMU_HWPT_ALLOC_DIRTY_TRACKING.
        const DIRTY_TRACKING = 1 << 1;
        /// IOMMU_HWPT_FAULT_ID_VALID.
        const FAULT_ID_VALID = 1 << 2;
        /// IOMMU_HWPT_ALLOC_PASID.
        const PASID = 1 << 3;
    }
}

/// User data of IOMMU_HWPT_ALLOC (`data_type` + the struct it names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwptData {
    /// IOMMU_HWPT_DATA_NONE.
    None,
    /// IOMMU_HWPT_DATA_VTD_S1.
    VtdS1(VtdS1Config),
    /// Any other `data_type` value: EOPNOTSUPP.
    Unknown(u32),
}

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

/// The iommufd context: what one open of /dev/iommu is.
pub struct Ictx {
    pub(crate) iommu: Arc<Iommu>,
    pub(crate) cookie: OwnerCookie,
    pub(crate) table: Mutex<ObjTable>,
    pub(crate) igroups: Mutex<BTreeMap<u32, Weak<IGroup>>>,
    /// The IOAS the VFIO compatibility ioctls use (`ictx->vfio_ioas`).
    pub(crate) vfio_ioas: Mutex<Option<u32>>,
    account: Arc<PinAccount>,
}

impl std::fmt::Debug for Ictx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ictx")
            .field("objects", &self.table.lock().len())
            .finish_non_exhaustive()
    }
}

fn map_prot(flags: MapFlags) -> Result<Prot> {
    let mut prot = Prot::empty();
    if flags.contains(MapFlags::READABLE) {
        prot |= Prot::READ;
    }
    if flags.contains(MapFlags::WRITEABLE) {
        prot |= Prot::WRITE;
    }
    if prot.is_empty() {
        return Err(IommufdError::Invalid {
            what: "map needs READABLE or WRITEABLE",
        });
    }
    Ok(prot)
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

    fn teardown(obj: Object) {
        match obj {
            Object::HwptPaging(h) => h.teardown(),
            Object::Ioas(ioas) => {
                // The IOAS is unreferenced, so no domain or access remains.
                let _ = ioas.unmap_range(IovaRange::new(0, u64::MAX), true);
            }
            Object::HwptNested(_) | Object::Device(_) | Object::Access(_) => {}
        }
    }

    /// close(): destroys leaf-first until nothing is left, unbinding
    /// devices and accesses the way their drivers would.
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

    // ---- IOAS ---------------------------------------------------------

    /// IOMMU_IOAS_ALLOC.
    pub fn ioas_alloc(&self) -> Result<u32> {
        let ioas = Ioas::new(Arc::clone(&self.account));
        Ok(self.table.lock().insert(Object::Ioas(ioas)))
    }

    /// IOMMU_IOAS_MAP / IOMMU_IOAS_MAP_FILE: maps `length` bytes of
    /// `memory` from byte `offset` (the user address is the memory's
    /// host-physical address) at `iova` (FIXED_IOVA) or anywhere. Returns
    /// the IOVA. Errno order: EOVERFLOW for iova/length ≥ 2^64−1, EINVAL
    /// without READABLE|WRITEABLE, ENOENT bad IOAS, then the io_pagetable
    /// rules (kernel-semantics §2.2).
    pub fn ioas_map(
        &self,
        ioas_id: u32,
        flags: MapFlags,
        memory: &Arc<MemoryObject>,
        offset: u64,
        length: u64,
        iova: u64,
    ) -> Result<u64> {
        if iova == u64::MAX || length == u64::MAX {
            return Err(IommufdError::Overflow {
                what: "iova or length",
            });
        }
        let prot = map_prot(flags)?;
        let ioas = self.get_ioas(ioas_id)?;
        if length == 0 {
            return Err(IommufdError::Invalid {
                what: "zero length",
            });
        }
        let pages = IoptPages::new(
            Arc::clone(memory),
            offset,
            length,
            true,
            Arc::clone(&self.account),
        )
        .map_err(IommufdError::iopt("map"))?;
        let request = if flags.contains(MapFlags::FIXED_IOVA) {
            IovaRequest::Fixed(iova)
        } else {
            IovaRequest::Auto
        };
        ioas.iopt
            .lock()
            .map(request, pages, 0, length, prot)
            .map_err(IommufdError::iopt("map"))
    }

    /// IOMMU_IOAS_UNMAP: `iova == 0 && length == u64::MAX` unmaps all (0 on
    /// an empty IOAS); otherwise whole areas only (a partly covered area or
    /// nothing → ENOENT). Returns the bytes unmapped.
    pub fn ioas_unmap(&self, ioas_id: u32, iova: u64, length: u64) -> Result<u64> {
        let ioas = self.get_ioas(ioas_id)?;
        if iova == 0 && length == u64::MAX {
            return ioas.unmap_range(IovaRange::new(0, u64::MAX), true);
        }
        if iova == u64::MAX || length == u64::MAX {
            return Err(IommufdError::Overflow {
                what: "iova or length",
            });
        }
        if length == 0 {
            return Err(IommufdError::Invalid {
                what: "zero length",
            });
        }
        let last = iova.checked_add(length - 1).ok_or(IommufdError::Overflow {
            what: "iova + length",
        })?;
        ioas.unmap_range(IovaRange::new(iova, last), false)
    }

    /// IOMMU_IOAS_COPY: maps the pages behind `[src_iova, +length)` of one
    /// IOAS into another (or the same), sharing them.
    pub fn ioas_copy(
        &self,
        dst_ioas_id: u32,
        src_ioas_id: u32,
        flags: MapFlags,
        length: u64,
        src_iova: u64,
        dst_iova: u64,
    ) -> Result<u64> {
        let prot = map_prot(flags)?;
        let src = self.get_ioas(src_ioas_id)?;
        let pieces = src
            .iopt
            .lock()
            .get_pages(src_iova, length)
            .map_err(IommufdError::iopt("copy"))?;
        let dst = self.get_ioas(dst_ioas_id)?;
        let request = if flags.contains(MapFlags::FIXED_IOVA) {
            IovaRequest::Fixed(dst_iova)
        } else {
            IovaRequest::Auto
        };
        dst.iopt
            .lock()
            .map_pieces(request, &pieces, prot)
            .map_err(IommufdError::iopt("copy"))
    }

    /// IOMMU_IOAS_IOVA_RANGES: the usable ranges and the alignment.
    pub fn ioas_iova_ranges(&self, ioas_id: u32) -> Result<(Vec<IovaRange>, u64)> {
        let ioas = self.get_ioas(ioas_id)?;
        let iopt = ioas.iopt.lock();
        Ok((iopt.iova_ranges(), iopt.iova_alignment()))
    }

    /// IOMMU_IOAS_ALLOW_IOVAS.
    pub fn ioas_allow_iovas(&self, ioas_id: u32, ranges: &[IovaRange]) -> Result<()> {
        let ioas = self.get_ioas(ioas_id)?;
        ioas.iopt
            .lock()
            .set_allowed(ranges)
            .map_err(IommufdError::iopt("allow iovas"))
    }

    /// IOMMU_OPTION(IOMMU_OPTION_HUGE_PAGES): `Some(v)` sets (0 or 1, else
    /// EINVAL), `None` gets. Returns the value after the call.
    pub fn option_huge_pages(&self, ioas_id: u32, set: Option<u64>) -> Result<u64> {
        let ioas = self.get_ioas(ioas_id)?;
        let mut iopt = ioas.iopt.lock();
        match set {
            None => {}
            Some(v @ (0 | 1)) => iopt
                .set_huge_pages(v == 1)
                .map_err(IommufdError::iopt("huge pages"))?,
            Some(_) => {
                return Err(IommufdError::Invalid {
                    what: "huge pages value",
                });
            }
        }
        Ok(u64::from(iopt.huge_pages()))
    }

    // ---- HWPT ---------------------------------------------------------

    /// IOMMU_HWPT_ALLOC: a paging HWPT on an IOAS, or a nested HWPT on a
    /// paging parent. Errnos as hw_pagetable.c: ENOENT bad device; EINVAL
    /// for a `pt_id` that is missing or of the wrong kind, or a
    /// `data`/kind mismatch; EOPNOTSUPP for flags or data the kind does
    /// not take.
    pub fn hwpt_alloc(
        &self,
        dev_id: u32,
        pt_id: u32,
        flags: HwptAllocFlags,
        data: HwptData,
    ) -> Result<u32> {
        let dev = self.get_device(dev_id)?;
        let pt = self
            .table
            .lock()
            .get(pt_id)
            .map_err(|_| IommufdError::WrongType {
                id: pt_id,
                wanted: "an IOAS or paging HWPT",
                errno: Errno::INVAL,
            })?;
        if flags.contains(HwptAllocFlags::FAULT_ID_VALID) {
            return Err(IommufdError::Unsupported {
                what: "I/O page fault queues",
            });
        }
        let obj = match pt {
            Object::Ioas(ioas) => {
                if !matches!(data, HwptData::None) {
                    return Err(IommufdError::Unsupported {
                        what: "user data for a paging HWPT",
                    });
                }
                let pflags = PagingFlags {
                    nest_parent: flags.contains(HwptAllocFlags::NEST_PARENT),
                    dirty_tracking: flags.contains(HwptAllocFlags::DIRTY_TRACKING),
                    pasid: flags.contains(HwptAllocFlags::PASID),
                };
                Object::HwptPaging(HwptPaging::alloc(
                    &self.iommu,
                    dev.bdf(),
                    &ioas,
                    pflags,
                    false,
                )?)
            }
            Object::HwptPaging(parent) => {
                if flags.intersects(HwptAllocFlags::NEST_PARENT | HwptAllocFlags::DIRTY_TRACKING) {
                    return Err(IommufdError::Unsupported {
                        what: "flags for a nested HWPT",
                    });
                }
                let config = match data {
                    HwptData::VtdS1(c) => c,
                    HwptData::None => {
                        return Err(IommufdError::Invalid {
                            what: "nested HWPT needs data",
                        });
                    }
                    HwptData::Unknown(_) => {
                        return Err(IommufdError::Unsupported { what: "data_type" });
                    }
                };
                Object::HwptNested(HwptNested::alloc(
                    &self.iommu,
                    dev.bdf(),
                    &parent,
                    config,
                    flags.contains(HwptAllocFlags::PASID),
                )?)
            }
            _ => {
                return Err(IommufdError::WrongType {
                    id: pt_id,
                    wanted: "an IOAS or paging HWPT",
                    errno: Errno::INVAL,
                });
            }
        };
        Ok(self.table.lock().insert(obj))
    }

    // ---- access -------------------------------------------------------

    /// `iommufd_access_create`: a new ACCESS object owned by `ops`.
    pub fn access_create(&self, ops: Arc<dyn AccessOps>) -> Result<(u32, Arc<Access>)> {
        let access = Access::new(ops);
        // The owner's reference: user space cannot DESTROY an access.
        crate::object::HasHeader::header(access.as_ref()).get();
        let id = self
            .table
            .lock()
            .insert(Object::Access(Arc::clone(&access)));
        Ok((id, access))
    }

    fn get_access(&self, id: u32) -> Result<Arc<Access>> {
        match self.table.lock().get(id)? {
            Object::Access(a) => Ok(a),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "an access",
                errno: Errno::NOENT,
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
                errno: Errno::NOENT,
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
        let access = self.get_access(access_id)?;
        access.change_ioas(None)?;
        crate::object::HasHeader::header(access.as_ref()).put();
        self.table.lock().remove_unused(access_id)?;
        Ok(())
    }
}
