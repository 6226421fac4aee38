//! umdev's sysfs face: the kernel's sysfs layout over the object model
//! ([`Tree`]), served over FUSE ([`mount`]).
//!
//! The tree is computed from the [`Host`](umdev_devices::host::Host) on
//! every access: a directory's entries are listed from the model and a
//! path is resolved by walking those same entries, attributes are shown
//! in the kernel's formats at read time, and every write is one `store`
//! that calls the model and returns its errno. Links carry relative
//! targets as kernfs writes them.
//!
//! Layout (as Linux):
//! - `devices/pci<seg>:<bus>/<bridge>/…/<bdf>/`: a PCI function with
//!   `vendor`, `device`, `subsystem_vendor`, `subsystem_device`, `class`,
//!   `revision`, `config`, `driver_override`, `uevent`, `modalias`,
//!   `driver`, `iommu_group`, `subsystem`, SR-IOV attributes and
//!   `physfn`/`virtfnN` links; if it is an mdev parent, `mdev_supported_types/<type>/{name, description,
//!   device_api, available_instances, create, devices/}` and its mdevs;
//! - `devices/virtual/<class>/<name>/`: a non-PCI mdev parent (mtty);
//! - `<parent>/<uuid>/`: an mdev with `remove`, `uevent`, `mdev_type`,
//!   `iommu_group`, `driver` and `subsystem`;
//! - `bus/pci/{devices/<bdf>, drivers/<drv>/{bind, unbind, new_id,
//!   remove_id, <bdf>}, drivers_probe}`;
//! - `bus/mdev/{devices/<uuid>, drivers/<drv>/<uuid>}`;
//! - `class/mdev_bus/<parent>`;
//! - `kernel/iommu_groups/<n>/devices/` (mdev groups with `name`).

mod attr;
mod entries;
mod error;
mod fuse;
mod kstrtox;
mod layout;
mod node;
mod path;
mod tree;

pub use error::SysfsError;
pub use fuse::{MountError, MountHandle, OnChange, cleanup_stale_mount, mount};
pub use node::{NodeKind, Stat};
pub use tree::Tree;
