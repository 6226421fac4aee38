//! One mediated device (`struct mdev_device`).

use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use umdev_iommu::iommu::Domain;
use umdev_pci::Bdf;

use super::{MdevError, MdevParent, MdevType, MdevUuid, ParentDevice};
use crate::device::VfioDeviceOps;
use crate::registration::{Isolation, VfioDevice};

/// A mediated device. Created through [`MdevType::create`]; the core keeps
/// it listed until it is removed ([`Mdev::remove`]) or its parent is
/// unregistered.
///
/// Its *parent* is the device whose driver created it ([`Mdev::parent`]).
/// Its *IOMMU device* ([`Mdev::iommu_device`]) is the PCI function whose
/// requester ID the IOMMU sees on the mdev's DMA: set by the parent driver
/// when the mdev is isolated by the IOMMU (whole RID, or a PASID of that
/// function), absent when the parent isolates it itself (vendor-defined
/// isolation through an iommufd access).
pub struct Mdev {
    uuid: MdevUuid,
    parent: Weak<MdevParent>,
    parent_dev: ParentDevice,
    type_index: usize,
    type_name: String,
    group: u32,
    ops: OnceLock<Arc<dyn VfioDeviceOps>>,
    registration: OnceLock<Arc<VfioDevice>>,
    iommu_device: Mutex<Option<Bdf>>,
    iommu_pasid: Mutex<Option<u32>>,
    iommu_domain: Mutex<Option<Arc<Domain>>>,
}

impl Mdev {
    pub(super) fn new(mtype: &MdevType, uuid: MdevUuid, group: u32) -> Self {
        let parent = mtype.parent();
        Self {
            uuid,
            parent: Arc::downgrade(parent),
            parent_dev: parent.device().clone(),
            type_index: mtype.index(),
            type_name: mtype.name(),
            group,
            ops: OnceLock::new(),
            registration: OnceLock::new(),
            iommu_device: Mutex::new(None),
            iommu_pasid: Mutex::new(None),
            iommu_domain: Mutex::new(None),
        }
    }

    /// The UUID (`mdev->uuid`); its lower-case form is the device name.
    pub fn uuid(&self) -> MdevUuid {
        self.uuid
    }

    /// The device that created this mdev (`mdev->dev.parent`).
    pub fn parent(&self) -> &ParentDevice {
        &self.parent_dev
    }

    /// The registered parent, while it is registered.
    pub(super) fn parent_handle(&self) -> Option<Arc<MdevParent>> {
        self.parent.upgrade()
    }

    /// Whether `parent` created this mdev.
    pub(super) fn belongs_to(&self, parent: &MdevParent) -> bool {
        std::ptr::eq(self.parent.as_ptr(), parent)
    }

    /// The type directory name (`<driver_string>-<sysfs_name>`, the target
    /// of the `mdev_type` link).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Index of its type among the parent's types (usable by the parent
    /// driver even while the parent is being dropped).
    pub fn type_index(&self) -> usize {
        self.type_index
    }

    /// The type, while the parent is registered.
    pub fn mdev_type(&self) -> Option<MdevType> {
        self.parent_handle()
            .map(|p| MdevType::new(p, self.type_index))
    }

    /// The mdev's own singleton group number (its `iommu_group`); never a
    /// platform IOMMU group (see [`super::SingletonGroups`]).
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The VFIO device the parent driver made of it; `None` only while the
    /// parent driver's create is running.
    pub fn vfio_device(&self) -> Option<Arc<dyn VfioDeviceOps>> {
        self.ops.get().cloned()
    }

    /// The isolation the parent driver chose in its create: vendor-defined
    /// without an IOMMU device, else IOMMU-backed by the IOMMU device's
    /// RID or, with a PASID, by that PASID of it. `None` for a PASID
    /// without an IOMMU device.
    pub fn isolation(&self) -> Option<Isolation> {
        match (self.iommu_device(), self.iommu_pasid()) {
            (None, None) => Some(Isolation::Emulated),
            (None, Some(_)) => None,
            (Some(iommu_device), pasid) => Some(Isolation::IommuBacked {
                iommu_device,
                pasid,
            }),
        }
    }

