//! Errors of the mdev-pci driver, with the errno Linux's vfio-mdev-pci
//! sample returns for each.

use rustix::io::Errno;
use umdev_pci::Bdf;
use umdev_vfio::device::VfioError;
use umdev_vfio::mdev::MdevError;

/// Errors of probing a function or creating its mdev.
#[derive(Debug, thiserror::Error)]
pub enum MdevPciError {
    /// Not a type 0 (normal) header: EINVAL (vfio_mdev_pci.c
    /// `vfio_mdev_pci_driver_probe`, `pdev->hdr_type` check).
    #[error("{bdf}: header type {header_type:#x} is not a normal header")]
    HeaderType {
        /// The function.
        bdf: Bdf,
        /// Its header type.
        header_type: u8,
    },
    /// A PF with VFs enabled: EBUSY (vfio_mdev_pci.c
    /// `vfio_mdev_pci_driver_probe`, `pci_num_vf(pdev)`).
    #[error("{bdf}: {num_vfs} VFs enabled")]
    VfsEnabled {
        /// The PF.
        bdf: Bdf,
        /// VFs enabled on it.
        num_vfs: u16,
    },
    /// No IOMMU group: EINVAL (`vfio_group_find_or_alloc` without
    /// noiommu, as vfio-pci).
    #[error("{bdf}: no IOMMU group")]
    NoIommuGroup {
        /// The function.
        bdf: Bdf,
    },
    /// The one instance is in use: ENOSPC (vfio_mdev_pci.c
    /// `vfio_mdev_pci_create`, `atomic_dec_if_positive(&avail) < 0`).
    #[error("{bdf}: no instance available")]
    NoInstance {
        /// The wrapped function.
        bdf: Bdf,
    },
    /// The platform or the function went away: ENODEV.
    #[error("{bdf}: device gone")]
    Gone {
        /// The function.
        bdf: Bdf,
    },
    /// Building the pass-through device failed with this errno.
    #[error("{bdf}: pass-through device: {errno}")]
    PassThrough {
        /// The function.
        bdf: Bdf,
        /// The errno.
        errno: Errno,
    },
    /// Registering the mdev parent failed (`mdev_register_device`).
    #[error(transparent)]
    Register(#[from] MdevError),
}

impl MdevPciError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            MdevPciError::HeaderType { .. } | MdevPciError::NoIommuGroup { .. } => Errno::INVAL,
            MdevPciError::VfsEnabled { .. } => Errno::BUSY,
            MdevPciError::NoInstance { .. } => Errno::NOSPC,
            MdevPciError::Gone { .. } => Errno::NODEV,
            MdevPciError::PassThrough { errno, .. } => *errno,
            MdevPciError::Register(e) => e.errno(),
        }
    }
}

impl From<MdevPciError> for VfioError {
    /// What the mdev core sees of a failed create: the errno.
    fn from(e: MdevPciError) -> Self {
        VfioError::Errno {
            what: "mdev-pci create",
            errno: e.errno(),
        }
    }
}
