//! vfio-pci on the real stack: the default platform with its DMA test
//! engines attached and the vfio-pci driver registered, ready to take a
//! function over.

use std::sync::Arc;

use umdev_devices::dmatest::DmaTest;
use umdev_iommu::system::System;
use umdev_pci::Bdf;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio::vfio_pci::VfioPci;

use crate::dmatest;

/// The platform, its DMA test engines and vfio-pci.
pub struct Rig {
    /// The platform.
    pub sys: System,
    /// The registered driver.
    pub vfio_pci: Arc<VfioPci>,
    /// The DMA test engines behind the platform's endpoints.
    pub models: Vec<Arc<DmaTest>>,
}

crate::default_is_new!(Rig);

impl Rig {
    /// The default platform with engines and vfio-pci.
    pub fn new() -> Self {
        let (sys, models) = dmatest::engines();
        let vfio_pci = VfioPci::register(&sys.platform).unwrap();
        Rig {
            sys,
            vfio_pci,
            models,
        }
    }
}

impl Rig {
    /// Unbinds `driver` from `dev` and binds vfio-pci via driver_override.
    pub fn to_vfio(&self, driver: &str, dev: Bdf) -> Arc<VfioDevice> {
        self.sys.platform.unbind(driver, dev).unwrap();
        self.to_vfio_unbound(dev)
    }

    /// Binds vfio-pci to a function with no driver.
    pub fn to_vfio_unbound(&self, dev: Bdf) -> Arc<VfioDevice> {
        self.sys
            .platform
            .set_driver_override(dev, VfioPci::NAME)
            .unwrap();
        self.sys.platform.bind(VfioPci::NAME, dev).unwrap();
        self.vfio_pci.device(dev).unwrap()
    }

    /// The DMA test engine behind `dev`.
    pub fn model(&self, dev: Bdf) -> Arc<DmaTest> {
        dmatest::engine(&self.models, dev)
    }

    /// Whether `dev`'s group is attached to its default domain.
    pub fn default_domain(&self, dev: Bdf) -> bool {
        let g = self.sys.iommu.device_group(dev).unwrap();
        Arc::ptr_eq(&g.domain(), &g.default_domain())
    }
}
