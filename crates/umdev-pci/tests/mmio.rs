//! MMIO dispatch: BAR accesses reach the registered model only while the
//! function decodes memory; out-of-BAR accesses are EINVAL.

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::regs::*;
use umdev_pci::{BarHandler, Platform};
use umdev_testkit::bdf;

const NVME: &str = "0000:05:00.0";
const GPU: &str = "0000:06:00.0";
const PF: &str = "0000:07:00.0";
const VF0: &str = "0000:07:02.0";

/// A model that is 32 bytes of scratch registers and logs accesses.
#[derive(Default)]
struct Scratch {
    regs: Mutex<[u8; 32]>,
    log: Mutex<Vec<(bool, u8, u64, usize)>>,
}

impl BarHandler for Scratch {
    fn read(&self, bar: u8, offset: u64, buf: &mut [u8]) {
        self.log.lock().push((false, bar, offset, buf.len()));
        let at = offset as usize % 32;
        let regs = self.regs.lock();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = regs[(at + i) % 32];
        }
    }

    fn write(&self, bar: u8, offset: u64, data: &[u8]) {
        self.log.lock().push((true, bar, offset, data.len()));
        let at = offset as usize % 32;
        let mut regs = self.regs.lock();
        for (i, b) in data.iter().enumerate() {
            regs[(at + i) % 32] = *b;
        }
    }
}

fn set_command(p: &Platform, dev: &str, bits: u16) {
    p.config_write(bdf(dev), PCI_COMMAND, &bits.to_le_bytes())
        .unwrap();
}

fn attach(p: &Platform, dev: &str) -> Arc<Scratch> {
    let model = Arc::new(Scratch::default());
    p.set_bar_handler(bdf(dev), Some(model.clone())).unwrap();
    model
}

#[test]
fn accesses_reach_the_model_while_memory_decoding_is_on() {
    let p = Platform::default_platform().unwrap();
    let model = attach(&p, NVME);
    set_command(&p, NVME, PCI_COMMAND_MEMORY);
    p.bar_write(bdf(NVME), 0, 8, &0xdead_beefu32.to_le_bytes())
        .unwrap();
    let mut back = [0u8; 4];
    p.bar_read(bdf(NVME), 0, 8, &mut back).unwrap();
    assert_eq!(u32::from_le_bytes(back), 0xdead_beef);
    assert_eq!(*model.log.lock(), vec![(true, 0, 8, 4), (false, 0, 8, 4)]);
}

#[test]
fn memory_decoding_off_reads_all_ones_and_drops_writes() {
    let p = Platform::default_platform().unwrap();
    let model = attach(&p, NVME);
    // Power-on command register: decoding off.
    let mut buf = [0u8; 8];
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0xff; 8]);
    p.bar_write(bdf(NVME), 0, 0, &[1, 2, 3, 4]).unwrap();
    assert!(model.log.lock().is_empty(), "nothing reached the model");
    // Bus mastering alone does not decode memory.
    set_command(&p, NVME, PCI_COMMAND_MASTER);
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0xff; 8]);
    set_command(&p, NVME, PCI_COMMAND_MEMORY);
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0; 8], "the dropped write left the registers alone");
}

#[test]
fn d3hot_stops_decoding() {
    let p = Platform::default_platform().unwrap();
    let model = attach(&p, NVME);
    set_command(&p, NVME, PCI_COMMAND_MEMORY);
    let pm = p
        .function(bdf(NVME))
        .unwrap()
        .capability(PCI_CAP_ID_PM)
        .unwrap();
    p.config_write(bdf(NVME), pm + PCI_PM_CTRL, &3u16.to_le_bytes())
        .unwrap();
    let mut buf = [0u8; 4];
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0xff; 4]);
    p.config_write(bdf(NVME), pm + PCI_PM_CTRL, &0u16.to_le_bytes())
        .unwrap();
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    assert_eq!(model.log.lock().len(), 1, "only the D0 read reached it");
}

#[test]
fn bar_bounds_are_einval() {
    let p = Platform::default_platform().unwrap();
    attach(&p, GPU);
    set_command(&p, GPU, PCI_COMMAND_MEMORY);
    let gpu = bdf(GPU);
    let mut buf = [0u8; 4];
    // BAR 0 is 16 MiB (32-bit); BAR 1 is 256 MiB 64-bit, so register 2
    // is its upper half and not a BAR.
    p.bar_read(gpu, 0, (16 << 20) - 4, &mut buf).unwrap();
    for (bar, offset) in [(0, (16 << 20) - 3), (0, u64::MAX - 1), (2, 0), (6, 0)] {
        let err = p.bar_read(gpu, bar, offset, &mut buf).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL, "BAR {bar} offset {offset:#x}");
        let err = p.bar_write(gpu, bar, offset, &buf).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL);
    }
    p.bar_read(gpu, 1, (256 << 20) - 4, &mut buf).unwrap();
    let err = p.bar_read(bdf("0000:0a:00.0"), 0, 0, &mut buf).unwrap_err();
    assert_eq!(err.errno(), Errno::NODEV);
}

#[test]
fn bars_without_a_model_read_zero() {
    let p = Platform::default_platform().unwrap();
    set_command(&p, NVME, PCI_COMMAND_MEMORY);
    let mut buf = [0xaau8; 4];
    p.bar_write(bdf(NVME), 0, 0, &[1; 4]).unwrap();
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    let model = attach(&p, NVME);
    p.set_bar_handler(bdf(NVME), None).unwrap();
    assert!(p.bar_handler(bdf(NVME)).unwrap().is_none());
    p.bar_read(bdf(NVME), 0, 0, &mut buf).unwrap();
    assert!(model.log.lock().is_empty());
}

#[test]
fn vf_decoding_follows_the_pf_vf_mse() {
    let p = Platform::default_platform().unwrap();
    // i40e (built in, with sriov_configure) enables the VFs.
    p.bind_startup_drivers().unwrap();
    p.set_sriov_numvfs(bdf(PF), 1).unwrap();
    let model = attach(&p, VF0);
    // The VF's own command register cannot enable memory (its Memory
    // Space bit is read-only zero); the PF's VF MSE, set by
    // pci_enable_sriov, decides.
    p.bar_write(bdf(VF0), 0, 0, &[7; 4]).unwrap();
    let mut buf = [0u8; 4];
    p.bar_read(bdf(VF0), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [7; 4]);
    // VF BAR 0 is 64 KiB.
    let err = p.bar_read(bdf(VF0), 0, 64 << 10, &mut buf).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);

    let sriov = p
        .function(bdf(PF))
        .unwrap()
        .ext_capability(PCI_EXT_CAP_ID_SRIOV)
        .unwrap();
    let mut ctrl = [0u8; 2];
    p.config_read(bdf(PF), sriov + PCI_SRIOV_CTRL, &mut ctrl)
        .unwrap();
    let ctrl = u16::from_le_bytes(ctrl) & !PCI_SRIOV_CTRL_MSE;
    p.config_write(bdf(PF), sriov + PCI_SRIOV_CTRL, &ctrl.to_le_bytes())
        .unwrap();
    p.bar_read(bdf(VF0), 0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0xff; 4]);
    assert_eq!(model.log.lock().len(), 2);

    // The model goes away with the VF.
    p.set_sriov_numvfs(bdf(PF), 0).unwrap();
    assert_eq!(Arc::strong_count(&model), 1);
}
