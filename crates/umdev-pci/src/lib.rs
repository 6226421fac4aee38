//! umdev platform layer: the simulated PCI hardware and the kernel's PCI
//! core as drivers see it.
//!
//! - [`spec`]: the TOML platform description (segments and buses follow
//!   from the addresses; root ports, switch ports, PCIe-to-PCI bridges,
//!   endpoints, multifunction devices, SR-IOV PFs), its IOMMU units
//!   ([`IommuUnitSpec`]) and its built-in drivers. A `[[function]]` table
//!   is read into a [`FunctionSpec`], the one description of a function,
//!   which the platform keeps and hands out (in [`FunctionInfo`], with the
//!   live state). [`Platform::default_platform`] loads the embedded
//!   `platforms/default.toml`; errors name the file, line, column and field.
//! - [`config`], [`header`], [`caps`], [`regs`]: 4 KiB config space per
//!   function with per-bit RW / RO / RW1C masks, type 0 and type 1 headers,
//!   BAR sizing, PM / MSI / MSI-X / PCIe capabilities and the ACS, ATS,
//!   PRI, PASID and SR-IOV extended capabilities at their `pci_regs.h`
//!   offsets.
//! - IOMMU groups computed as Linux `pci_device_group` does (DMA aliases,
//!   ACS on the upstream path, multifunction devices without ACS,
//!   PCIe-to-PCI bridges), with group numbers allocated lowest-free in
//!   probe order, VFs included as they come and go.
//! - MMIO: [`BarHandler`] models behind memory BARs, reached through
//!   [`Platform::bar_read`] / [`Platform::bar_write`] while the function
//!   decodes memory (reads all ones otherwise).
//! - [`driver`] and binding: [`PciDriver`] with `driver_managed_dma`,
//!   bind / unbind / `driver_override` / `new_id` / `remove_id` /
//!   `drivers_probe` and `sriov_numvfs` with Linux's errnos ([`PciError`]).
//!   DMA-API drivers ask the IOMMU layer for the default domain through
//!   [`IommuHooks`] before probing.
//!
//! [`Platform`] is `Send + Sync`; its documentation states the locking rules
//! that driver callbacks and IOMMU hooks rely on.

pub mod bdf;
mod bind;
pub mod caps;
pub mod config;
mod describe;
mod device;
pub mod driver;
mod error;
mod function;
mod group;
pub mod header;
pub mod hooks;
mod info;
mod load;
mod mmio;
mod platform;
pub mod regs;
pub mod spec;
mod sriov;
mod topology;
mod unit;

pub use bdf::Bdf;
pub use caps::CapInfo;
pub use device::PciDev;
pub use driver::{DeviceIds, DriverInfo, PciDeviceId, PciDriver, SriovConfigure};
pub use error::PciError;
pub use group::REQ_ACS_FLAGS;
pub use hooks::{BarHandler, IommuHooks};
pub use info::FunctionInfo;
pub use load::PlatformError;
pub use platform::{DEFAULT_PLATFORM_TOML, Platform};
pub use spec::{FunctionKind, FunctionSpec};
pub use unit::IommuUnitSpec;
