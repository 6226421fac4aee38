//! Capability lists: standard capabilities linked from 0x34 and extended
//! capabilities linked from 0x100, laid out like real hardware.

use crate::config::ConfigSpace;
use crate::header::build_bar;
use crate::regs::*;
use crate::spec::{AtsSpec, MsiSpec, MsixSpec, PasidSpec, PriSpec, SriovSpec};

/// Where one capability lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CapInfo {
    /// Capability ID (`PCI_CAP_ID_*` or `PCI_EXT_CAP_ID_*`).
    pub id: u16,
    /// Whether it is in the extended list (offset >= 0x100).
    pub extended: bool,
    /// Config-space offset of its header.
    pub offset: u16,
}

/// Allocates and links capabilities into one config space.
pub struct CapWriter<'a> {
    cfg: &'a mut ConfigSpace,
    next_std: u16,
    last_std: Option<u16>,
    next_ext: u16,
    last_ext: Option<u16>,
    caps: Vec<CapInfo>,
}

impl<'a> CapWriter<'a> {
    /// Starts with empty lists: standard capabilities from 0x40, extended
    /// ones from 0x100.
    pub fn new(cfg: &'a mut ConfigSpace) -> Self {
        Self {
            cfg,
            next_std: 0x40,
            last_std: None,
            next_ext: PCI_CFG_SPACE_SIZE,
            last_ext: None,
            caps: Vec::new(),
        }
    }

    /// The capabilities written, in list order.
    pub fn finish(self) -> Vec<CapInfo> {
        self.caps
    }

    fn std_cap(&mut self, id: u8, size: u16) -> u16 {
        let at = self.next_std;
        self.next_std = (at + size + 3) & !3;
        debug_assert!(self.next_std <= PCI_CFG_SPACE_SIZE);
        self.cfg.set8(at, id);
        match self.last_std {
            None => {
                self.cfg.set8(PCI_CAPABILITY_LIST, at as u8);
                let status = self.cfg.read16(PCI_STATUS);
                self.cfg.set16(PCI_STATUS, status | PCI_STATUS_CAP_LIST);
            }
            Some(prev) => self.cfg.set8(prev + 1, at as u8),
        }
        self.last_std = Some(at);
        self.caps.push(CapInfo {
            id: id.into(),
            extended: false,
            offset: at,
        });
        at
    }

    fn ext_cap(&mut self, id: u16, version: u32, size: u16) -> u16 {
        let at = self.next_ext;
        self.next_ext = (at + size + 3) & !3;
        debug_assert!(self.next_ext <= PCI_CFG_SPACE_EXP_SIZE);
        self.cfg.set32(at, u32::from(id) | (version << 16));
        if let Some(prev) = self.last_ext {
            let hdr = self.cfg.read32(prev);
            self.cfg.set32(prev, hdr | (u32::from(at) << 20));
        }
        self.last_ext = Some(at);
        self.caps.push(CapInfo {
            id,
            extended: true,
            offset: at,
        });
        at
    }

    /// Power management, version 3, D0/D3hot, No_Soft_Reset.
    pub fn pm(&mut self) {
        let at = self.std_cap(PCI_CAP_ID_PM, PCI_PM_SIZEOF);
        self.cfg.set16(at + PCI_PM_PMC, 0x0003);
        self.cfg.set16(at + PCI_PM_CTRL, 0x0008);
        self.cfg.rw16(
            at + PCI_PM_CTRL,
            PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_ENABLE,
        );
        self.cfg.w1c16(at + PCI_PM_CTRL, PCI_PM_CTRL_PME_STATUS);
    }

