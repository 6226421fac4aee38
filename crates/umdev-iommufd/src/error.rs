//! Errors of the iommufd layer, each with the errno the Linux ioctl returns.

use rustix::io::Errno;
use umdev_iommu::iommu::IommuError;

/// Why an iommufd operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IommufdError {
    /// No object with this id (or not finalized): ENOENT.
    #[error("no object {id}")]
    NoObject {
        /// The id asked for.
        id: u32,
    },
    /// The object exists but is of another kind than the operation needs.
    /// Linux gives ENOENT for lookups by type and EINVAL where a `pt_id`
    /// names the wrong kind; `errno` records which.
    #[error("object {id} is not {wanted}")]
    WrongType {
        /// The id.
        id: u32,
        /// What the operation needed.
        wanted: &'static str,
        /// The errno Linux returns at this call site.
        errno: Errno,
    },
    /// Something else holds a reference to the object: EBUSY.
    #[error("object {id} is in use")]
    ObjectBusy {
        /// The id.
        id: u32,
    },
    /// An unknown flag, op or type, or a non-zero reserved field:
    /// EOPNOTSUPP.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was not supported.
        what: &'static str,
    },
    /// An understood but invalid value: EINVAL.
    #[error("invalid: {what}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
    },
    /// An address or length arithmetic overflow: EOVERFLOW.
    #[error("arithmetic overflow: {what}")]
    Overflow {
        /// Which computation overflowed.
        what: &'static str,
    },
    /// An IOVA-space operation failed with the io_pagetable's errno.
    #[error("{op}: {errno}")]
    Iopt {
        /// The operation.
        op: &'static str,
        /// Linux's errno for it.
        errno: Errno,
    },
    /// The device is already attached for this PASID: EBUSY.
    #[error("device {dev_id} is already attached (pasid {pasid})")]
    AlreadyAttached {
        /// The device object.
        dev_id: u32,
        /// The PASID.
        pasid: u32,
    },
    /// A device of the same group is attached to another HWPT for this
    /// PASID: EINVAL ("all devices in a group must use the same hwpt").
    #[error("group {group}: pasid {pasid} is attached to another HWPT")]
    GroupHwptMismatch {
        /// The IOMMU group.
        group: u32,
        /// The PASID.
        pasid: u32,
    },
    /// An unmap kept finding pinned pages after 100 rounds of access unmap
    /// callbacks: EDEADLOCK.
    #[error("accesses did not unpin [{iova:#x}, +{length:#x}) after 100 rounds")]
    AccessDeadlock {
        /// First IOVA of the pinned area.
        iova: u64,
        /// Its length.
        length: u64,
    },
    /// An output array is too small: EMSGSIZE, with the count it needs
    /// (IOAS_IOVA_RANGES writes what fits and the total).
    #[error("{what}: {needed} entries needed")]
    TooSmall {
        /// What was being returned.
        what: &'static str,
        /// The entries needed.
        needed: u32,
    },
    /// A caller buffer cannot hold what the ioctl writes: EFAULT, as a user
    /// pointer to too little memory would give.
    #[error("{what}: buffer of {len} bytes, {needed} needed")]
    BadBuffer {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bytes needed.
        needed: usize,
    },
    /// The IOMMU core refused.
    #[error(transparent)]
    Iommu(#[from] IommuError),
    /// A plain errno with context (paths with no richer structure).
    #[error("{what}: {errno}")]
    Errno {
        /// What failed.
        what: &'static str,
        /// Linux's errno.
        errno: Errno,
    },
}

impl IommufdError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            IommufdError::NoObject { .. } => Errno::NOENT,
            IommufdError::WrongType { errno, .. }
            | IommufdError::Iopt { errno, .. }
            | IommufdError::Errno { errno, .. } => *errno,
            IommufdError::ObjectBusy { .. } | IommufdError::AlreadyAttached { .. } => Errno::BUSY,
            IommufdError::Unsupported { .. } => Errno::OPNOTSUPP,
            IommufdError::Invalid { .. } | IommufdError::GroupHwptMismatch { .. } => Errno::INVAL,
            IommufdError::Overflow { .. } => Errno::OVERFLOW,
            IommufdError::AccessDeadlock { .. } => Errno::DEADLK,
            IommufdError::TooSmall { .. } => Errno::MSGSIZE,
            IommufdError::BadBuffer { .. } => Errno::FAULT,
            IommufdError::Iommu(e) => e.errno(),
        }
    }

    pub(crate) fn iopt(op: &'static str) -> impl Fn(Errno) -> IommufdError {
        move |errno| IommufdError::Iopt { op, errno }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, IommufdError>;
