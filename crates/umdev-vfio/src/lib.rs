//! umdev VFIO layer (drivers/vfio): the device core, vfio-pci config-space
//! virtualisation, the mdev core, and the legacy group-centric container
//! ([`container`]: container.c and group.c).

pub mod container;
pub mod device;
pub mod irqs;
pub mod mdev;
pub mod pci_config;
pub mod registration;
pub mod vfio_pci;
