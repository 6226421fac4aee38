//! umdev uAPI face: `/dev/iommu` for unmodified Linux programs.
//!
//! A program run under `libumdev_preload.so` opens `/dev/iommu` and gets a
//! UNIX socket connected to this service; its `ioctl`s arrive as
//! [`frame::Request`]s. One connection is one open file description and one
//! [`umdev_iommufd::Ictx`] ([`ioctl::IommufdFile`]); the ioctl is decoded and
//! dispatched through one table ([`ioctl`], as
//! drivers/iommu/iommufd/main.c `iommufd_ioctl_ops`), its struct copied
//! from and to the caller's memory ([`user`], the kernel's
//! `copy_struct_from_user` / `copy_to_user`), and user VAs given to
//! IOAS_MAP become memory objects ([`peer_mem`]).
//!
//! - [`frame`]: the wire format on the socket; [`file`](mod@file): open files and
//!   their operations;
//! - [`uapi`]: include/uapi/linux/iommufd.h structs;
//! - [`iommufd`]: the core iommufd ioctls; [`test_cmd`]: IOMMU_TEST_CMD
//!   over the selftest mock (the kernel's `CONFIG_IOMMUFD_TEST`).

pub mod fail_nth;
pub mod file;
pub mod frame;
pub mod ioctl;
pub mod iommufd;
pub mod node;
pub mod peer_mem;
pub mod server;
pub mod test_cmd;
pub mod uapi;
pub mod user;
pub mod vfio_type1;