    /// MSI with 32- or 64-bit addresses and optional per-vector masking.
    pub fn msi(&mut self, msi: &MsiSpec) {
        let (size, data, mask) = match (msi.address_64, msi.per_vector_mask) {
            (false, false) => (0x0a, PCI_MSI_DATA_32, None),
            (false, true) => (0x14, PCI_MSI_DATA_32, Some(PCI_MSI_MASK_32)),
            (true, false) => (0x0e, PCI_MSI_DATA_64, None),
            (true, true) => (0x18, PCI_MSI_DATA_64, Some(PCI_MSI_MASK_64)),
        };
        let at = self.std_cap(PCI_CAP_ID_MSI, size);
        let mut flags = (msi.vectors.trailing_zeros() as u16) << 1;
        if msi.address_64 {
            flags |= PCI_MSI_FLAGS_64BIT;
        }
        if msi.per_vector_mask {
            flags |= PCI_MSI_FLAGS_MASKBIT;
        }
        self.cfg.set16(at + PCI_MSI_FLAGS, flags);
        self.cfg.rw16(
            at + PCI_MSI_FLAGS,
            PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE,
        );
        self.cfg.rw32(at + PCI_MSI_ADDRESS_LO, !3);
        if msi.address_64 {
            self.cfg.rw32(at + PCI_MSI_ADDRESS_HI, !0);
        }
        self.cfg.rw16(at + data, !0);
        if let Some(mask) = mask {
            let bits = if msi.vectors >= 32 {
                !0
            } else {
                (1u32 << msi.vectors) - 1
            };
            self.cfg.rw32(at + mask, bits);
        }
    }

