//! Capability and extended-capability registers (VT-d spec §11.4.2 /
//! §11.4.3; include/linux/intel-iommu.h / drivers/iommu/intel/iommu.h
//! `cap_*` / `ecap_*` accessors), built from an [`IommuUnitSpec`].

use umdev_pci::IommuUnitSpec;

use crate::memory::PhysAddr;

/// `DMA_RTADDR_SMT`: RTADDR_REG bit 10 selects scalable-mode translation.
pub const DMA_RTADDR_SMT: u64 = 1 << 10;

/// Number of fault-recording registers the unit advertises at most
/// (CAP.NFR is 8 bits wide and holds the count minus one).
const MAX_NFR: usize = 256;

const fn bit(value: bool, pos: u32) -> u64 {
    (value as u64) << pos
}

const fn field(value: u64, lo: u32, width: u32) -> u64 {
    (value & ((1 << width) - 1)) << lo
}

const fn get(reg: u64, lo: u32, width: u32) -> u64 {
    (reg >> lo) & ((1 << width) - 1)
}

/// The adjusted guest address width code for an input width: 1 = 39-bit
/// (3-level), 2 = 48-bit (4-level), 3 = 57-bit (5-level); Linux
/// `width_to_agaw`.
pub const fn width_to_agaw(width: u32) -> u8 {
    (width.saturating_sub(30) / 9) as u8
}

/// The input width of an AGAW code (Linux `agaw_to_width`).
pub const fn agaw_to_width(agaw: u8) -> u32 {
    30 + 9 * agaw as u32
}

/// Page-table levels of an AGAW code (Linux `agaw_to_level`).
pub const fn agaw_to_level(agaw: u8) -> u8 {
    agaw + 2
}

/// CAP_REG (offset 0x08).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cap(pub u64);

impl Cap {
    /// Builds the register of a unit in scalable mode.
    pub fn from_config(config: &IommuUnitSpec) -> Self {
        let widths = || {
            config
                .address_widths
                .iter()
                .copied()
                .filter(|w| matches!(w, 39 | 48 | 57))
        };
        let sagaw = widths().fold(0u64, |acc, w| acc | 1 << width_to_agaw(w));
        let max_width = widths().max().unwrap_or(48);
        let has_2m = config.pgsize_bitmap & (1 << 21) != 0;
        let has_1g = config.pgsize_bitmap & (1 << 30) != 0;
        let nfr = config.fault_log_size.clamp(1, MAX_NFR) as u64 - 1;
        Cap(field(6, 0, 3) // ND: 2^16 domain ids
            | field(sagaw, 8, 5)
            | field(u64::from(max_width - 1), 16, 6) // MGAW
            | field(0x40, 24, 10) // FRO: fault recording at 0x400
            | field(u64::from(has_2m) | u64::from(has_1g) << 1, 34, 4) // SLLPS
            | bit(true, 39) // PSI
            | field(nfr, 40, 8) // NFR
            | field(18, 48, 6) // MAMV: up to 2^18 pages per PSI
            | bit(true, 54) // DWD
            | bit(true, 55) // DRD
            | bit(has_1g, 56) // FL1GP
            | bit(config.address_widths.contains(&57), 60)) // FL5LP
    }

    /// Number of domain ids (CAP.ND: 2^(4 + 2 × ND)); Linux `cap_ndoms`.
    pub fn ndoms(self) -> u32 {
        1 << (4 + 2 * get(self.0, 0, 3))
    }

    /// Caching mode (CAP.CM, bit 7): set by virtual IOMMUs, never here.
    pub fn caching_mode(self) -> bool {
        get(self.0, 7, 1) != 0
    }

    /// Supported adjusted guest address widths (CAP.SAGAW, bits 12:8; bit n
    /// set = AGAW n).
    pub fn sagaw(self) -> u8 {
        get(self.0, 8, 5) as u8
    }

    /// Maximum guest address width (CAP.MGAW, bits 21:16, plus one).
    pub fn mgaw(self) -> u32 {
        get(self.0, 16, 6) as u32 + 1
    }

    /// Second-level large-page support (CAP.SLLPS, bits 37:34): bit 0 2 MiB,
    /// bit 1 1 GiB.
    pub fn super_page_val(self) -> u8 {
        get(self.0, 34, 4) as u8
    }

