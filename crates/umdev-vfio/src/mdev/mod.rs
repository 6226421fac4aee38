//! The mdev core (drivers/vfio/mdev/mdev_core.c, mdev_sysfs.c,
//! include/linux/mdev.h): parents, types, and mediated devices created by
//! UUID.
//!
//! - A parent driver implements [`MdevDriver`] and registers a device
//!   ([`ParentDevice`]: a PCI function or a named non-PCI device) on an
//!   [`MdevBus`] with its types ([`MdevTypeDesc`]). Each type is a
//!   directory named `<dev_driver_string(parent)>-<sysfs_name>`
//!   ([`MdevType::name`]) with `name`, `device_api`, `description`,
//!   `available_instances`, `create` and `devices/`.
//! - Instances are counted by the core against the driver's
//!   `max_instances`, shared by all types of the parent ([`Accounting`]),
//!   or by the driver's `get_available`.
//! - [`MdevType::create`] / [`MdevType::create_store`] and [`Mdev::remove`]
//!   / [`Mdev::remove_store`] follow the kernel errno for errno (see
//!   [`MdevError`]); [`MdevParent::unregister`] removes every mdev of the
//!   parent first.
//! - Every mdev is its own singleton group, numbered from
//!   [`SingletonGroups`] in a range that platform IOMMU groups never reach.
//! - The core registers every mdev as a VFIO device with the isolation
//!   its driver chose ([`Mdev::registration`]).
//! - [`PciParents`] keeps the parents of a PCI parent driver, one per
//!   bound function.
//!
//! # Parent device vs IOMMU device
//!
//! The *parent* of an mdev ([`Mdev::parent`]) is the device whose driver
//! created it: it owns the types, the instance accounting and the mdev's
//! life. The *IOMMU device* ([`Mdev::iommu_device`]) is the PCI function
//! that represents the mdev in the IOMMU's device scope: the IOMMU knows
//! only requester IDs (bus:dev.fn) and walks its context tables by them, so
//! an mdev is translated by the IOMMU only through a PCI function, either
//! for its whole RID (a wrapped function, vfio-mdev-pci) or for one PASID of
//! it (a Scalable-IOV ADI). The two are often the same function but need
//! not be: the parent may be a non-PCI device. A parent driver opts in to
//! IOMMU isolation by calling [`Mdev::set_iommu_device`] from its create;
//! with no IOMMU device the mdev relies on vendor-defined isolation and
//! reaches memory through an iommufd access. [`Mdev::set_iommu_domain`]
//! records the domain attached to the IOMMU device on the mdev's behalf.
//!
//! # Locking
//!
//! Order: **parent unregistration lock → bus mdev list → group
//! allocator**. Create and remove only try-lock the unregistration lock
//! (as `down_read_trylock(&parent->unreg_sem)`), so they never wait for an
//! unregistration and never deadlock with one; the list lock is never held
//! across a driver callback.

mod bus;
mod device;
mod driver;
mod error;
mod groups;
mod parent;
mod pci_parents;
mod sysfs;
mod uuid;

pub use bus::MdevBus;
pub use device::Mdev;
pub use driver::{Accounting, MdevDriver, MdevTypeDesc, ParentDevice, ParentId};
pub use error::MdevError;
pub use groups::{SINGLETON_GROUP_BASE, SingletonGroups};
pub use parent::{MdevParent, MdevType};
pub use pci_parents::PciParents;
pub use uuid::{MdevUuid, UUID_STRING_LEN};