    /// MSI-X with table and PBA located by BIR and offset.
    pub fn msix(&mut self, msix: &MsixSpec) {
        let at = self.std_cap(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
        self.cfg.set16(
            at + PCI_MSIX_FLAGS,
            (msix.table_size - 1) & PCI_MSIX_FLAGS_QSIZE,
        );
        self.cfg.rw16(
            at + PCI_MSIX_FLAGS,
            PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
        );
        self.cfg.set32(
            at + PCI_MSIX_TABLE,
            msix.table_offset | u32::from(msix.table_bar),
        );
        self.cfg
            .set32(at + PCI_MSIX_PBA, msix.pba_offset | u32::from(msix.pba_bar));
    }

    /// PCI Express capability, version 2, with the device/port type.
    pub fn pcie(&mut self, pcie_type: u8) {
        let at = self.std_cap(PCI_CAP_ID_EXP, PCI_CAP_EXP_SIZEOF_V2);
        let port = matches!(pcie_type, PCI_EXP_TYPE_ROOT_PORT | PCI_EXP_TYPE_DOWNSTREAM);
        let mut flags = 2 | (u16::from(pcie_type) << 4);
        if port {
            flags |= PCI_EXP_FLAGS_SLOT;
        }
        self.cfg.set16(at + PCI_EXP_FLAGS, flags);
        // Max payload 256 bytes, role-based error reporting; endpoints
        // can do function level reset.
        let mut devcap = 0x0000_8001;
        if matches!(
            pcie_type,
            PCI_EXP_TYPE_ENDPOINT | PCI_EXP_TYPE_LEG_END | PCI_EXP_TYPE_RC_END
        ) {
            devcap |= PCI_EXP_DEVCAP_FLR;
        }
        self.cfg.set32(at + PCI_EXP_DEVCAP, devcap);
        self.cfg.set16(at + PCI_EXP_DEVCTL, 0x2810);
        self.cfg.rw16(at + PCI_EXP_DEVCTL, 0x7fff);
        self.cfg.w1c16(at + PCI_EXP_DEVSTA, 0x000f);
        if pcie_type != PCI_EXP_TYPE_RC_END {
            // 16 GT/s x8 link, data link layer active reporting on ports.
            let dll = if port { 1 << 20 } else { 0 };
            self.cfg.set32(at + PCI_EXP_LNKCAP, 0x0000_0084 | dll);
            self.cfg.rw16(at + PCI_EXP_LNKCTL, 0x0fcb);
            let active = if port { 1 << 13 } else { 0 };
            self.cfg.set16(at + PCI_EXP_LNKSTA, 0x0084 | active);
            self.cfg.rw16(at + PCI_EXP_LNKCTL2, 0x003f);
        }
        if port {
            self.cfg.rw16(at + PCI_EXP_SLTCTL, 0x1fff);
            self.cfg.set16(at + PCI_EXP_SLTSTA, 0x0040);
            self.cfg.w1c16(at + PCI_EXP_SLTSTA, 0x011f);
            self.cfg.set32(at + PCI_EXP_DEVCAP2, PCI_EXP_DEVCAP2_ARI);
        }
        if pcie_type == PCI_EXP_TYPE_ROOT_PORT {
            self.cfg.rw16(at + PCI_EXP_RTCTL, 0x001f);
            self.cfg.w1c16(at + PCI_EXP_RTSTA + 2, 0x0001);
        }
        self.cfg.rw16(at + PCI_EXP_DEVCTL2, 0x043f);
    }

    /// ACS: capability bits read-only, control bits of supported features
    /// read-write, control preset to `ctrl`.
    pub fn acs(&mut self, cap: u16, ctrl: u16) {
        let at = self.ext_cap(PCI_EXT_CAP_ID_ACS, 1, PCI_ACS_SIZEOF);
        self.cfg.set16(at + PCI_ACS_CAP, cap);
        self.cfg.set16(at + PCI_ACS_CTRL, ctrl);
        self.cfg.rw16(at + PCI_ACS_CTRL, cap & 0x7f);
    }

    /// ATS.
    pub fn ats(&mut self, ats: &AtsSpec) {
        let at = self.ext_cap(PCI_EXT_CAP_ID_ATS, 1, PCI_EXT_CAP_ATS_SIZEOF);
        let mut cap = u16::from(ats.invalidate_queue_depth) & PCI_ATS_CAP_QDEP_MASK;
        if ats.page_aligned {
            cap |= PCI_ATS_CAP_PAGE_ALIGNED;
        }
        self.cfg.set16(at + PCI_ATS_CAP, cap);
        self.cfg.rw16(
            at + PCI_ATS_CTRL,
            PCI_ATS_CTRL_ENABLE | PCI_ATS_CTRL_STU_MASK,
        );
    }

    /// PRI; stopped until enabled. `pasid` says whether PRG responses
    /// carry a PASID (the function has the PASID capability).
    pub fn pri(&mut self, pri: &PriSpec, pasid: bool) {
        let at = self.ext_cap(PCI_EXT_CAP_ID_PRI, 1, PCI_EXT_CAP_PRI_SIZEOF);
        self.cfg.rw16(at + PCI_PRI_CTRL, PCI_PRI_CTRL_ENABLE);
        let mut status = PCI_PRI_STATUS_STOPPED;
        if pasid {
            status |= PCI_PRI_STATUS_PASID;
        }
        self.cfg.set16(at + PCI_PRI_STATUS, status);
        self.cfg.w1c16(
            at + PCI_PRI_STATUS,
            PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI,
        );
        self.cfg.set32(at + PCI_PRI_MAX_REQ, pri.max_requests);
        self.cfg.rw32(at + PCI_PRI_ALLOC_REQ, !0);
    }

    /// PASID with its max width and the exec / privileged bits.
    pub fn pasid(&mut self, pasid: &PasidSpec) {
        let at = self.ext_cap(PCI_EXT_CAP_ID_PASID, 1, PCI_EXT_CAP_PASID_SIZEOF);
        let mut cap = (u16::from(pasid.max_width) << 8) & PCI_PASID_CAP_WIDTH;
        let mut ctrl_rw = PCI_PASID_CTRL_ENABLE;
        if pasid.exec {
            cap |= PCI_PASID_CAP_EXEC;
            ctrl_rw |= PCI_PASID_CTRL_EXEC;
        }
        if pasid.privileged {
            cap |= PCI_PASID_CAP_PRIV;
            ctrl_rw |= PCI_PASID_CTRL_PRIV;
        }
        self.cfg.set16(at + PCI_PASID_CAP, cap);
        self.cfg.rw16(at + PCI_PASID_CTRL, ctrl_rw);
    }

    /// SR-IOV of a PF in function `function` of its slot.
    pub fn sriov(&mut self, sriov: &SriovSpec, function: u8) {
        let at = self.ext_cap(PCI_EXT_CAP_ID_SRIOV, 1, PCI_EXT_CAP_SRIOV_SIZEOF);
        self.cfg.rw16(
            at + PCI_SRIOV_CTRL,
            PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI,
        );
        let total = sriov.total_vfs;
        self.cfg.set16(at + PCI_SRIOV_INITIAL_VF, total);
        self.cfg.set16(at + PCI_SRIOV_TOTAL_VF, total);
        self.cfg.rw16(at + PCI_SRIOV_NUM_VF, !0);
        self.cfg.set8(at + PCI_SRIOV_FUNC_LINK, function);
        self.cfg
            .set16(at + PCI_SRIOV_VF_OFFSET, sriov.first_vf_offset);
        self.cfg.set16(at + PCI_SRIOV_VF_STRIDE, sriov.vf_stride);
        self.cfg.set16(at + PCI_SRIOV_VF_DID, sriov.vf_device);
        // 4K, 8K, 64K, 256K, 1M and 4M system pages; 4K selected.
        self.cfg.set32(at + PCI_SRIOV_SUP_PGSIZE, 0x553);
        self.cfg.set32(at + PCI_SRIOV_SYS_PGSIZE, 1);
        self.cfg.rw32(at + PCI_SRIOV_SYS_PGSIZE, 0x553);
        for bar in &sriov.vf_bars {
            build_bar(self.cfg, at + PCI_SRIOV_BAR + 4 * u16::from(bar.index), bar);
        }
    }
}

/// Finds a standard capability by walking the list from 0x34, as Linux
/// `pci_find_capability` does.
pub fn find_capability(cfg: &ConfigSpace, id: u8) -> Option<u16> {
    let mut at = u16::from(cfg.read8(PCI_CAPABILITY_LIST)) & !3;
    // 48 is the bound Linux uses against looping lists (PCI_FIND_CAP_TTL).
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        if cfg.read8(at) == id {
            return Some(at);
        }
        at = u16::from(cfg.read8(at + 1)) & !3;
    }
    None
}

