//! mtty: a virtual PCI serial card of 16550A UARTs, after the kernel's
//! `samples/vfio-mdev/mtty.c`.
//!
//! An mtty device is PCI 4348:3253 (subsystem 4348:3253), class 0x070002
//! (16550-compatible serial controller), with one 8-byte I/O BAR per port:
//! BAR0, and BAR1 for the dual-port type. Every byte a port transmits is
//! looped back into its own receiver, with the interrupts a guest's 8250
//! driver expects. The device does no DMA, so its mdev needs no IOMMU
//! backing (the sample registers with `vfio_register_emulated_iommu_dev()`).
//!
//! - [`MttyParent`] holds the port pool (24 ports by default, the sample's
//!   `MAX_MTTYS`) and creates devices of an [`MttyType`];
//!   `available_instances` is the free ports divided by the type's ports.
//! - [`MttyDevice`] is one device: `config_read`/`config_write`,
//!   `bar_read`/`bar_write` and `reset` for the VFIO layer, interrupts
//!   through [`crate::irq::Interrupts`] on vector [`MTTY_IRQ_VECTOR`].
//! - [`MttyVfio`] makes a device a VFIO device (regions, SET_IRQS with
//!   INTx automask, reset); [`MttyMdevDriver`] and [`register_mtty`] make
//!   the parent an mdev parent with types `mtty-1` and `mtty-2`.
//! - [`regs`] names the 16550 registers and bits as `serial_reg.h` does.
//!
//! UART behaviour is the 16550A datasheet's wherever the sample is loose:
//! the divisor latch holds what was written (the sample ORs bytes into it),
//! the FCR trigger level is honoured (the sample forces 1), IIR bits 7:6
//! show whether the FIFOs are on (the sample always sets them), an IIR read
//! that reports THRE acknowledges it, LSR reads clear OE, and MSR follows
//! the modem outputs through a loopback plug (the sample reports fixed
//! lines). The transmitter is instantaneous and there is no receiver clock;
//! the consequences are listed in the UART module.

mod config;
mod device;
mod error;
mod fifo;
mod mdev;
mod pool;
pub mod regs;
mod types;
mod uart;
mod vfio;

pub use config::{
    MTTY_CLASS, MTTY_CONFIG_SPACE_SIZE, MTTY_DEVICE_ID, MTTY_IO_BAR_SIZE, MTTY_REVISION,
    MTTY_VENDOR_ID,
};
pub use device::{MTTY_IRQ_VECTOR, MttyDevice};
pub use error::MttyError;
pub use mdev::{MttyMdevDriver, register_mtty};
pub use pool::{MAX_MTTYS, MTTY_DEVICE_API, MTTY_NAME, MttyParent};
pub use types::MttyType;
pub use vfio::MttyVfio;
