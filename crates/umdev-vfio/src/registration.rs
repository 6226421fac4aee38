//! A registered VFIO device and its binding to a consumer's iommufd
//! context, shaped like the VFIO device cdev (drivers/vfio/device_cdev.c,
//! drivers/vfio/iommufd.c): BIND_IOMMUFD, ATTACH/DETACH_IOMMUFD_PT, close.
//!
//! How the device is isolated decides what binding means
//! ([`Isolation`]):
//! - a physical function bound to vfio-pci is an iommufd DEVICE: binding
//!   claims DMA ownership of its IOMMU group and attaching puts the group
//!   in an IOAS's (or HWPT's) domain (`vfio_iommufd_physical_*`);
//! - an emulated device with vendor-defined isolation has a singleton
//!   group of its own and reaches memory through an iommufd ACCESS, whose
//!   unmap callback reaches the device's `dma_unmap`
//!   (`vfio_iommufd_emulated_*`); it attaches only to an IOAS;
//! - an mdev backed by its parent's IOMMU for a whole RID binds the
//!   function (`iommu_device`) as a DEVICE, claiming its group, and
//!   attaches the RID. While another consumer owns that group the bind
//!   fails with EBUSY (not the EPERM of the raw ownership claim): the
//!   mdev is a device of its own to the consumer, who cannot see the
//!   backing group, and the answer is the one the vfio-mdev-pci series
//!   gave (kernel-semantics §4.3: the second container's attach of the
//!   backing group fails EBUSY in `__iommu_attach_group`). A group held by
//!   a kernel DMA-API driver still gives EPERM, as the claim does;
//! - an mdev backed by one PASID of its parent function binds only that
//!   PASID ([`Ictx::device_bind_pasid`]): no DMA ownership is claimed, the
//!   parent stays with its kernel driver, and mdevs of one parent can be
//!   bound to different consumers at once. Attaching puts the consumer's
//!   page table on (parent RID, PASID) (`iommu_attach_device_pasid`), and
//!   detach or unbind removes it.
//!
//! For both IOMMU-backed kinds the domain attached on the device's behalf
//! is reported to an observer (the mdev core records it with
//! `mdev_set_iommu_domain`) after every attach, replace, detach and
//! unbind.
//!
//! One consumer at a time: a bind while bound fails with EINVAL from the
//! same context (as `vfio_df_ioctl_bind_iommufd` on a bound fd) and EBUSY
//! from another one. Binding opens the device (`open_device`), unbinding
//! closes it (`close_device`, which drops its interrupt triggers) before
//! the iommufd objects go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::Domain;
use umdev_iommu::vtd::IOMMU_NO_PASID;
use umdev_iommufd::Ictx;
use umdev_iommufd::access::{Access, AccessOps};
use umdev_iommufd::error::IommufdError;
use umdev_pci::Bdf;

use crate::device::{OpenContext, VfioDeviceOps, VfioError};
use crate::mdev::SingletonGroups;

/// How a VFIO device is isolated from other consumers' memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A physical PCI function: its own IOMMU group.
    Physical {
        /// The function.
        bdf: Bdf,
    },
    /// Vendor-defined isolation: DMA through an iommufd access.
    Emulated,
    /// An mdev translated by its parent's IOMMU.
    IommuBacked {
        /// The function whose requester ID the device's DMA carries.
        iommu_device: Bdf,
        /// The PASID of the device's DMA; `None`: the whole RID.
        pasid: Option<u32>,
    },
}