    /// Page-selective invalidation (CAP.PSI, bit 39).
    pub fn pgsel_inv(self) -> bool {
        get(self.0, 39, 1) != 0
    }

    /// Number of fault-recording registers (CAP.NFR, bits 47:40, plus one).
    pub fn num_fault_regs(self) -> u32 {
        get(self.0, 40, 8) as u32 + 1
    }

    /// Maximum address-mask value of a page-selective invalidation
    /// (CAP.MAMV, bits 53:48).
    pub fn max_amask_val(self) -> u8 {
        get(self.0, 48, 6) as u8
    }

    /// First-level 1 GiB pages (CAP.FL1GP, bit 56).
    pub fn fl1gp_support(self) -> bool {
        get(self.0, 56, 1) != 0
    }

    /// First-level 5-level paging (CAP.FL5LP, bit 60).
    pub fn fl5lp_support(self) -> bool {
        get(self.0, 60, 1) != 0
    }

    /// The largest supported AGAW (Linux `iommu_calculate_max_sagaw` then
    /// the highest bit); 0 when SAGAW is empty.
    pub fn max_agaw(self) -> u8 {
        7u8.saturating_sub(self.sagaw().leading_zeros() as u8)
    }
}

/// ECAP_REG (offset 0x10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ecap(pub u64);

impl Ecap {
    /// Builds the register of a unit in scalable mode.
    pub fn from_config(config: &IommuUnitSpec) -> Self {
        let pasid = config.pasid_bits > 0;
        let pss = u64::from(config.pasid_bits.saturating_sub(1));
        Ecap(
            bit(true, 0) // C: page-walk coherency
            | bit(true, 1) // QI
            | bit(true, 6) // PT
            | bit(true, 7) // SC
            | field(0x50, 8, 10) // IRO: IOTLB registers at 0x500
            | field(9, 20, 4) // MHMV
            | bit(config.nesting, 26) // NEST
            | bit(config.supervisor_requests, 31) // SRS
            | bit(config.extended_accessed, 34) // EAFS
            | field(pss, 35, 5) // PSS
            | bit(pasid, 40) // PASID
            | bit(true, 43) // SMTS
            | bit(config.dirty_tracking, 45) // SLADS
            | bit(true, 46) // SLTS
            | bit(true, 47) // FLTS
            | bit(true, 48),
        ) // SMPWC
    }

    /// Page-walk coherency (ECAP.C, bit 0).
    pub fn coherent(self) -> bool {
        get(self.0, 0, 1) != 0
    }

    /// Queued invalidation (ECAP.QI, bit 1).
    pub fn qis(self) -> bool {
        get(self.0, 1, 1) != 0
    }

    /// Device-TLB (ATS) support (ECAP.DT, bit 2); device TLBs are not
    /// modelled, so this is clear.
    pub fn dev_iotlb_support(self) -> bool {
        get(self.0, 2, 1) != 0
    }

    /// Pass-through (ECAP.PT, bit 6).
    pub fn pass_through(self) -> bool {
        get(self.0, 6, 1) != 0
    }

    /// Snoop control (ECAP.SC, bit 7).
    pub fn snooping(self) -> bool {
        get(self.0, 7, 1) != 0
    }

    /// Nested translation (ECAP.NEST, bit 26).
    pub fn nest(self) -> bool {
        get(self.0, 26, 1) != 0
    }

    /// Page requests (ECAP.PRS, bit 29); not modelled, clear.
    pub fn prs(self) -> bool {
        get(self.0, 29, 1) != 0
    }

    /// Supervisor requests (ECAP.SRS, bit 31).
    pub fn srs(self) -> bool {
        get(self.0, 31, 1) != 0
    }

    /// Extended accessed flag (ECAP.EAFS, bit 34).
    pub fn eafs(self) -> bool {
        get(self.0, 34, 1) != 0
    }

    /// PASID size supported (ECAP.PSS, bits 39:35): PASID bits minus one.
    pub fn pss(self) -> u8 {
        get(self.0, 35, 5) as u8
    }

    /// PASID support (ECAP.PASID, bit 40).
    pub fn pasid(self) -> bool {
        get(self.0, 40, 1) != 0
    }

    /// Scalable-mode translation (ECAP.SMTS, bit 43).
    pub fn smts(self) -> bool {
        get(self.0, 43, 1) != 0
    }

