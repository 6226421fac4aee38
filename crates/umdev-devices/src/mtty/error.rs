//! Errors of mtty operations, with the errno Linux returns for the same
//! request.

use rustix::io::Errno;

/// A failed mtty operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MttyError {
    /// Not enough ports left in the parent's pool for the type.
    #[error("mtty: {needed} port(s) needed, {available} left")]
    NoPorts {
        /// Ports the type needs.
        needed: u32,
        /// Ports left in the pool.
        available: u32,
    },
    /// The region index is not one of this device's I/O BARs.
    #[error("mtty: BAR{bar} has no I/O region")]
    NoSuchBar {
        /// Region index asked for.
        bar: u32,
    },
    /// The access starts at or past the end of the BAR.
    #[error("mtty: offset {offset:#x} is past the end of BAR{bar} ({size} bytes)")]
    BarOffset {
        /// BAR index.
        bar: u32,
        /// Offset asked for.
        offset: u64,
        /// Size of the BAR.
        size: u64,
    },
    /// The access does not lie inside the config space.
    #[error("mtty: config access of {len} byte(s) at {offset:#x} leaves the {size}-byte space")]
    ConfigRange {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
        /// Size of the config space.
        size: u16,
    },
}

impl MttyError {
    /// The errno Linux returns for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            // samples/vfio-mdev/mtty.c mtty_init_dev(): the driver's own
            // -ENOSPC, which mdev_device_create() passes through.
            Self::NoPorts { .. } => Errno::NOSPC,
            // drivers/vfio/pci/vfio_pci_rdwr.c vfio_pci_bar_rw(): a BAR
            // without a resource has length 0, and `pos >= end` is EINVAL.
            Self::NoSuchBar { .. } | Self::BarOffset { .. } => Errno::INVAL,
            // drivers/vfio/pci/vfio_pci_config.c vfio_config_do_rw():
            // an access not inside cfg_size is EFAULT.
            Self::ConfigRange { .. } => Errno::FAULT,
        }
    }
}
