//! What a parent driver gives the mdev core (include/linux/mdev.h
//! `struct mdev_driver`, `struct mdev_type`) and how the parent device is
//! named.

use std::fmt;
use std::sync::Arc;

use umdev_pci::Bdf;

use super::{Mdev, MdevType};
use crate::device::{VfioDeviceOps, VfioError};

/// The device an mdev parent registers as (`parent->dev`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParentId {
    /// A PCI function (`/sys/bus/pci/devices/<bdf>`).
    Pci(Bdf),
    /// A non-PCI device named `name` (e.g. `virtual/mtty/mtty`'s "mtty").
    Named(String),
}

impl fmt::Display for ParentId {
    /// `dev_name(parent->dev)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentId::Pci(bdf) => bdf.fmt(f),
            ParentId::Named(name) => f.write_str(name),
        }
    }
}

/// The parent device with what `dev_driver_string(parent->dev)` returns
/// for it: the bound driver's name, else its bus name, else its class
/// name (drivers/base/core.c). The mtty sample has neither driver nor bus,
/// so its string is its class, "mtty".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentDevice {
    /// The device.
    pub id: ParentId,
    /// `dev_driver_string(dev)`: the prefix of every type directory.
    pub driver_string: String,
}

impl ParentDevice {
    /// A PCI function bound to the driver `driver`.
    pub fn pci(bdf: Bdf, driver: &str) -> Self {
        Self {
            id: ParentId::Pci(bdf),
            driver_string: driver.to_owned(),
        }
    }

    /// A non-PCI device `name` whose `dev_driver_string` is `driver_string`.
    pub fn named(name: &str, driver_string: &str) -> Self {
        Self {
            id: ParentId::Named(name.to_owned()),
            driver_string: driver_string.to_owned(),
        }
    }
}

/// One supported type (`struct mdev_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdevTypeDesc {
    /// `sysfs_name`: the directory is `<driver_string>-<sysfs_name>`.
    pub sysfs_name: String,
    /// `pretty_name`: the `name` attribute; `sysfs_name` when absent.
    pub pretty_name: Option<String>,
}

impl MdevTypeDesc {
    /// A type named `sysfs_name`, with an optional pretty name.
    pub fn new(sysfs_name: &str, pretty_name: Option<&str>) -> Self {
        Self {
            sysfs_name: sysfs_name.to_owned(),
            pretty_name: pretty_name.map(str::to_owned),
        }
    }
}

/// How instances are counted (`mdev_driver.max_instances` vs
/// `mdev_driver.get_available`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// The core counts: `max_instances` shared by every type of the
    /// parent, taken on create (EUSERS at 0) and given back on release.
    MaxInstances(u32),
    /// The driver counts: [`MdevDriver::get_available`] reports each
    /// type's count and [`MdevDriver::create`] refuses with its own errno.
    GetAvailable,
}

/// A parent driver (`struct mdev_driver`). Its callbacks run with the
/// parent's unregistration lock held for reading (create, remove) or
/// writing (removal during unregistration) and no other mdev-core lock:
/// they may use the [`Mdev`] they are given and query types, but must not
/// create or remove mdevs of their own parent.
pub trait MdevDriver: Send + Sync {
    /// `mdev_driver.driver.name`: the driver bound to the mdevs.
    fn name(&self) -> &str;

    /// `mdev_driver.device_api`, e.g. "vfio-pci".
    fn device_api(&self) -> &str;

    /// How instances are counted; read once, at registration.
    fn accounting(&self) -> Accounting;

    /// `get_available(mtype)`: only called under
    /// [`Accounting::GetAvailable`].
    fn get_available(&self, mtype: &MdevType) -> u32 {
        let _ = mtype;
        0
    }

    /// `show_description(mtype)`; `None` hides the `description` attribute.
    fn description(&self, mtype: &MdevType) -> Option<String> {
        let _ = mtype;
        None
    }

    /// Probe: make `mdev` a VFIO device. The driver may opt in to IOMMU
    /// isolation here with [`Mdev::set_iommu_device`] (and, for one PASID
    /// of that function, [`Mdev::set_iommu_pasid`]); the core registers the
    /// returned ops accordingly ([`Mdev::registration`]). An error fails
    /// the create with the error's errno.
    fn create(&self, mdev: &Mdev) -> Result<Arc<dyn VfioDeviceOps>, VfioError>;

    /// `vfio_device_ops.request`: the mdev is being removed while a
    /// consumer holds it; ask the consumer to release it (signal the REQ
    /// interrupt). Called by the core before it unregisters the mdev's
    /// registration, which then unbinds the consumer.
    fn request(&self, mdev: &Mdev) {
        let _ = mdev;
    }

    /// Remove: the mdev is going away; give back what create took. The
    /// mdev's registration is already unregistered (no consumer is bound).
    fn remove(&self, mdev: &Mdev);
}
