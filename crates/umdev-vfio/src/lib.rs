//! umdev VFIO layer (drivers/vfio): the device core, vfio-pci config-space
//! virtualisation and the mdev core.

pub mod device;
pub mod irqs;
pub mod mdev;
pub mod pci_config;
pub mod registration;
pub mod vfio_pci;