/// Finds an extended capability by walking the list from 0x100, as Linux
/// `pci_find_ext_capability` does.
pub fn find_ext_capability(cfg: &ConfigSpace, id: u16) -> Option<u16> {
    if cfg.size() < PCI_CFG_SPACE_EXP_SIZE {
        return None;
    }
    let mut at = PCI_CFG_SPACE_SIZE;
    // Each capability is at least 8 bytes (Linux bounds the walk likewise).
    for _ in 0..(PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8 {
        let hdr = cfg.read32(at);
        if hdr == 0 {
            return None;
        }
        if hdr as u16 == id {
            return Some(at);
        }
        at = (hdr >> 20) as u16 & !3;
        if at < PCI_CFG_SPACE_SIZE {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BarSpec, Size};

    #[test]
    fn lists_link_and_are_found() {
        let mut cfg = ConfigSpace::new(4096);
        let mut w = CapWriter::new(&mut cfg);
        w.pm();
        w.msi(&MsiSpec {
            vectors: 4,
            address_64: true,
            per_vector_mask: true,
        });
        w.pcie(PCI_EXP_TYPE_ENDPOINT);
        w.acs(0x1d, 0x1d);
        w.pasid(&PasidSpec {
            max_width: 20,
            exec: false,
            privileged: true,
        });
        let caps = w.finish();
        assert_eq!(caps.len(), 5);
        assert_eq!(
            cfg.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST,
            PCI_STATUS_CAP_LIST
        );
        assert_eq!(find_capability(&cfg, PCI_CAP_ID_PM), Some(0x40));
        assert_eq!(find_capability(&cfg, PCI_CAP_ID_MSI), Some(0x48));
        assert_eq!(find_capability(&cfg, PCI_CAP_ID_EXP), Some(0x60));
        assert_eq!(find_capability(&cfg, PCI_CAP_ID_MSIX), None);
        assert_eq!(find_ext_capability(&cfg, PCI_EXT_CAP_ID_ACS), Some(0x100));
        let pasid = find_ext_capability(&cfg, PCI_EXT_CAP_ID_PASID).unwrap();
        assert_eq!(pasid, 0x108);
        assert_eq!(cfg.read16(pasid + PCI_PASID_CAP), 0x1404);
        // Only the supported control bits are writable.
        cfg.write(pasid + PCI_PASID_CTRL, &[0xff, 0xff]);
        assert_eq!(cfg.read16(pasid + PCI_PASID_CTRL), 0x0005);
        let exp = find_capability(&cfg, PCI_CAP_ID_EXP).unwrap();
        assert_eq!(cfg.read16(exp + PCI_EXP_FLAGS), 0x0002);
    }

    #[test]
    fn msi_masks_follow_vector_count() {
        let mut cfg = ConfigSpace::new(256);
        let mut w = CapWriter::new(&mut cfg);
        w.msi(&MsiSpec {
            vectors: 4,
            address_64: true,
            per_vector_mask: true,
        });
        let at = 0x40;
        assert_eq!(cfg.read16(at + PCI_MSI_FLAGS), 0x0184);
        cfg.write(at + PCI_MSI_FLAGS, &0xffffu16.to_le_bytes());
        assert_eq!(cfg.read16(at + PCI_MSI_FLAGS), 0x01f5);
        cfg.write(at + PCI_MSI_MASK_64, &u32::MAX.to_le_bytes());
        assert_eq!(cfg.read32(at + PCI_MSI_MASK_64), 0xf);
        cfg.write(at + PCI_MSI_ADDRESS_LO, &u32::MAX.to_le_bytes());
        assert_eq!(cfg.read32(at + PCI_MSI_ADDRESS_LO), 0xffff_fffc);
    }

    #[test]
    fn msix_table_and_pba_locations() {
        let mut cfg = ConfigSpace::new(4096);
        let mut w = CapWriter::new(&mut cfg);
        w.msix(&MsixSpec {
            table_size: 9,
            table_bar: 0,
            table_offset: 0x2000,
            pba_bar: 2,
            pba_offset: 0x3000,
        });
        assert_eq!(cfg.read16(0x40 + PCI_MSIX_FLAGS), 8);
        assert_eq!(cfg.read32(0x40 + PCI_MSIX_TABLE), 0x2000);
        assert_eq!(cfg.read32(0x40 + PCI_MSIX_PBA), 0x3002);
        cfg.write(0x40 + PCI_MSIX_FLAGS, &0xffffu16.to_le_bytes());
        assert_eq!(cfg.read16(0x40 + PCI_MSIX_FLAGS), 0xc008);
    }

    #[test]
    fn sriov_registers() {
        let mut cfg = ConfigSpace::new(4096);
        let spec = SriovSpec {
            total_vfs: 4,
            vf_device: 0x154c,
            first_vf_offset: 16,
            vf_stride: 1,
            vf_bars: vec![BarSpec {
                index: 0,
                size: Size(0x10000),
                mem64: true,
                prefetchable: true,
            }],
            vf_msix: None,
        };
        let mut w = CapWriter::new(&mut cfg);
        w.sriov(&spec, 0);
        let at = find_ext_capability(&cfg, PCI_EXT_CAP_ID_SRIOV).unwrap();
        assert_eq!(cfg.read16(at + PCI_SRIOV_TOTAL_VF), 4);
        assert_eq!(cfg.read16(at + PCI_SRIOV_INITIAL_VF), 4);
        assert_eq!(cfg.read16(at + PCI_SRIOV_VF_OFFSET), 16);
        assert_eq!(cfg.read16(at + PCI_SRIOV_VF_DID), 0x154c);
        cfg.write(at + PCI_SRIOV_CTRL, &0xffffu16.to_le_bytes());
        assert_eq!(cfg.read16(at + PCI_SRIOV_CTRL), 0x19);
        let reg = at + PCI_SRIOV_BAR;
        cfg.write(reg, &u32::MAX.to_le_bytes());
        assert_eq!(cfg.read32(reg), 0xffff_000c);
    }
}
