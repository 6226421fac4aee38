//! The mtty parent driver of the mdev core (the sample's `mtty_driver`,
//! `mtty_dev` and `mtty_types`).
//!
//! The parent is a non-PCI device named "mtty" of class "mtty" (the
//! sample's `/sys/devices/virtual/mtty/mtty`); with neither driver nor bus
//! its `dev_driver_string` is the class, so the type directories are
//! `mtty-1` and `mtty-2`. Instances are counted by the driver from the
//! port pool (`get_available`), and a create the pool cannot satisfy fails
//! with the driver's own ENOSPC. The mdevs have no IOMMU device: they use
//! vendor-defined isolation (the sample's
//! `vfio_register_emulated_iommu_dev`), and do no DMA.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_vfio::device::{VfioDeviceOps, VfioError};
use umdev_vfio::mdev::{
    Accounting, Mdev, MdevBus, MdevDriver, MdevError, MdevParent, MdevType, MdevTypeDesc, MdevUuid,
    ParentDevice,
};

use super::vfio::MttyVfio;
use super::{MTTY_DEVICE_API, MTTY_NAME, MttyParent, MttyType};

/// The mtty mdev driver: a port pool and the devices created from it.
#[derive(Debug)]
pub struct MttyMdevDriver {
    pool: MttyParent,
    devices: Mutex<HashMap<MdevUuid, Arc<MttyVfio>>>,
}

impl MttyMdevDriver {
    /// A driver creating devices from `pool`.
    pub fn new(pool: MttyParent) -> Self {
        Self {
            pool,
            devices: Mutex::new(HashMap::new()),
        }
    }

    /// The port pool.
    pub fn pool(&self) -> &MttyParent {
        &self.pool
    }

    /// The type descriptors, in [`MttyType::ALL`] order (type index `i` is
    /// `MttyType::ALL[i]`).
    pub fn types() -> Vec<MdevTypeDesc> {
        MttyType::ALL
            .iter()
            .map(|t| MdevTypeDesc::new(t.sysfs_name(), Some(t.pretty_name())))
            .collect()
    }

    /// The mtty type of type index `index`.
    fn mtty_type(index: usize) -> Option<MttyType> {
        MttyType::ALL.get(index).copied()
    }
}

impl MdevDriver for MttyMdevDriver {
    fn name(&self) -> &str {
        MTTY_NAME
    }

    fn device_api(&self) -> &str {
        MTTY_DEVICE_API
    }

    fn accounting(&self) -> Accounting {
        Accounting::GetAvailable
    }

    /// `mtty_get_available`: free ports divided by the type's ports.
    fn get_available(&self, mtype: &MdevType) -> u32 {
        Self::mtty_type(mtype.index()).map_or(0, |ty| self.pool.available_instances(ty))
    }

    /// `mtty_probe` + `mtty_init_dev`: ENOSPC when the pool is short.
    fn create(&self, mdev: &Mdev) -> Result<Arc<dyn VfioDeviceOps>, VfioError> {
        // The core only creates mdevs of the types registered with it.
        let ty = Self::mtty_type(mdev.type_index()).ok_or(VfioError::Errno {
            what: "unknown mtty type",
            errno: rustix::io::Errno::INVAL,
        })?;
        let vfio = MttyVfio::new(&self.pool, ty).map_err(|e| VfioError::Errno {
            what: "mtty ports",
            errno: e.errno(),
        })?;
        self.devices.lock().insert(mdev.uuid(), vfio.clone());
        Ok(vfio)
    }

    /// `mtty_remove`: the device is unplugged and its ports go back.
    fn remove(&self, mdev: &Mdev) {
        let vfio = self.devices.lock().remove(&mdev.uuid());
        if let Some(vfio) = vfio {
            vfio.unplug();
        }
    }
}

/// Registers the mtty parent, with a default pool of
/// [`super::MAX_MTTYS`] ports, on `bus` (`mtty_dev_init`); EEXIST if an
/// "mtty" parent is already registered there.
pub fn register_mtty(bus: &Arc<MdevBus>) -> Result<Arc<MdevParent>, MdevError> {
    bus.register_parent(
        ParentDevice::named(MTTY_NAME, MTTY_NAME),
        Arc::new(MttyMdevDriver::new(MttyParent::default())),
        MttyMdevDriver::types(),
    )
}
