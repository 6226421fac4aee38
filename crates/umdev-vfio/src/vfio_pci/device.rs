//! One function bound to vfio-pci as a VFIO device
//! (drivers/vfio/pci/vfio_pci_core.c, vfio_pci_rdwr.c).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::regs::{
    PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY,
};
use umdev_pci::{Bdf, PciError, Platform};

use super::function::{IrqResources, WeakFunction};
use crate::device::{
    DeviceFlags, DeviceInfo, IrqInfo, IrqInfoFlags, OpenContext, RegionFlags, RegionInfo, SetIrqs,
    VfioDeviceOps, VfioError, irq, region,
};
use crate::irqs::IrqTable;
use crate::pci_config::{IrqMode, PciConfigError, PhysFunction, VfioPciConfig};

fn cfg_err(e: PciConfigError) -> VfioError {
    VfioError::Errno {
        what: "config space access",
        errno: e.errno(),
    }
}

fn pci_err(what: &'static str) -> impl Fn(PciError) -> VfioError {
    move |e| VfioError::Errno {
        what,
        errno: e.errno(),
    }
}

/// A PCI function driven by vfio-pci (`struct vfio_pci_core_device`).
///
/// Regions: BARs reach the platform's device model through
/// `Platform::bar_read/bar_write` while the user enabled memory decoding
/// (EIO otherwise), except the MSI-X table, which reads as all ones and
/// drops writes; CONFIG goes through [`VfioPciConfig`]; the ROM and VGA
/// regions are empty (platform functions have neither). Interrupts: an
/// [`IrqTable`] per device; the glue between the device model and VFIO
/// calls [`VfioPciDevice::raise`] or [`VfioPciDevice::trigger`].
/// No reset: the platform models no reset method, so the device does not
/// report `VFIO_DEVICE_FLAGS_RESET` and VFIO_DEVICE_RESET fails ENOTTY.
pub struct VfioPciDevice {
    bdf: Bdf,
    function: Arc<WeakFunction>,
    irq_res: IrqResources,
    regions: Vec<RegionInfo>,
    /// The virtual config space, rebuilt at every open
    /// (`vfio_config_init` in `vfio_pci_core_enable`).
    config: Mutex<Arc<VfioPciConfig>>,
    irqs: IrqTable,
    /// The device model's INTx line level.
    intx_line: Arc<AtomicBool>,
}

impl std::fmt::Debug for VfioPciDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPciDevice")
            .field("bdf", &self.bdf)
            .field("irqs", &self.irqs)
            .finish_non_exhaustive()
    }
}