    /// The VFIO device a consumer binds (`vfio_register_emulated_iommu_dev`
    /// or the IOMMU-backed registration), made by the core when the
    /// parent driver's create returned, with the mdev's group and
    /// [`Self::isolation`]; unregistered (its consumer unbound) when the
    /// mdev is removed, before the driver's remove runs. `None` only while
    /// the create is running.
    pub fn registration(&self) -> Option<Arc<VfioDevice>> {
        self.registration.get().cloned()
    }

    /// Called once by the core right after the driver's create returned:
    /// records the ops and registers them. The registration reports the
    /// domain attached for the mdev to [`Self::set_iommu_domain`].
    pub(super) fn register(self: &Arc<Self>, ops: Arc<dyn VfioDeviceOps>, isolation: Isolation) {
        let me = Arc::downgrade(self);
        let observer = Box::new(move |domain: Option<Arc<Domain>>| {
            if let Some(mdev) = me.upgrade() {
                mdev.set_iommu_domain(domain);
            }
        });
        let vfio = VfioDevice::new_observed(ops.clone(), isolation, self.group, observer);
        let _ = self.ops.set(ops);
        let _ = self.registration.set(vfio);
    }

    /// `mdev_set_iommu_device`: the parent driver names the PCI function
    /// that represents this mdev in the IOMMU (normally from its create).
    /// Without one, the mdev relies on vendor-defined isolation.
    pub fn set_iommu_device(&self, iommu_device: Bdf) {
        *self.iommu_device.lock() = Some(iommu_device);
    }

    /// `mdev_get_iommu_device`: the PCI function that represents this mdev
    /// in the IOMMU, or `None` for vendor-defined isolation.
    pub fn iommu_device(&self) -> Option<Bdf> {
        *self.iommu_device.lock()
    }

    /// The parent driver of a Scalable-IOV mdev names the PASID its IOMMU
    /// device tags the mdev's DMA with (from its create, with
    /// [`Self::set_iommu_device`]): the mdev is then IOMMU-backed at that
    /// PASID only (the aux-domain PASID of the 2019 series, which the
    /// driver read back with `iommu_aux_get_pasid`; here the driver
    /// allocates it with `iommu_alloc_global_pasid` and says so).
    pub fn set_iommu_pasid(&self, pasid: u32) {
        *self.iommu_pasid.lock() = Some(pasid);
    }

    /// The PASID set by [`Self::set_iommu_pasid`].
    pub fn iommu_pasid(&self) -> Option<u32> {
        *self.iommu_pasid.lock()
    }

    /// `mdev_set_iommu_domain`: record the domain attached to the IOMMU
    /// device on this mdev's behalf (`None` when it is detached), so the
    /// parent driver can find it (e.g. to read its PASID).
    pub fn set_iommu_domain(&self, domain: Option<Arc<Domain>>) {
        *self.iommu_domain.lock() = domain;
    }

    /// `mdev_get_iommu_domain`: the recorded domain, if any.
    pub fn iommu_domain(&self) -> Option<Arc<Domain>> {
        self.iommu_domain.lock().clone()
    }

    /// `mdev_device_remove`: ENODEV if the mdev is no longer listed or its
    /// parent is unregistering, EAGAIN while it is still being created or
    /// another remover is at work. On success the parent driver's remove
    /// has run, the instance is given back and the group number freed.
    pub fn remove(&self) -> Result<(), MdevError> {
        match self.parent_handle() {
            Some(parent) => parent.remove_device(self),
            None => Err(MdevError::NotFound { uuid: self.uuid }),
        }
    }

    /// A write to the device's `remove` attribute (mdev_sysfs.c
    /// `remove_store`): `kstrtoul(buf, 0)` must accept `buf` (EINVAL
    /// otherwise); 0 does nothing; any other value removes the mdev. A
    /// writer that loses the race against another remover succeeds without
    /// doing anything (`device_remove_file_self` returning false). Returns
    /// the bytes consumed.
    pub fn remove_store(&self, buf: &[u8]) -> Result<usize, MdevError> {
        let val = super::sysfs::kstrtoul(buf).ok_or(MdevError::InvalidRemoveValue)?;
        if val == 0 {
            return Ok(buf.len());
        }
        match self.remove() {
            Ok(()) | Err(MdevError::NotActive { removing: true, .. }) => Ok(buf.len()),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Debug for Mdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mdev")
            .field("uuid", &self.uuid)
            .field("parent", &self.parent_dev)
            .field("type", &self.type_name)
            .field("group", &self.group)
            .field("iommu_device", &self.iommu_device())
            .finish_non_exhaustive()
    }
}