/// Errors of binding a VFIO device to a consumer.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Already bound by this context: EINVAL (`vfio_df_open` on an open
    /// device).
    #[error("device already bound")]
    AlreadyBound,
    /// Bound by another consumer: EBUSY.
    #[error("device in use by another consumer")]
    InUse,
    /// Not bound (or not attached where that is needed): EINVAL, as an
    /// ioctl on a cdev fd without access granted.
    #[error("device not bound")]
    NotBound,
    /// The device was unregistered (its driver unbound): ENODEV.
    #[error("device unregistered")]
    Unregistered,
    /// The group backing an IOMMU-backed device is owned by another
    /// consumer: EBUSY (see the module documentation).
    #[error("backing IOMMU group {group} is owned by another consumer")]
    BackingGroupOwned {
        /// The backing group.
        group: u32,
    },
    /// An iommufd operation failed.
    #[error(transparent)]
    Iommufd(#[from] IommufdError),
    /// The device refused to open.
    #[error(transparent)]
    Device(#[from] VfioError),
}

impl RegistrationError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            RegistrationError::AlreadyBound | RegistrationError::NotBound => Errno::INVAL,
            RegistrationError::InUse | RegistrationError::BackingGroupOwned { .. } => Errno::BUSY,
            RegistrationError::Unregistered => Errno::NODEV,
            RegistrationError::Iommufd(e) => e.errno(),
            RegistrationError::Device(e) => e.errno(),
        }
    }
}

/// Reports the domain attached on a device's behalf (`None`: none).
pub(crate) type DomainObserver = Box<dyn Fn(Option<Arc<Domain>>) + Send + Sync>;

/// The access owner of an emulated device (`vfio_user_ops`).
struct AccessUser(Weak<dyn VfioDeviceOps>);

impl AccessOps for AccessUser {
    fn needs_pin_pages(&self) -> bool {
        self.0.upgrade().is_some_and(|ops| ops.pins_pages())
    }

    fn unmap(&self, iova: u64, length: u64) {
        if let Some(ops) = self.0.upgrade() {
            ops.dma_unmap(iova, length);
        }
    }
}

/// What the device is bound as in the consumer's context.
enum Handle {
    /// An iommufd DEVICE object, attached at `pasid`.
    Device { pasid: u32 },
    /// An iommufd ACCESS object.
    Access(Arc<Access>),
}

/// The current consumer.
struct Binding {
    ictx: Arc<Ictx>,
    /// The DEVICE or ACCESS object id (`out_devid`).
    devid: u32,
    handle: Handle,
    /// Attached to a page table (`vdev->iommufd_attached`).
    attached: bool,
}

/// A VFIO device as registered with the VFIO core (`struct vfio_device`).
pub struct VfioDevice {
    ops: Arc<dyn VfioDeviceOps>,
    isolation: Isolation,
    group: u32,
    /// The group number came from [`SingletonGroups::global`] for this
    /// device and goes back when it is dropped.
    owns_group: bool,
    observer: Option<DomainObserver>,
    binding: Mutex<Option<Binding>>,
    unregistered: AtomicBool,
}

impl std::fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioDevice")
            .field("isolation", &self.isolation)
            .field("group", &self.group)
            .field("devid", &self.devid())
            .finish_non_exhaustive()
    }
}

impl VfioDevice {
    /// Registers `ops` with its isolation and IOMMU group number
    /// (`vfio_register_group_dev` / `vfio_register_emulated_iommu_dev`).
    pub fn new(ops: Arc<dyn VfioDeviceOps>, isolation: Isolation, group: u32) -> Arc<Self> {
        Self::build(ops, isolation, group, false, None)
    }

    /// An emulated device in a new singleton group, numbered from
    /// [`SingletonGroups::global`] (the allocator mdev groups come from)
    /// and given back when the device is dropped. ENOSPC when every
    /// singleton number is taken.
    pub fn new_emulated(ops: Arc<dyn VfioDeviceOps>) -> Result<Arc<Self>, RegistrationError> {
        let group = SingletonGroups::global()
            .alloc()
            .map_err(|_| VfioError::Errno {
                what: "no singleton group number",
                errno: Errno::NOSPC,
            })?;
        Ok(Self::build(ops, Isolation::Emulated, group, true, None))
    }

