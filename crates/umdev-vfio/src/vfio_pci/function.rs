//! What vfio-pci learns about a function when it binds: its config access
//! (through a weak platform handle, so a bound driver does not keep the
//! platform alive), its IRQ counts and where its MSI-X table lives.

use std::sync::{Arc, Weak};

use rustix::io::Errno;
use umdev_pci::regs::*;
use umdev_pci::{Bdf, FunctionInfo, PciError, Platform};

use crate::device::irq;
use crate::pci_config::{PhysFunction, PhysResources, PlatformFunction};

/// A platform function, reached through a weak platform reference.
pub(super) struct WeakFunction {
    platform: Weak<Platform>,
    bdf: Bdf,
    resources: PhysResources,
    config_size: u16,
}

impl WeakFunction {
    /// The function at `bdf` (`ENODEV` if none).
    pub(super) fn new(platform: &Arc<Platform>, bdf: Bdf) -> Result<Self, PciError> {
        let f = PlatformFunction::new(Arc::clone(platform), bdf)?;
        Ok(Self {
            platform: Arc::downgrade(platform),
            bdf,
            resources: f.resources(),
            config_size: f.config_size(),
        })
    }

    /// The platform, while it exists.
    pub(super) fn platform(&self) -> Result<Arc<Platform>, PciError> {
        self.platform.upgrade().ok_or(PciError::NoDevice(self.bdf))
    }
}

impl PhysFunction for WeakFunction {
    fn config_size(&self) -> u16 {
        self.config_size
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        self.platform()?.config_read(self.bdf, offset, buf)
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        self.platform()?.config_write(self.bdf, offset, data)
    }

    fn resources(&self) -> PhysResources {
        self.resources.clone()
    }

    fn try_reset_function(&self) -> Result<(), Errno> {
        // The platform models no reset method (no FLR, PM or bus reset):
        // pci_reset_function's answer for such a device.
        Err(Errno::NOTTY)
    }
}

/// The MSI-X table's place in a BAR (`vdev->msix_bar/offset/size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MsixTable {
    /// BAR number.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The function's interrupt resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IrqResources {
    /// `vfio_pci_get_irq_count` per index.
    pub counts: [u32; irq::NUM as usize],
    /// The MSI-X table, if the function has MSI-X.
    pub msix_table: Option<MsixTable>,
}

fn read16(f: &dyn PhysFunction, at: u16) -> Result<u16, PciError> {
    let mut b = [0; 2];
    f.config_read(at, &mut b)?;
    Ok(u16::from_le_bytes(b))
}

impl IrqResources {
    /// Reads them from the function's config space
    /// (`vfio_pci_get_irq_count`, `vfio_pci_core_enable`).
    pub(super) fn probe(f: &dyn PhysFunction, info: &FunctionInfo) -> Result<Self, PciError> {
        let cap = |id: u8| {
            info.capabilities
                .iter()
                .find(|c| !c.extended && c.id == u16::from(id))
                .map(|c| c.offset)
        };
        let mut pin = [0; 1];
        f.config_read(PCI_INTERRUPT_PIN, &mut pin)?;
        let msi = match cap(PCI_CAP_ID_MSI) {
            Some(at) => 1 << ((read16(f, at + PCI_MSI_FLAGS)? & PCI_MSI_FLAGS_QMASK) >> 1),
            None => 0,
        };
        let (msix, msix_table) = match cap(PCI_CAP_ID_MSIX) {
            Some(at) => {
                let n = u32::from(read16(f, at + PCI_MSIX_FLAGS)? & PCI_MSIX_FLAGS_QSIZE) + 1;
                let mut t = [0; 4];
                f.config_read(at + PCI_MSIX_TABLE, &mut t)?;
                let table = u32::from_le_bytes(t);
                let place = MsixTable {
                    bar: (table & PCI_MSIX_TABLE_BIR) as u8,
                    offset: u64::from(table & !PCI_MSIX_TABLE_BIR),
                    size: u64::from(n) * PCI_MSIX_ENTRY_SIZE,
                };
                (n, Some(place))
            }
            None => (0, None),
        };
        let err = u32::from(info.pcie_type().is_some());
        Ok(Self {
            // A VF has no INTx (`pdev->is_virtfn`).
            counts: [
                u32::from(pin[0] != 0 && !info.is_virtfn()),
                msi,
                msix,
                err,
                1,
            ],
            msix_table,
        })
    }
}

/// `PCI_MSIX_ENTRY_SIZE`.
const PCI_MSIX_ENTRY_SIZE: u64 = 16;