impl VfioPciDevice {
    pub(super) fn new(
        bdf: Bdf,
        function: WeakFunction,
        irq_res: IrqResources,
    ) -> Result<Self, PciConfigError> {
        let function = Arc::new(function);
        let config = VfioPciConfig::new(function.clone())?;
        let regions = Self::region_infos(&function, config.size());
        let intx_line = Arc::new(AtomicBool::new(false));
        let line = intx_line.clone();
        let irqs = IrqTable::new(
            irq_res.counts,
            Box::new(move || line.load(Ordering::SeqCst)),
        );
        Ok(Self {
            bdf,
            function,
            irq_res,
            regions,
            config: Mutex::new(Arc::new(config)),
            irqs,
            intx_line,
        })
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for every vfio-pci region.
    fn region_infos(function: &WeakFunction, config_size: u16) -> Vec<RegionInfo> {
        let res = function.resources();
        let rw = RegionFlags::READ | RegionFlags::WRITE;
        (0..region::NUM)
            .map(|index| {
                let (flags, size) = match index {
                    region::BAR0..=region::BAR5 => match res.bar(index as u16) {
                        Some(b) => (rw, b.size),
                        None => (RegionFlags::empty(), 0),
                    },
                    region::CONFIG => (rw, u64::from(config_size)),
                    // ROM and VGA: platform functions have neither.
                    _ => (RegionFlags::empty(), 0),
                };
                RegionInfo {
                    index,
                    flags,
                    size,
                    sparse_mmap: Vec::new(),
                }
            })
            .collect()
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The virtual config space of the current open.
    pub fn config(&self) -> Arc<VfioPciConfig> {
        self.config.lock().clone()
    }

    /// The interrupt table.
    pub fn irqs(&self) -> &IrqTable {
        &self.irqs
    }

    /// The device model signals `vector` of whatever interrupt type the
    /// user enabled (an edge: INTx goes through the automask); returns
    /// whether an eventfd was signalled.
    pub fn raise(&self, vector: u32) -> bool {
        self.irqs.raise(vector)
    }

    /// The device model signals `vector` of IRQ index `index`.
    pub fn trigger(&self, index: u32, vector: u32) -> bool {
        self.irqs.trigger(index, vector)
    }

    /// The device model drives its INTx line: a rising level fires INTx
    /// (automasked); the level is what an UNMASK finds asserted.
    pub fn set_intx_line(&self, asserted: bool) {
        let was = self.intx_line.swap(asserted, Ordering::SeqCst);
        if asserted && !was {
            self.irqs.trigger(irq::INTX, 0);
        }
    }

    /// `vfio_pci_bar_rw`: clamps the access to the BAR, refuses it while
    /// memory decoding is off (EIO) and splits it at the MSI-X table's
    /// edges (the table reads as all ones and drops writes).
    fn bar_pieces(
        &self,
        index: u32,
        offset: u64,
        len: usize,
    ) -> Result<(Arc<Platform>, Vec<Piece>), VfioError> {
        let size = self.regions[index as usize].size;
        if size == 0 {
            return Err(VfioError::NoRegion { index });
        }
        if offset >= size {
            return Err(VfioError::OutOfRange {
                index,
                offset,
                len: len as u64,
            });
        }
        let count = len.min((size - offset) as usize);
        if !self.config().memory_enabled().map_err(cfg_err)? {
            return Err(VfioError::Errno {
                what: "memory decoding disabled",
                errno: Errno::IO,
            });
        }
        let platform = self.function.platform().map_err(pci_err("platform gone"))?;
        let table = self
            .irq_res
            .msix_table
            .filter(|t| u32::from(t.bar) == index)
            .map_or(0..0, |t| t.offset..t.offset + t.size);
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < count {
            let at = offset + done as u64;
            let in_table = table.contains(&at);
            let edge = match () {
                () if in_table => table.end,
                () if at < table.start => table.start,
                () => u64::MAX,
            };
            let n = (count - done).min(usize::try_from(edge - at).unwrap_or(usize::MAX));
            pieces.push(Piece {
                at,
                buf: done..done + n,
                in_table,
            });
            done += n;
        }
        Ok((platform, pieces))
    }
}

/// One piece of a BAR access.
struct Piece {
    /// Offset in the BAR.
    at: u64,
    /// Its part of the caller's buffer.
    buf: Range<usize>,
    /// Inside the MSI-X table.
    in_table: bool,
}

impl VfioDeviceOps for VfioPciDevice {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            flags: DeviceFlags::PCI,
            num_regions: region::NUM,
            num_irqs: irq::NUM,
        }
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        self.regions
            .get(index as usize)
            .cloned()
            .ok_or(VfioError::NoRegion { index })
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, VfioError> {
        match index {
            region::CONFIG => {
                self.config().read(offset, buf).map_err(cfg_err)?;
                Ok(buf.len())
            }
            region::BAR0..=region::BAR5 => {
                let (platform, pieces) = self.bar_pieces(index, offset, buf.len())?;
                let bar = index as u8;
                for p in &pieces {
                    let b = &mut buf[p.buf.clone()];
                    if p.in_table {
                        b.fill(0xff);
                    } else {
                        platform
                            .bar_read(self.bdf, bar, p.at, b)
                            .map_err(pci_err("BAR read"))?;
                    }
                }
                Ok(pieces.last().map_or(0, |p| p.buf.end))
            }
            _ => Err(VfioError::NoRegion { index }),
        }
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<usize, VfioError> {
        match index {
            region::CONFIG => {
                let config = self.config();
                config.write(offset, data).map_err(cfg_err)?;
                // vfio_basic_config_write: INTx disable masks INTx.
                self.irqs.set_virq_disabled(config.intx_disabled());
                Ok(data.len())
            }
            region::BAR0..=region::BAR5 => {
                let (platform, pieces) = self.bar_pieces(index, offset, data.len())?;
                let bar = index as u8;
                for p in pieces.iter().filter(|p| !p.in_table) {
                    platform
                        .bar_write(self.bdf, bar, p.at, &data[p.buf.clone()])
                        .map_err(pci_err("BAR write"))?;
                }
                Ok(pieces.last().map_or(0, |p| p.buf.end))
            }
            _ => Err(VfioError::NoRegion { index }),
        }
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        let count = *self
            .irq_res
            .counts
            .get(index as usize)
            .ok_or(VfioError::NoIrq { index })?;
        // vfio_pci_ioctl_get_irq_info; MSI-X vectors are allocated
        // dynamically (`has_dyn_msix`), so MSI-X is resizable.
        let flags = IrqInfoFlags::EVENTFD
            | match index {
                irq::INTX => IrqInfoFlags::MASKABLE | IrqInfoFlags::AUTOMASKED,
                irq::MSIX => IrqInfoFlags::empty(),
                _ => IrqInfoFlags::NORESIZE,
            };
        Ok(IrqInfo {
            index,
            flags,
            count,
        })
    }

    fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError> {
        self.irqs.set_irqs(req)?;
        self.config().set_irq_mode(self.irqs.mode());
        Ok(())
    }

    fn reset(&self) -> Result<(), VfioError> {
        Err(VfioError::NoReset)
    }

    /// `vfio_pci_core_enable`: a fresh virtual config space.
    fn open_device(&self, _ctx: &OpenContext) -> Result<(), VfioError> {
        let config = VfioPciConfig::new(self.function.clone()).map_err(cfg_err)?;
        *self.config.lock() = Arc::new(config);
        Ok(())
    }

    /// `vfio_pci_core_disable`: interrupts torn down; the function stops
    /// mastering (`pci_clear_master`) and is put back as the platform
    /// starts it (decoding off, INTx not disabled), standing for the
    /// restore of the state saved before the user had it.
    fn close_device(&self) {
        self.irqs.disable_all();
        self.irqs.set_virq_disabled(false);
        self.config().set_irq_mode(IrqMode::None);
        let f = &self.function;
        let mut cmd = [0; 2];
        if f.config_read(PCI_COMMAND, &mut cmd).is_ok() {
            let off = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
            let cmd = u16::from_le_bytes(cmd) & !off;
            let _ = f.config_write(PCI_COMMAND, &cmd.to_le_bytes());
        }
    }
}
