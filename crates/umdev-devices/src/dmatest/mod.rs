//! The DMA test device: the behaviour of the platform's endpoints.
//!
//! A small DMA engine behind BAR 0 (register map in [`regs`] and
//! docs/dmatest.md): the driver programs a source and destination IOVA
//! and a length and writes START; the device copies (or fills) in 4 KiB
//! chunks by DMA tagged with its own requester ID, so every byte goes
//! through the IOMMU and whatever domain the function's group is attached
//! to. A faulting access ends the operation with the error code, the
//! faulting IOVA and the bytes known to be in the destination, and the
//! IOMMU unit logs the fault. Completion (success or error) raises vector
//! 0 of the device's [`Interrupts`] when enabled in IRQ_CTRL.
//!
//! The operation runs in the thread that writes START: STATUS.BUSY is set
//! for its duration (visible to other threads) and a START while busy is
//! ignored. DMA needs Bus Master Enable in the function's command register;
//! register access needs memory decoding (the platform returns all ones
//! otherwise, see [`umdev_pci::BarHandler`]).
//!
//! Registers are 32 bits wide: accesses of 4 or 8 bytes at a multiple of
//! 4 reach them (8 bytes cover two registers); other accesses, and
//! offsets past the register window or in other BARs, read zero and are
//! ignored.

mod engine;
pub mod regs;

use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use umdev_iommu::dma::Dma;
use umdev_iommu::system::System;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_HEADER_TYPE_NORMAL};
use umdev_pci::{BarHandler, Bdf, Platform};

use crate::irq::Interrupts;
use engine::{Failure, Job};
use regs::*;

/// Register state (a leaf lock: never held across DMA or interrupts).
#[derive(Default)]
struct Regs {
    src: u64,
    dst: u64,
    len: u32,
    /// Last command written, START masked off.
    cmd: u32,
    status: u32,
    irq_ctrl: u32,
    fault: u64,
    fill: u64,
    done_bytes: u32,
    completions: u32,
}

/// Replaces the low or high half of `v`.
fn set_half(v: &mut u64, high: bool, half: u32) {
    *v = if high {
        (*v & 0xffff_ffff) | (u64::from(half) << 32)
    } else {
        (*v & !0xffff_ffff) | u64::from(half)
    };
}

fn half(v: u64, high: bool) -> u32 {
    if high { (v >> 32) as u32 } else { v as u32 }
}

/// One DMA test device, behind one function's BAR 0.
pub struct DmaTest {
    platform: Weak<Platform>,
    bdf: Bdf,
    dma: Arc<dyn Dma>,
    regs: Mutex<Regs>,
    irq: RwLock<Option<Arc<dyn Interrupts>>>,
}

impl DmaTest {
    /// A device at `bdf` of `platform` issuing DMA through `dma`. It reads
    /// its command register from the platform for Bus Master Enable.
    pub fn new(platform: Weak<Platform>, bdf: Bdf, dma: Arc<dyn Dma>) -> Arc<Self> {
        Arc::new(Self {
            platform,
            bdf,
            dma,
            regs: Mutex::new(Regs::default()),
            irq: RwLock::new(None),
        })
    }

    /// The function it sits behind.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// Connects (or with `None` disconnects) its interrupt.
    pub fn set_interrupts(&self, irq: Option<Arc<dyn Interrupts>>) {
        *self.irq.write() = irq;
    }

    fn reg_read(&self, off: u64) -> u32 {
        let r = self.regs.lock();
        match off {
            DMATEST_ID => DMATEST_ID_VALUE,
            DMATEST_VERSION => DMATEST_VERSION_VALUE,
            DMATEST_SRC_LO | DMATEST_SRC_HI => half(r.src, off == DMATEST_SRC_HI),
            DMATEST_DST_LO | DMATEST_DST_HI => half(r.dst, off == DMATEST_DST_HI),
            DMATEST_LEN => r.len,
            DMATEST_CMD => r.cmd,
            DMATEST_STATUS => r.status,
            DMATEST_IRQ_CTRL => r.irq_ctrl,
            DMATEST_FAULT_LO | DMATEST_FAULT_HI => half(r.fault, off == DMATEST_FAULT_HI),
            DMATEST_FILL_LO | DMATEST_FILL_HI => half(r.fill, off == DMATEST_FILL_HI),
            DMATEST_DONE_BYTES => r.done_bytes,
            DMATEST_COMPLETIONS => r.completions,
            _ => 0,
        }
    }

