//! The mtty parent: its two device types and the port pool instances are
//! counted from (`mdev_avail_ports` in `samples/vfio-mdev/mtty.c`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::device::{MttyDevice, PortReservation};
use super::error::MttyError;
use super::types::MttyType;
use crate::irq::Interrupts;

/// Ports in the pool of a default parent (the sample's `MAX_MTTYS`).
pub const MAX_MTTYS: u32 = 24;

/// Name of the parent device and of its mdev driver (types are named
/// `mtty-1` and `mtty-2` by the mdev core from it).
pub const MTTY_NAME: &str = "mtty";

/// The mdev `device_api` of every mtty type.
pub const MTTY_DEVICE_API: &str = "vfio-pci";

/// The mtty parent: a pool of ports shared by all its devices.
///
/// Creating a device takes its type's ports from the pool (failing with
/// ENOSPC, the sample's own error, when too few are left); the ports go
/// back when the device is dropped, as `mtty_release_dev()` does when the
/// last reference to the VFIO device goes. The count is a lock-free
/// compare-and-swap loop like the sample's `atomic_try_cmpxchg`.
#[derive(Debug)]
pub struct MttyParent {
    avail: Arc<AtomicU32>,
}

impl MttyParent {
    /// A parent with a pool of `ports` ports.
    pub fn new(ports: u32) -> Self {
        Self {
            avail: Arc::new(AtomicU32::new(ports)),
        }
    }

    /// Ports not held by any device.
    pub fn available_ports(&self) -> u32 {
        self.avail.load(Ordering::Acquire)
    }

    /// How many more devices of `ty` could be created now
    /// (`mtty_get_available()`).
    pub fn available_instances(&self, ty: MttyType) -> u32 {
        self.available_ports() / ty.nr_ports()
    }

    /// Creates a device of `ty` whose interrupts go to `irq`
    /// (`mtty_init_dev()`).
    pub fn create(&self, ty: MttyType, irq: Arc<dyn Interrupts>) -> Result<MttyDevice, MttyError> {
        let ports = PortReservation::take(&self.avail, ty.nr_ports())?;
        Ok(MttyDevice::new(ty, irq, ports))
    }
}

impl Default for MttyParent {
    /// A parent with the sample's [`MAX_MTTYS`] ports.
    fn default() -> Self {
        Self::new(MAX_MTTYS)
    }
}
