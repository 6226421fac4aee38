//! The mtty parent: its two device types and the port pool instances are
//! counted from (`mdev_avail_ports` in `samples/vfio-mdev/mtty.c`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::device::MttyDevice;
use super::error::MttyError;
use crate::irq::Interrupts;

/// Ports in the pool of a default parent (the sample's `MAX_MTTYS`).
pub const MAX_MTTYS: u32 = 24;

/// Name of the parent device and of its mdev driver (types are named
/// `mtty-1` and `mtty-2` by the mdev core from it).
pub const MTTY_NAME: &str = "mtty";

/// The mdev `device_api` of every mtty type.
pub const MTTY_DEVICE_API: &str = "vfio-pci";

/// An mtty device type (`struct mtty_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MttyType {
    /// One UART behind BAR0.
    Single,
    /// Two UARTs, behind BAR0 and BAR1.
    Dual,
}

impl MttyType {
    /// Both types, in the order the sample registers them.
    pub const ALL: [MttyType; 2] = [MttyType::Single, MttyType::Dual];

    /// Number of serial ports (and I/O BARs) of a device of this type.
    pub fn nr_ports(self) -> u32 {
        match self {
            Self::Single => 1,
            Self::Dual => 2,
        }
    }

    /// The type's `sysfs_name`: "1" or "2".
    pub fn sysfs_name(self) -> &'static str {
        match self {
            Self::Single => "1",
            Self::Dual => "2",
        }
    }

    /// The type's `pretty_name`, shown in the type's `name` attribute.
    pub fn pretty_name(self) -> &'static str {
        match self {
            Self::Single => "Single port serial",
            Self::Dual => "Dual port serial",
        }
    }

    /// The type whose `sysfs_name` is `name`.
    pub fn from_sysfs_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sysfs_name() == name)
    }
}

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

/// Ports taken from a pool; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct PortReservation {
    pool: Arc<AtomicU32>,
    count: u32,
}

impl PortReservation {
    fn take(pool: &Arc<AtomicU32>, count: u32) -> Result<Self, MttyError> {
        pool.fetch_update(Ordering::AcqRel, Ordering::Acquire, |avail| {
            avail.checked_sub(count)
        })
        .map_err(|available| MttyError::NoPorts {
            needed: count,
            available,
        })?;
        Ok(Self {
            pool: Arc::clone(pool),
            count,
        })
    }
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        self.pool.fetch_add(self.count, Ordering::AcqRel);
    }
}
