//! mdev-pci on the real stack: the default platform with the mdev bus and
//! the mdev-pci driver registered.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_devices::mdev_pci::MdevPci;
use umdev_iommu::system::System;
use umdev_pci::Bdf;
use umdev_vfio::mdev::{Mdev, MdevBus, MdevType};

use crate::pci::nvme;

/// The UUID of seed 004's mdev.
pub const UUID_A: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003";

/// The platform, the mdev bus and mdev-pci.
pub struct Rig {
    /// The platform.
    pub sys: System,
    /// The mdev bus.
    pub bus: Arc<MdevBus>,
    /// The registered driver.
    pub drv: Arc<MdevPci>,
}

crate::default_is_new!(Rig);

impl Rig {
    /// The default platform with mdev-pci registered.
    pub fn new() -> Self {
        let sys = System::default_platform().unwrap();
        let bus = MdevBus::new();
        let drv = MdevPci::register(&sys.platform, &bus).unwrap();
        Rig { sys, bus, drv }
    }
}

impl Rig {
    /// Binds mdev-pci to a function with no driver via driver_override.
    pub fn bind_override(&self, dev: Bdf) -> Result<(), Errno> {
        let p = &self.sys.platform;
        p.set_driver_override(dev, MdevPci::NAME).unwrap();
        p.bind(MdevPci::NAME, dev).map_err(|e| e.errno())
    }

    /// The parent's only type.
    pub fn the_type(&self, dev: Bdf) -> MdevType {
        let types = self.drv.parent(dev).unwrap().types();
        assert_eq!(types.len(), 1, "one type per wrapped function");
        types[0].clone()
    }

    /// Unbinds nvme from the NVMe function and binds mdev-pci by
    /// driver_override; returns its mdev.
    pub fn nvme_mdev(&self) -> Arc<Mdev> {
        self.sys.platform.unbind("nvme", nvme()).unwrap();
        self.bind_override(nvme()).unwrap();
        self.the_type(nvme())
            .create(UUID_A.parse().unwrap())
            .unwrap()
    }
}
