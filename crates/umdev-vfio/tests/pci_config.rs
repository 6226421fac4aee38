//! vfio-pci config virtualisation against the kernel's rules
//! (drivers/vfio/pci/vfio_pci_config.c) and the PCI spec: BAR sizing,
//! read-only fields, the command and status registers, capability hiding,
//! MSI / MSI-X, PM and PCIe, on platform functions and on hand-built
//! functions with capabilities the platform cannot describe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::caps::CapWriter;
use umdev_pci::config::ConfigSpace;
use umdev_pci::header::{HeaderParams, build_bar, build_header};
use umdev_pci::regs::*;
use umdev_pci::spec::{BarSpec, MsiSpec, PasidSpec, Size};
use umdev_pci::{PciError, Platform};
use umdev_testkit::bdf;
use umdev_vfio::pci_config::{
    BarKind, BarResource, IrqMode, PhysFunction, PhysResources, VfioPciConfig,
};

const DSA: &str = "0000:01:00.0";
const NVME: &str = "0000:05:00.0";
const GPU: &str = "0000:06:00.0";
const PF: &str = "0000:07:00.0";
const VF0: &str = "0000:07:02.0";
const ROOT_PORT: &str = "0000:00:01.0";

fn platform() -> Arc<Platform> {
    let p = Platform::default_platform().unwrap();
    p.bind_startup_drivers().unwrap();
    Arc::new(p)
}

fn vfio(p: &Arc<Platform>, dev: &str) -> VfioPciConfig {
    VfioPciConfig::for_platform(p.clone(), bdf(dev)).unwrap()
}

fn rd(c: &VfioPciConfig, at: u16, n: usize) -> u32 {
    let mut b = [0; 4];
    c.read(at.into(), &mut b[..n]).unwrap();
    u32::from_le_bytes(b)
}

fn wr(c: &VfioPciConfig, at: u16, n: usize, v: u32) {
    c.write(at.into(), &v.to_le_bytes()[..n]).unwrap();
}

fn hw(p: &Platform, dev: &str, at: u16, n: usize) -> u32 {
    let mut b = [0; 4];
    p.config_read(bdf(dev), at, &mut b[..n]).unwrap();
    u32::from_le_bytes(b)
}

/// The capability chain as the user sees it: (id, offset) in list order.
fn std_chain(c: &VfioPciConfig) -> Vec<(u8, u16)> {
    let mut out = Vec::new();
    if rd(c, PCI_STATUS, 2) as u16 & PCI_STATUS_CAP_LIST == 0 {
        return out;
    }
    let mut at = rd(c, PCI_CAPABILITY_LIST, 1) as u16;
    while at != 0 && out.len() < 48 {
        out.push((rd(c, at, 1) as u8, at));
        at = rd(c, at + 1, 1) as u16;
    }
    out
}

fn ext_chain(c: &VfioPciConfig) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut at = PCI_CFG_SPACE_SIZE;
    while at != 0 && out.len() < 64 {
        let header = rd(c, at, 4);
        if header == 0 {
            break;
        }
        out.push((header as u16, at));
        at = ((header >> 20) & 0xffc) as u16;
    }
    out
}

/// A hand-built function: config space with the platform's write masks,
/// resources as given, resets counted.
struct Fake {
    cfg: Mutex<ConfigSpace>,
    res: PhysResources,
    resets: AtomicUsize,
}

impl PhysFunction for Fake {
    fn config_size(&self) -> u16 {
        self.cfg.lock().size()
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        let cfg = self.cfg.lock();
        assert!(cfg.in_range(offset, buf.len()));
        cfg.read(offset, buf);
        Ok(())
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        let mut cfg = self.cfg.lock();
        assert!(cfg.in_range(offset, data.len()));
        cfg.write(offset, data);
        Ok(())
    }

    fn resources(&self) -> PhysResources {
        self.res.clone()
    }

