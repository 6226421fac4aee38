//! One mtty device: its config space and its UARTs, reached through the
//! region accessors the VFIO layer calls.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use umdev_pci::config::ConfigSpace;
use umdev_pci::regs::{PCI_STATUS, PCI_STATUS_INTERRUPT};

use super::config::{self, MTTY_CONFIG_SPACE_SIZE, MTTY_IO_BAR_SIZE};
use super::error::MttyError;
use super::types::MttyType;
use super::uart::Uart16550;
use crate::irq::Interrupts;

/// The vector every mtty interrupt is raised on: INTx, or MSI vector 0.
pub const MTTY_IRQ_VECTOR: u32 = 0;

/// A virtual mtty serial card (the sample's `struct mdev_state`).
///
/// BAR *n* holds the eight registers of port *n*. All methods take `&self`;
/// one lock serialises accesses like the sample's `ops_lock`, and
/// interrupts are raised after it is released, so an [`Interrupts`]
/// implementation may call back into the device.
///
/// Interrupts are edges: an access raises [`MTTY_IRQ_VECTOR`] once if it
/// made an enabled condition of the accessed port pending that was not
/// pending before it (new receive data, a THR-empty event, an overrun, a
/// modem status change, or enabling one of these in IER while present).
/// [`Self::irq_pending`] is the level — what a 16550's INT pin would show
/// — for INTx emulation to re-raise after an unmask.
pub struct MttyDevice {
    ty: MttyType,
    irq: Arc<dyn Interrupts>,
    state: Mutex<State>,
    _ports: PortReservation,
}

struct State {
    config: ConfigSpace,
    uarts: Vec<Uart16550>,
}

impl State {
    fn power_on(ty: MttyType) -> Self {
        let nr_ports = ty.nr_ports() as usize;
        Self {
            config: config::build(nr_ports),
            uarts: vec![Uart16550::new(); nr_ports],
        }
    }

    fn irq_pending(&self) -> bool {
        self.uarts.iter().any(|u| !u.pending().is_empty())
    }
}

impl MttyDevice {
    pub(crate) fn new(ty: MttyType, irq: Arc<dyn Interrupts>, ports: PortReservation) -> Self {
        Self {
            ty,
            irq,
            state: Mutex::new(State::power_on(ty)),
            _ports: ports,
        }
    }

    /// The device's type.
    pub fn mtty_type(&self) -> MttyType {
        self.ty
    }

    /// Size of the config region in bytes.
    pub fn config_size(&self) -> u64 {
        u64::from(MTTY_CONFIG_SPACE_SIZE)
    }

    /// Size of BAR `bar` in bytes: 8 for a port's I/O BAR, else 0
    /// (`mtty_ioctl_get_region_info()`).
    pub fn bar_size(&self, bar: u32) -> u64 {
        if bar < self.ty.nr_ports() {
            MTTY_IO_BAR_SIZE
        } else {
            0
        }
    }

    /// Reads config space at `offset`; the whole access must lie inside it.
    /// Status bit 3 (`PCI_STATUS_INTERRUPT`) shows [`Self::irq_pending`].
    pub fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, MttyError> {
        let st = self.state.lock();
        let start = config_range(&st.config, offset, buf.len())?;
        st.config.read(start, buf);
        // PCI_STATUS_INTERRUPT is bit 3 of the status register's low byte.
        let covers_status = start <= PCI_STATUS && usize::from(PCI_STATUS - start) < buf.len();
        if covers_status && st.irq_pending() {
            buf[usize::from(PCI_STATUS - start)] |= PCI_STATUS_INTERRUPT as u8;
        }
        Ok(buf.len())
    }

    /// Writes config space at `offset` through its per-bit write masks; the
    /// whole access must lie inside it.
    pub fn config_write(&self, offset: u64, buf: &[u8]) -> Result<usize, MttyError> {
        let mut st = self.state.lock();
        let start = config_range(&st.config, offset, buf.len())?;
        st.config.write(start, buf);
        Ok(buf.len())
    }

    /// Reads UART registers of port `bar` from `offset`, one byte per
    /// register, with each register's read side effects. Like
    /// `vfio_pci_bar_rw()`, an access running past the BAR's end is cut
    /// short; the count done is returned.
    pub fn bar_read(&self, bar: u32, offset: u64, buf: &mut [u8]) -> Result<usize, MttyError> {
        let (port, first, n) = self.port_range(bar, offset, buf.len())?;
        self.port_access(port, n, |uart, i| buf[i] = uart.read(first + i as u8));
        Ok(n)
    }

    /// Writes UART registers of port `bar` from `offset`, one byte per
    /// register, in order. Cut short at the BAR's end like
    /// [`Self::bar_read`].
    pub fn bar_write(&self, bar: u32, offset: u64, buf: &[u8]) -> Result<usize, MttyError> {
        let (port, first, n) = self.port_range(bar, offset, buf.len())?;
        self.port_access(port, n, |uart, i| uart.write(first + i as u8, buf[i]));
        Ok(n)
    }

    /// Whether any port has an enabled interrupt condition pending (the
    /// level of the interrupt line).
    pub fn irq_pending(&self) -> bool {
        self.state.lock().irq_pending()
    }

    /// Returns config space and every UART to the power-on state
    /// (VFIO_DEVICE_RESET). Raises no interrupt.
    pub fn reset(&self) {
        *self.state.lock() = State::power_on(self.ty);
    }

    fn port_range(
        &self,
        bar: u32,
        offset: u64,
        len: usize,
    ) -> Result<(usize, u8, usize), MttyError> {
        let size = self.bar_size(bar);
        if size == 0 {
            return Err(MttyError::NoSuchBar { bar });
        }
        if offset >= size {
            return Err(MttyError::BarOffset { bar, offset, size });
        }
        // offset < size = 8, so both fit.
        let left = (size - offset) as usize;
        Ok((bar as usize, offset as u8, len.min(left)))
    }

    /// Runs `f` for byte `0..n` of an access to `port` and raises the
    /// interrupt once if any byte made a new condition pending.
    fn port_access(&self, port: usize, n: usize, mut f: impl FnMut(&mut Uart16550, usize)) {
        let mut raise = false;
        {
            let mut st = self.state.lock();
            let uart = &mut st.uarts[port];
            for i in 0..n {
                let before = uart.pending();
                f(uart, i);
                raise |= !uart.pending().difference(before).is_empty();
            }
        }
        if raise {
            self.irq.trigger(MTTY_IRQ_VECTOR);
        }
    }
}

impl fmt::Debug for MttyDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MttyDevice")
            .field("ty", &self.ty)
            .finish_non_exhaustive()
    }
}

/// Checks a config access of `len` bytes at `offset` and returns its start.
fn config_range(config: &ConfigSpace, offset: u64, len: usize) -> Result<u16, MttyError> {
    u16::try_from(offset)
        .ok()
        .filter(|&start| start < config.size() && config.in_range(start, len))
        .ok_or(MttyError::ConfigRange {
            offset,
            len,
            size: config.size(),
        })
}

/// Ports taken from a pool; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct PortReservation {
    pool: Arc<AtomicU32>,
    count: u32,
}

impl PortReservation {
    pub(super) fn take(pool: &Arc<AtomicU32>, count: u32) -> Result<Self, MttyError> {
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
