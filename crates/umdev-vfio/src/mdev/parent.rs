//! A registered parent (`struct mdev_parent`) and its types
//! (`struct mdev_type`): create, remove and unregistration.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

use super::bus::{Entry, MdevState};
use super::uuid::UUID_STRING_LEN;
use super::{
    Accounting, Mdev, MdevBus, MdevDriver, MdevError, MdevTypeDesc, MdevUuid, ParentDevice,
};
use crate::device::VfioError;

/// A device registered as an mdev parent. Dropping the last handle
/// unregisters it.
pub struct MdevParent {
    bus: Arc<MdevBus>,
    dev: ParentDevice,
    driver: Arc<dyn MdevDriver>,
    types: Vec<MdevTypeDesc>,
    /// The driver's accounting, read once at registration (as the kernel's
    /// `max_instances` / `get_available` are fixed then).
    accounting: Accounting,
    /// `parent->available_instances`; changed only under the bus's list
    /// lock, as mdev_core.c does under `mdev_list_lock`.
    available: AtomicU32,
    /// `parent->unreg_sem`: read by create and remove while they work
    /// (try-lock only), written by unregistration. True once unregistered.
    unreg: RwLock<bool>,
}

impl MdevParent {
    pub(super) fn new(
        bus: Arc<MdevBus>,
        dev: ParentDevice,
        driver: Arc<dyn MdevDriver>,
        types: Vec<MdevTypeDesc>,
    ) -> Arc<Self> {
        let accounting = driver.accounting();
        let available = match accounting {
            Accounting::MaxInstances(max) => max,
            Accounting::GetAvailable => 0,
        };
        Arc::new(Self {
            bus,
            dev,
            driver,
            types,
            accounting,
            available: AtomicU32::new(available),
            unreg: RwLock::new(false),
        })
    }

    /// The parent device.
    pub fn device(&self) -> &ParentDevice {
        &self.dev
    }

    /// The parent driver.
    pub fn driver(&self) -> &Arc<dyn MdevDriver> {
        &self.driver
    }

    /// Whether it is still registered.
    pub fn is_registered(&self) -> bool {
        !*self.unreg.read()
    }

    /// Its types (`mdev_supported_types/`), in registration order.
    pub fn types(self: &Arc<Self>) -> Vec<MdevType> {
        (0..self.types.len())
            .map(|i| MdevType::new(self.clone(), i))
            .collect()
    }

    /// The type whose directory is `name` (`<driver_string>-<sysfs_name>`);
    /// ENOENT if there is none (or the parent is unregistered).
    pub fn mdev_type(self: &Arc<Self>, name: &str) -> Result<MdevType, MdevError> {
        let registered = self.is_registered();
        self.types()
            .into_iter()
            .find(|t| registered && t.name() == name)
            .ok_or_else(|| MdevError::NoType {
                name: name.to_owned(),
            })
    }

    /// `mdev_unregister_parent`: with the unregistration lock held for
    /// writing (so no create or remove is half-way), removes every mdev of
    /// this parent that was created, then the types. Creates that had not
    /// reached the lock fail with ENODEV. Idempotent.
    pub fn unregister(&self) {
        let mut unreg = self.unreg.write();
        if *unreg {
            return;
        }
        *unreg = true;
        self.bus.forget_parent(self);
        let children: Vec<Arc<Mdev>> = self
            .bus
            .list()
            .values()
            .filter(|e| e.state != MdevState::Creating && e.mdev.belongs_to(self))
            .map(|e| e.mdev.clone())
            .collect();
        for mdev in children {
            self.remove_common(&mdev);
        }
    }

    /// `mdev_device_remove`, run for `mdev` of this parent.
    pub(super) fn remove_device(&self, mdev: &Mdev) -> Result<(), MdevError> {
        let uuid = mdev.uuid();
        {
            let mut list = self.bus.list();
            let entry = list
                .get_mut(&uuid)
                .filter(|e| std::ptr::eq(Arc::as_ptr(&e.mdev), mdev))
                .ok_or(MdevError::NotFound { uuid })?;
            match entry.state {
                MdevState::Active => entry.state = MdevState::Removing,
                MdevState::Creating => {
                    return Err(MdevError::NotActive {
                        uuid,
                        removing: false,
                    });
                }
                MdevState::Removing => {
                    return Err(MdevError::NotActive {
                        uuid,
                        removing: true,
                    });
                }
            }
        }
        // mdev_core.c: a remove racing unregistration leaves the mdev
        // inactive; the unregistration removes it.
        let unreg = self.unreg.try_read().ok_or_else(|| self.gone())?;
        if *unreg {
            return Err(self.gone());
        }
        self.remove_common(mdev);
        Ok(())
    }

    /// `mdev_device_remove_common` + `mdev_device_release`: the driver's
    /// remove, then unlisting, the instance back and the group freed.
    /// Called with the unregistration lock held.
    fn remove_common(&self, mdev: &Mdev) {
        if let Some(vfio) = mdev.registration() {
            if vfio.devid().is_some() {
                self.driver.request(mdev);
            }
            vfio.unregister();
        }
        self.driver.remove(mdev);
        self.release(mdev);
    }

