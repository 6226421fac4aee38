//! Who owns each byte of config space, with which permissions, and the
//! initial virtual copy (drivers/vfio/pci/vfio_pci_config.c
//! `vfio_config_init`, `vfio_cap_init`, `vfio_ecap_init`).
//!
//! The capability lists are walked on the device. A capability vfio-pci
//! does not know (length 0 in the kernel's tables, or an ID above the
//! tables) is hidden: the previous capability's next pointer in the
//! virtual copy skips it, and its bytes stay unassigned, which the kernel
//! passes through raw. An extended capability hidden at 0x100, which
//! cannot be skipped, becomes a placeholder header with ID 0 and version 0
//! that keeps only the next pointer.

use umdev_pci::PciError;
use umdev_pci::regs::*;

use super::perms::{self, PermBits};
use super::phys::{PhysFunction, PhysResources};
use super::regs::*;

/// Who owns a byte (the kernel's `pci_config_map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Owner {
    /// The type 0 header (`PCI_CAP_ID_BASIC`).
    Basic,
    /// An exposed capability, by index into [`Layout::caps`].
    Cap(u16),
    /// No exposed capability (`PCI_CAP_ID_INVALID`): raw access.
    Unassigned,
}

/// How a capability's bytes are read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handler {
    /// Permission table; writing the power state changes the device's.
    Pm,
    /// Permission table; the control register is fixed up for the
    /// interrupt mode vfio-pci set (`vfio_msi_config_{read,write}`).
    Msi {
        /// 64-bit message address.
        addr64: bool,
    },
    /// Permission table; FLR and max read request are acted upon.
    Exp,
    /// Read from the device with the header from the virtual copy,
    /// writes dropped (`vfio_direct_config_read`, no write function).
    Direct,
    /// As `Direct`, but writes go to the device (vendor-specific).
    DirectRawWrite,
}

/// An exposed capability.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cap {
    /// Offset of its header.
    pub start: u16,
    /// How its bytes are accessed.
    pub handler: Handler,
}

/// The byte map and flattened permission bits of one device.
pub(super) struct Layout {
    /// `pdev->cfg_size`.
    pub size: u16,
    /// Owner of every byte.
    pub map: Vec<Owner>,
    /// Exposed capabilities.
    pub caps: Vec<Cap>,
    /// Virtualised bits of every byte.
    pub virt: Vec<u8>,
    /// Writable bits of every byte.
    pub write: Vec<u8>,
}

/// The byte map, permissions and initial virtual config of `dev`.
pub(super) fn build(
    dev: &dyn PhysFunction,
    res: &PhysResources,
) -> Result<(Layout, Vec<u8>), PciError> {
    let size = dev.config_size();
    let mut b = Builder {
        dev,
        layout: Layout {
            size,
            map: vec![Owner::Unassigned; usize::from(size)],
            caps: Vec::new(),
            virt: vec![0; usize::from(size)],
            write: vec![0; usize::from(size)],
        },
        vconfig: vec![0; usize::from(size)],
        extended_caps: false,
    };
    b.basic(res)?;
    b.caps()?;
    b.ecaps()?;
    Ok((b.layout, b.vconfig))
}

/// The walk's working state.
pub(super) struct Builder<'a> {
    dev: &'a dyn PhysFunction,
    pub(super) layout: Layout,
    vconfig: Vec<u8>,
    /// The device has an extended list worth walking (set while sizing
    /// the PCIe or PCI-X 2.0 capability, as the kernel does).
    pub(super) extended_caps: bool,
}

