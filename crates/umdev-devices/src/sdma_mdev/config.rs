//! The virtual PCI config space of an sdma mdev (one work queue of the
//! engine presented as a PCI function of its own; docs/sdma.md has the
//! table).
//!
//! | offset | field | value | writable bits |
//! |---|---|---|---|
//! | 0x00 | vendor / device | 1234:5d4a | none |
//! | 0x04 | command | 0 | MEMORY, MASTER, INTX_DISABLE |
//! | 0x06 | status | CAP_LIST | none |
//! | 0x08 | revision | 0x01 | none |
//! | 0x09 | class | 0x088000 (system peripheral, other) | none |
//! | 0x0e | header type | 0 | none |
//! | 0x10 | BAR0 | 32-bit memory, non-prefetchable, 8 KiB | address bits 31:13 |
//! | 0x14..0x28 | BAR1-5 | 0 (absent) | none |
//! | 0x2c | subsystem | 1234:0001 | none |
//! | 0x34 | capability pointer | 0x40 | none |
//! | 0x3c | interrupt line | 0 | all |
//! | 0x3d | interrupt pin | 0 (no INTx) | none |
//! | 0x40 | MSI-X capability | 1 vector, table BAR0+0x1000, PBA BAR0+0x1800 | ENABLE, MASKALL |
//!
//! Everything else reads 0 and ignores writes.
//!
//! Vendor 0x1234 is not assigned by the PCI-SIG (QEMU's emulated devices
//! use it); the only Linux driver matching it, bochs-drm, claims device
//! 0x1111 alone, and no Linux driver matches class 0x0880 for any vendor,
//! so a guest's Linux leaves the device unbound until a driver is bound to
//! it by `new_id` (the "IDs that no real Linux driver claims").
//! The engine's own 8086:0b25 would make a guest's idxd driver probe it as
//! a whole DSA.

use umdev_pci::config::ConfigSpace;
use umdev_pci::regs::*;

/// The mdev's vendor ID (and subsystem vendor ID).
pub const SDMA_MDEV_VENDOR_ID: u16 = 0x1234;
/// The mdev's device ID.
pub const SDMA_MDEV_DEVICE_ID: u16 = 0x5d4a;
/// The mdev's subsystem ID.
pub const SDMA_MDEV_SUBSYSTEM_ID: u16 = 0x0001;
/// Revision ID.
pub const SDMA_MDEV_REVISION: u8 = 0x01;
/// Class code: base class system peripheral (0x08), subclass other (0x80),
/// as the engine itself.
pub const SDMA_MDEV_CLASS: u32 = 0x08_80_00;
/// Size of the config region (conventional PCI header space).
pub const SDMA_MDEV_CONFIG_SIZE: u16 = PCI_CFG_SPACE_SIZE;
/// Size of BAR0: the work queue's register page and the MSI-X table/PBA.
pub const SDMA_MDEV_BAR0_SIZE: u64 = 0x2000;
/// Offset in BAR0 of the MSI-X table.
pub const SDMA_MDEV_MSIX_TABLE: u64 = 0x1000;
/// Offset in BAR0 of the MSI-X pending-bit array.
pub const SDMA_MDEV_MSIX_PBA: u64 = 0x1800;
/// MSI-X vectors: one, the work queue's interrupt.
pub const SDMA_MDEV_MSIX_VECTORS: u32 = 1;
/// Config offset of the MSI-X capability.
pub const SDMA_MDEV_MSIX_CAP: u16 = 0x40;

/// Config space at power-on.
pub(crate) fn build() -> ConfigSpace {
    let mut c = ConfigSpace::new(SDMA_MDEV_CONFIG_SIZE);
    c.set16(PCI_VENDOR_ID, SDMA_MDEV_VENDOR_ID);
    c.set16(PCI_DEVICE_ID, SDMA_MDEV_DEVICE_ID);
    c.rw16(
        PCI_COMMAND,
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE,
    );
    c.set16(PCI_STATUS, PCI_STATUS_CAP_LIST);
    c.set8(PCI_REVISION_ID, SDMA_MDEV_REVISION);
    for (i, byte) in SDMA_MDEV_CLASS.to_le_bytes()[..3].iter().enumerate() {
        c.set8(PCI_CLASS_PROG + i as u16, *byte);
    }
    c.set8(PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);
    // 32-bit non-prefetchable memory BAR: type bits 0, address bits below
    // the size read-only zero, so all-ones reads back the size mask.
    c.rw32(PCI_BASE_ADDRESS_0, !(SDMA_MDEV_BAR0_SIZE as u32 - 1));
    c.set16(PCI_SUBSYSTEM_VENDOR_ID, SDMA_MDEV_VENDOR_ID);
    c.set16(PCI_SUBSYSTEM_ID, SDMA_MDEV_SUBSYSTEM_ID);
    c.set8(PCI_CAPABILITY_LIST, SDMA_MDEV_MSIX_CAP as u8);
    c.rw_bytes(PCI_INTERRUPT_LINE, 1);
    let cap = SDMA_MDEV_MSIX_CAP;
    c.set8(cap, PCI_CAP_ID_MSIX);
    c.set8(cap + 1, 0);
    c.set16(cap + PCI_MSIX_FLAGS, (SDMA_MDEV_MSIX_VECTORS - 1) as u16);
    c.rw16(
        cap + PCI_MSIX_FLAGS,
        PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
    );
    // BIR 0 in the low three bits of both.
    c.set32(cap + PCI_MSIX_TABLE, SDMA_MDEV_MSIX_TABLE as u32);
    c.set32(cap + PCI_MSIX_PBA, SDMA_MDEV_MSIX_PBA as u32);
    c
}
