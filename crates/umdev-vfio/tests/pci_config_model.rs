//! Random config writes through vfio-pci against a reference model written
//! from the kernel's permission tables, register by register: read-only
//! fields never change as the user sees them, and the device's registers
//! change only in bits vfio-pci passes through (or clears as RW1C).

use std::sync::Arc;

use proptest::prelude::*;
use umdev_pci::regs::*;
use umdev_pci::{Bdf, FunctionInfo, Platform};
use umdev_vfio::pci_config::VfioPciConfig;

const DEVICES: [&str; 3] = ["0000:01:00.0", "0000:05:00.0", "0000:06:00.0"];
const SIZE: usize = 4096;

/// Per-byte bit masks over config space.
struct Mask(Vec<u8>);

impl Mask {
    fn new() -> Self {
        Self(vec![0; SIZE])
    }

    fn set(&mut self, at: u16, bits: u32, n: usize) {
        for (i, b) in bits.to_le_bytes()[..n].iter().enumerate() {
            self.0[usize::from(at) + i] |= b;
        }
    }
}

/// What may change, from the kernel's tables applied to `info`.
struct Model {
    /// Bits the user sees that never change.
    ro_virtual: Mask,
    /// Device bits that may change.
    hw_may_change: Mask,
}

fn model(info: &FunctionInfo) -> Model {
    let mut ro = Mask::new();
    let mut hw = Mask::new();
    // Header: IDs, class, header type, subsystem, capability pointer,
    // interrupt pin, status (nothing sets its bits here) and the BAR flag
    // bits.
    ro.set(PCI_VENDOR_ID, !0, 4);
    ro.set(PCI_STATUS, 0xffff, 2);
    ro.set(PCI_REVISION_ID, !0, 4);
    ro.set(PCI_HEADER_TYPE, 0xff, 1);
    ro.set(PCI_SUBSYSTEM_VENDOR_ID, !0, 4);
    ro.set(PCI_CAPABILITY_LIST, 0xff, 1);
    ro.set(PCI_INTERRUPT_PIN, 0xff, 1);
    for bar in &info.bars {
        ro.set(PCI_BASE_ADDRESS_0 + 4 * u16::from(bar.index), 0xf, 1);
    }
    // Memory, I/O, bus master, parity and SERR enables pass through;
    // INTx disable is virtual. Cache line size passes through. RW1C
    // status bits may only be cleared.
    hw.set(PCI_COMMAND, 0x0147, 2);
    hw.set(PCI_STATUS, 0xf900, 2);
    hw.set(PCI_CACHE_LINE_SIZE, 0xff, 1);
    for cap in &info.capabilities {
        let at = cap.offset;
        if cap.extended {
            match cap.id {
                // Hidden: raw access to the device.
                PCI_EXT_CAP_ID_PASID => hw.set(at + PCI_PASID_CTRL, 0xffff, 2),
                PCI_EXT_CAP_ID_ATS => {
                    ro.set(at, !0, 4);
                    ro.set(at + PCI_ATS_CAP, 0xffff, 2);
                }
                PCI_EXT_CAP_ID_PRI => {
                    ro.set(at + PCI_PRI_STATUS, 0xffff, 2);
                    ro.set(at + PCI_PRI_MAX_REQ, !0, 4);
                }
                _ => {}
            }
            continue;
        }
        ro.set(at, 0xffff, 2);
        match cap.id as u8 {
            PCI_CAP_ID_PM => {
                ro.set(at + PCI_PM_PMC, 0xffff, 2);
                // The power state is set for the user; PME status may be
                // cleared; PME enable stays the host's.
                hw.set(at + PCI_PM_CTRL, 0x8003, 2);
            }
            PCI_CAP_ID_MSI => {
                ro.set(at + PCI_MSI_FLAGS + 1, 0xff, 1);
                // Per-vector mask bits pass through (64-bit layout).
                hw.set(at + PCI_MSI_MASK_64, !0, 4);
            }
            PCI_CAP_ID_MSIX => ro.set(at, !0, 4),
            PCI_CAP_ID_EXP => {
                ro.set(at + PCI_EXP_FLAGS, 0xffff, 2);
                ro.set(at + PCI_EXP_DEVCAP, !0, 4);
                ro.set(at + PCI_EXP_LNKCAP, !0, 4);
                ro.set(at + PCI_EXP_LNKCTL, !0, 4);
                ro.set(at + PCI_EXP_DEVCAP2, !0, 4);
                // Device control without phantom functions and max
                // payload; device status RW1C; control 2 without ARI.
                hw.set(at + PCI_EXP_DEVCTL, 0x7fff & !0x0200 & !0x00e0, 2);
                hw.set(at + PCI_EXP_DEVSTA, 0x000f, 2);
                hw.set(at + PCI_EXP_DEVCTL2, 0x043f & !0x0020, 2);
            }
            _ => {}
        }
        if cap.id == u16::from(PCI_CAP_ID_MSIX) {
            ro.set(at + 4, !0, 4);
            ro.set(at + 8, !0, 4);
        }
    }
    Model {
        ro_virtual: ro,
        hw_may_change: hw,
    }
}

fn snapshot_hw(p: &Platform, dev: Bdf) -> Vec<u8> {
    let mut b = vec![0; SIZE];
    p.config_read(dev, 0, &mut b).unwrap();
    b
}

fn snapshot_virtual(c: &VfioPciConfig) -> Vec<u8> {
    let mut b = vec![0; SIZE];
    c.read(0, &mut b).unwrap();
    b
}

fn offset() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..0x40, 0x40u16..0x100, 0x100u16..0x140, 0u16..4100]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..9),
        (1usize..9).prop_map(|n| vec![0xff; n]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn writes_respect_the_permission_tables(
        device in 0..DEVICES.len(),
        writes in proptest::collection::vec((offset(), data()), 1..40),
    ) {
        let p = Arc::new(Platform::default_platform().unwrap());
        let dev: Bdf = DEVICES[device].parse().unwrap();
        let info = p.function(dev).unwrap();
        let m = model(&info);
        let c = VfioPciConfig::for_platform(p.clone(), dev).unwrap();
        let virt0 = snapshot_virtual(&c);
        for (at, bytes) in writes {
            let hw_before = snapshot_hw(&p, dev);
            let fits = usize::from(at) + bytes.len() <= SIZE;
            prop_assert_eq!(c.write(at.into(), &bytes).is_ok(), fits);
            let hw_after = snapshot_hw(&p, dev);
            for i in 0..SIZE {
                let changed = hw_before[i] ^ hw_after[i];
                prop_assert!(
                    changed & !m.hw_may_change.0[i] == 0,
                    "{}: device byte {:#x} changed {:#04x} -> {:#04x} after {} bytes at {:#x}",
                    DEVICES[device], i, hw_before[i], hw_after[i], bytes.len(), at
                );
            }
            let virt = snapshot_virtual(&c);
            for i in 0..SIZE {
                let changed = virt0[i] ^ virt[i];
                prop_assert!(
                    changed & m.ro_virtual.0[i] == 0,
                    "{}: read-only byte {:#x} changed {:#04x} -> {:#04x}",
                    DEVICES[device], i, virt0[i], virt[i]
                );
            }
        }
    }
}
