//! An mtty device as a VFIO device: the sample's `vfio_device_ops`
//! (`mtty_read`, `mtty_write`, `mtty_ioctl`) over an [`MttyDevice`], with
//! the vfio-pci SET_IRQS rules of [`IrqTable`].
//!
//! - Regions follow the vfio-pci layout: CONFIG is the 256-byte config
//!   space, BAR0 (and BAR1 for the dual-port type) the ports' 8-byte I/O
//!   BARs, every other region has size 0 (`mtty_get_region_info`). Unlike
//!   the sample, an empty region reports no READ/WRITE flags, as vfio-pci
//!   does for a missing BAR.
//! - IRQs follow `mtty_get_irq_info`: INTx with one vector (EVENTFD,
//!   MASKABLE, AUTOMASKED), MSI with one vector (EVENTFD, NORESIZE); MSI-X,
//!   ERR and REQ have no vectors (flags as vfio-pci reports them).
//! - The model's interrupts go through the table: under INTx they are
//!   automasked, and the model's level ([`MttyDevice::irq_pending`]) is the
//!   INTx line, so a condition that arrived while masked fires again on
//!   UNMASK (`vfio_pci_intx_unmask_handler`). The command register's INTx
//!   disable bit masks INTx like `vfio_basic_config_write`.
//! - Close drops every trigger and resets the device, as
//!   `vfio_pci_core_disable` resets a function it can reset, so the next
//!   consumer finds none of this one's data in the FIFOs.
//! - [`MttyVfio::unplug`] is `vfio_unregister_group_dev` +
//!   `mtty_release_dev`: the device is closed and dropped, its ports go back
//!   to the pool, and later accesses fail with ENODEV.

use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::RwLock;
use rustix::io::Errno;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_INTX_DISABLE};
use umdev_vfio::device::{
    DeviceInfo, IrqInfo, RegionInfo, SetIrqs, VfioDeviceOps, VfioError, irq, region,
};
use umdev_vfio::irqs::IrqTable;

use super::{MttyDevice, MttyError, MttyParent, MttyType};
use crate::irq::Interrupts;
use crate::vpci;

/// Vectors per VFIO IRQ index (`mtty_get_irq_info`): INTx 1, MSI 1.
const MTTY_IRQ_COUNTS: [u32; irq::NUM as usize] = [1, 1, 0, 0, 0];

/// An [`MttyDevice`] exposed as a VFIO device (the sample's
/// `struct mdev_state` with its `vfio_device`).
pub struct MttyVfio {
    /// `None` once unplugged.
    device: RwLock<Option<MttyDevice>>,
    irqs: IrqTable,
}

/// Carries the model's interrupts into the VFIO interrupt table (the
/// sample's `mtty_trigger_interrupt`).
#[derive(Default)]
struct IrqLink(OnceLock<Weak<MttyVfio>>);

impl Interrupts for IrqLink {
    fn trigger(&self, vector: u32) {
        if let Some(vfio) = self.0.get().and_then(Weak::upgrade) {
            vfio.irqs.raise(vector);
        }
    }
}

/// The model's failures as VFIO errors, keeping their errno.
fn model_err(what: &'static str) -> impl Fn(MttyError) -> VfioError {
    move |e| VfioError::Errno {
        what,
        errno: e.errno(),
    }
}

impl MttyVfio {
    /// Creates a device of `ty` from `parent`'s port pool
    /// (`mtty_init_dev`): ENOSPC when too few ports are left.
    pub fn new(parent: &MttyParent, ty: MttyType) -> Result<Arc<Self>, MttyError> {
        let link = Arc::new(IrqLink::default());
        let device = parent.create(ty, link.clone())?;
        let vfio = Arc::new_cyclic(|me: &Weak<Self>| {
            let me = me.clone();
            // The INTx line: the model's level. Called under the table's
            // lock; the model raises interrupts only after dropping its
            // own, so the order is always table → model.
            let line = move || me.upgrade().is_some_and(|v| v.irq_pending());
            Self {
                device: RwLock::new(Some(device)),
                irqs: IrqTable::new(MTTY_IRQ_COUNTS, Box::new(line)),
            }
        });
        // Set once, right after construction; only this function sets it.
        let _ = link.0.set(Arc::downgrade(&vfio));
        Ok(vfio)
    }

    /// The device's type, or `None` once unplugged.
    pub fn mtty_type(&self) -> Option<MttyType> {
        self.device
            .read_recursive()
            .as_ref()
            .map(MttyDevice::mtty_type)
    }

