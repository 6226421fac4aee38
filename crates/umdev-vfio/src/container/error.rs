//! Errors of the legacy VFIO group / container model, each with the errno
//! drivers/vfio/{group,container}.c and vfio_iommu_type1.c return.

use rustix::io::Errno;
use umdev_iommu::iommu::IommuError;

use umdev_iommufd::IommufdError;

/// Why a VFIO group or container operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VfioError {
    /// The vfio group is already open: EBUSY (group.c
    /// `vfio_group_fops_open`: "Do we need multiple instances of the group
    /// open? Seems not.").
    #[error("vfio group {group} is already open")]
    GroupOpen {
        /// The group, as its key prints.
        group: String,
    },
    /// There is no such IOMMU group, or the mdev's `iommu_device` has none:
    /// ENODEV.
    #[error("no IOMMU group: {what}")]
    NoIommuGroup {
        /// Which group was asked for.
        what: String,
    },
    /// SET_CONTAINER on a group that has one, UNSET_CONTAINER or
    /// GET_DEVICE_FD on one that has none or whose container has no IOMMU:
    /// EINVAL (group.c, container.c `vfio_group_use_container`).
    #[error("vfio group: {what}")]
    ContainerState {
        /// What was wrong.
        what: &'static str,
    },
    /// UNSET_CONTAINER while device fds are open: EBUSY (group.c
    /// `vfio_group_ioctl_unset_container`, `container_users != 1`).
    #[error("{open} device fds of the group are open")]
    DevicesOpen {
        /// How many.
        open: u32,
    },
    /// GET_DEVICE_FD with a name no device of the group has: ENODEV
    /// (group.c `vfio_device_get_from_name`).
    #[error("no device {name} in the vfio group")]
    NoDevice {
        /// The name asked for.
        name: String,
    },
    /// SET_IOMMU on a container with no group or with an IOMMU already
    /// set, or an IOMMU ioctl on a container without one: EINVAL
    /// (container.c `vfio_ioctl_set_iommu`, `vfio_fops_unl_ioctl`).
    #[error("vfio container: {what}")]
    IommuState {
        /// What was wrong.
        what: &'static str,
    },
    /// SET_IOMMU with a type no IOMMU driver offers: ENODEV (container.c:
    /// no registered driver reports the extension).
    #[error("no vfio IOMMU driver offers type {iommu_type}")]
    UnsupportedIommuType {
        /// The requested type.
        iommu_type: u64,
    },
    /// The backing IOMMU group of an IOMMU-backed mdev is owned by another
    /// container or iommufd context: EBUSY (what `__iommu_attach_group`
    /// answers when the group is attached to another domain, the outcome
    /// of the seed 004 thread's refcounted group object).
    #[error("IOMMU group {group} is in use by another container or context")]
    BackingGroupBusy {
        /// The backing IOMMU group.
        group: u32,
    },
    /// A new domain's aperture or the group's reserved regions clash with
    /// existing mappings: EINVAL (vfio_iommu_type1.c
    /// `vfio_iommu_aper_conflict` / `vfio_iommu_resv_conflict`).
    #[error("IOMMU group {group}: aperture or reserved regions clash with mappings")]
    IovaConflict {
        /// The backing IOMMU group.
        group: u32,
    },
    /// The IOMMU core refused (ownership, attach).
    #[error(transparent)]
    Iommu(#[from] IommuError),
    /// The compat IOAS refused (map, unmap, info).
    #[error(transparent)]
    Iommufd(#[from] IommufdError),
}

impl VfioError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            VfioError::GroupOpen { .. }
            | VfioError::DevicesOpen { .. }
            | VfioError::BackingGroupBusy { .. } => Errno::BUSY,
            VfioError::NoIommuGroup { .. }
            | VfioError::NoDevice { .. }
            | VfioError::UnsupportedIommuType { .. } => Errno::NODEV,
            VfioError::ContainerState { .. }
            | VfioError::IommuState { .. }
            | VfioError::IovaConflict { .. } => Errno::INVAL,
            VfioError::Iommu(e) => e.errno(),
            VfioError::Iommufd(e) => e.errno(),
        }
    }
}

/// Result alias of the container model.
pub type VfioResult<T> = std::result::Result<T, VfioError>;
