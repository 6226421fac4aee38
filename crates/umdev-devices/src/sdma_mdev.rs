//! The sdma parent driver: the engine's PCI function as an mdev parent
//! whose mdevs are one work queue each, isolated by PASID (the
//! Scalable-IOV design of the idxd VFIO mdev series, seed 002, with the
//! PASID attach of today's iommufd instead of the aux domain).
//!
//! [`SdmaMdev`] is a PCI driver named "idxd" matching 8086:0b25. It uses
//! the DMA API (no `driver_managed_dma`): the function stays in its
//! default domain, owned by the kernel, and no consumer ever owns its
//! group. Its probe builds an [`Sdma`] on the function's DMA port and
//! registers the function as an mdev parent with one type, `idxd-wq`
//! (`available_instances` = free work queues). Unbinding the function
//! unregisters the parent, which removes its mdevs.
//!
//! Creating an mdev ([`SdmaParent`]) takes a free work queue, allocates a
//! PASID of the function (`iommu_alloc_global_pasid`), programs the queue
//! with it and with the queue's IMS entry, and names the function and the
//! PASID as the mdev's IOMMU backing (`mdev_set_iommu_device`,
//! [`Mdev::set_iommu_pasid`](umdev_vfio::mdev::Mdev::set_iommu_pasid)).
//! The mdev core registers it as an IOMMU-backed VFIO device at that
//! PASID: a consumer binding it gets the PASID alone (not the function's
//! group), and attaching puts the consumer's page table on (function,
//! PASID), so mdevs of one engine serve different consumers at once, each
//! reaching only its own memory. Removing the mdev gives the queue, the
//! IMS entry and the PASID back.
//!
//! The mdev itself is a virtual PCI function ([`SdmaVdev`]; identity,
//! config space, BAR0 and MSI-X in docs/sdma.md).

mod config;
mod error;
mod parent;
mod vdev;

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::Iommu;
use umdev_iommu::system::System;
use umdev_pci::{Bdf, PciDev, PciDeviceId, PciDriver, PciError};
use umdev_vfio::mdev::{Mdev, MdevBus, MdevParent, MdevTypeDesc, PciParents};

pub use config::{
    SDMA_MDEV_BAR0_SIZE, SDMA_MDEV_CLASS, SDMA_MDEV_CONFIG_SIZE, SDMA_MDEV_DEVICE_ID,
    SDMA_MDEV_MSIX_CAP, SDMA_MDEV_MSIX_PBA, SDMA_MDEV_MSIX_TABLE, SDMA_MDEV_MSIX_VECTORS,
    SDMA_MDEV_REVISION, SDMA_MDEV_SUBSYSTEM_ID, SDMA_MDEV_VENDOR_ID,
};
pub use error::SdmaMdevError;
pub use parent::SdmaParent;
pub use vdev::SdmaVdev;

use crate::sdma::{Sdma, SdmaConfig};
use parent::ImsRouter;

/// The engine's PCI IDs (Intel DSA).
pub const SDMA_PCI_ID: PciDeviceId = PciDeviceId::device(0x8086, 0x0b25);

/// The sdma PCI driver and the parents it registered.
pub struct SdmaMdev {
    iommu: Arc<Iommu>,
    bus: Arc<MdevBus>,
    config: SdmaConfig,
    bound: PciParents<SdmaParent>,
}

impl std::fmt::Debug for SdmaMdev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdmaMdev")
            .field("parents", &self.parents())
            .finish_non_exhaustive()
    }
}

impl SdmaMdev {
    /// The PCI driver's name, the parent's `dev_driver_string` (so the
    /// type directory is `idxd-wq`) and the mdev driver's name.
    pub const NAME: &'static str = "idxd";
    /// The type's `sysfs_name`.
    pub const TYPE: &'static str = "wq";

    /// Registers the driver with `system`'s platform, binding it to every
    /// unbound engine; parents go on `bus`, each engine shaped by
    /// `config`. EEXIST if a driver named "idxd" is registered.
    pub fn register(
        system: &System,
        bus: &Arc<MdevBus>,
        config: SdmaConfig,
    ) -> Result<Arc<Self>, PciError> {
        let this = Arc::new(Self {
            iommu: system.iommu.clone(),
            bus: bus.clone(),
            config,
            bound: PciParents::new(),
        });
        system.platform.register_driver(this.clone())?;
        Ok(this)
    }

    /// The bound functions, in address order.
    pub fn parents(&self) -> Vec<Bdf> {
        self.bound.bdfs()
    }

    /// The mdev parent of the bound function `bdf`.
    pub fn parent(&self, bdf: Bdf) -> Option<Arc<MdevParent>> {
        self.bound.parent(bdf)
    }

    /// The parent driver of the bound function `bdf` (its engine).
    pub fn parent_driver(&self, bdf: Bdf) -> Option<Arc<SdmaParent>> {
        self.bound.driver(bdf)
    }

    /// The virtual device of an sdma mdev; `None` for another driver's.
    pub fn device(&self, mdev: &Mdev) -> Option<Arc<SdmaVdev>> {
        self.bound.driver_of(mdev)?.device(mdev.uuid())
    }

    fn probe_function(&self, bdf: Bdf) -> Result<(), SdmaMdevError> {
        let dma = self
            .iommu
            .dma_for(bdf)
            .map_err(|errno| SdmaMdevError::NoDmaPort { bdf, errno })?;
        let router = Arc::new(ImsRouter::default());
        let sdma = Arc::new(Sdma::new(dma, router.clone(), self.config)?);
        let driver = Arc::new(SdmaParent::new(bdf, self.iommu.clone(), sdma, router));
        let types = vec![MdevTypeDesc::new(
            Self::TYPE,
            Some("sdma dedicated work queue"),
        )];
        Ok(self
            .bound
            .register(&self.bus, bdf, Self::NAME, driver, types)?)
    }
}

impl PciDriver for SdmaMdev {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// A DMA-API driver: the function stays in its default domain.
    fn driver_managed_dma(&self) -> bool {
        false
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        vec![SDMA_PCI_ID]
    }

    fn probe(&self, dev: &PciDev<'_>) -> Result<(), Errno> {
        self.probe_function(dev.bdf()).map_err(|e| e.errno())
    }

    /// The parent is unregistered first (its mdevs go), then the queues.
    fn remove(&self, dev: &PciDev<'_>) {
        if let Some(driver) = self.bound.unregister(dev.bdf()) {
            driver.shutdown();
        }
    }
}
