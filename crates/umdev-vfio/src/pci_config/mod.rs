//! vfio-pci config-space virtualisation (drivers/vfio/pci/vfio_pci_config.c).
//!
//! A [`VfioPciConfig`] stands between a user and one physical function's
//! config space. At set-up it walks the device's capability lists and
//! gives every byte an owner (the header, an exposed capability, or
//! nobody) and permission bits: *virtualised* bits are read from and
//! written to a virtual copy (vconfig), *writable* bits that are not
//! virtualised pass through to the device, everything else is read from
//! the device and ignores writes. Accesses are split as the kernel splits
//! them (naturally aligned pieces of at most a dword that never straddle
//! two owners) and each piece is handled by its owner's rules:
//!
//! - header: IDs virtual read-only (a VF's real ones read 0xffff);
//!   command: memory / I/O / bus-master enables pass through, INTx disable
//!   is virtual ([`VfioPciConfig::intx_disabled`]); status is read from the
//!   device with the capability-list bit virtual and is not writable (a
//!   dword write at the command register writes the status half back as
//!   read, which clears its set RW1C bits, as Linux's read-modify-write
//!   does); BARs and the ROM BAR are virtual and size like hardware from
//!   the function's resources; interrupt line virtual, pin read-only;
//! - capabilities with permission tables: power management (the power
//!   state is set on the device for the user, PME virtualised), MSI
//!   (control, address and data virtual, mask bits pass through; see
//!   [`VfioPciConfig::set_irq_mode`]), PCI Express (device control and
//!   control 2 writable except phantom functions and ARI; FLR, max payload
//!   and max read request virtual);
//! - other exposed capabilities (MSI-X, ACS, ATS, PRI, SR-IOV, ...):
//!   read from the device with the header's next pointer virtual, writes
//!   dropped; vendor-specific ones take raw writes;
//! - hidden capabilities (PASID, and every ID the kernel's tables do not
//!   size) and gaps: raw access to the device, as Linux gives it.
//!
//! Not modelled: the kernel's special write rules for VPD, PCI-X, AF, AER
//! and power budgeting (no platform function has them; here they are
//! read-only), BAR restore after a backdoor reset (platform BARs are never
//! programmed) and the INTx `nointx` quirk.

mod access;
mod error;
mod layout;
mod lengths;
mod perms;
mod phys;
mod regs;

use std::sync::Arc;

use parking_lot::Mutex;
use umdev_pci::regs::*;
use umdev_pci::{Bdf, Platform};

pub use error::PciConfigError;
pub use phys::{BarKind, BarResource, PhysFunction, PhysResources, PlatformFunction};

use layout::{Handler, Layout, Owner};

/// The interrupt mode the VFIO interrupt path has set up
/// (`vdev->irq_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IrqMode {
    /// No interrupts enabled.
    #[default]
    None,
    /// INTx.
    Intx,
    /// MSI with this many vectors.
    Msi {
        /// Vectors enabled, at least 1.
        vectors: u32,
    },
    /// MSI-X.
    Msix,
}

/// The MSI message the user programmed in the virtual capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// MSI Enable in the virtual control register.
    pub enabled: bool,
    /// Vectors from Multiple Message Enable.
    pub vectors: u32,
    /// Message address.
    pub address: u64,
    /// Message data.
    pub data: u16,
}

/// Mutable state, behind one lock (the kernel's vconfig and flags).
struct State {
    vconfig: Vec<u8>,
    /// The virtual BARs need sizing fix-ups before the next read.
    bardirty: bool,
    /// The user set INTx disable (`vdev->virq_disabled`).
    virq_disabled: bool,
    irq_mode: IrqMode,
    /// log2 of the MSI vectors vfio-pci enabled (`vdev->msi_qmax`).
    msi_qmax: u16,
}

impl State {
    fn get(&self, at: u16, n: usize) -> u32 {
        let at = usize::from(at);
        le(&self.vconfig[at..at + n])
    }

