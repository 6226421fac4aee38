//! Permission tables: for every bit of a region, whether it is
//! virtualised (read from and written to the virtual copy) and whether the
//! user may write it (kernel `struct perm_bits`, `init_pci_cap_*_perm`).
//!
//! A zero entry is the default: read from the device, not writable.
//! Writable bits that are not virtualised pass through to the device.

use umdev_pci::regs::*;

use super::regs::*;

const NO_VIRT: u32 = 0;
const ALL_VIRT: u32 = !0;
const NO_WRITE: u32 = 0;
const ALL_WRITE: u32 = !0;

/// The virtualised and writable bits of one region, byte by byte.
pub(super) struct PermBits {
    /// Bits read from and written to the virtual copy.
    pub virt: Vec<u8>,
    /// Bits the user may write.
    pub write: Vec<u8>,
}

impl PermBits {
    /// All bits read from the device and read-only; rounded up to whole
    /// dwords as the kernel's `alloc_perm_bits` does.
    fn new(len: u16) -> Self {
        let len = usize::from(len.next_multiple_of(4));
        Self {
            virt: vec![0; len],
            write: vec![0; len],
        }
    }

    fn set(&mut self, off: u16, virt: u32, write: u32, width: usize) {
        let at = usize::from(off);
        self.virt[at..at + width].copy_from_slice(&virt.to_le_bytes()[..width]);
        self.write[at..at + width].copy_from_slice(&write.to_le_bytes()[..width]);
    }

    fn setb(&mut self, off: u16, virt: u32, write: u32) {
        self.set(off, virt, write, 1);
    }

    fn setw(&mut self, off: u16, virt: u32, write: u32) {
        self.set(off, virt, write, 2);
    }

    fn setd(&mut self, off: u16, virt: u32, write: u32) {
        self.set(off, virt, write, 4);
    }
}

/// The type 0 header (`init_pci_cap_basic_perm`).
pub(super) fn basic() -> PermBits {
    let mut p = PermBits::new(PCI_STD_HEADER_SIZEOF);
    // Virtualised for VFs, whose registers read 0xffff.
    p.setw(PCI_VENDOR_ID, ALL_VIRT, NO_WRITE);
    p.setw(PCI_DEVICE_ID, ALL_VIRT, NO_WRITE);
    // INTx disable is virtualised (vfio masks INTx itself); memory, I/O
    // and bus-master enables pass through.
    p.setw(PCI_COMMAND, PCI_COMMAND_INTX_DISABLE.into(), ALL_WRITE);
    // The capability-list bit is virtualised (capabilities may be hidden);
    // nothing in the status register is writable.
    p.setw(PCI_STATUS, PCI_STATUS_CAP_LIST.into(), NO_WRITE);
    p.setb(PCI_CACHE_LINE_SIZE, NO_VIRT, ALL_WRITE);
    p.setb(PCI_LATENCY_TIMER, NO_VIRT, ALL_WRITE);
    p.setb(PCI_BIST, NO_VIRT, ALL_WRITE);
    // The BARs and the ROM BAR are virtual: the device's are never
    // touched.
    for bar in 0..PCI_STD_NUM_BARS {
        p.setd(PCI_BASE_ADDRESS_0 + 4 * bar, ALL_VIRT, ALL_WRITE);
    }
    p.setd(PCI_ROM_ADDRESS, ALL_VIRT, ALL_WRITE);
    p.setb(PCI_CAPABILITY_LIST, ALL_VIRT, NO_WRITE);
    p.setb(PCI_INTERRUPT_LINE, ALL_VIRT, ALL_WRITE);
    p.setb(PCI_INTERRUPT_PIN, ALL_VIRT, NO_WRITE);
    p
}

/// Power management (`init_pci_cap_pm_perm`): the power state is changed
/// by vfio-pci on the user's behalf, PME is virtualised (the host handles
/// PME events).
pub(super) fn pm() -> PermBits {
    let mut p = PermBits::new(PCI_PM_SIZEOF);
    p.setb(PCI_CAP_LIST_NEXT, ALL_VIRT, NO_WRITE);
    p.setw(PCI_PM_PMC, PCI_PM_CAP_PME_MASK.into(), NO_WRITE);
    let pme = u32::from(PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS);
    p.setd(PCI_PM_CTRL, pme, !(pme | u32::from(PCI_PM_CTRL_STATE_MASK)));
    p
}

/// PCI Express (`init_pci_cap_exp_perm`): device control is writable
/// except phantom functions; FLR, max payload and max read request are
/// virtualised (vfio-pci acts on them); device control 2 is writable
/// except ARI forwarding.
pub(super) fn exp() -> PermBits {
    let mut p = PermBits::new(PCI_CAP_EXP_SIZEOF_V2);
    p.setb(PCI_CAP_LIST_NEXT, ALL_VIRT, NO_WRITE);
    p.setw(
        PCI_EXP_DEVCTL,
        (PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_READRQ).into(),
        (!PCI_EXP_DEVCTL_PHANTOM).into(),
    );
    p.setw(PCI_EXP_DEVCTL2, NO_VIRT, (!PCI_EXP_DEVCTL2_ARI).into());
    p
}

/// MSI (`init_pci_cap_msi_perm`): control (low byte), address and data
/// are virtual, to be programmed by the VFIO interrupt path; the mask and
/// pending bits pass through.
pub(super) fn msi(len: u16, flags: u16) -> PermBits {
    let mut p = PermBits::new(len);
    p.setb(PCI_CAP_LIST_NEXT, ALL_VIRT, NO_WRITE);
    p.setb(PCI_MSI_FLAGS, ALL_VIRT, ALL_WRITE);
    p.setd(PCI_MSI_ADDRESS_LO, ALL_VIRT, ALL_WRITE);
    let (data, mask, pending) = if flags & PCI_MSI_FLAGS_64BIT != 0 {
        p.setd(PCI_MSI_ADDRESS_HI, ALL_VIRT, ALL_WRITE);
        (PCI_MSI_DATA_64, PCI_MSI_MASK_64, PCI_MSI_PENDING_64)
    } else {
        (PCI_MSI_DATA_32, PCI_MSI_MASK_32, PCI_MSI_PENDING_32)
    };
    p.setw(data, ALL_VIRT, ALL_WRITE);
    if flags & PCI_MSI_FLAGS_MASKBIT != 0 {
        p.setd(mask, NO_VIRT, ALL_WRITE);
        p.setd(pending, NO_VIRT, ALL_WRITE);
    }
    p
}
