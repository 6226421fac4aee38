//! Errors of the sdma parent driver, with their errno.

use rustix::io::Errno;
use umdev_pci::Bdf;
use umdev_vfio::device::VfioError;
use umdev_vfio::mdev::MdevError;

use crate::sdma::SdmaError;

/// Errors of probing the engine or creating an mdev.
#[derive(Debug, thiserror::Error)]
pub enum SdmaMdevError {
    /// Every work queue is assigned: ENOSPC (as mtty's create when its
    /// port pool is short; the idxd mdev RFC had no free dedicated WQ
    /// either).
    #[error("{bdf}: no free work queue")]
    NoWorkQueue {
        /// The engine.
        bdf: Bdf,
    },
    /// The global PASID space is exhausted (`iommu_alloc_global_pasid`
    /// fails): ENOSPC, as idxd's `idxd_enable_system_pasid`.
    #[error("{bdf}: no PASID left")]
    NoPasid {
        /// The engine.
        bdf: Bdf,
    },
    /// The function has no IOMMU unit or DMA port: ENODEV.
    #[error("{bdf}: no DMA port: {errno}")]
    NoDmaPort {
        /// The engine.
        bdf: Bdf,
        /// The errno.
        errno: Errno,
    },
    /// The engine refused a configuration.
    #[error(transparent)]
    Engine(#[from] SdmaError),
    /// Registering the mdev parent failed (`mdev_register_parent`).
    #[error(transparent)]
    Register(#[from] MdevError),
}

impl SdmaMdevError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            SdmaMdevError::NoWorkQueue { .. } | SdmaMdevError::NoPasid { .. } => Errno::NOSPC,
            SdmaMdevError::NoDmaPort { errno, .. } => *errno,
            SdmaMdevError::Engine(e) => e.errno(),
            SdmaMdevError::Register(e) => e.errno(),
        }
    }
}

impl From<SdmaMdevError> for VfioError {
    /// What the mdev core sees of a failed create: the errno.
    fn from(e: SdmaMdevError) -> Self {
        VfioError::Errno {
            what: "sdma create",
            errno: e.errno(),
        }
    }
}
