//! Errors of the sysfs tree, with the errno a sysfs access gets for each.

use rustix::io::Errno;
use umdev_pci::PciError;
use umdev_vfio::mdev::MdevError;

/// Errors of tree accesses (fs/kernfs, fs/sysfs and the attribute stores
/// they call).
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// No such path: ENOENT (`kernfs_iop_lookup` finds no node).
    #[error("no such file or directory: {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A path component is not a directory: ENOTDIR (namei).
    #[error("not a directory: {path}")]
    NotDir {
        /// The path asked for.
        path: String,
    },
    /// A directory where a file was needed: EISDIR (`generic_read_dir`).
    #[error("is a directory: {path}")]
    IsDir {
        /// The path asked for.
        path: String,
    },
    /// `readlink` of something that is not a link: EINVAL
    /// (fs/namei.c `vfs_readlink`).
    #[error("not a symbolic link: {path}")]
    NotLink {
        /// The path asked for.
        path: String,
    },
    /// Reading a file without `show` or writing one without `store` (or its
    /// mode forbids it): EACCES, even for root (fs/kernfs/file.c
    /// `kernfs_fop_open` under `KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK`).
    #[error("permission denied: {path}")]
    Access {
        /// The attribute.
        path: String,
    },
    /// Creating, removing or renaming entries: sysfs has no such inode
    /// operations (fs/namei.c `vfs_unlink` etc. without `i_op->unlink`).
    #[error("operation not permitted: {path}")]
    NotPermitted {
        /// The path asked for.
        path: String,
    },
    /// A store whose text the attribute rejects before calling the model:
    /// EINVAL (e.g. `kstrtou16` failing in drivers/pci/iov.c
    /// `sriov_numvfs_store`).
    #[error("invalid value written to {path}")]
    InvalidValue {
        /// The attribute.
        path: String,
    },
    /// A number too large for the attribute: ERANGE (`kstrtou16` in
    /// drivers/pci/iov.c `sriov_numvfs_store`).
    #[error("value out of range written to {path}")]
    OutOfRange {
        /// The attribute.
        path: String,
    },
    /// One write(2) larger than a page to a text attribute: E2BIG
    /// (fs/kernfs/file.c `kernfs_fop_write_iter`, `atomic_write_len`).
    #[error("write of {len} bytes to {path} is larger than a page")]
    TooBig {
        /// The attribute.
        path: String,
        /// Bytes written.
        len: usize,
    },
    /// A write at or past the end of a binary attribute: EFBIG
    /// (fs/sysfs/file.c `sysfs_kf_bin_write`).
    #[error("write past the end of {path}")]
    PastEnd {
        /// The attribute.
        path: String,
    },
    /// A store naming no device: ENODEV (drivers/base/bus.c `bind_store`,
    /// `bus_find_device_by_name` failing).
    #[error("no such device: {0}")]
    NoDevice(String),
    /// The PCI layer refused; its errno is the write's.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The mdev core refused; its errno is the write's.
    #[error(transparent)]
    Mdev(#[from] MdevError),
}

impl SysfsError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            SysfsError::NotFound { .. } => Errno::NOENT,
            SysfsError::NotDir { .. } => Errno::NOTDIR,
            SysfsError::IsDir { .. } => Errno::ISDIR,
            SysfsError::NotLink { .. } | SysfsError::InvalidValue { .. } => Errno::INVAL,
            SysfsError::Access { .. } => Errno::ACCESS,
            SysfsError::NotPermitted { .. } => Errno::PERM,
            SysfsError::OutOfRange { .. } => Errno::RANGE,
            SysfsError::TooBig { .. } => Errno::TOOBIG,
            SysfsError::PastEnd { .. } => Errno::FBIG,
            SysfsError::NoDevice(_) => Errno::NODEV,
            SysfsError::Pci(e) => e.errno(),
            SysfsError::Mdev(e) => e.errno(),
        }
    }
}