    /// `mdev_device_release`.
    fn release(&self, mdev: &Mdev) {
        {
            let mut list = self.bus.list();
            list.remove(&mdev.uuid());
            if self.counts_instances() {
                self.available.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bus.groups().free(mdev.group());
    }

    /// Whether the core counts instances (no `get_available`).
    fn counts_instances(&self) -> bool {
        matches!(self.accounting, Accounting::MaxInstances(_))
    }

    fn gone(&self) -> MdevError {
        MdevError::ParentGone {
            parent: self.dev.id.to_string(),
        }
    }

    /// `mdev_device_create` of an mdev of `mtype`.
    fn create(&self, mtype: &MdevType, uuid: MdevUuid) -> Result<Arc<Mdev>, MdevError> {
        let counted = self.counts_instances();
        let mdev = {
            let mut list = self.bus.list();
            if list.contains_key(&uuid) {
                return Err(MdevError::Exists { uuid });
            }
            if counted {
                if self.available.load(Ordering::Relaxed) == 0 {
                    return Err(MdevError::NoInstances);
                }
                self.available.fetch_sub(1, Ordering::Relaxed);
            }
            let group = match self.bus.groups().alloc() {
                Ok(group) => group,
                Err(e) => {
                    if counted {
                        self.available.fetch_add(1, Ordering::Relaxed);
                    }
                    return Err(e);
                }
            };
            let mdev = Arc::new(Mdev::new(mtype, uuid, group));
            list.insert(
                uuid,
                Entry {
                    mdev: mdev.clone(),
                    state: MdevState::Creating,
                },
            );
            mdev
        };
        // mdev_core.c: "Check if parent unregistration has started".
        let Some(unreg) = self.unreg.try_read().filter(|dead| !**dead) else {
            self.release(&mdev);
            return Err(self.gone());
        };
        match self.driver.create(&mdev) {
            Ok(ops) => match mdev.isolation() {
                Some(isolation) => mdev.register(ops, isolation),
                None => {
                    // A PASID without an IOMMU device names no place in
                    // the IOMMU: the driver's create is refused.
                    self.driver.remove(&mdev);
                    self.release(&mdev);
                    return Err(MdevError::Driver(VfioError::Errno {
                        what: "mdev PASID without an IOMMU device",
                        errno: rustix::io::Errno::INVAL,
                    }));
                }
            },
            Err(e) => {
                self.release(&mdev);
                return Err(MdevError::Driver(e));
            }
        }
        if let Some(entry) = self.bus.list().get_mut(&uuid) {
            entry.state = MdevState::Active;
        }
        drop(unreg);
        Ok(mdev)
    }
}

impl Drop for MdevParent {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for MdevParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdevParent")
            .field("dev", &self.dev)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// A type of a registered parent: the
/// `mdev_supported_types/<driver_string>-<sysfs_name>/` directory.
#[derive(Clone, Debug)]
pub struct MdevType {
    parent: Arc<MdevParent>,
    index: usize,
}

impl MdevType {
    pub(super) fn new(parent: Arc<MdevParent>, index: usize) -> Self {
        Self { parent, index }
    }

    /// The parent.
    pub fn parent(&self) -> &Arc<MdevParent> {
        &self.parent
    }

    /// Index among the parent's types.
    pub fn index(&self) -> usize {
        self.index
    }

    fn desc(&self) -> &MdevTypeDesc {
        &self.parent.types[self.index]
    }

    /// The directory name, `"%s-%s", dev_driver_string(parent),
    /// sysfs_name` (mdev_sysfs.c `mdev_type_add`).
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            self.parent.dev.driver_string,
            self.desc().sysfs_name
        )
    }

    /// The driver's `sysfs_name` of the type.
    pub fn sysfs_name(&self) -> &str {
        &self.desc().sysfs_name
    }

    /// The `name` attribute: `pretty_name`, else `sysfs_name`.
    pub fn pretty_name(&self) -> &str {
        let desc = self.desc();
        desc.pretty_name.as_deref().unwrap_or(&desc.sysfs_name)
    }

    /// The `device_api` attribute.
    pub fn device_api(&self) -> &str {
        self.parent.driver.device_api()
    }

    /// The `description` attribute, absent unless the driver has one.
    pub fn description(&self) -> Option<String> {
        self.parent.driver.description(self)
    }

    /// The `available_instances` attribute: the driver's `get_available`,
    /// else the parent's shared counter.
    pub fn available_instances(&self) -> u32 {
        match self.parent.accounting {
            Accounting::GetAvailable => self.parent.driver.get_available(self),
            Accounting::MaxInstances(_) => self.parent.available.load(Ordering::Relaxed),
        }
    }

    /// The `devices/` directory: UUIDs of the created mdevs of this type.
    pub fn devices(&self) -> Vec<MdevUuid> {
        self.parent
            .bus
            .list()
            .values()
            .filter(|e| {
                e.state != MdevState::Creating
                    && e.mdev.belongs_to(&self.parent)
                    && e.mdev.type_name() == self.name()
            })
            .map(|e| e.mdev.uuid())
            .collect()
    }

    /// `mdev_device_create`: in this order, EEXIST if any parent has an
    /// mdev `uuid`; EUSERS if the core counts instances and none is left;
    /// ENODEV if the parent is unregistering; the driver's own errno if its
    /// create fails. Every failure leaves the counts and lists as they were.
    pub fn create(&self, uuid: MdevUuid) -> Result<Arc<Mdev>, MdevError> {
        self.parent.create(self, uuid)
    }

    /// A write to the type's `create` attribute (mdev_sysfs.c
    /// `create_store`): `buf` must be 36 or 37 bytes (EINVAL), its first 36
    /// a UUID (EINVAL); then as [`MdevType::create`]. Returns the bytes
    /// consumed.
    pub fn create_store(&self, buf: &[u8]) -> Result<usize, MdevError> {
        if !(UUID_STRING_LEN..=UUID_STRING_LEN + 1).contains(&buf.len()) {
            return Err(MdevError::UuidLength { len: buf.len() });
        }
        let uuid = MdevUuid::parse(buf)?;
        self.create(uuid)?;
        Ok(buf.len())
    }
}
