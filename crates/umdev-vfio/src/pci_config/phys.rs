//! The physical function under vfio-pci: its config space as the PCI core
//! lets a driver access it (`pci_user_{read,write}_config_*`) and the
//! resources the core recorded for it at enumeration (`struct pci_dev`).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_pci::regs::{
    PCI_BASE_ADDRESS_MEM_PREFETCH, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_BASE_ADDRESS_SPACE_IO,
    PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE,
};
use umdev_pci::{Bdf, PciError, Platform};

/// What a BAR decodes (`IORESOURCE_IO` / `IORESOURCE_MEM[_64]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory.
    Mem32 {
        /// Prefetchable.
        prefetchable: bool,
    },
    /// 64-bit memory; the next BAR register holds the upper half.
    Mem64 {
        /// Prefetchable.
        prefetchable: bool,
    },
}

/// One assigned BAR resource (`pci_resource_len` and flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarResource {
    /// BAR register number, 0..6.
    pub index: u8,
    /// Size in bytes, a power of two.
    pub size: u64,
    /// What it decodes.
    pub kind: BarKind,
}

impl BarResource {
    /// The flag bits of the BAR register (`vfio_generate_bar_flags`).
    pub fn flags(&self) -> u32 {
        match self.kind {
            BarKind::Io => PCI_BASE_ADDRESS_SPACE_IO,
            BarKind::Mem32 { prefetchable } => prefetch_flag(prefetchable),
            BarKind::Mem64 { prefetchable } => {
                prefetch_flag(prefetchable) | PCI_BASE_ADDRESS_MEM_TYPE_64
            }
        }
    }
}

fn prefetch_flag(prefetchable: bool) -> u32 {
    if prefetchable {
        PCI_BASE_ADDRESS_MEM_PREFETCH
    } else {
        0
    }
}

/// What the PCI core knows about a function beyond its config registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysResources {
    /// `pdev->vendor` (a VF's register reads 0xffff; this is its PF's).
    pub vendor: u16,
    /// `pdev->device` (a VF's is the PF's VF device ID).
    pub device: u16,
    /// Header layout, bits 6:0 of the header type register.
    pub header_type: u8,
    /// `pdev->is_virtfn`: an SR-IOV VF, whose Memory Space Enable lives
    /// in the PF (`pdev->no_command_memory`).
    pub is_virtfn: bool,
    /// Assigned BARs.
    pub bars: Vec<BarResource>,
    /// Size of the expansion ROM, if the function has one.
    pub rom_size: Option<u64>,
}

impl PhysResources {
    /// The resource of BAR register `index`.
    pub fn bar(&self, index: u16) -> Option<&BarResource> {
        self.bars.iter().find(|b| u16::from(b.index) == index)
    }
}

/// Access to the function vfio-pci drives.
pub trait PhysFunction: Send + Sync {
    /// `pdev->cfg_size`: 256 for conventional PCI, 4096 for PCIe.
    fn config_size(&self) -> u16;

    /// Reads device config space (`pci_user_read_config_*`).
    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError>;

    /// Writes device config space (`pci_user_write_config_*`).
    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError>;

    /// The resources recorded at enumeration.
    fn resources(&self) -> PhysResources;

    /// `pci_try_reset_function`, for a function level reset the user
    /// asked for through the PCIe device control register.
    fn try_reset_function(&self) -> Result<(), Errno>;
}

/// A function of the simulated platform.
pub struct PlatformFunction {
    platform: Arc<Platform>,
    bdf: Bdf,
    resources: PhysResources,
    config_size: u16,
}

impl PlatformFunction {
    /// The function at `bdf`; `ENODEV` if there is none.
    pub fn new(platform: Arc<Platform>, bdf: Bdf) -> Result<Self, PciError> {
        let info = platform.function(bdf).ok_or(PciError::NoDevice(bdf))?;
        let bars = info
            .bars
            .iter()
            .map(|b| BarResource {
                index: b.index,
                size: b.size.0,
                kind: if b.mem64 {
                    BarKind::Mem64 {
                        prefetchable: b.prefetchable,
                    }
                } else {
                    BarKind::Mem32 {
                        prefetchable: b.prefetchable,
                    }
                },
            })
            .collect();
        let config_size = if info.pcie_type().is_some() {
            PCI_CFG_SPACE_EXP_SIZE
        } else {
            PCI_CFG_SPACE_SIZE
        };
        let resources = PhysResources {
            vendor: info.vendor,
            device: info.device,
            header_type: info.header_type(),
            is_virtfn: info.is_virtfn(),
            bars,
            // Platform functions have no expansion ROM.
            rom_size: None,
        };
        Ok(Self {
            platform,
            bdf,
            resources,
            config_size,
        })
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }
}

impl PhysFunction for PlatformFunction {
    fn config_size(&self) -> u16 {
        self.config_size
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        self.platform.config_read(self.bdf, offset, buf)
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        self.platform.config_write(self.bdf, offset, data)
    }

    fn resources(&self) -> PhysResources {
        self.resources.clone()
    }

    fn try_reset_function(&self) -> Result<(), Errno> {
        // The platform models no reset method yet: pci_reset_function's
        // answer for a device without one.
        Err(Errno::NOTTY)
    }
}