    /// An mdev's registration, reporting its IOMMU domain to `observer`.
    pub(crate) fn new_observed(
        ops: Arc<dyn VfioDeviceOps>,
        isolation: Isolation,
        group: u32,
        observer: DomainObserver,
    ) -> Arc<Self> {
        Self::build(ops, isolation, group, false, Some(observer))
    }

    fn build(
        ops: Arc<dyn VfioDeviceOps>,
        isolation: Isolation,
        group: u32,
        owns_group: bool,
        observer: Option<DomainObserver>,
    ) -> Arc<Self> {
        Arc::new(Self {
            ops,
            isolation,
            group,
            owns_group,
            observer,
            binding: Mutex::new(None),
            unregistered: AtomicBool::new(false),
        })
    }

    /// The device's operations.
    pub fn ops(&self) -> &Arc<dyn VfioDeviceOps> {
        &self.ops
    }

    /// How it is isolated.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Its IOMMU group number.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The devid of the current binding, if bound.
    pub fn devid(&self) -> Option<u32> {
        self.binding.lock().as_ref().map(|b| b.devid)
    }

    /// VFIO_DEVICE_BIND_IOMMUFD: binds the device to `ictx` and opens it;
    /// returns the devid. EINVAL if `ictx` already bound it, EBUSY if
    /// another consumer did; ownership errors of the group (EPERM, EBUSY)
    /// pass through from iommufd.
    pub fn bind_iommufd(&self, ictx: &Arc<Ictx>) -> Result<u32, RegistrationError> {
        let mut binding = self.binding.lock();
        if self.unregistered.load(Ordering::Acquire) {
            return Err(RegistrationError::Unregistered);
        }
        if let Some(b) = binding.as_ref() {
            return Err(if Arc::ptr_eq(&b.ictx, ictx) {
                RegistrationError::AlreadyBound
            } else {
                RegistrationError::InUse
            });
        }
        let (devid, handle) = match self.isolation {
            Isolation::Physical { bdf } => {
                let pasid = IOMMU_NO_PASID;
                (ictx.device_bind(bdf)?, Handle::Device { pasid })
            }
            Isolation::IommuBacked {
                iommu_device,
                pasid: None,
            } => {
                let pasid = IOMMU_NO_PASID;
                let devid = Self::bind_backing_rid(ictx, iommu_device)?;
                (devid, Handle::Device { pasid })
            }
            Isolation::IommuBacked {
                iommu_device,
                pasid: Some(pasid),
            } => {
                let devid = ictx.device_bind_pasid(iommu_device, pasid)?;
                (devid, Handle::Device { pasid })
            }
            Isolation::Emulated => {
                let user = AccessUser(Arc::downgrade(&self.ops));
                let (id, access) = ictx.access_create(Arc::new(user))?;
                (id, Handle::Access(access))
            }
        };
        let ctx = OpenContext {
            access: match &handle {
                Handle::Access(a) => Some(Arc::clone(a)),
                Handle::Device { .. } => None,
            },
        };
        if let Err(e) = self.ops.open_device(&ctx) {
            Self::release(ictx, devid, &handle);
            return Err(e.into());
        }
        *binding = Some(Binding {
            ictx: Arc::clone(ictx),
            devid,
            handle,
            attached: false,
        });
        Ok(devid)
    }

    /// Binds the function backing an RID-granular mdev; EBUSY instead of
    /// the claim's EPERM while another consumer owns its group (module
    /// documentation).
    fn bind_backing_rid(ictx: &Ictx, bdf: Bdf) -> Result<u32, RegistrationError> {
        ictx.device_bind(bdf).map_err(|e| {
            let group = ictx.iommu().device_group(bdf).map(|g| g.info());
            match group {
                Some(info)
                    if e.errno() == Errno::PERM
                        && info.owner.is_some_and(|o| o != ictx.cookie().id()) =>
                {
                    RegistrationError::BackingGroupOwned { group: info.id }
                }
                _ => e.into(),
            }
        })
    }

