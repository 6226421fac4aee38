//! Type 0 (endpoint) and type 1 (bridge) config headers and memory BARs.

use crate::config::ConfigSpace;
use crate::regs::*;
use crate::spec::BarSpec;

/// Identity and layout of a header, independent of where it came from.
pub struct HeaderParams {
    /// Vendor ID register value (0xffff for a VF, SR-IOV spec §3.4.1.1).
    pub vendor: u16,
    /// Device ID register value (0xffff for a VF).
    pub device: u16,
    /// 24-bit class code.
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// Type 0 only: subsystem vendor and device.
    pub subsystem: (u16, u16),
    /// Header type bit 7.
    pub multifunction: bool,
    /// Type 1 headers: (primary, secondary, subordinate) bus numbers.
    pub bridge_buses: Option<(u8, u8, u8)>,
    /// PCIe functions hard-wire the latency timer to 0.
    pub pcie: bool,
    /// A VF: Memory Space and INTx are controlled by the PF.
    pub virtfn: bool,
}

/// Writes the common header and its write masks.
pub fn build_header(cfg: &mut ConfigSpace, p: &HeaderParams) {
    cfg.set16(PCI_VENDOR_ID, p.vendor);
    cfg.set16(PCI_DEVICE_ID, p.device);
    cfg.set8(PCI_REVISION_ID, p.revision);
    cfg.set8(PCI_CLASS_PROG, p.class as u8);
    cfg.set16(PCI_CLASS_PROG + 1, (p.class >> 8) as u16);
    let layout = if p.bridge_buses.is_some() {
        PCI_HEADER_TYPE_BRIDGE
    } else {
        PCI_HEADER_TYPE_NORMAL
    };
    let mfd = if p.multifunction {
        PCI_HEADER_TYPE_MFD
    } else {
        0
    };
    cfg.set8(PCI_HEADER_TYPE, layout | mfd);

    let cmd_rw = if p.virtfn {
        PCI_COMMAND_MASTER
    } else {
        PCI_COMMAND_IO
            | PCI_COMMAND_MEMORY
            | PCI_COMMAND_MASTER
            | PCI_COMMAND_PARITY
            | PCI_COMMAND_SERR
            | PCI_COMMAND_INTX_DISABLE
    };
    cfg.rw16(PCI_COMMAND, cmd_rw);
    cfg.w1c16(PCI_STATUS, STATUS_RW1C);
    cfg.rw_bytes(PCI_CACHE_LINE_SIZE, 1);
    if !p.pcie {
        cfg.rw_bytes(PCI_LATENCY_TIMER, 1);
    }
    cfg.rw_bytes(PCI_INTERRUPT_LINE, 1);

    match p.bridge_buses {
        None => {
            cfg.set16(PCI_SUBSYSTEM_VENDOR_ID, p.subsystem.0);
            cfg.set16(PCI_SUBSYSTEM_ID, p.subsystem.1);
            if !p.virtfn {
                cfg.set8(PCI_INTERRUPT_PIN, 1);
            }
        }
        Some((primary, secondary, subordinate)) => {
            cfg.set8(PCI_PRIMARY_BUS, primary);
            cfg.set8(PCI_SECONDARY_BUS, secondary);
            cfg.set8(PCI_SUBORDINATE_BUS, subordinate);
            cfg.rw_bytes(PCI_PRIMARY_BUS, 4);
            // I/O base/limit: upper nibbles are address bits 15:12.
            cfg.rw16(PCI_IO_BASE, 0xf0f0);
            cfg.w1c16(PCI_SEC_STATUS, STATUS_RW1C);
            // Memory and prefetchable base/limit: bits 15:4 are address
            // bits 31:20; the prefetchable window is 64-bit (low nibble 1).
            cfg.rw32(PCI_MEMORY_BASE, 0xfff0_fff0);
            cfg.set32(PCI_PREF_MEMORY_BASE, 0x0001_0001);
            cfg.rw32(PCI_PREF_MEMORY_BASE, 0xfff0_fff0);
            cfg.rw_bytes(PCI_PREF_BASE_UPPER32, 8);
            cfg.rw_bytes(PCI_IO_BASE_UPPER16, 4);
            cfg.rw16(PCI_BRIDGE_CONTROL, 0x0fff);
        }
    }
}

/// Status bits that are write-1-to-clear.
const STATUS_RW1C: u16 = PCI_STATUS_PARITY
    | PCI_STATUS_SIG_TARGET_ABORT
    | PCI_STATUS_REC_TARGET_ABORT
    | PCI_STATUS_REC_MASTER_ABORT
    | PCI_STATUS_SIG_SYSTEM_ERROR
    | PCI_STATUS_DETECTED_PARITY;

