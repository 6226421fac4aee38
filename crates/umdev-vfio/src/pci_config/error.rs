//! Errors of config-space virtualisation.

use rustix::io::Errno;
use umdev_pci::PciError;

/// A failed vfio-pci config access or set-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciConfigError {
    /// The access does not fit in the device's config space.
    #[error("config access of {len} bytes at {offset:#x} is outside the {size}-byte config space")]
    OutOfRange {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
        /// `pdev->cfg_size`.
        size: u16,
    },
    /// vfio-pci drives only functions with a normal (type 0) header.
    #[error("header type {header_type} is not a normal (type 0) header")]
    NotNormalHeader {
        /// Bits 6:0 of the header type register.
        header_type: u8,
    },
    /// The device's config access failed.
    #[error(transparent)]
    Device(#[from] PciError),
}

impl PciConfigError {
    /// The errno Linux returns for the same request.
    pub fn errno(&self) -> Errno {
        match self {
            // drivers/vfio/pci/vfio_pci_config.c vfio_config_do_rw.
            Self::OutOfRange { .. } => Errno::FAULT,
            // drivers/vfio/pci/vfio_pci.c vfio_pci_probe.
            Self::NotNormalHeader { .. } => Errno::INVAL,
            Self::Device(e) => e.errno(),
        }
    }
}