    /// Tells the observer which domain is attached now.
    fn observe(&self, domain: Option<Arc<Domain>>) {
        if let Some(observer) = &self.observer {
            observer(domain);
        }
    }

    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches (or, when attached,
    /// replaces) the device's page table; returns the HWPT id the device
    /// ended up on (an IOAS attach of a physical device gets its automatic
    /// domain) or, for an emulated device, the IOAS id. EINVAL if not
    /// bound.
    pub fn attach_ioas(&self, pt_id: u32) -> Result<u32, RegistrationError> {
        let mut binding = self.binding.lock();
        let b = binding.as_mut().ok_or(RegistrationError::NotBound)?;
        let id = match b.handle {
            Handle::Device { pasid, .. } if b.attached => {
                b.ictx.device_replace(b.devid, pasid, pt_id)?
            }
            Handle::Device { pasid, .. } => b.ictx.device_attach(b.devid, pasid, pt_id)?,
            Handle::Access(_) if b.attached => {
                b.ictx.access_replace(b.devid, pt_id)?;
                pt_id
            }
            Handle::Access(_) => {
                b.ictx.access_attach(b.devid, pt_id)?;
                pt_id
            }
        };
        b.attached = true;
        if let Handle::Device { .. } = b.handle {
            self.observe(b.ictx.hwpt_domain(id).ok());
        }
        Ok(id)
    }

    /// VFIO_DEVICE_DETACH_IOMMUFD_PT: a no-op when not attached; EINVAL if
    /// not bound.
    pub fn detach_ioas(&self) -> Result<(), RegistrationError> {
        let mut binding = self.binding.lock();
        let b = binding.as_mut().ok_or(RegistrationError::NotBound)?;
        if !b.attached {
            return Ok(());
        }
        match b.handle {
            Handle::Device { pasid, .. } => {
                b.ictx.device_detach(b.devid, pasid)?;
                self.observe(None);
            }
            Handle::Access(_) => b.ictx.access_detach(b.devid)?,
        }
        b.attached = false;
        Ok(())
    }

    /// Closing the bound fd (`vfio_df_close` + `vfio_df_iommufd_unbind`):
    /// the device is closed first (its interrupt triggers dropped), then
    /// the DEVICE or ACCESS object goes and a physical group returns to
    /// its default domain. EINVAL if not bound.
    pub fn unbind(&self) -> Result<(), RegistrationError> {
        let b = self
            .binding
            .lock()
            .take()
            .ok_or(RegistrationError::NotBound)?;
        self.close(b);
        Ok(())
    }

    /// Closes the device, then drops its binding's iommufd object.
    fn close(&self, b: Binding) {
        self.ops.close_device();
        Self::release(&b.ictx, b.devid, &b.handle);
        if b.attached && matches!(b.handle, Handle::Device { .. }) {
            self.observe(None);
        }
    }

    /// `vfio_unregister_group_dev`: the device goes away; a consumer still
    /// bound is unbound (the caller asked it to release the device with
    /// its REQ interrupt first, where it has one) and later binds fail
    /// with ENODEV.
    pub fn unregister(&self) {
        // Under the binding lock, so no bind can slip in between.
        let b = {
            let mut binding = self.binding.lock();
            self.unregistered.store(true, Ordering::Release);
            binding.take()
        };
        if let Some(b) = b {
            self.close(b);
        }
    }

    /// Destroys the iommufd object of a binding. It was created by this
    /// device and user space cannot destroy it, so this cannot fail short
    /// of a broken context; a failure leaves it to the context's close.
    fn release(ictx: &Ictx, devid: u32, handle: &Handle) {
        let _ = match handle {
            Handle::Device { .. } => ictx.device_unbind(devid),
            Handle::Access(_) => ictx.access_destroy(devid),
        };
    }
}

impl Drop for VfioDevice {
    /// Unregistering a device its consumer still holds (a driver unbind
    /// after the REQ interrupt went unanswered) closes it.
    fn drop(&mut self) {
        self.unregister();
        if self.owns_group {
            SingletonGroups::global().free(self.group);
        }
    }
}
