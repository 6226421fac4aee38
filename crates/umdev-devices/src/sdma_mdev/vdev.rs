//! An sdma mdev as a VFIO device: a virtual PCI function whose BAR0 is one
//! work queue's register page followed by an MSI-X table backed by the
//! engine's interrupt message store (IMS).
//!
//! - CONFIG: [`super::config`]; the command register's MEMORY bit gates
//!   BAR0 (EIO while clear, as `vfio_pci_core_do_io_rw` does when memory
//!   is disabled) and its MASTER bit gates DMA: a TAIL doorbell written
//!   while bus mastering is off is held, not run, and runs when MASTER is
//!   set (the engine cannot issue the descriptor fetch before).
//! - BAR0 (8 KiB, 4- or 8-byte naturally aligned accesses, else EINVAL):
//!   0x0000-0x0fff the register page of docs/sdma.md; 0x1000 the MSI-X
//!   table (one 16-byte entry); 0x1800 the PBA; the rest reads 0.
//! - MSI-X vector 0 *is* the work queue's IMS entry: the table shows the
//!   address and data the consumer wrote and the entry's mask bit; writing
//!   the vector control masks or unmasks the entry, and the PBA shows its
//!   pending bit. The entry's message data is not the consumer's but the
//!   parent's interrupt handle (as a remappable MSI carries an IRTE handle
//!   and the remapping table the guest's vector), which the parent maps
//!   back to this device's MSI-X vector 0, signalled through the eventfd
//!   set with SET_IRQS. A SET_IRQS that enables MSI-X unmasks the entry and
//!   one that disables it masks it (`request_irq` / `free_irq` on the
//!   host vector).
//! - IRQ indexes as vfio-pci reports a conventional function without an
//!   interrupt pin or MSI capability: INTx 0 vectors, MSI 0, MSI-X 1,
//!   ERR 0 (not PCIe), REQ 1.
//! - Reset returns config space and the work queue's registers to
//!   power-on; the interrupt setup (triggers, table, IMS) stays, as
//!   VFIO_DEVICE_RESET leaves triggers and `pci_restore_state` the MSI-X
//!   state. Close also drops the triggers and masks the entry.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::config::ConfigSpace;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_vfio::device::{
    DeviceInfo, IrqAction, IrqInfo, RegionInfo, SetIrqs, VfioDeviceOps, VfioError, irq, region,
};
use umdev_vfio::irqs::IrqTable;
use umdev_vfio::pci_config::IrqMode;

use super::config::{self, *};
use crate::sdma::regs::{WQ_PAGE_SIZE, WQ_TAIL};
use crate::sdma::{ImsMessage, Sdma, WorkQueue};
use crate::vpci;

/// Vectors per VFIO IRQ index: MSI-X 1, REQ 1.
const IRQ_COUNTS: [u32; irq::NUM as usize] = [0, 0, SDMA_MDEV_MSIX_VECTORS, 0, 1];
/// Vector control: masked.
const MSIX_VECTOR_MASKED: u32 = 1;

/// The consumer-written part of the MSI-X entry.
#[derive(Clone, Copy, Debug, Default)]
struct MsixEntry {
    addr: u64,
    data: u32,
}

/// Mutable state behind one lock.
struct State {
    config: ConfigSpace,
    /// A TAIL value written while bus mastering was off.
    held_tail: Option<u32>,
    msix: MsixEntry,
}

/// One sdma mdev: a work queue of the engine as a VFIO PCI device.
pub struct SdmaVdev {
    sdma: Arc<Sdma>,
    wq: Arc<WorkQueue>,
    /// The IMS entry behind MSI-X vector 0.
    ims_entry: usize,
    state: Mutex<State>,
    irqs: IrqTable,
    unplugged: AtomicBool,
}

impl fmt::Debug for SdmaVdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdmaVdev")
            .field("wq", &self.wq.index())
            .field("ims_entry", &self.ims_entry)
            .field("irqs", &self.irqs)
            .finish_non_exhaustive()
    }
}

fn bar_range(offset: u64, len: usize) -> VfioError {
    VfioError::OutOfRange {
        index: region::BAR0,
        offset,
        len: len as u64,
    }
}

impl SdmaVdev {
    /// The device of work queue `wq` of `sdma`, whose interrupt is IMS
    /// entry `ims_entry` (the parent programmed both).
    pub(super) fn new(sdma: Arc<Sdma>, wq: Arc<WorkQueue>, ims_entry: usize) -> Self {
        Self {
            sdma,
            wq,
            ims_entry,
            state: Mutex::new(State {
                config: config::build(),
                held_tail: None,
                msix: MsixEntry::default(),
            }),
            irqs: IrqTable::new(IRQ_COUNTS, Box::new(|| false)),
            unplugged: AtomicBool::new(false),
        }
    }

