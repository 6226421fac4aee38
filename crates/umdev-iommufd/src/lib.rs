//! umdev iommufd layer (drivers/iommu/iommufd): the device-centric IOMMU
//! API as a typed Rust API whose behaviour matches Linux errno for errno.
//!
//! - [`Ictx`] ([`ictx`]): one context (an open /dev/iommu): the object
//!   table ([`object`]), IOAS / HWPT operations;
//! - [`ioas`] and [`io_pagetable`]: I/O address spaces;
//! - [`hwpt`]: paging and nested hardware page tables;
//! - [`device`]: bind / attach / replace / detach with the group rules;
//! - [`access`]: in-kernel users for devices with vendor-defined isolation.
//!
//! Lock order: `Ioas::hwpts` → device group attachments → `Ioas::iopt` →
//! IOMMU core; the object table lock is a leaf held only for lookups.

pub mod access;
pub mod device;
pub mod error;
pub mod hwpt;
pub mod ictx;
pub mod io_pagetable;
pub mod ioas;
pub mod object;

pub use error::{IommufdError, Result};
pub use ictx::{HwptAllocFlags, HwptData, Ictx, MapFlags, VfioIoasOp};
