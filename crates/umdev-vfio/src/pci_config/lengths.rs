//! Capability lengths: the kernel's `pci_cap_length` and
//! `pci_ext_cap_length` tables and the variable-length rules of
//! `vfio_cap_len` / `vfio_ext_cap_len`. A length of 0 hides the
//! capability.

use umdev_pci::PciError;
use umdev_pci::regs::*;

use super::layout::Builder;
use super::regs::*;

impl Builder<'_> {
    /// Length of standard capability `id` at `pos`; 0 hides it
    /// (`pci_cap_length` and `vfio_cap_len`).
    pub(super) fn cap_len(&mut self, id: u8, pos: u16) -> Result<u16, PciError> {
        Ok(match id {
            PCI_CAP_ID_PM => PCI_PM_SIZEOF,
            PCI_CAP_ID_AGP => PCI_AGP_SIZEOF,
            PCI_CAP_ID_VPD => PCI_CAP_VPD_SIZEOF,
            PCI_CAP_ID_MSIX => PCI_CAP_MSIX_SIZEOF,
            PCI_CAP_ID_AF => PCI_CAP_AF_SIZEOF,
            PCI_CAP_ID_MSI => {
                // vfio_msi_cap_len: 10, 14, 20 or 24 bytes.
                let flags = self.read16(pos + PCI_MSI_FLAGS)?;
                let mut len = 10;
                if flags & PCI_MSI_FLAGS_64BIT != 0 {
                    len += 4;
                }
                if flags & PCI_MSI_FLAGS_MASKBIT != 0 {
                    len += 10;
                }
                len
            }
            PCI_CAP_ID_PCIX => {
                let cmd = self.read16(pos + PCI_X_CMD)?;
                if (cmd >> 12) & 3 != 0 {
                    self.probe_extended()?;
                    PCI_CAP_PCIX_SIZEOF_V2
                } else {
                    PCI_CAP_PCIX_SIZEOF_V0
                }
            }
            PCI_CAP_ID_VNDR => u16::from(self.read8(pos + PCI_CAP_FLAGS)?),
            PCI_CAP_ID_EXP => {
                self.probe_extended()?;
                let flags = self.read16(pos + PCI_EXP_FLAGS)?;
                let rc_end = (flags & PCI_EXP_FLAGS_TYPE) >> 4 == u16::from(PCI_EXP_TYPE_RC_END);
                match (flags & PCI_EXP_FLAGS_VERS == 1, rc_end) {
                    (true, true) => PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1,
                    (true, false) => PCI_CAP_EXP_ENDPOINT_SIZEOF_V1,
                    (false, true) => PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2,
                    (false, false) => PCI_CAP_EXP_SIZEOF_V2,
                }
            }
            PCI_CAP_ID_HT => {
                if self.read8(pos + 3)? & HT_3BIT_CAP_MASK != 0 {
                    HT_CAP_SIZEOF_SHORT
                } else {
                    HT_CAP_SIZEOF_LONG
                }
            }
            PCI_CAP_ID_SATA => {
                if self.read8(pos + PCI_SATA_REGS)? & PCI_SATA_REGS_MASK == PCI_SATA_REGS_INLINE {
                    PCI_SATA_SIZEOF_LONG
                } else {
                    PCI_SATA_SIZEOF_SHORT
                }
            }
            // ID 0 (a null capability), slot ID, CompactPCI hot swap,
            // debug port, CompactPCI CRC, SHPC, bridge subsystem IDs,
            // AGP 8x, secure device, enhanced allocation and anything
            // newer: hidden.
            _ => 0,
        })
    }

    /// The kernel walks the extended list only if its first header is
    /// non-zero, checked while sizing the PCIe (or PCI-X 2.0) capability.
    fn probe_extended(&mut self) -> Result<(), PciError> {
        if self.layout.size > PCI_CFG_SPACE_SIZE {
            self.extended_caps = self.read32(PCI_CFG_SPACE_SIZE)? != 0;
        }
        Ok(())
    }

    /// Length of extended capability `id` at `epos`; 0 hides it
    /// (`pci_ext_cap_length` and `vfio_ext_cap_len`).
    pub(super) fn ext_cap_len(&self, id: u16, epos: u16) -> Result<u16, PciError> {
        Ok(match id {
            PCI_EXT_CAP_ID_ERR => PCI_ERR_ROOT_COMMAND,
            PCI_EXT_CAP_ID_DSN => PCI_EXT_CAP_DSN_SIZEOF,
            PCI_EXT_CAP_ID_PWR => PCI_EXT_CAP_PWR_SIZEOF,
            PCI_EXT_CAP_ID_ARI => PCI_EXT_CAP_ARI_SIZEOF,
            PCI_EXT_CAP_ID_ATS => PCI_EXT_CAP_ATS_SIZEOF,
            PCI_EXT_CAP_ID_SRIOV => PCI_EXT_CAP_SRIOV_SIZEOF,
            PCI_EXT_CAP_ID_MCAST => PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF,
            PCI_EXT_CAP_ID_PRI => PCI_EXT_CAP_PRI_SIZEOF,
            PCI_EXT_CAP_ID_LTR => PCI_EXT_CAP_LTR_SIZEOF,
            PCI_EXT_CAP_ID_VNDR => {
                (self.read32(epos + PCI_VSEC_HDR)? >> PCI_VSEC_HDR_LEN_SHIFT) as u16
            }
            PCI_EXT_CAP_ID_DVSEC => ((self.read32(epos + PCI_DVSEC_HEADER1)? >> 20) & 0xfff) as u16,
            PCI_EXT_CAP_ID_VC | PCI_EXT_CAP_ID_VC9 | PCI_EXT_CAP_ID_MFVC => self.vc_len(epos)?,
            PCI_EXT_CAP_ID_ACS => {
                let cap = self.read8(epos + PCI_ACS_CAP)?;
                if u16::from(cap) & PCI_ACS_EC != 0 {
                    let bits = match self.read8(epos + PCI_ACS_EGRESS_BITS)? {
                        0 => 256,
                        n => u16::from(n).next_multiple_of(32),
                    };
                    8 + bits / 8
                } else {
                    8
                }
            }
            PCI_EXT_CAP_ID_REBAR => {
                let ctrl = self.read8(epos + PCI_REBAR_CTRL)?;
                let nbar = (ctrl & PCI_REBAR_CTRL_NBAR_MASK) >> PCI_REBAR_CTRL_NBAR_SHIFT;
                4 + u16::from(nbar) * 8
            }
            PCI_EXT_CAP_ID_DPA => {
                let cap = self.read8(epos + PCI_DPA_CAP)?;
                PCI_DPA_BASE_SIZEOF + u16::from(cap & PCI_DPA_CAP_SUBSTATE_MASK) + 1
            }
            PCI_EXT_CAP_ID_TPH => {
                let cap = self.read32(epos + PCI_TPH_CAP)?;
                if cap & PCI_TPH_CAP_LOC_MASK == PCI_TPH_LOC_CAP {
                    let sts = ((cap & PCI_TPH_CAP_ST_MASK) >> PCI_TPH_CAP_ST_SHIFT) as u16;
                    PCI_TPH_BASE_SIZEOF + sts * 2 + 2
                } else {
                    PCI_TPH_BASE_SIZEOF
                }
            }
            // Root-complex-only capabilities, MR-IOV, secondary PCIe,
            // PMUX, PASID ("not yet" in the kernel's table) and every ID
            // the table does not list: hidden.
            _ => 0,
        })
    }

    /// `vfio_vc_cap_len`: the VC resources, plus the port arbitration
    /// table the user never writes.
    fn vc_len(&self, epos: u16) -> Result<u16, PciError> {
        let evcc = (self.read32(epos + PCI_VC_PORT_CAP1)? & PCI_VC_CAP1_EVCC) as u16;
        let cap2 = self.read32(epos + PCI_VC_PORT_CAP2)?;
        let phases = if cap2 & PCI_VC_CAP2_128_PHASE != 0 {
            128
        } else if cap2 & PCI_VC_CAP2_64_PHASE != 0 {
            64
        } else if cap2 & PCI_VC_CAP2_32_PHASE != 0 {
            32
        } else {
            0
        };
        let vc_arb = phases * 4;
        let mut len = PCI_CAP_VC_BASE_SIZEOF + (1 + evcc) * PCI_CAP_VC_PER_VC_SIZEOF;
        if vc_arb != 0 {
            len = len.next_multiple_of(16) + vc_arb / 8;
        }
        Ok(len)
    }
}