    /// The work queue behind BAR0.
    pub fn wq(&self) -> &Arc<WorkQueue> {
        &self.wq
    }

    /// The IMS entry behind MSI-X vector 0.
    pub fn ims_entry(&self) -> usize {
        self.ims_entry
    }

    /// The parent delivers the IMS entry's message: MSI-X vector 0.
    pub(super) fn deliver(&self) {
        self.irqs.trigger(irq::MSIX, 0);
    }

    /// The device goes away (`vfio_unregister_group_dev` has run): triggers
    /// dropped, later accesses ENODEV. The parent takes the queue back.
    pub(super) fn unplug(&self) {
        self.unplugged.store(true, Ordering::Release);
        self.irqs.disable_all();
    }

    fn check_plugged(&self) -> Result<(), VfioError> {
        if self.unplugged.load(Ordering::Acquire) {
            return Err(VfioError::Errno {
                what: "sdma mdev removed",
                errno: Errno::NODEV,
            });
        }
        Ok(())
    }

    fn command(st: &State) -> u16 {
        st.config.read16(PCI_COMMAND)
    }

    /// The config offset of an access; EFAULT outside config space, as
    /// `vfio_config_do_rw` answers.
    fn config_rw(&self, offset: u64, len: usize) -> Result<u16, VfioError> {
        u16::try_from(offset)
            .ok()
            .filter(|&o| self.state.lock().config.in_range(o, len))
            .ok_or(VfioError::Errno {
                what: "outside config space",
                errno: Errno::FAULT,
            })
    }

    fn config_write(&self, offset: u64, data: &[u8]) -> Result<usize, VfioError> {
        let at = self.config_rw(offset, data.len())?;
        let release = {
            let mut st = self.state.lock();
            st.config.write(at, data);
            if Self::command(&st) & PCI_COMMAND_MASTER != 0 {
                st.held_tail.take()
            } else {
                None
            }
        };
        if let Some(tail) = release {
            self.wq_write(WQ_TAIL, tail)?;
        }
        Ok(data.len())
    }

    /// EINVAL unless 4 or 8 bytes, naturally aligned, inside BAR0; EIO
    /// while memory decoding is off.
    fn check_bar(&self, offset: u64, len: usize) -> Result<(), VfioError> {
        let ok = matches!(len, 4 | 8)
            && offset.is_multiple_of(len as u64)
            && offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= SDMA_MDEV_BAR0_SIZE);
        if !ok {
            return Err(bar_range(offset, len));
        }
        if Self::command(&self.state.lock()) & PCI_COMMAND_MEMORY == 0 {
            return Err(VfioError::Errno {
                what: "sdma mdev memory decoding disabled",
                errno: Errno::IO,
            });
        }
        Ok(())
    }

    fn wq_write(&self, offset: u64, value: u32) -> Result<(), VfioError> {
        self.wq
            .mmio_write(offset, &value.to_le_bytes())
            .map_err(|e| VfioError::Errno {
                what: "sdma register write",
                errno: e.errno(),
            })
    }

    /// One dword of BAR0.
    fn bar_read_dword(&self, offset: u64) -> Result<u32, VfioError> {
        if offset < WQ_PAGE_SIZE {
            let mut b = [0u8; 4];
            self.wq
                .mmio_read(offset, &mut b)
                .map_err(|e| VfioError::Errno {
                    what: "sdma register read",
                    errno: e.errno(),
                })?;
            return Ok(u32::from_le_bytes(b));
        }
        let entry = self.sdma.ims().entry(self.ims_entry).ok();
        let msix = self.state.lock().msix;
        Ok(match offset {
            o if o == SDMA_MDEV_MSIX_TABLE => msix.addr as u32,
            o if o == SDMA_MDEV_MSIX_TABLE + 4 => (msix.addr >> 32) as u32,
            o if o == SDMA_MDEV_MSIX_TABLE + 8 => msix.data,
            o if o == SDMA_MDEV_MSIX_TABLE + 12 => {
                u32::from(entry.is_none_or(|e| e.masked)) * MSIX_VECTOR_MASKED
            }
            o if o == SDMA_MDEV_MSIX_PBA => u32::from(entry.is_some_and(|e| e.pending)),
            _ => 0,
        })
    }

    /// One dword of BAR0.
    fn bar_write_dword(&self, offset: u64, value: u32) -> Result<(), VfioError> {
        if offset < WQ_PAGE_SIZE {
            if offset == WQ_TAIL {
                let mut st = self.state.lock();
                if Self::command(&st) & PCI_COMMAND_MASTER == 0 {
                    st.held_tail = Some(value);
                    return Ok(());
                }
            }
            return self.wq_write(offset, value);
        }
        let ims = self.sdma.ims();
        let table = SDMA_MDEV_MSIX_TABLE;
        let addr = {
            let mut st = self.state.lock();
            let m = &mut st.msix;
            match offset {
                o if o == table => m.addr = (m.addr & !0xffff_ffff) | u64::from(value),
                o if o == table + 4 => m.addr = (m.addr & 0xffff_ffff) | (u64::from(value) << 32),
                o if o == table + 8 => m.data = value,
                _ => {}
            }
            m.addr
        };
        let result = match offset {
            // The address is kept for the host; the data stays the
            // parent's handle (see the module documentation).
            o if o == table || o == table + 4 => ims.entry(self.ims_entry).and_then(|e| {
                ims.set_message(
                    self.ims_entry,
                    ImsMessage {
                        addr,
                        data: e.message.data,
                    },
                )
            }),
            o if o == table + 12 && value & MSIX_VECTOR_MASKED != 0 => ims.mask(self.ims_entry),
            o if o == table + 12 => ims.unmask(self.ims_entry),
            _ => Ok(()),
        };
        result.map_err(|e| VfioError::Errno {
            what: "sdma IMS entry",
            errno: e.errno(),
        })
    }

    /// Config and registers to power-on (see the module documentation).
    fn reset_function(&self) {
        self.wq.reset();
        let mut st = self.state.lock();
        st.config = config::build();
        st.held_tail = None;
    }
}