    fn set(&mut self, at: u16, n: usize, v: u32) {
        let at = usize::from(at);
        self.vconfig[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }
}

/// A little-endian value of up to four bytes.
fn le(bytes: &[u8]) -> u32 {
    let mut b = [0; 4];
    b[..bytes.len()].copy_from_slice(bytes);
    u32::from_le_bytes(b)
}

/// All ones in the low `n` bytes.
fn ones(n: usize) -> u32 {
    u32::MAX >> (32 - 8 * n)
}

/// The virtual config space of one function under vfio-pci.
pub struct VfioPciConfig {
    dev: Arc<dyn PhysFunction>,
    res: PhysResources,
    layout: Layout,
    state: Mutex<State>,
}

impl VfioPciConfig {
    /// `vfio_config_init` over `dev`: `EINVAL` unless it has a normal
    /// header; device read errors are passed through.
    pub fn new(dev: Arc<dyn PhysFunction>) -> Result<Self, PciConfigError> {
        let res = dev.resources();
        let header_type = res.header_type & 0x7f;
        if header_type != PCI_HEADER_TYPE_NORMAL {
            return Err(PciConfigError::NotNormalHeader { header_type });
        }
        let (layout, vconfig) = layout::build(dev.as_ref(), &res)?;
        Ok(Self {
            dev,
            res,
            layout,
            state: Mutex::new(State {
                vconfig,
                bardirty: true,
                virq_disabled: false,
                irq_mode: IrqMode::None,
                msi_qmax: 0,
            }),
        })
    }

    /// Over the platform function at `bdf` (`ENODEV` if none).
    pub fn for_platform(platform: Arc<Platform>, bdf: Bdf) -> Result<Self, PciConfigError> {
        Self::new(Arc::new(PlatformFunction::new(platform, bdf)?))
    }

    /// Size of the config region (`pdev->cfg_size`).
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// The function's resources.
    pub fn resources(&self) -> &PhysResources {
        &self.res
    }

