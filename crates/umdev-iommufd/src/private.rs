//! The structs the iommufd core shares between its files, and the lock
//! order (the role of drivers/iommu/iommufd/iommufd_private.h).
//!
//! The ioctls and object operations live with their object (ioas.rs,
//! hwpt.rs, device.rs, access.rs, fault.rs, ...) as `impl` blocks on these
//! types; those modules import this one and the leaves below it (error,
//! object, io_pagetable), never each other, so the core has no import
//! circle (`python3 scripts/modgraph.py crates/umdev-iommufd`).
//!
//! # Lock order
//!
//! Every path that holds two of these locks takes them in this order:
//!
//! 0. [`Ictx::access_teardown`] (held only around `access_destroy`);
//! 1. [`Ioas::hwpts`] (the kernel's `ioas->mutex`);
//! 2. a device group's attachments ([`IGroup::attaches`], `igroup->lock`);
//! 3. [`Ioas::iopt`] (`iopt->iova_rwsem` / `domains_rwsem`);
//! 4. the IOMMU core's locks (umdev-iommu).
//!
//! An `IoptPages`' pins are taken before the pin account. The object table
//! ([`Ictx::table`], main.c's `objects` xarray lock), [`Ictx::igroups`],
//! [`Access::ioas`], a fault queue's [`Fault::state`] and an
//! [`IopfHandler`]'s maps are leaves: held briefly, with no other iommufd
//! lock taken under them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use umdev_iommu::iommu::{Domain, Group, Iommu, OwnerCookie};
use umdev_pci::Bdf;

use crate::io_pagetable::{IoPagetable, PinAccount};
use crate::object::{HasHeader, ObjHeader, ObjRef, ObjTable};

/// An I/O address space (`struct iommufd_ioas`). Lock order: see the
/// module doc.
#[derive(Debug)]
pub struct Ioas {
    pub(crate) hdr: ObjHeader,
    pub(crate) iopt: Mutex<IoPagetable>,
    pub(crate) hwpts: Mutex<Vec<Weak<HwptPaging>>>,
    pub(crate) accesses: Mutex<Vec<Weak<Access>>>,
}

impl HasHeader for Ioas {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

/// The kinds of objects (`enum iommufd_object_type`): what the context's
/// object table holds.
#[derive(Clone, Debug)]
pub(crate) enum Object {
    /// IOMMUFD_OBJ_IOAS.
    Ioas(Arc<Ioas>),
    /// IOMMUFD_OBJ_HWPT_PAGING.
    HwptPaging(Arc<HwptPaging>),
    /// IOMMUFD_OBJ_HWPT_NESTED.
    HwptNested(Arc<HwptNested>),
    /// IOMMUFD_OBJ_DEVICE.
    Device(Arc<Device>),
    /// IOMMUFD_OBJ_ACCESS.
    Access(Arc<Access>),
    /// IOMMUFD_OBJ_FAULT.
    Fault(Arc<Fault>),
}

impl HasHeader for Object {
    fn header(&self) -> &ObjHeader {
        match self {
            Object::Ioas(o) => o.header(),
            Object::HwptPaging(o) => o.header(),
            Object::HwptNested(o) => o.header(),
            Object::Device(o) => o.header(),
            Object::Access(o) => o.header(),
            Object::Fault(o) => o.header(),
        }
    }
}

impl Object {
    /// Kind name for listings and errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Object::Ioas(_) => "ioas",
            Object::HwptPaging(_) => "hwpt_paging",
            Object::HwptNested(_) => "hwpt_nested",
            Object::Device(_) => "device",
            Object::Access(_) => "access",
            Object::Fault(_) => "fault",
        }
    }
}

