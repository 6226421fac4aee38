//! mdev-pci: a PCI function wrapped as a mediated device, after the
//! vfio-mdev-pci sample ("vfio_pci: wrap pci device as a mediated device",
//! never merged) with every fix from its review.
//!
//! The [`MdevPci`] PCI driver has no static ids: the user binds it with
//! `new_id`, `driver_override` + `bind`, as vfio-pci. It manages DMA itself
//! (`driver_managed_dma`). Its probe refuses functions without a type 0
//! header (EINVAL) and PFs with VFs enabled (EBUSY), then registers the
//! function as an mdev parent on the [`MdevBus`] with one type, named after
//! the function's IDs ([`type_name`]). The type has one instance, counted
//! by the driver with `atomic_dec_if_positive`: a create past it fails
//! ENOSPC, a remove gives it back. Unbinding the function unregisters the
//! parent (its mdev goes), so the function can be bound again.
//!
//! # Isolation and groups
//!
//! The mdev's IOMMU device ([`Mdev::iommu_device`]) is the wrapped
//! function itself, for its whole requester ID: the mdev core registers the
//! mdev as a [`VfioDevice`] with [`IommuBacked`](umdev_vfio::registration::Isolation::IommuBacked) and no PASID
//! ([`Mdev::registration`], [`MdevPci::vfio_device`]). The mdev has its own singleton group number
//! ([`Mdev::group`], what [`VfioDevice::group`] reports), but binding it to
//! a consumer binds the wrapped function as an iommufd device, which claims
//! DMA ownership of the *wrapped function's IOMMU group*: that group is
//! what the consumer owns (the function "donates" it). So the usual group
//! rules apply to the function: a DMA-API driver cannot bind to another
//! member of an owned group (EBUSY), and another consumer cannot bind a
//! device of the same group: EBUSY from [`VfioDevice::bind_iommufd`], which
//! turns the ownership claim's EPERM into the answer of the
//! vfio-mdev-pci series' group tracking (the second container's attach of
//! the backing group fails EBUSY, kernel-semantics §4.3), since the
//! consumer sees only the mdev and its own singleton group.
//!
//! Regions and IRQs pass through to the function ([`VfioPciDevice`], the
//! vfio-pci core device: config virtualisation, BARs, INTx/MSI/MSI-X/ERR/
//! REQ). A device model's interrupts reach the consumer through
//! [`MdevPci::pci_device`].

mod error;
mod wrapped;

use std::sync::{Arc, Weak};

use rustix::io::Errno;
use umdev_pci::regs::PCI_HEADER_TYPE_NORMAL;
use umdev_pci::{Bdf, FunctionInfo, PciDev, PciDeviceId, PciDriver, PciError, Platform};
use umdev_vfio::mdev::{Mdev, MdevBus, MdevParent, MdevTypeDesc, PciParents};
use umdev_vfio::registration::VfioDevice;
use umdev_vfio::vfio_pci::VfioPciDevice;

pub use error::MdevPciError;
use wrapped::Wrapped;

/// The type's `sysfs_name` (and `name`):
/// `"%04x:%04x:%04x:%04x:%06x:%02x"` of vendor, device, subsystem vendor,
/// subsystem device, 24-bit class and revision, as Alex Williamson's
/// "samples: refine vfio-mdev-pci driver" names it (a type names a
/// software-compatible device, so as specifically as PCI allows).
pub fn type_name(info: &FunctionInfo) -> String {
    format!(
        "{:04x}:{:04x}:{:04x}:{:04x}:{:06x}:{:02x}",
        info.vendor,
        info.device,
        info.subsystem_vendor,
        info.subsystem_device,
        info.class,
        info.revision
    )
}

/// The mdev-pci PCI driver and the parents it registered.
pub struct MdevPci {
    platform: Weak<Platform>,
    bus: Arc<MdevBus>,
    bound: PciParents<Wrapped>,
}

impl std::fmt::Debug for MdevPci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdevPci")
            .field("parents", &self.parents())
            .finish_non_exhaustive()
    }
}

impl MdevPci {
    /// The driver's name (PCI driver, mdev parent driver string and mdev
    /// driver).
    pub const NAME: &'static str = "mdev-pci";

    /// Registers the driver with `platform`; its parents go on `bus`.
    /// EEXIST if a driver of that name is registered.
    pub fn register(platform: &Arc<Platform>, bus: &Arc<MdevBus>) -> Result<Arc<Self>, PciError> {
        let this = Arc::new(Self {
            platform: Arc::downgrade(platform),
            bus: bus.clone(),
            bound: PciParents::new(),
        });
        platform.register_driver(this.clone())?;
        Ok(this)
    }

    /// The functions bound (each a registered parent), in address order.
    pub fn parents(&self) -> Vec<Bdf> {
        self.bound.bdfs()
    }

    /// The mdev parent registered for the bound function `bdf`.
    pub fn parent(&self, bdf: Bdf) -> Option<Arc<MdevParent>> {
        self.bound.parent(bdf)
    }

    /// The registered VFIO device of an mdev-pci mdev, for a consumer to
    /// bind: [`Mdev::registration`], [`IommuBacked`](umdev_vfio::registration::Isolation::IommuBacked)
    /// by the wrapped function's whole RID (see the module docs for the
    /// group rules). It is unregistered when the mdev is removed. `None`
    /// for an mdev of another driver.
    pub fn vfio_device(&self, mdev: &Mdev) -> Option<Arc<VfioDevice>> {
        self.pci_device(mdev)?;
        mdev.registration()
    }

    /// The pass-through device of an mdev-pci mdev, where the wrapped
    /// function's device model sends its interrupts.
    pub fn pci_device(&self, mdev: &Mdev) -> Option<Arc<VfioPciDevice>> {
        self.bound.driver_of(mdev)?.pci_device(mdev.uuid())
    }

    /// `vfio_mdev_pci_driver_probe`.
    fn probe_function(&self, dev: &PciDev<'_>) -> Result<(), MdevPciError> {
        let bdf = dev.bdf();
        let info = dev.info();
        if info.header_type() != PCI_HEADER_TYPE_NORMAL {
            return Err(MdevPciError::HeaderType {
                bdf,
                header_type: info.header_type(),
            });
        }
        let num_vfs = dev.num_vfs();
        if num_vfs != 0 {
            return Err(MdevPciError::VfsEnabled { bdf, num_vfs });
        }
        if info.iommu_group.is_none() {
            return Err(MdevPciError::NoIommuGroup { bdf });
        }
        let wrapped = Arc::new(Wrapped::new(bdf, self.platform.clone()));
        let types = vec![MdevTypeDesc::new(&type_name(&info), None)];
        Ok(self
            .bound
            .register(&self.bus, bdf, Self::NAME, wrapped, types)?)
    }
}

impl PciDriver for MdevPci {
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
        self.probe_function(dev).map_err(|e| e.errno())
    }

    /// `vfio_mdev_pci_driver_remove`: `mdev_unregister_device` first (the
    /// sample's v1 forgot, so the function could not be bound again).
    fn remove(&self, dev: &PciDev<'_>) {
        self.bound.unregister(dev.bdf());
    }
}