    /// Second-stage accessed/dirty support (ECAP.SLADS, bit 45).
    pub fn slads(self) -> bool {
        get(self.0, 45, 1) != 0
    }

    /// Second-stage translation (ECAP.SLTS, bit 46).
    pub fn slts(self) -> bool {
        get(self.0, 46, 1) != 0
    }

    /// First-stage translation (ECAP.FLTS, bit 47).
    pub fn flts(self) -> bool {
        get(self.0, 47, 1) != 0
    }

    /// Scalable-mode page-walk coherency (ECAP.SMPWC, bit 48).
    pub fn smpwc(self) -> bool {
        get(self.0, 48, 1) != 0
    }

    /// RID_PASID support (ECAP.RPS, bit 49); clear, so requests without a
    /// PASID always use PASID 0.
    pub fn rps(self) -> bool {
        get(self.0, 49, 1) != 0
    }
}

/// The value of RTADDR_REG for a scalable-mode root table at `root`.
pub fn rtaddr_reg(root: PhysAddr) -> u64 {
    root | DMA_RTADDR_SMT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IommuUnitSpec {
        IommuUnitSpec {
            name: "dmar0".into(),
            segments: vec![0],
            address_widths: vec![48, 57],
            pasid_bits: 20,
            pgsize_bitmap: (1 << 12) | (1 << 21) | (1 << 30),
            nesting: true,
            dirty_tracking: true,
            supervisor_requests: false,
            extended_accessed: true,
            fault_log_size: 8,
        }
    }

    #[test]
    fn cap_bits_sit_where_the_spec_puts_them() {
        let cap = Cap::from_config(&config());
        assert_eq!(cap.0 >> 8 & 0x1f, 0b1100, "SAGAW: 48- and 57-bit");
        assert_eq!(cap.0 >> 16 & 0x3f, 56, "MGAW");
        assert_eq!(cap.0 >> 34 & 0xf, 0b11, "SLLPS: 2M and 1G");
        assert_ne!(cap.0 & 1 << 39, 0, "PSI");
        assert_ne!(cap.0 & 1 << 56, 0, "FL1GP");
        assert_ne!(cap.0 & 1 << 60, 0, "FL5LP");
        assert_eq!(cap.0 & 1 << 7, 0, "CM");
        assert_eq!(cap.ndoms(), 1 << 16);
        assert_eq!(cap.max_agaw(), 3);
        assert_eq!(cap.num_fault_regs(), 8);
        assert_eq!(cap.mgaw(), 57);

        let mut small = config();
        small.address_widths = vec![48];
        small.pgsize_bitmap = (1 << 12) | (1 << 21);
        let cap = Cap::from_config(&small);
        assert!(!cap.fl5lp_support());
        assert!(!cap.fl1gp_support());
        assert_eq!(cap.super_page_val(), 1);
        assert_eq!(cap.max_agaw(), 2);
    }

    #[test]
    fn ecap_bits_sit_where_the_spec_puts_them() {
        let ecap = Ecap::from_config(&config());
        for (pos, name) in [
            (0, "C"),
            (1, "QI"),
            (6, "PT"),
            (7, "SC"),
            (26, "NEST"),
            (34, "EAFS"),
            (40, "PASID"),
            (43, "SMTS"),
            (45, "SLADS"),
            (46, "SLTS"),
            (47, "FLTS"),
        ] {
            assert_ne!(ecap.0 & 1 << pos, 0, "{name}");
        }
        assert_eq!(ecap.0 & 1 << 31, 0, "SRS");
        assert_eq!(ecap.0 >> 35 & 0x1f, 19, "PSS");
        assert!(!ecap.rps() && !ecap.prs() && !ecap.dev_iotlb_support());

        let mut plain = config();
        plain.nesting = false;
        plain.dirty_tracking = false;
        plain.pasid_bits = 0;
        let ecap = Ecap::from_config(&plain);
        assert!(!ecap.nest() && !ecap.slads() && !ecap.pasid());
    }

    #[test]
    fn agaw_conversions() {
        assert_eq!(width_to_agaw(39), 1);
        assert_eq!(width_to_agaw(48), 2);
        assert_eq!(width_to_agaw(57), 3);
        assert_eq!(agaw_to_width(2), 48);
        assert_eq!(agaw_to_level(3), 5);
        assert_eq!(rtaddr_reg(0x1_0000_0000), 0x1_0000_0400);
    }
}