    /// The device's interrupt level (false once unplugged).
    fn irq_pending(&self) -> bool {
        self.device
            .read_recursive()
            .as_ref()
            .is_some_and(MttyDevice::irq_pending)
    }

    /// Runs `f` on the device; ENODEV once it is unplugged. A recursive
    /// read lock, because the model's interrupt reaches the table, whose
    /// unmask reads the line again.
    fn with_device<R>(&self, f: impl FnOnce(&MttyDevice) -> R) -> Result<R, VfioError> {
        let device = self.device.read_recursive();
        let device = device.as_ref().ok_or(VfioError::Errno {
            what: "mtty device removed",
            errno: Errno::NODEV,
        })?;
        Ok(f(device))
    }

    /// `vfio_basic_config_write`: INTx disable in the command register
    /// masks INTx; clearing it unmasks (and refires if the line is up).
    fn sync_intx_disable(&self, dev: &MttyDevice) {
        let mut cmd = [0u8; 2];
        if dev.config_read(u64::from(PCI_COMMAND), &mut cmd).is_ok() {
            let disabled = u16::from_le_bytes(cmd) & PCI_COMMAND_INTX_DISABLE != 0;
            self.irqs.set_virq_disabled(disabled);
        }
    }

    /// `vfio_unregister_group_dev` + `mtty_release_dev`: drops every
    /// interrupt trigger and the device itself, giving its ports back to
    /// the pool. Later region and reset calls fail with ENODEV.
    /// Idempotent.
    pub fn unplug(&self) {
        self.irqs.disable_all();
        let device = self.device.write().take();
        drop(device);
    }
}

impl fmt::Debug for MttyVfio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MttyVfio")
            .field("type", &self.mtty_type())
            .field("irqs", &self.irqs)
            .finish()
    }
}

impl VfioDeviceOps for MttyVfio {
    /// `mtty_get_device_info`: a PCI device with reset, all vfio-pci
    /// regions and IRQ indexes.
    fn info(&self) -> DeviceInfo {
        vpci::device_info()
    }

    /// `mtty_get_region_info`: EINVAL past `VFIO_PCI_NUM_REGIONS`.
    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        let size = self.with_device(|dev| match index {
            region::CONFIG => dev.config_size(),
            region::BAR0..=region::BAR5 => dev.bar_size(index),
            _ => 0,
        })?;
        vpci::region_info(index, size)
    }

    /// `mtty_read`: config space (EFAULT outside it), a port's registers
    /// (EINVAL for a BAR without a port or an offset past it; cut short at
    /// its end); EINVAL for every other region.
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, VfioError> {
        self.with_device(|dev| match index {
            region::CONFIG => dev
                .config_read(offset, buf)
                .map_err(model_err("mtty config read")),
            region::BAR0..=region::BAR5 => dev
                .bar_read(index, offset, buf)
                .map_err(model_err("mtty BAR read")),
            _ => Err(VfioError::NoRegion { index }),
        })?
    }

    /// `mtty_write`, with the errnos of [`Self::region_read`].
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<usize, VfioError> {
        self.with_device(|dev| match index {
            region::CONFIG => {
                let n = dev
                    .config_write(offset, data)
                    .map_err(model_err("mtty config write"))?;
                self.sync_intx_disable(dev);
                Ok(n)
            }
            region::BAR0..=region::BAR5 => dev
                .bar_write(index, offset, data)
                .map_err(model_err("mtty BAR write")),
            _ => Err(VfioError::NoRegion { index }),
        })?
    }

    /// `mtty_get_irq_info`, with vfio-pci's flags.
    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        vpci::irq_info(&MTTY_IRQ_COUNTS, index)
    }

    /// `mtty_set_irqs`, with vfio-pci's rules (one type at a time, INTx
    /// automask, loopback triggers).
    fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError> {
        self.with_device(|_| ())?;
        self.irqs.set_irqs(req)
    }

    /// `mtty_reset`: config space and UARTs to power-on; the interrupt
    /// triggers stay (as VFIO_DEVICE_RESET leaves them), INTx disable
    /// follows the reset command register.
    fn reset(&self) -> Result<(), VfioError> {
        self.with_device(|dev| {
            dev.reset();
            self.sync_intx_disable(dev);
        })
    }

    /// `mtty_close_device`: triggers dropped; then a reset (see the module
    /// documentation).
    fn close_device(&self) {
        self.irqs.disable_all();
        let _ = self.with_device(|dev| {
            dev.reset();
            self.irqs.set_virq_disabled(false);
        });
    }
}
