//! umdev iommufd layer (drivers/iommu/iommufd): the device-centric IOMMU
//! API as a typed Rust API whose behaviour matches Linux errno for errno.
//!
//! - [`Ictx`] ([`ictx`]): one context (an open /dev/iommu): the object
//!   table ([`object`]), IOAS / HWPT operations;
//! - [`ioas`] and [`io_pagetable`]: I/O address spaces;
//! - [`hwpt`]: paging and nested hardware page tables;
//! - [`device`]: bind / attach / replace / detach with the group rules;
//! - [`access`]: in-kernel users for devices with vendor-defined isolation;
//! - [`fault`]: I/O page fault queues; [`dirty`]: dirty tracking;
//!   [`hw_info`]: IOMMU_GET_HW_INFO; [`invalidate`]: HWPT_INVALIDATE;
//! - [`vfio_compat`]: the VFIO type1 container ioctls over a compat IOAS
//!   (vfio_compat.c); the legacy group-centric container and groups that
//!   drive it are umdev-vfio's (drivers/vfio/container.c, group.c).
//!
//! The structs these modules share, and the lock order, are in one private
//! module, `private` (iommufd_private.h); the object table is a leaf that
//! names no object kind.

pub mod access;
pub mod device;
pub mod dirty;
pub mod error;
pub mod fault;
pub mod hw_info;
pub mod hwpt;
pub mod hwpt_alloc;
pub mod ictx;
pub mod invalidate;
pub mod io_pagetable;
pub mod ioas;
pub mod object;
mod option;
mod private;
#[cfg(feature = "selftest")]
pub mod selftest;
pub mod vfio_compat;

pub use dirty::{DirtyRange, DirtyTrackingFlags, GetDirtyBitmapFlags};
pub use error::{IommufdError, Result};
pub use fault::{FaultFd, HwptPgfault, IopfResponse, PageResponse, PageResponseCode};
pub use hw_info::{HwCapabilities, HwInfoFlags, HwInfoVtd, IommuHwInfo};
pub use hwpt_alloc::{HwptAllocFlags, HwptData};
pub use ictx::{Ictx, VfioIoasOp};
pub use invalidate::{HwptInvalidateData, HwptInvalidateResult};
pub use ioas::MapFlags;
