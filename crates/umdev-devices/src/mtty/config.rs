//! The virtual PCI config space of an mtty device, as
//! `samples/vfio-mdev/mtty.c` `mtty_create_config_space()` presents it.
//!
//! | offset | field            | value                     | writable bits |
//! |--------|------------------|---------------------------|---------------|
//! | 0x00   | vendor / device  | 4348:3253                 | none          |
//! | 0x04   | command          | 0x0001 (I/O space)        | IO, INTX_DISABLE |
//! | 0x06   | status           | 0x0200 (DEVSEL medium)    | none; bit 3 shows the interrupt line |
//! | 0x08   | revision         | 0x10                      | none          |
//! | 0x09   | class            | 0x070002 (16550 serial)   | none          |
//! | 0x0e   | header type      | 0 (normal, single function) | none        |
//! | 0x10   | BAR0             | I/O, 8 bytes (port 0)     | address bits 31:3 |
//! | 0x14   | BAR1             | I/O, 8 bytes (port 1, dual-port type only; else 0) | as BAR0 or none |
//! | 0x2c   | subsystem        | 4348:3253                 | none          |
//! | 0x34   | capability list  | 0 (no capabilities, no MSI) | none        |
//! | 0x3c   | interrupt line   | 0                         | all           |
//! | 0x3d   | interrupt pin    | 1 (INTA#)                 | none          |
//!
//! Everything else reads as zero and ignores writes. The sample has no MSI
//! capability; it still offers the VFIO MSI index with one vector
//! (`mtty_get_irq_info()`), which this model signals as vector 0 as well.
//! The sample's undocumented vendor-specific bytes at 0x40..0x6f are left
//! out. Unlike the sample, a BAR write keeps the I/O indicator and the
//! size alignment for every value, not only for all-ones.

use umdev_pci::config::ConfigSpace;
use umdev_pci::regs::*;

/// mtty's vendor ID (and subsystem vendor ID).
pub const MTTY_VENDOR_ID: u16 = 0x4348;
/// mtty's device ID (and subsystem ID).
pub const MTTY_DEVICE_ID: u16 = 0x3253;
/// mtty's revision ID.
pub const MTTY_REVISION: u8 = 0x10;
/// Class code: simple communication controller (0x07), serial (0x00),
/// 16550-compatible programming interface (0x02).
pub const MTTY_CLASS: u32 = 0x07_00_02;
/// Size of the config region. (The sample says 0xff, one byte short of
/// the 256-byte conventional header space.)
pub const MTTY_CONFIG_SPACE_SIZE: u16 = PCI_CFG_SPACE_SIZE;
/// Size of each port's I/O BAR: the eight 16550 registers.
pub const MTTY_IO_BAR_SIZE: u64 = 8;

/// Status: DEVSEL timing "medium" (`PCI_STATUS_DEVSEL_MEDIUM`).
const PCI_STATUS_DEVSEL_MEDIUM: u16 = 0x0200;
/// Interrupt pin value for INTA#.
const PCI_INTERRUPT_PIN_INTA: u8 = 1;

/// Config space of a device with `nr_ports` (1 or 2) ports at power-on.
pub(crate) fn build(nr_ports: usize) -> ConfigSpace {
    let mut c = ConfigSpace::new(MTTY_CONFIG_SPACE_SIZE);
    c.set16(PCI_VENDOR_ID, MTTY_VENDOR_ID);
    c.set16(PCI_DEVICE_ID, MTTY_DEVICE_ID);
    c.set16(PCI_COMMAND, PCI_COMMAND_IO);
    c.rw16(PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_INTX_DISABLE);
    c.set16(PCI_STATUS, PCI_STATUS_DEVSEL_MEDIUM);
    c.set8(PCI_REVISION_ID, MTTY_REVISION);
    for (i, byte) in MTTY_CLASS.to_le_bytes()[..3].iter().enumerate() {
        c.set8(PCI_CLASS_PROG + i as u16, *byte);
    }
    c.set8(PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);
    // Address bits below the BAR size are read-only zero, so writing all
    // ones reads back the size mask with the I/O indicator.
    let io_bar_mask = !(MTTY_IO_BAR_SIZE as u32 - 1);
    for port in 0..nr_ports as u16 {
        let bar = PCI_BASE_ADDRESS_0 + 4 * port;
        c.set32(bar, PCI_BASE_ADDRESS_SPACE_IO);
        c.rw32(bar, io_bar_mask);
    }
    c.set16(PCI_SUBSYSTEM_VENDOR_ID, MTTY_VENDOR_ID);
    c.set16(PCI_SUBSYSTEM_ID, MTTY_DEVICE_ID);
    c.rw_bytes(PCI_INTERRUPT_LINE, 1);
    c.set8(PCI_INTERRUPT_PIN, PCI_INTERRUPT_PIN_INTA);
    c
}