impl Builder<'_> {
    pub(super) fn read8(&self, at: u16) -> Result<u8, PciError> {
        let mut b = [0; 1];
        self.dev.config_read(at, &mut b)?;
        Ok(b[0])
    }

    pub(super) fn read16(&self, at: u16) -> Result<u16, PciError> {
        let mut b = [0; 2];
        self.dev.config_read(at, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub(super) fn read32(&self, at: u16) -> Result<u32, PciError> {
        let mut b = [0; 4];
        self.dev.config_read(at, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn vset16(&mut self, at: u16, v: u16) {
        let at = usize::from(at);
        self.vconfig[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn vset32(&mut self, at: u16, v: u32) {
        let at = usize::from(at);
        self.vconfig[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn vget16(&self, at: u16) -> u16 {
        let at = usize::from(at);
        u16::from_le_bytes([self.vconfig[at], self.vconfig[at + 1]])
    }

    fn vget32(&self, at: u16) -> u32 {
        let at = usize::from(at);
        let b = &self.vconfig[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Copies `len` device bytes at `at` into the virtual config
    /// (`vfio_fill_vconfig_bytes`).
    fn fill(&mut self, at: u16, len: u16) -> Result<(), PciError> {
        let (at, end) = (usize::from(at), usize::from(at + len));
        self.dev.config_read(at as u16, &mut self.vconfig[at..end])
    }

    /// Gives `len` bytes at `at` to `owner` with the permissions of
    /// `perms` (which start at `at`).
    fn assign(&mut self, at: u16, len: u16, owner: Owner, perms: Option<&PermBits>) {
        let (start, end) = (usize::from(at), usize::from(at + len));
        self.layout.map[start..end].fill(owner);
        if let Some(p) = perms {
            let n = (end - start).min(p.virt.len());
            self.layout.virt[start..start + n].copy_from_slice(&p.virt[..n]);
            self.layout.write[start..start + n].copy_from_slice(&p.write[..n]);
        }
    }

    /// The header, with the VF fix-ups of `vfio_config_init`.
    fn basic(&mut self, res: &PhysResources) -> Result<(), PciError> {
        self.fill(0, PCI_STD_HEADER_SIZEOF)?;
        self.assign(
            0,
            PCI_STD_HEADER_SIZEOF,
            Owner::Basic,
            Some(&perms::basic()),
        );
        if res.is_virtfn {
            self.vset16(PCI_VENDOR_ID, res.vendor);
            self.vset16(PCI_DEVICE_ID, res.device);
            // SR-IOV spec §3.4.1.18: a VF's interrupt pin reads zero.
            self.vconfig[usize::from(PCI_INTERRUPT_PIN)] = 0;
            // VFs do not implement Memory Space Enable: report it set.
            let cmd = self.vget16(PCI_COMMAND);
            self.vset16(PCI_COMMAND, cmd | PCI_COMMAND_MEMORY);
        }
        Ok(())
    }

    /// `vfio_cap_init`: the standard list.
    fn caps(&mut self) -> Result<(), PciError> {
        if self.read16(PCI_STATUS)? & PCI_STATUS_CAP_LIST == 0 {
            return Ok(());
        }
        let mut pos = u16::from(self.read8(PCI_CAPABILITY_LIST)?);
        // Where the pointer to the current capability lives.
        let mut prev = PCI_CAPABILITY_LIST;
        let mut shown = 0;
        // Capabilities are dword aligned: a bound against looping lists.
        let mut loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4;
        // A pointer into the header ends the list (the kernel trusts it;
        // following it would re-map header bytes).
        while pos >= PCI_STD_HEADER_SIZEOF && loops > 0 {
            loops -= 1;
            let id = self.read8(pos)?;
            let next = self.read8(pos + PCI_CAP_LIST_NEXT)?;
            let len = self.cap_len(id, pos)?.min(PCI_CFG_SPACE_SIZE - pos);
            if len == 0 {
                // Hidden: the previous pointer skips it.
                self.vconfig[usize::from(prev)] = next;
                pos = u16::from(next);
                continue;
            }
            let (handler, perms) = match id {
                PCI_CAP_ID_PM => (Handler::Pm, Some(perms::pm())),
                PCI_CAP_ID_MSI => {
                    let flags = self.read16(pos + PCI_MSI_FLAGS)?;
                    let addr64 = flags & PCI_MSI_FLAGS_64BIT != 0;
                    (Handler::Msi { addr64 }, Some(perms::msi(len, flags)))
                }
                PCI_CAP_ID_EXP => (Handler::Exp, Some(perms::exp())),
                PCI_CAP_ID_VNDR => (Handler::DirectRawWrite, None),
                _ => (Handler::Direct, None),
            };
            let owner = self.push_cap(pos, handler);
            self.assign(pos, len, owner, perms.as_ref());
            self.fill(pos, len)?;
            if id == PCI_CAP_ID_PM {
                // vfio_update_pm_vconfig_bytes: no PME for the user.
                let pmc = self.vget16(pos + PCI_PM_PMC);
                self.vset16(pos + PCI_PM_PMC, pmc & !PCI_PM_CAP_PME_MASK);
                let ctrl = self.vget16(pos + PCI_PM_CTRL);
                let pme = PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS;
                self.vset16(pos + PCI_PM_CTRL, ctrl & !pme);
            }
            prev = pos + PCI_CAP_LIST_NEXT;
            pos = u16::from(next);
            shown += 1;
        }
        if shown == 0 {
            let status = self.vget16(PCI_STATUS);
            self.vset16(PCI_STATUS, status & !PCI_STATUS_CAP_LIST);
        }
        Ok(())
    }

    /// `vfio_ecap_init`: the extended list.
    fn ecaps(&mut self) -> Result<(), PciError> {
        if !self.extended_caps {
            return Ok(());
        }
        let size = self.layout.size;
        let mut epos = PCI_CFG_SPACE_SIZE;
        let mut prev: Option<u16> = None;
        let mut shown = 0;
        let mut loops = (size - PCI_CFG_SPACE_SIZE) / 4;
        while loops > 0 && epos >= PCI_CFG_SPACE_SIZE {
            loops -= 1;
            let header = self.read32(epos)?;
            let id = header as u16;
            let next = ext_cap_next(header);
            let mut len = self.ext_cap_len(id, epos)?.min(size - epos);
            let hidden = len == 0;
            if hidden {
                if let Some(p) = prev {
                    // Not the first: the previous header skips it.
                    let h = self.vget32(p);
                    self.vset32(p, (h & !NEXT_MASK) | (u32::from(next) << 20));
                    epos = next;
                    continue;
                }
                // The first anchors the list: a placeholder header.
                len = 4;
            }
            let handler = match id {
                PCI_EXT_CAP_ID_VNDR | PCI_EXT_CAP_ID_DVSEC => Handler::DirectRawWrite,
                _ => Handler::Direct,
            };
            let owner = self.push_cap(epos, handler);
            self.assign(epos, len, owner, None);
            self.fill(epos, len)?;
            if hidden {
                let h = self.vget32(epos);
                self.vset32(epos, h & NEXT_MASK);
            } else {
                shown += 1;
            }
            prev = Some(epos);
            epos = next;
        }
        if shown == 0 {
            self.vset32(PCI_CFG_SPACE_SIZE, 0);
        }
        Ok(())
    }

    fn push_cap(&mut self, start: u16, handler: Handler) -> Owner {
        let index = self.layout.caps.len() as u16;
        self.layout.caps.push(Cap { start, handler });
        Owner::Cap(index)
    }
}

/// The next-pointer field of an extended capability header.
const NEXT_MASK: u32 = 0xffc << 20;

/// `PCI_EXT_CAP_NEXT`.
fn ext_cap_next(header: u32) -> u16 {
    ((header >> 20) & 0xffc) as u16
}