    fn try_reset_function(&self) -> Result<(), Errno> {
        self.resets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A PCIe endpoint header; `caps` adds capabilities.
fn fake(
    res: PhysResources,
    caps: impl FnOnce(&mut CapWriter<'_>),
    patch: impl FnOnce(&mut ConfigSpace),
) -> Arc<Fake> {
    let mut cfg = ConfigSpace::new(PCI_CFG_SPACE_EXP_SIZE);
    build_header(
        &mut cfg,
        &HeaderParams {
            vendor: res.vendor,
            device: res.device,
            class: 0xff0000,
            revision: 3,
            subsystem: (0x1af4, 0x0042),
            multifunction: false,
            bridge_buses: None,
            pcie: true,
            virtfn: false,
        },
    );
    for bar in &res.bars {
        if let BarKind::Mem32 { prefetchable } | BarKind::Mem64 { prefetchable } = bar.kind {
            let spec = BarSpec {
                index: bar.index,
                size: Size(bar.size),
                mem64: matches!(bar.kind, BarKind::Mem64 { .. }),
                prefetchable,
            };
            build_bar(
                &mut cfg,
                PCI_BASE_ADDRESS_0 + 4 * u16::from(bar.index),
                &spec,
            );
        }
    }
    let mut w = CapWriter::new(&mut cfg);
    caps(&mut w);
    w.finish();
    patch(&mut cfg);
    Arc::new(Fake {
        cfg: Mutex::new(cfg),
        res,
        resets: AtomicUsize::new(0),
    })
}

fn resources(bars: Vec<BarResource>, rom_size: Option<u64>) -> PhysResources {
    PhysResources {
        vendor: 0x1af4,
        device: 0x1234,
        header_type: PCI_HEADER_TYPE_NORMAL,
        is_virtfn: false,
        bars,
        rom_size,
    }
}

fn size_probe(c: &VfioPciConfig, reg: u16) -> u32 {
    wr(c, reg, 4, u32::MAX);
    rd(c, reg, 4)
}

#[test]
fn bar_sizing_32_bit_and_64_bit_pairs() {
    let p = platform();
    // GPU: BAR 0 16 MiB 32-bit; BAR 1 256 MiB 64-bit prefetchable, its
    // upper half in register 2.
    let c = vfio(&p, GPU);
    let before: Vec<u32> = (0..6).map(|i| hw(&p, GPU, 0x10 + 4 * i, 4)).collect();
    assert_eq!(rd(&c, 0x10, 4), 0x0000_0000);
    assert_eq!(rd(&c, 0x14, 4), 0x0000_000c, "flags before sizing");
    assert_eq!(size_probe(&c, 0x10), 0xff00_0000);
    assert_eq!(size_probe(&c, 0x14), 0xf000_000c);
    assert_eq!(size_probe(&c, 0x18), 0xffff_ffff);
    for reg in [0x1c, 0x20, 0x24] {
        assert_eq!(size_probe(&c, reg), 0, "unimplemented BAR {reg:#x}");
    }
    // Programming an address keeps the aligned bits and the flags.
    wr(&c, 0x14, 4, 0x1234_5678);
    wr(&c, 0x18, 4, 0x0000_0042);
    assert_eq!(rd(&c, 0x14, 4), 0x1000_000c);
    assert_eq!(rd(&c, 0x18, 4), 0x0000_0042);
    // Byte-wide sizing works too (pieces are handled byte by byte).
    wr(&c, 0x10, 4, 0);
    for i in 0..4 {
        wr(&c, 0x10 + i, 1, 0xff);
    }
    assert_eq!(rd(&c, 0x10, 4), 0xff00_0000);
    // The device's BARs were never touched.
    let after: Vec<u32> = (0..6).map(|i| hw(&p, GPU, 0x10 + 4 * i, 4)).collect();
    assert_eq!(before, after);

    // DSA: two 64-bit prefetchable BARs, 64 KiB and 128 KiB.
    let c = vfio(&p, DSA);
    assert_eq!(size_probe(&c, 0x10), 0xffff_000c);
    assert_eq!(size_probe(&c, 0x14), 0xffff_ffff);
    assert_eq!(size_probe(&c, 0x18), 0xfffe_000c);
    assert_eq!(size_probe(&c, 0x1c), 0xffff_ffff);
}

#[test]
fn rom_and_io_bar_sizing() {
    // A ROM of 64 KiB and an I/O BAR of 32 bytes.
    let dev = fake(
        resources(
            vec![
                BarResource {
                    index: 0,
                    size: 32,
                    kind: BarKind::Io,
                },
                BarResource {
                    index: 1,
                    size: 4096,
                    kind: BarKind::Mem32 {
                        prefetchable: false,
                    },
                },
            ],
            Some(64 << 10),
        ),
        |_| {},
        |_| {},
    );
    let c = VfioPciConfig::new(dev).unwrap();
    assert_eq!(size_probe(&c, PCI_ROM_ADDRESS), 0xffff_0001);
    wr(&c, PCI_ROM_ADDRESS, 4, 0xfebc_1230);
    assert_eq!(rd(&c, PCI_ROM_ADDRESS, 4), 0xfebc_0000, "enable clear");
    assert_eq!(size_probe(&c, 0x10), 0xffff_ffe1);
    assert_eq!(size_probe(&c, 0x14), 0xffff_f000);

    // No ROM: the ROM BAR reads zero whatever is written.
    let p = platform();
    let c = vfio(&p, NVME);
    assert_eq!(size_probe(&c, PCI_ROM_ADDRESS), 0);
}

#[test]
fn vf_ids_pin_memory_enable_and_bars_are_virtualised() {
    let p = platform();
    p.set_sriov_numvfs(bdf(PF), 1).unwrap();
    assert_eq!(hw(&p, VF0, 0, 4), 0xffff_ffff, "a VF's ID registers");
    let c = vfio(&p, VF0);
    assert_eq!(rd(&c, 0, 4), 0x154c_8086);
    assert_eq!(rd(&c, PCI_INTERRUPT_PIN, 1), 0);
    // Memory Space Enable reads set although the VF has none.
    assert_eq!(hw(&p, VF0, PCI_COMMAND, 2) as u16 & PCI_COMMAND_MEMORY, 0);
    assert_ne!(rd(&c, PCI_COMMAND, 2) as u16 & PCI_COMMAND_MEMORY, 0);
    assert!(c.memory_enabled().unwrap());
    // The VF BAR registers are read-only zero on the device; the virtual
    // ones size from the SR-IOV VF BAR (64 KiB, 64-bit, prefetchable).
    assert_eq!(size_probe(&c, 0x10), 0xffff_000c);
    assert_eq!(size_probe(&c, 0x14), 0xffff_ffff);
    // The user may clear the virtual enable.
    wr(&c, PCI_COMMAND, 2, 0);
    assert_eq!(rd(&c, PCI_COMMAND, 2) as u16 & PCI_COMMAND_MEMORY, 0);
}

#[test]
fn identity_registers_are_read_only() {
    let p = platform();
    let c = vfio(&p, NVME);
    let fields: &[(u16, usize)] = &[
        (PCI_VENDOR_ID, 2),
        (PCI_DEVICE_ID, 2),
        (PCI_REVISION_ID, 1),
        (PCI_CLASS_PROG, 1),
        (0x0a, 2),
        (PCI_HEADER_TYPE, 1),
        (PCI_SUBSYSTEM_VENDOR_ID, 2),
        (PCI_SUBSYSTEM_ID, 2),
        (PCI_CAPABILITY_LIST, 1),
        (PCI_INTERRUPT_PIN, 1),
    ];
    let before: Vec<u32> = fields.iter().map(|&(at, n)| rd(&c, at, n)).collect();
    assert_eq!(before[0], 0x8086);
    assert_eq!(before[1], 0x0953);
    for &(at, n) in fields {
        wr(&c, at, n, 0x5a5a_5a5a);
        wr(&c, at, n, 0);
    }
    let after: Vec<u32> = fields.iter().map(|&(at, n)| rd(&c, at, n)).collect();
    assert_eq!(before, after);
    // The interrupt line is virtual: it sticks without reaching the device.
    wr(&c, PCI_INTERRUPT_LINE, 1, 0x0b);
    assert_eq!(rd(&c, PCI_INTERRUPT_LINE, 1), 0x0b);
    assert_eq!(hw(&p, NVME, PCI_INTERRUPT_LINE, 1), 0);
}

#[test]
fn command_register_passes_enables_and_virtualises_intx_disable() {
    let p = platform();
    let c = vfio(&p, NVME);
    assert!(!c.memory_enabled().unwrap());
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
    wr(&c, PCI_COMMAND, 2, cmd.into());
    // Memory and bus master reach the device; INTx disable does not.
    assert_eq!(
        hw(&p, NVME, PCI_COMMAND, 2) as u16,
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
    );
    assert_eq!(rd(&c, PCI_COMMAND, 2) as u16, cmd);
    assert!(c.intx_disabled());
    assert!(c.memory_enabled().unwrap());
    // A byte write at the high byte clears INTx disable only.
    wr(&c, PCI_COMMAND + 1, 1, 0);
    assert!(!c.intx_disabled());
    assert_eq!(
        rd(&c, PCI_COMMAND, 2) as u16,
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
    );
    wr(&c, PCI_COMMAND, 1, 0);
    assert_eq!(hw(&p, NVME, PCI_COMMAND, 2), 0);
    assert!(!c.memory_enabled().unwrap());
}

#[test]
fn status_is_read_from_the_device_and_not_writable() {
    const ERRORS: u16 = PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY;
    let dev = fake(resources(Vec::new(), None), |w| w.pm(), |_| {});
    dev.cfg
        .lock()
        .set16(PCI_STATUS, PCI_STATUS_CAP_LIST | ERRORS);
    let c = VfioPciConfig::new(dev.clone()).unwrap();
    assert_eq!(rd(&c, PCI_STATUS, 2) as u16, PCI_STATUS_CAP_LIST | ERRORS);
    // vfio-pci gives no write permission on the status register: writing
    // ones to the RW1C bits is dropped.
    wr(&c, PCI_STATUS, 2, 0xffff);
    assert_eq!(dev.cfg.lock().read16(PCI_STATUS) & ERRORS, ERRORS);
    // A dword write at the command register rewrites the status half as
    // read (Linux's read-modify-write), which clears the set RW1C bits.
    wr(&c, PCI_COMMAND, 4, 0);
    assert_eq!(dev.cfg.lock().read16(PCI_STATUS), PCI_STATUS_CAP_LIST);
    assert_eq!(rd(&c, PCI_STATUS, 2) as u16, PCI_STATUS_CAP_LIST);
}

#[test]
fn hidden_extended_capability_is_skipped_and_raw() {
    let p = platform();
    let info = p.function(bdf(DSA)).unwrap();
    let pasid = info.ext_capability(PCI_EXT_CAP_ID_PASID).unwrap();
    let ats = info.ext_capability(PCI_EXT_CAP_ID_ATS).unwrap();
    let pri = info.ext_capability(PCI_EXT_CAP_ID_PRI).unwrap();
    let c = vfio(&p, DSA);
    // The kernel's table has PASID at length 0 ("not yet"): the chain
    // goes ATS -> PRI -> end.
    assert_eq!(
        ext_chain(&c),
        vec![(PCI_EXT_CAP_ID_ATS, ats), (PCI_EXT_CAP_ID_PRI, pri)]
    );
    assert_eq!(rd(&c, pri, 4) >> 20, 0, "PRI is last for the user");
    assert_eq!(hw(&p, DSA, pri, 4) >> 20, u32::from(pasid));
    // Its bytes are unassigned, which vfio-pci passes through raw: reads
    // return the device's registers and writes reach them.
    assert_eq!(rd(&c, pasid, 4), hw(&p, DSA, pasid, 4));
    assert_eq!(rd(&c, pasid + PCI_PASID_CAP, 2), 0x1404);
    wr(&c, pasid + PCI_PASID_CTRL, 2, PCI_PASID_CTRL_ENABLE.into());
    assert_eq!(
        hw(&p, DSA, pasid + PCI_PASID_CTRL, 2) as u16,
        PCI_PASID_CTRL_ENABLE
    );
    // Exposed capabilities without a permission table are read-only.
    wr(&c, ats + PCI_ATS_CTRL, 2, PCI_ATS_CTRL_ENABLE.into());
    assert_eq!(hw(&p, DSA, ats + PCI_ATS_CTRL, 2), 0);
    assert_eq!(rd(&c, ats + PCI_ATS_CTRL, 2), 0);
}

#[test]
fn hidden_standard_capability_is_skipped_and_raw() {
    const SSVID: u8 = 0x0d;
    const AT: u16 = 0xc0;
    // PM at 0x40 -> bridge subsystem IDs (hidden) at 0xc0 -> MSI at 0x48;
    // then a null capability (ID 0, hidden) at 0xd0 ending the list.
    let dev = fake(
        resources(Vec::new(), None),
        |w| {
            w.pm();
            w.msi(&MsiSpec {
                vectors: 1,
                address_64: false,
                per_vector_mask: false,
            });
        },
        |cfg| {
            cfg.set8(0x41, AT as u8);
            cfg.set8(AT, SSVID);
            cfg.set8(AT + 1, 0x48);
            cfg.set32(AT + 4, 0x5678_1234);
            cfg.set8(0x49, 0xd0);
            cfg.set8(0xd0, 0);
            cfg.set8(0xd1, 0);
        },
    );
    let c = VfioPciConfig::new(dev.clone()).unwrap();
    assert_eq!(
        std_chain(&c),
        vec![(PCI_CAP_ID_PM, 0x40), (PCI_CAP_ID_MSI, 0x48)]
    );
    assert_eq!(rd(&c, AT, 4), u32::from(SSVID) | 0x48 << 8);
    assert_eq!(rd(&c, AT + 4, 4), 0x5678_1234);
    // The device is untouched: its own chain still has both.
    assert_eq!(dev.cfg.lock().read8(0x41), AT as u8);
    assert_eq!(dev.cfg.lock().read8(0x49), 0xd0);

    // Only hidden capabilities: the capability-list bit reads clear.
    let dev = fake(
        resources(Vec::new(), None),
        |_| {},
        |cfg| {
            cfg.set8(PCI_CAPABILITY_LIST, 0x40);
            cfg.set16(PCI_STATUS, PCI_STATUS_CAP_LIST);
            cfg.set8(0x40, SSVID);
        },
    );
    let c = VfioPciConfig::new(dev).unwrap();
    assert_eq!(rd(&c, PCI_STATUS, 2) as u16 & PCI_STATUS_CAP_LIST, 0);
    assert_eq!(rd(&c, PCI_CAPABILITY_LIST, 1), 0);
}

#[test]
fn hidden_first_extended_capability_becomes_a_placeholder() {
    let pasid = PasidSpec {
        max_width: 20,
        exec: false,
        privileged: false,
    };
    // PASID at 0x100 (hidden, cannot be skipped), ACS at 0x108.
    let dev = fake(
        resources(Vec::new(), None),
        |w| {
            w.pcie(PCI_EXP_TYPE_ENDPOINT);
            w.pasid(&pasid);
            w.acs(0x1f, 0);
        },
        |_| {},
    );
    let c = VfioPciConfig::new(dev.clone()).unwrap();
    // ID 0, version 0, next pointer kept.
    assert_eq!(rd(&c, 0x100, 4), 0x108 << 20);
    assert_eq!(ext_chain(&c), vec![(0, 0x100), (PCI_EXT_CAP_ID_ACS, 0x108)]);
    assert_eq!(dev.cfg.lock().read32(0x100) as u16, PCI_EXT_CAP_ID_PASID);
    // Past the placeholder dword the hidden capability is raw.
    assert_eq!(rd(&c, 0x104, 2), 0x1400);

    // Nothing exposed in the extended list: 0x100 reads zero.
    let dev = fake(
        resources(Vec::new(), None),
        |w| {
            w.pcie(PCI_EXP_TYPE_ENDPOINT);
            w.pasid(&pasid);
        },
        |_| {},
    );
    let c = VfioPciConfig::new(dev).unwrap();
    assert_eq!(rd(&c, 0x100, 4), 0);
}

#[test]
fn msix_capability_is_read_only() {
    let p = platform();
    let c = vfio(&p, DSA);
    let msix = p
        .function(bdf(DSA))
        .unwrap()
        .capability(PCI_CAP_ID_MSIX)
        .unwrap();
    let before: Vec<u32> = (0..3).map(|i| rd(&c, msix + 4 * i, 4)).collect();
    assert_eq!(before[1], 0x2000, "table in BAR 0 at 0x2000");
    assert_eq!(before[2], 0x3000, "PBA in BAR 0 at 0x3000");
    for i in 0..3 {
        wr(&c, msix + 4 * i, 4, u32::MAX);
    }
    wr(&c, msix + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE.into());
    let after: Vec<u32> = (0..3).map(|i| rd(&c, msix + 4 * i, 4)).collect();
    assert_eq!(before, after);
    assert_eq!(hw(&p, DSA, msix + PCI_MSIX_FLAGS, 2), 8, "device untouched");
}

#[test]
fn msi_control_address_and_data_are_virtual() {
    let p = platform();
    let c = vfio(&p, GPU);
    let msi = p
        .function(bdf(GPU))
        .unwrap()
        .capability(PCI_CAP_ID_MSI)
        .unwrap();
    let flags = msi + PCI_MSI_FLAGS;
    // 64-bit, per-vector mask, one vector: the device says so.
    assert_eq!(hw(&p, GPU, flags, 2), 0x0180);
    assert_eq!(rd(&c, flags, 2), 0x0180);
    wr(&c, msi + PCI_MSI_ADDRESS_LO, 4, 0xfee0_1000);
    wr(&c, msi + PCI_MSI_ADDRESS_HI, 4, 0x1);
    wr(&c, msi + PCI_MSI_DATA_64, 2, 0x4041);
    assert_eq!(hw(&p, GPU, msi + PCI_MSI_ADDRESS_LO, 4), 0, "virtual");
    assert_eq!(hw(&p, GPU, msi + PCI_MSI_DATA_64, 2), 0);
    // Enable is refused until vfio-pci runs the device in MSI mode.
    wr(&c, flags, 2, PCI_MSI_FLAGS_ENABLE.into());
    let m = c.msi_message().unwrap();
    assert_eq!(
        (m.enabled, m.vectors, m.address, m.data),
        (false, 1, 0x1_fee0_1000, 0x4041)
    );
    c.set_irq_mode(IrqMode::Msi { vectors: 3 });
    // Multiple Message Capable now reads what was enabled (4 vectors).
    assert_eq!(rd(&c, flags, 2) as u16 & PCI_MSI_FLAGS_QMASK, 2 << 1);
    // Multiple Message Enable is capped at it; the result reaches the
    // device, which keeps only what it implements.
    wr(&c, flags, 2, (PCI_MSI_FLAGS_ENABLE | 0x50).into());
    let m = c.msi_message().unwrap();
    assert_eq!((m.enabled, m.vectors), (true, 4));
    assert_eq!(
        hw(&p, GPU, flags, 2) as u16 & (PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE),
        PCI_MSI_FLAGS_ENABLE | 0x20
    );
    // Mask bits pass through.
    wr(&c, msi + PCI_MSI_MASK_64, 4, u32::MAX);
    assert_eq!(hw(&p, GPU, msi + PCI_MSI_MASK_64, 4), 1);
    assert_eq!(rd(&c, msi + PCI_MSI_MASK_64, 4), 1);
}

#[test]
fn power_state_reaches_the_device_and_pme_is_virtual() {
    let p = platform();
    let c = vfio(&p, NVME);
    wr(&c, PCI_COMMAND, 2, PCI_COMMAND_MEMORY.into());
    let pm = p
        .function(bdf(NVME))
        .unwrap()
        .capability(PCI_CAP_ID_PM)
        .unwrap();
    let ctrl = pm + PCI_PM_CTRL;
    wr(&c, ctrl, 2, (3 | PCI_PM_CTRL_PME_ENABLE).into());
    assert_eq!(hw(&p, NVME, ctrl, 2) as u16 & PCI_PM_CTRL_STATE_MASK, 3);
    assert_eq!(hw(&p, NVME, ctrl, 2) as u16 & PCI_PM_CTRL_PME_ENABLE, 0);
    // PME is the host's: virtual and not writable, so it reads clear.
    assert_eq!(rd(&c, ctrl, 2) as u16 & PCI_PM_CTRL_PME_ENABLE, 0);
    assert_eq!(rd(&c, ctrl, 2) as u16 & PCI_PM_CTRL_STATE_MASK, 3);
    assert!(!c.memory_enabled().unwrap(), "D3hot");
    wr(&c, ctrl, 2, 0);
    assert!(c.memory_enabled().unwrap());
}

#[test]
fn pcie_device_control_rules() {
    let dev = fake(
        resources(Vec::new(), None),
        |w| w.pcie(PCI_EXP_TYPE_ENDPOINT),
        |_| {},
    );
    let c = VfioPciConfig::new(dev.clone()).unwrap();
    let ctl = 0x40 + PCI_EXP_DEVCTL;
    let hw_ctl = || dev.cfg.lock().read16(ctl);
    let initial = hw_ctl();
    assert_eq!(initial, 0x2810, "MPS 128, MRRS 512, extended tags");
    // FLR reads back zero and resets the function (DEVCAP has FLR).
    wr(&c, ctl, 2, (initial | PCI_EXP_DEVCTL_BCR_FLR).into());
    assert_eq!(rd(&c, ctl, 2) as u16 & PCI_EXP_DEVCTL_BCR_FLR, 0);
    assert_eq!(dev.resets.load(Ordering::Relaxed), 1);
    // Phantom functions stay off; max payload is virtual.
    wr(&c, ctl, 2, (initial | 0x0200 | 0x0020).into());
    assert_eq!(hw_ctl() & 0x02e0, 0);
    assert_eq!(rd(&c, ctl, 2) as u16 & 0x00e0, 0x0020);
    // Max read request reaches the device, floored at its max payload
    // (128 bytes here): 128 is kept as asked.
    wr(&c, ctl, 2, (initial & !0x7000).into());
    assert_eq!(hw_ctl() & 0x7000, 0);
    wr(&c, ctl, 2, ((initial & !0x7000) | 0x5000).into());
    assert_eq!(hw_ctl() & 0x7000, 0x5000, "4096 bytes");
    // Enables in the low bits pass through.
    assert_eq!(hw_ctl() & 0x000f, 0);
    wr(&c, ctl, 1, 0x0f);
    assert_eq!(hw_ctl() & 0x000f, 0x000f);
    // Device control 2: ARI is not writable, the rest is.
    let ctl2 = 0x40 + PCI_EXP_DEVCTL2;
    wr(&c, ctl2, 2, 0xffff);
    assert_eq!(dev.cfg.lock().read16(ctl2), 0x043f & !0x0020);
}

#[test]
fn access_errors() {
    let p = platform();
    let c = vfio(&p, NVME);
    assert_eq!(c.size(), 4096);
    let mut buf = [0; 4];
    let err = c.read(4094, &mut buf).unwrap_err();
    assert_eq!(err.errno(), Errno::FAULT);
    let err = c.write(u64::MAX, &buf).unwrap_err();
    assert_eq!(err.errno(), Errno::FAULT);
    c.read(4096, &mut []).unwrap();
    // vfio-pci takes normal headers only.
    let err = VfioPciConfig::for_platform(p.clone(), bdf(ROOT_PORT)).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let err = VfioPciConfig::for_platform(p.clone(), bdf("0000:0a:00.0")).unwrap_err();
    assert_eq!(err.errno(), Errno::NODEV);
    // Conventional PCI: 256 bytes.
    let c = vfio(&p, "0000:09:00.0");
    assert_eq!(c.size(), 256);
    assert_eq!(c.read(256, &mut buf).unwrap_err().errno(), Errno::FAULT);
}

#[test]
fn reads_are_the_same_at_any_granularity() {
    let p = platform();
    for dev in [DSA, NVME, GPU] {
        let c = vfio(&p, dev);
        let mut whole = vec![0; 4096];
        c.read(0, &mut whole).unwrap();
        for step in [1, 2, 3, 4, 7] {
            let mut pieces = vec![0; 4096];
            for (i, chunk) in pieces.chunks_mut(step).enumerate() {
                c.read((i * step) as u64, chunk).unwrap();
            }
            assert!(whole == pieces, "{dev} in pieces of {step}");
        }
    }
}