impl VfioDeviceOps for SdmaVdev {
    fn info(&self) -> DeviceInfo {
        vpci::device_info()
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        let size = match index {
            region::CONFIG => u64::from(SDMA_MDEV_CONFIG_SIZE),
            region::BAR0 => SDMA_MDEV_BAR0_SIZE,
            _ => 0,
        };
        vpci::region_info(index, size)
    }

    /// CONFIG (any size inside the 256 bytes; EFAULT outside) or BAR0 (see
    /// the module documentation); EINVAL for every other region.
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, VfioError> {
        self.check_plugged()?;
        match index {
            region::CONFIG => {
                let at = self.config_rw(offset, buf.len())?;
                self.state.lock().config.read(at, buf);
            }
            region::BAR0 => {
                self.check_bar(offset, buf.len())?;
                for (i, dword) in buf.chunks_exact_mut(4).enumerate() {
                    let v = self.bar_read_dword(offset + 4 * i as u64)?;
                    dword.copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => return Err(VfioError::NoRegion { index }),
        }
        Ok(buf.len())
    }

    /// As [`Self::region_read`]; an 8-byte BAR0 write is two dword writes,
    /// low first.
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<usize, VfioError> {
        self.check_plugged()?;
        match index {
            region::CONFIG => self.config_write(offset, data),
            region::BAR0 => {
                self.check_bar(offset, data.len())?;
                for (i, dword) in data.chunks_exact(4).enumerate() {
                    let v = u32::from_le_bytes([dword[0], dword[1], dword[2], dword[3]]);
                    self.bar_write_dword(offset + 4 * i as u64, v)?;
                }
                Ok(data.len())
            }
            _ => Err(VfioError::NoRegion { index }),
        }
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        vpci::irq_info(&IRQ_COUNTS, index)
    }

    /// vfio-pci's SET_IRQS rules; an MSI-X TRIGGER then unmasks the IMS
    /// entry when MSI-X is enabled and masks it when disabled.
    fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError> {
        self.check_plugged()?;
        let msix_trigger = req.index == irq::MSIX && req.action == IrqAction::Trigger;
        self.irqs.set_irqs(req)?;
        if msix_trigger {
            let ims = self.sdma.ims();
            let r = if self.irqs.mode() == IrqMode::Msix {
                ims.unmask(self.ims_entry)
            } else {
                ims.mask(self.ims_entry)
            };
            r.map_err(|e| VfioError::Errno {
                what: "sdma IMS entry",
                errno: e.errno(),
            })?;
        }
        Ok(())
    }

    fn reset(&self) -> Result<(), VfioError> {
        self.check_plugged()?;
        self.reset_function();
        Ok(())
    }

    /// Triggers dropped, the IMS entry masked, the function reset and the
    /// MSI-X table cleared: the next consumer finds nothing of this one.
    fn close_device(&self) {
        self.irqs.disable_all();
        let _ = self.sdma.ims().mask(self.ims_entry);
        self.reset_function();
        self.state.lock().msix = MsixEntry::default();
    }
}
