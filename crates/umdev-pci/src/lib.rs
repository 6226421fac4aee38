//! umdev platform layer: the simulated PCI hardware.
//!
//! Topology (segments, buses, root ports, switches, endpoints, multifunction
//! devices, SR-IOV VFs), config space with capabilities, the TOML platform
//! description and its embedded default, IOMMU grouping as Linux
//! `pci_device_group` computes it, and drivers with bind / unbind /
//! `driver_override` / `new_id` / `remove_id`.

pub mod bdf;
pub mod hooks;

pub use bdf::Bdf;
pub use hooks::IommuHooks;