    /// Reads `buf.len()` bytes at `offset` (`vfio_pci_config_rw`):
    /// `EFAULT` unless the whole range is inside the config space.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), PciConfigError> {
        let Some(start) = self.check(offset, buf.len())? else {
            return Ok(());
        };
        let mut st = self.state.lock();
        let mut done = 0;
        while done < buf.len() {
            let pos = start + done as u16;
            let n = self.chunk_len(pos, buf.len() - done);
            let val = self.read_chunk(&mut st, pos, n)?;
            buf[done..done + n].copy_from_slice(&val.to_le_bytes()[..n]);
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset` (`vfio_pci_config_rw`): `EFAULT` unless
    /// the whole range is inside the config space.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), PciConfigError> {
        let Some(start) = self.check(offset, data.len())? else {
            return Ok(());
        };
        let mut st = self.state.lock();
        let mut done = 0;
        while done < data.len() {
            let pos = start + done as u16;
            let n = self.chunk_len(pos, data.len() - done);
            self.write_chunk(&mut st, pos, n, le(&data[done..done + n]))?;
            done += n;
        }
        Ok(())
    }

    /// The start of a non-empty access that fits.
    fn check(&self, offset: u64, len: usize) -> Result<Option<u16>, PciConfigError> {
        if len == 0 {
            return Ok(None);
        }
        let size = self.layout.size;
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= u64::from(size));
        if !fits {
            return Err(PciConfigError::OutOfRange { offset, len, size });
        }
        Ok(Some(offset as u16))
    }

    /// `vfio_config_do_rw`'s split: at most the rest of the dword that has
    /// `pos`'s owner, then the largest naturally aligned 4, 2 or 1 bytes.
    fn chunk_len(&self, pos: u16, remaining: usize) -> usize {
        let map = &self.layout.map;
        let owner = map[usize::from(pos)];
        let mut same = 1;
        while !(usize::from(pos) + same).is_multiple_of(4) && map[usize::from(pos) + same] == owner
        {
            same += 1;
        }
        let count = remaining.min(same);
        if count >= 4 && pos.is_multiple_of(4) {
            4
        } else if count >= 2 && pos.is_multiple_of(2) {
            2
        } else {
            1
        }
    }

    /// Records the interrupt mode the VFIO interrupt path set up
    /// (`vfio_msi_enable` and friends): MSI Enable in the user's control
    /// register survives only in MSI mode, and Multiple Message Capable
    /// reads as the vectors enabled (`msi_qmax`).
    pub fn set_irq_mode(&self, mode: IrqMode) {
        let mut st = self.state.lock();
        if let IrqMode::Msi { vectors } = mode {
            // fls(nvec * 2 - 1) - 1: log2 rounded up.
            st.msi_qmax = vectors.max(1).next_power_of_two().trailing_zeros() as u16;
        }
        st.irq_mode = mode;
    }

    /// Whether the user set INTx disable in the virtual command register
    /// (the interrupt path masks INTx while it is set).
    pub fn intx_disabled(&self) -> bool {
        self.state.lock().virq_disabled
    }

    /// `__vfio_pci_memory_enabled`: the user enabled memory decoding in
    /// the virtual command register (always, for a VF) and the device is
    /// not in D3hot. BAR access through VFIO is refused otherwise.
    pub fn memory_enabled(&self) -> Result<bool, PciConfigError> {
        let cmd = self.state.lock().get(PCI_COMMAND, 2) as u16;
        if !self.res.is_virtfn && cmd & PCI_COMMAND_MEMORY == 0 {
            return Ok(false);
        }
        let pm = self.layout.caps.iter().find(|c| c.handler == Handler::Pm);
        let Some(pm) = pm else {
            return Ok(true);
        };
        let mut ctrl = [0; 2];
        self.dev.config_read(pm.start + PCI_PM_CTRL, &mut ctrl)?;
        const D3HOT: u16 = 3;
        Ok(u16::from_le_bytes(ctrl) & PCI_PM_CTRL_STATE_MASK != D3HOT)
    }

    /// The MSI message in the virtual capability, if the function has MSI.
    pub fn msi_message(&self) -> Option<MsiMessage> {
        let (start, addr64) = self.layout.caps.iter().find_map(|c| match c.handler {
            Handler::Msi { addr64 } => Some((c.start, addr64)),
            _ => None,
        })?;
        let st = self.state.lock();
        let flags = st.get(start + PCI_MSI_FLAGS, 2) as u16;
        let lo = u64::from(st.get(start + PCI_MSI_ADDRESS_LO, 4));
        let (hi, data) = if addr64 {
            let hi = u64::from(st.get(start + PCI_MSI_ADDRESS_HI, 4));
            (hi, st.get(start + PCI_MSI_DATA_64, 2))
        } else {
            (0, st.get(start + PCI_MSI_DATA_32, 2))
        };
        Some(MsiMessage {
            enabled: flags & PCI_MSI_FLAGS_ENABLE != 0,
            vectors: 1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4),
            address: (hi << 32) | lo,
            data: data as u16,
        })
    }
}

impl std::fmt::Debug for VfioPciConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPciConfig")
            .field("size", &self.layout.size)
            .field("resources", &self.res)
            .finish_non_exhaustive()
    }
}

/// Whether `pos` is in a BAR or the ROM BAR (`is_bar`).
fn is_bar(pos: u16) -> bool {
    (PCI_BASE_ADDRESS_0..regs::PCI_BASE_ADDRESS_5 + 4).contains(&pos)
        || (PCI_ROM_ADDRESS..PCI_ROM_ADDRESS + 4).contains(&pos)
}

/// The owner of the byte at `pos`.
fn owner_of(layout: &Layout, pos: u16) -> Owner {
    layout.map[usize::from(pos)]
}