    /// Stores a register; a START returns the job to run once the lock is
    /// released.
    fn reg_write(&self, off: u64, v: u32) -> Option<Job> {
        let mut r = self.regs.lock();
        match off {
            DMATEST_SRC_LO | DMATEST_SRC_HI => set_half(&mut r.src, off == DMATEST_SRC_HI, v),
            DMATEST_DST_LO | DMATEST_DST_HI => set_half(&mut r.dst, off == DMATEST_DST_HI, v),
            DMATEST_FILL_LO | DMATEST_FILL_HI => set_half(&mut r.fill, off == DMATEST_FILL_HI, v),
            DMATEST_LEN => r.len = v,
            DMATEST_IRQ_CTRL => r.irq_ctrl = v & DMATEST_IRQ_ENABLE,
            DMATEST_STATUS => {
                let clear = v & (DMATEST_STATUS_DONE | DMATEST_STATUS_ERROR);
                r.status &= !clear;
                if clear & DMATEST_STATUS_ERROR != 0 {
                    r.status &= !DMATEST_STATUS_CODE_MASK;
                }
            }
            DMATEST_CMD => {
                r.cmd = v & !DMATEST_CMD_START;
                if v & DMATEST_CMD_START != 0 && r.status & DMATEST_STATUS_BUSY == 0 {
                    r.status = DMATEST_STATUS_BUSY;
                    r.fault = 0;
                    r.done_bytes = 0;
                    return Some(Job {
                        op: v & DMATEST_CMD_OP_MASK,
                        src: r.src,
                        dst: r.dst,
                        len: r.len,
                        fill: r.fill,
                    });
                }
            }
            _ => {}
        }
        None
    }

    /// Runs a job, records the outcome, raises the interrupt.
    fn execute(&self, job: Job) {
        let result = if self.bus_master() {
            engine::run(self.dma.as_ref(), &job)
        } else {
            Err(Failure {
                code: DMATEST_ERR_NO_BUS_MASTER,
                fault: 0,
                done: 0,
            })
        };
        let irq_enabled = {
            let mut r = self.regs.lock();
            match result {
                Ok(done) => {
                    r.status = DMATEST_STATUS_DONE;
                    r.done_bytes = done;
                }
                Err(f) => {
                    r.status = DMATEST_STATUS_ERROR | (f.code << DMATEST_STATUS_CODE_SHIFT);
                    r.fault = f.fault;
                    r.done_bytes = f.done;
                }
            }
            r.completions = r.completions.wrapping_add(1);
            r.irq_ctrl & DMATEST_IRQ_ENABLE != 0
        };
        if irq_enabled && let Some(irq) = self.irq.read().clone() {
            irq.trigger(0);
        }
    }

    /// Bus Master Enable in the function's command register.
    fn bus_master(&self) -> bool {
        let Some(platform) = self.platform.upgrade() else {
            return false;
        };
        let mut cmd = [0; 2];
        platform
            .config_read(self.bdf, PCI_COMMAND, &mut cmd)
            .is_ok()
            && u16::from_le_bytes(cmd) & PCI_COMMAND_MASTER != 0
    }
}

/// The register dwords an access covers, if it reaches registers.
fn dwords(bar: u8, offset: u64, len: usize) -> Option<impl Iterator<Item = u64>> {
    let reaches = bar == 0 && offset.is_multiple_of(4) && (len == 4 || len == 8);
    reaches.then(|| (0..len as u64 / 4).map(move |i| offset + 4 * i))
}

impl BarHandler for DmaTest {
    fn read(&self, bar: u8, offset: u64, buf: &mut [u8]) {
        buf.fill(0);
        let Some(regs) = dwords(bar, offset, buf.len()) else {
            return;
        };
        for (chunk, off) in buf.chunks_mut(4).zip(regs) {
            chunk.copy_from_slice(&self.reg_read(off).to_le_bytes());
        }
    }

    fn write(&self, bar: u8, offset: u64, data: &[u8]) {
        let Some(regs) = dwords(bar, offset, data.len()) else {
            return;
        };
        for (chunk, off) in data.chunks(4).zip(regs) {
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if let Some(job) = self.reg_write(off, v) {
                self.execute(job);
            }
        }
    }
}

/// Puts a DMA test device behind BAR 0 of every function of `sys` that
/// has a normal header, a BAR 0 large enough for the registers, an IOMMU
/// unit and no model yet; returns them in address order. Models
/// registered before (an sdma PF, say) are left in place. VFs enabled
/// later get none.
pub fn attach_dmatest(sys: &System) -> Vec<Arc<DmaTest>> {
    let platform = &sys.platform;
    let mut models = Vec::new();
    for bdf in platform.functions() {
        let Some(info) = platform.function(bdf) else {
            continue;
        };
        let bar0 = info
            .bars
            .iter()
            .any(|b| b.index == 0 && b.size.0 >= DMATEST_REGS_SIZE);
        let free = matches!(platform.bar_handler(bdf), Ok(None));
        if info.header_type() != PCI_HEADER_TYPE_NORMAL || !bar0 || !free {
            continue;
        }
        let Ok(dma) = sys.iommu.dma_for(bdf) else {
            continue;
        };
        let model = DmaTest::new(Arc::downgrade(platform), bdf, dma);
        if platform.set_bar_handler(bdf, Some(model.clone())).is_ok() {
            models.push(model);
        }
    }
    models
}
