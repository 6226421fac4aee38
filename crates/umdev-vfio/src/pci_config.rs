//! vfio-pci config-space virtualisation (drivers/vfio/pci/vfio_pci_config.c).
