//! The `vfio-pci` driver (drivers/vfio/pci/vfio_pci.c): binds to platform
//! PCI functions the user hands it (driver_override, new_id or bind; it
//! has no static ids) and makes each a VFIO device isolated by its IOMMU
//! group ([`Isolation::Physical`]). It manages DMA itself
//! (`driver_managed_dma`), so it may bind to members of a group a
//! consumer owns.
//!
//! Unbinding a function unregisters its VFIO device: the consumer is sent
//! the REQ interrupt and, since the platform's unbind cannot wait for it
//! as `vfio_unregister_group_dev` does, is then unbound (the device
//! closed, the group released).

mod device;
mod function;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::regs::PCI_HEADER_TYPE_NORMAL;
use umdev_pci::{Bdf, PciDev, PciDeviceId, PciDriver, PciError, Platform};

pub use device::VfioPciDevice;

use crate::device::irq;
use crate::registration::{Isolation, VfioDevice};
use function::{IrqResources, WeakFunction};

/// One bound function.
struct Bound {
    vfio: Arc<VfioDevice>,
    pci: Arc<VfioPciDevice>,
}

/// The vfio-pci driver and its registry of devices.
pub struct VfioPci {
    platform: Weak<Platform>,
    bound: Mutex<BTreeMap<Bdf, Bound>>,
}

impl std::fmt::Debug for VfioPci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPci")
            .field("devices", &self.devices())
            .finish_non_exhaustive()
    }
}

impl VfioPci {
    /// The driver's name.
    pub const NAME: &'static str = "vfio-pci";

    /// Registers the driver with `platform` (`module_init`); EEXIST if a
    /// driver of that name is registered.
    pub fn register(platform: &Arc<Platform>) -> Result<Arc<Self>, PciError> {
        let this = Arc::new(Self {
            platform: Arc::downgrade(platform),
            bound: Mutex::new(BTreeMap::new()),
        });
        platform.register_driver(this.clone())?;
        Ok(this)
    }

    /// The VFIO device of a bound function.
    pub fn device(&self, bdf: Bdf) -> Option<Arc<VfioDevice>> {
        self.bound.lock().get(&bdf).map(|b| b.vfio.clone())
    }

    /// The vfio-pci side of a bound function (where device models'
    /// interrupts go).
    pub fn pci_device(&self, bdf: Bdf) -> Option<Arc<VfioPciDevice>> {
        self.bound.lock().get(&bdf).map(|b| b.pci.clone())
    }

    /// The bound functions, in address order.
    pub fn devices(&self) -> Vec<Bdf> {
        self.bound.lock().keys().copied().collect()
    }

    /// `vfio_pci_probe` + `vfio_pci_core_register_device`.
    fn create(&self, dev: &PciDev<'_>) -> Result<Bound, Errno> {
        // vfio_pci_core_register_device: no IOMMU group, no VFIO device
        // (vfio_group_find_or_alloc without noiommu).
        let group = dev.info().iommu_group.ok_or(Errno::INVAL)?;
        let platform = self.platform.upgrade().ok_or(Errno::NODEV)?;
        let pci = Arc::new(VfioPciDevice::for_function(&platform, dev.bdf())?);
        let vfio = VfioDevice::new(pci.clone(), Isolation::Physical { bdf: dev.bdf() }, group);
        Ok(Bound { vfio, pci })
    }
}

impl VfioPciDevice {
    /// The vfio-pci core device of the platform function `bdf`
    /// (`vfio_pci_core_init_dev`), for vfio-pci and for drivers that wrap
    /// a function (vfio-mdev-pci): its regions and IRQs pass through to the
    /// function. ENODEV if there is no such function.
    pub fn for_function(platform: &Arc<Platform>, bdf: Bdf) -> Result<Self, Errno> {
        let info = platform.function(bdf).ok_or(Errno::NODEV)?;
        let function = WeakFunction::new(platform, bdf).map_err(|e| e.errno())?;
        let irq_res = IrqResources::probe(&function, &info).map_err(|e| e.errno())?;
        VfioPciDevice::new(bdf, function, irq_res).map_err(|e| e.errno())
    }
}

impl PciDriver for VfioPci {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn driver_managed_dma(&self) -> bool {
        true
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        Vec::new()
    }

    fn probe(&self, dev: &PciDev<'_>) -> Result<(), Errno> {
        // vfio_pci_probe: only normal headers.
        if dev.info().header_type() != PCI_HEADER_TYPE_NORMAL {
            return Err(Errno::INVAL);
        }
        let bound = self.create(dev)?;
        self.bound.lock().insert(dev.bdf(), bound);
        Ok(())
    }

    fn remove(&self, dev: &PciDev<'_>) {
        let Some(b) = self.bound.lock().remove(&dev.bdf()) else {
            return;
        };
        // vfio_pci_core_request: ask the user to release the device.
        b.pci.trigger(irq::REQ, 0);
        b.vfio.unregister();
    }
}