/// The iommufd context: what one open of /dev/iommu is.
pub struct Ictx {
    pub(crate) iommu: Arc<Iommu>,
    pub(crate) cookie: OwnerCookie,
    pub(crate) table: Mutex<ObjTable<Object>>,
    pub(crate) igroups: Mutex<BTreeMap<u32, Weak<IGroup>>>,
    /// The IOAS the VFIO compatibility ioctls use (`ictx->vfio_ioas`).
    pub(crate) vfio_ioas: Mutex<Option<u32>>,
    pub(crate) account: Arc<PinAccount>,
    /// Serialises `access_destroy`: an access can be destroyed by its
    /// owner's release and by the context's close at once (the uAPI's
    /// access fd and its iommufd fd end on separate threads), and its
    /// teardown must run once. Taken before any other lock.
    pub(crate) access_teardown: Mutex<()>,
}

impl std::fmt::Debug for Ictx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ictx")
            .field("objects", &self.table.lock().len())
            .finish_non_exhaustive()
    }
}

/// A paging HWPT: a domain kept equal to its IOAS.
#[derive(Debug)]
pub struct HwptPaging {
    pub(crate) hdr: ObjHeader,
    pub(crate) ioas: ObjRef<Ioas>,
    pub(crate) domain: Arc<Domain>,
    pub(crate) auto_domain: bool,
    pub(crate) nest_parent: bool,
    pub(crate) pasid_compat: bool,
    pub(crate) dirty_capable: bool,
    pub(crate) key: u64,
    pub(crate) iopf: Option<Arc<IopfHandler>>,
}

impl HasHeader for HwptPaging {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

/// A nested HWPT: a user stage-1 table translated through its parent.
#[derive(Debug)]
pub struct HwptNested {
    pub(crate) hdr: ObjHeader,
    pub(crate) parent: ObjRef<HwptPaging>,
    pub(crate) domain: Arc<Domain>,
    pub(crate) pasid_compat: bool,
    pub(crate) iopf: Option<Arc<IopfHandler>>,
}

impl HasHeader for HwptNested {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

/// A counted reference to either kind of HWPT, as attachments hold them.
#[derive(Clone, Debug)]
pub enum HwptRef {
    /// A paging HWPT.
    Paging(ObjRef<HwptPaging>),
    /// A nested HWPT.
    Nested(ObjRef<HwptNested>),
}

/// A bound physical device.
#[derive(Debug)]
pub struct Device {
    pub(crate) hdr: ObjHeader,
    pub(crate) bdf: Bdf,
    pub(crate) igroup: Arc<IGroup>,
    pub(crate) key: u64,
    /// Bound for this PASID only ([`Ictx::device_bind_pasid`]): no DMA
    /// ownership was claimed, and no other PASID nor the RID may be
    /// attached.
    pub(crate) pasid_only: Option<u32>,
}

impl HasHeader for Device {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

/// One (group, PASID) attachment: the HWPT and the bound devices on it
/// (`struct iommufd_attach`).
#[derive(Debug)]
pub(crate) struct Attach {
    pub(crate) hwpt: HwptRef,
    pub(crate) devices: BTreeSet<u32>,
}

/// The context's view of one IOMMU group (`struct iommufd_group`), shared
/// by every bound device of the group.
#[derive(Debug)]
pub struct IGroup {
    pub(crate) group: Arc<Group>,
    pub(crate) attaches: Mutex<BTreeMap<u32, Attach>>,
}

/// What the access's owner (the emulated device's driver) provides
/// (`struct iommufd_access_ops`).
pub trait AccessOps: Send + Sync {
    /// The owner pins pages (raises the IOAS alignment to PAGE_SIZE).
    fn needs_pin_pages(&self) -> bool;