/// Programs a memory BAR at register `reg` (and `reg + 4` when 64-bit):
/// flag bits read-only, address bits below the size read-only zero.
pub fn build_bar(cfg: &mut ConfigSpace, reg: u16, bar: &BarSpec) {
    let size_mask = !(bar.size.0 - 1);
    let mut flags = 0;
    if bar.mem64 {
        flags |= PCI_BASE_ADDRESS_MEM_TYPE_64;
    }
    if bar.prefetchable {
        flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    }
    cfg.set32(reg, flags);
    cfg.rw32(reg, size_mask as u32 & PCI_BASE_ADDRESS_MEM_MASK);
    if bar.mem64 {
        cfg.rw32(reg + 4, (size_mask >> 32) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Size;

    fn endpoint() -> ConfigSpace {
        let mut cfg = ConfigSpace::new(4096);
        build_header(
            &mut cfg,
            &HeaderParams {
                vendor: 0x8086,
                device: 0x0b25,
                class: 0x088000,
                revision: 1,
                subsystem: (0x8086, 0x0001),
                multifunction: false,
                bridge_buses: None,
                pcie: true,
                virtfn: false,
            },
        );
        cfg
    }

    fn size_probe(cfg: &mut ConfigSpace, reg: u16) -> u32 {
        cfg.write(reg, &u32::MAX.to_le_bytes());
        cfg.read32(reg)
    }

    #[test]
    fn type0_identity_and_class() {
        let cfg = endpoint();
        assert_eq!(cfg.read32(0), 0x0b25_8086);
        assert_eq!(cfg.read32(8), 0x0880_0001);
        assert_eq!(cfg.read8(PCI_HEADER_TYPE), 0);
        assert_eq!(cfg.read32(PCI_SUBSYSTEM_VENDOR_ID), 0x0001_8086);
    }

    #[test]
    fn bar_sizing_32_and_64_bit() {
        let mut cfg = endpoint();
        let bar32 = BarSpec {
            index: 0,
            size: Size(0x4000),
            mem64: false,
            prefetchable: false,
        };
        build_bar(&mut cfg, PCI_BASE_ADDRESS_0, &bar32);
        assert_eq!(size_probe(&mut cfg, PCI_BASE_ADDRESS_0), 0xffff_c000);
        let bar64 = BarSpec {
            index: 2,
            size: Size(8 << 30),
            mem64: true,
            prefetchable: true,
        };
        build_bar(&mut cfg, 0x18, &bar64);
        assert_eq!(size_probe(&mut cfg, 0x18), 0x0000_000c);
        assert_eq!(size_probe(&mut cfg, 0x1c), 0xffff_fffe);
        // An address programmed afterwards sticks (aligned bits only).
        cfg.write(0x18, &0x1234_5678u32.to_le_bytes());
        assert_eq!(cfg.read32(0x18), 0x0000_000c);
        cfg.write(PCI_BASE_ADDRESS_0, &0xfebf_1234u32.to_le_bytes());
        assert_eq!(cfg.read32(PCI_BASE_ADDRESS_0), 0xfebf_0000);
    }

    #[test]
    fn command_and_status_masks() {
        let mut cfg = endpoint();
        cfg.write(PCI_COMMAND, &0xffffu16.to_le_bytes());
        assert_eq!(cfg.read16(PCI_COMMAND), 0x0547);
        cfg.set16(PCI_STATUS, 0x2010);
        cfg.write(PCI_STATUS, &0x2000u16.to_le_bytes());
        assert_eq!(cfg.read16(PCI_STATUS), 0x0010);
    }

    #[test]
    fn type1_bus_numbers() {
        let mut cfg = ConfigSpace::new(4096);
        build_header(
            &mut cfg,
            &HeaderParams {
                vendor: 0x8086,
                device: 0x7ab8,
                class: 0x060400,
                revision: 0,
                subsystem: (0, 0),
                multifunction: true,
                bridge_buses: Some((0, 2, 4)),
                pcie: true,
                virtfn: false,
            },
        );
        assert_eq!(cfg.read8(PCI_HEADER_TYPE), 0x81);
        assert_eq!(cfg.read32(PCI_PRIMARY_BUS), 0x0004_0200);
        cfg.write(PCI_SUBORDINATE_BUS, &[7]);
        assert_eq!(cfg.read8(PCI_SUBORDINATE_BUS), 7);
    }
}
