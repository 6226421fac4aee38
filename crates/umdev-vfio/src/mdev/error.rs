//! Errors of the mdev core, with the errno Linux returns for each.

use rustix::io::Errno;

use super::MdevUuid;
use crate::device::VfioError;

/// Errors of the mdev core (drivers/vfio/mdev/mdev_core.c, mdev_sysfs.c).
#[derive(Debug, thiserror::Error)]
pub enum MdevError {
    /// A `create` write that is not 36 or 37 bytes long: EINVAL
    /// (mdev_sysfs.c `create_store`).
    #[error("create: {len} bytes written, need 36 or 37")]
    UuidLength {
        /// Bytes written.
        len: usize,
    },
    /// Not a UUID in canonical form: EINVAL (lib/uuid.c `guid_parse`).
    #[error("invalid UUID")]
    InvalidUuid,
    /// A `remove` write that `kstrtoul(buf, 0)` rejects: EINVAL
    /// (mdev_sysfs.c `remove_store`).
    #[error("remove: not a number")]
    InvalidRemoveValue,
    /// The UUID is already used by an mdev of any parent: EEXIST
    /// (mdev_core.c `mdev_device_create`).
    #[error("mdev {uuid} already exists")]
    Exists {
        /// The UUID.
        uuid: MdevUuid,
    },
    /// The parent's `max_instances` are all in use: EUSERS
    /// (mdev_core.c `mdev_device_create`).
    #[error("no available instances")]
    NoInstances,
    /// The parent is being (or has been) unregistered: ENODEV
    /// (mdev_core.c, `down_read_trylock(&parent->unreg_sem)` failing).
    #[error("parent {parent} is unregistering")]
    ParentGone {
        /// The parent's device name.
        parent: String,
    },
    /// No such mdev: ENODEV (mdev_core.c `mdev_device_remove`).
    #[error("no mdev {uuid}")]
    NotFound {
        /// The UUID.
        uuid: MdevUuid,
    },
    /// The mdev is still being created or is already being removed: EAGAIN
    /// (mdev_core.c `mdev_device_remove`, `!mdev->active`).
    #[error("mdev {uuid} is not active")]
    NotActive {
        /// The UUID.
        uuid: MdevUuid,
        /// True when another remover got there first (as opposed to the
        /// mdev still being created).
        removing: bool,
    },
    /// No type directory of that name under the parent: ENOENT (the sysfs
    /// path does not exist).
    #[error("no mdev type {name}")]
    NoType {
        /// The requested type directory name.
        name: String,
    },
    /// The device is already an mdev parent: EEXIST (the second
    /// `mdev_supported_types` kset cannot be added).
    #[error("{parent} is already an mdev parent")]
    ParentExists {
        /// The parent's device name.
        parent: String,
    },
    /// The singleton group number space is exhausted: ENOSPC (as
    /// `ida_alloc` failing in `iommu_group_alloc`).
    #[error("no free group number")]
    NoGroupNumber,
    /// The parent driver's create (probe) failed; its errno is passed
    /// through (mdev_core.c, `device_driver_attach` errors).
    #[error("parent driver create failed: {0}")]
    Driver(#[source] VfioError),
}

impl MdevError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            MdevError::UuidLength { .. }
            | MdevError::InvalidUuid
            | MdevError::InvalidRemoveValue => Errno::INVAL,
            MdevError::Exists { .. } | MdevError::ParentExists { .. } => Errno::EXIST,
            MdevError::NoInstances => Errno::USERS,
            MdevError::ParentGone { .. } | MdevError::NotFound { .. } => Errno::NODEV,
            MdevError::NotActive { .. } => Errno::AGAIN,
            MdevError::NoType { .. } => Errno::NOENT,
            MdevError::NoGroupNumber => Errno::NOSPC,
            MdevError::Driver(e) => e.errno(),
        }
    }
}