    /// User space is unmapping `[iova, iova + length)`: the owner must drop
    /// every pin it holds in the range before returning
    /// (`ops->unmap`, vfio `dma_unmap`). Called with no iommufd lock held.
    fn unmap(&self, iova: u64, length: u64);
}

/// An in-kernel user of an IOAS.
pub struct Access {
    pub(crate) hdr: ObjHeader,
    pub(crate) ops: Arc<dyn AccessOps>,
    pub(crate) ioas: Mutex<Option<ObjRef<Ioas>>>,
    pub(crate) key: u64,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("id", &self.hdr.id())
            .finish_non_exhaustive()
    }
}

impl HasHeader for Access {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

bitflags::bitflags! {
    /// enum iommu_hwpt_pgfault_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PgfaultFlags: u32 {
        /// IOMMU_PGFAULT_FLAGS_PASID_VALID: `pasid` is meaningful.
        const PASID_VALID = 1 << 0;
        /// IOMMU_PGFAULT_FLAGS_LAST_PAGE: the last fault of its group.
        const LAST_PAGE = 1 << 1;
    }
}

bitflags::bitflags! {
    /// enum iommu_hwpt_pgfault_perm.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PgfaultPerm: u32 {
        /// IOMMU_PGFAULT_PERM_READ.
        const READ = 1 << 0;
        /// IOMMU_PGFAULT_PERM_WRITE.
        const WRITE = 1 << 1;
        /// IOMMU_PGFAULT_PERM_EXEC.
        const EXEC = 1 << 2;
        /// IOMMU_PGFAULT_PERM_PRIV.
        const PRIV = 1 << 3;
    }
}

/// One fault as read from the queue (struct iommu_hwpt_pgfault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwptPgfault {
    /// PASID_VALID / LAST_PAGE.
    pub flags: PgfaultFlags,
    /// The DEVICE object that faulted.
    pub dev_id: u32,
    /// The PASID (meaningful with PASID_VALID).
    pub pasid: u32,
    /// The page request group index.
    pub grpid: u32,
    /// What the request asked for.
    pub perm: PgfaultPerm,
    /// The faulting page address.
    pub addr: u64,
    /// Always 0 (the kernel reports no length).
    pub length: u32,
    /// What the response must echo.
    pub cookie: u32,
}

/// enum iommufd_page_response_code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageResponseCode {
    /// IOMMUFD_PAGE_RESP_SUCCESS: the fault was handled, retry.
    Success,
    /// IOMMUFD_PAGE_RESP_INVALID: the request cannot be satisfied.
    Invalid,
}

/// A page response as the faulting device received it
/// (`iopf_group_response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IopfResponse {
    /// The DEVICE object.
    pub dev_id: u32,
    /// The PASID of the request, if it had one.
    pub pasid: Option<u32>,
    /// The page request group index.
    pub grpid: u32,
    /// The result.
    pub code: PageResponseCode,
    /// Sent by iommufd itself (detach, replace or queue destruction), not
    /// by user space.
    pub auto: bool,
}

/// One fault group (`struct iopf_group`) with the attachment it came
/// through.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IopfGroup {
    pub(crate) fault: HwptPgfault,
    pub(crate) hwpt_key: u64,
    pub(crate) group_id: u32,
}

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) deliver: VecDeque<IopfGroup>,
    pub(crate) response: BTreeMap<u32, IopfGroup>,
    pub(crate) next_grpid: u32,
    pub(crate) responses: VecDeque<IopfResponse>,
    pub(crate) closed: bool,
}

/// A fault queue object.
#[derive(Debug)]
pub struct Fault {
    pub(crate) hdr: ObjHeader,
    pub(crate) state: Mutex<FaultState>,
}

impl HasHeader for Fault {
    fn header(&self) -> &ObjHeader {
        &self.hdr
    }
}

/// The domain fault handler of a HWPT with a fault queue: knows which
/// bound device each (requester, PASID) is.
#[derive(Debug)]
pub(crate) struct IopfHandler {
    pub(crate) hwpt_key: u64,
    pub(crate) fault: Mutex<Option<ObjRef<Fault>>>,
    /// (requester, PASID) → (DEVICE id, IOMMU group).
    pub(crate) devices: Mutex<BTreeMap<(Bdf, u32), (u32, u32)>>,
}
