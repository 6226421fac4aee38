//! Bit layouts of the scalable-mode translation structures as hardware
//! reads them from memory (VT-d spec §9.1, §9.4, §9.5, §9.6;
//! drivers/iommu/intel/iommu.h and pasid.h `context_*` / `pasid_set_*`).
//! Pure encode / decode; `super::tables` places them in memory.

use super::{DomainId, FaultReason, PasidEntry, S1Flags};
use crate::memory::PhysAddr;

/// Bytes per root entry (256 per table, indexed by bus).
pub const ROOT_ENTRY_SIZE: u64 = 16;
/// Bytes per scalable-mode context entry (128 per 4 KiB table).
pub const CONTEXT_ENTRY_SIZE: u64 = 32;
/// Bytes per PASID-directory entry.
pub const PASID_DIR_ENTRY_SIZE: u64 = 8;
/// Bytes per scalable-mode PASID-table entry (64 per 4 KiB table).
pub const PASID_ENTRY_SIZE: u64 = 64;
/// `PASID_PDE_SHIFT`: the directory index is `pasid >> 6`.
pub const PASID_PDE_SHIFT: u32 = 6;
/// `PASID_PTE_MASK`: the table index is `pasid & 0x3f`.
pub const PASID_PTE_MASK: u32 = 0x3f;

/// PASID granular translation types (PGTT, PASID entry bits 8:6).
pub const PASID_ENTRY_PGTT_FL_ONLY: u64 = 1;
/// Second-stage only.
pub const PASID_ENTRY_PGTT_SL_ONLY: u64 = 2;
/// Nested: first stage translated through the second stage.
pub const PASID_ENTRY_PGTT_NESTED: u64 = 3;
/// Pass-through.
pub const PASID_ENTRY_PGTT_PT: u64 = 4;

const PRESENT: u64 = 1 << 0;
const FPD: u64 = 1 << 1;
const ADDR_MASK: u64 = !0xfff;

/// Offset inside the root table of the 64-bit half that points at the
/// context table for `devfn` (`iommu_context_addr`: lo for devfn
/// 0x00-0x7f, hi for 0x80-0xff).
pub fn root_word_offset(bus: u8, devfn: u8) -> u64 {
    u64::from(bus) * ROOT_ENTRY_SIZE + 8 * u64::from(devfn >> 7)
}

/// Offset of `devfn`'s entry inside its (half) context table.
pub fn context_entry_offset(devfn: u8) -> u64 {
    u64::from(devfn & 0x7f) * CONTEXT_ENTRY_SIZE
}

/// A root-entry half: LP / UP (bit 0) and LCTP / UCTP (bits 63:12).
pub fn encode_root_word(context_table: PhysAddr) -> u64 {
    (context_table & ADDR_MASK) | PRESENT
}

/// The context-table pointer of a present root-entry half.
pub fn decode_root_word(word: u64) -> Option<PhysAddr> {
    (word & PRESENT != 0).then_some(word & ADDR_MASK)
}

/// A scalable-mode context entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalableContext {
    /// PASIDDIRPTR (bits 63:12).
    pub pasid_dir: PhysAddr,
    /// PDTS (bits 11:9): the directory has 2^(PDTS + 7) entries.
    pub pdts: u8,
    /// PASIDE (bit 3): requests with a PASID are allowed.
    pub pasid_enable: bool,
    /// FPD (bit 1): faults are not recorded.
    pub fpd: bool,
}

impl ScalableContext {
    /// PDTS for a directory of `entries` entries (a power of two ≥ 128;
    /// Linux `context_get_sm_pds`).
    pub fn pdts_for(entries: u64) -> u8 {
        (entries.max(128).trailing_zeros() - 7) as u8
    }

    /// Number of directory entries the context allows.
    pub fn dir_entries(&self) -> u64 {
        1 << (u32::from(self.pdts) + 7)
    }

    /// The four words of the entry (`context_entry_set_pasid_table`:
    /// RID_PASID = IOMMU_NO_PASID, fault enable, present).
    pub fn encode(&self) -> [u64; 4] {
        let lo = (self.pasid_dir & ADDR_MASK)
            | (u64::from(self.pdts) & 7) << 9
            | u64::from(self.pasid_enable) << 3
            | u64::from(self.fpd) << 1
            | PRESENT;
        // hi bits 19:0 RID_PASID = IOMMU_NO_PASID (0).
        [lo, 0, 0, 0]
    }

    /// Decodes the low word; `None` when not present.
    pub fn decode(lo: u64) -> Option<Self> {
        (lo & PRESENT != 0).then_some(ScalableContext {
            pasid_dir: lo & ADDR_MASK,
            pdts: ((lo >> 9) & 7) as u8,
            pasid_enable: lo & (1 << 3) != 0,
            fpd: lo & FPD != 0,
        })
    }
}

/// A PASID-directory entry: P (bit 0), FPD (bit 1), PASID-table pointer.
pub fn encode_pasid_dir_entry(table: PhysAddr) -> u64 {
    (table & ADDR_MASK) | PRESENT
}

/// The table pointer of a present directory entry, and its FPD bit.
pub fn decode_pasid_dir_entry(word: u64) -> Option<(PhysAddr, bool)> {
    (word & PRESENT != 0).then_some((word & ADDR_MASK, word & FPD != 0))
}

/// A present PASID entry decoded from its first three words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedPasid {
    /// What the entry programs.
    pub entry: PasidEntry,
    /// FPD (bit 1): faults through this entry are not recorded.
    pub fpd: bool,
}

/// Builds the 8 words of a PASID-table entry as Linux's
/// `intel_pasid_setup_{first_level,second_level,nested,pass_through}` do
/// (drivers/iommu/intel/pasid.c). `unit_agaw` fills AW where Linux uses
/// `iommu->agaw`; `smpwc` sets PWSNP (`pasid_set_page_snoop`).
pub fn encode_pasid_entry(entry: &PasidEntry, unit_agaw: u8, smpwc: bool) -> [u64; 8] {
    let mut val = [0u64; 8];
    // pasid_set_domain_id / pasid_set_page_snoop (PWSNP, bit 87).
    val[1] = u64::from(entry.did()) | u64::from(smpwc) << 23;
    let (pgtt, agaw) = match *entry {
        PasidEntry::FirstLevel { root, levels, .. } => {
            // pasid_set_flptr / pasid_set_flpm.
            val[2] = (root & ADDR_MASK) | u64::from(levels == 5) << 2;
            (PASID_ENTRY_PGTT_FL_ONLY, unit_agaw)
        }
        PasidEntry::SecondLevel {
            root,
            levels,
            dirty_tracking,
            ..
        } => {
            // pasid_set_slptr / pasid_set_ssade.
            val[0] = (root & ADDR_MASK) | u64::from(dirty_tracking) << 9;
            (PASID_ENTRY_PGTT_SL_ONLY, levels - 2)
        }
        PasidEntry::Nested {
            s1_root,
            s1_levels,
            s1_flags,
            s2_root,
            s2_levels,
            dirty_tracking,
            ..
        } => {
            val[0] = (s2_root & ADDR_MASK) | u64::from(dirty_tracking) << 9;
            // pasid_set_sre (bit 128), pasid_set_flpm, pasid_set_wpe
            // (bit 132), pasid_set_eafe (bit 135), pasid_set_flptr.
            val[2] = (s1_root & ADDR_MASK)
                | u64::from(s1_flags.sre)
                | u64::from(s1_levels == 5) << 2
                | u64::from(s1_flags.wpe) << 4
                | u64::from(s1_flags.eafe) << 7;
            (PASID_ENTRY_PGTT_NESTED, s2_levels - 2)
        }
        PasidEntry::PassThrough { .. } => (PASID_ENTRY_PGTT_PT, unit_agaw),
    };
    // pasid_set_address_width (bits 4:2), pasid_set_translation_type
    // (bits 8:6), fault enable (FPD clear), pasid_set_present.
    val[0] |= (u64::from(agaw) & 7) << 2 | pgtt << 6 | PRESENT;
    val
}

fn fl_levels(flpm: u64) -> Result<u8, FaultReason> {
    match flpm {
        0 => Ok(4),
        1 => Ok(5),
        _ => Err(FaultReason::Reserved),
    }
}

fn sl_levels(aw: u64) -> Result<u8, FaultReason> {
    match aw {
        1..=3 => Ok(aw as u8 + 2),
        _ => Err(FaultReason::Reserved),
    }
}

/// Decodes the first three words of a PASID-table entry:
/// [`FaultReason::PasidNotPresent`] when P is clear,
/// [`FaultReason::Reserved`] for a PGTT or width hardware rejects.
pub fn decode_pasid_entry(val: [u64; 3]) -> Result<DecodedPasid, FaultReason> {
    if val[0] & PRESENT == 0 {
        return Err(FaultReason::PasidNotPresent);
    }
    let did = (val[1] & 0xffff) as DomainId;
    let aw = (val[0] >> 2) & 7;
    let dirty_tracking = val[0] & (1 << 9) != 0;
    let flpm = (val[2] >> 2) & 3;
    let entry = match (val[0] >> 6) & 7 {
        PASID_ENTRY_PGTT_FL_ONLY => PasidEntry::FirstLevel {
            did,
            root: val[2] & ADDR_MASK,
            levels: fl_levels(flpm)?,
        },
        PASID_ENTRY_PGTT_SL_ONLY => PasidEntry::SecondLevel {
            did,
            root: val[0] & ADDR_MASK,
            levels: sl_levels(aw)?,
            dirty_tracking,
        },
        PASID_ENTRY_PGTT_NESTED => PasidEntry::Nested {
            did,
            s1_root: val[2] & ADDR_MASK,
            s1_levels: fl_levels(flpm)?,
            s1_flags: S1Flags {
                sre: val[2] & 1 != 0,
                wpe: val[2] & (1 << 4) != 0,
                eafe: val[2] & (1 << 7) != 0,
            },
            s2_root: val[0] & ADDR_MASK,
            s2_levels: sl_levels(aw)?,
            dirty_tracking,
        },
        PASID_ENTRY_PGTT_PT => PasidEntry::PassThrough { did },
        _ => return Err(FaultReason::Reserved),
    };
    Ok(DecodedPasid {
        entry,
        fpd: val[0] & FPD != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(entry: PasidEntry) {
        let raw = encode_pasid_entry(&entry, 3, true);
        let decoded = decode_pasid_entry([raw[0], raw[1], raw[2]]).unwrap();
        assert_eq!(decoded.entry, entry);
        assert!(!decoded.fpd);
        assert_eq!(raw[3..], [0; 5]);
    }

    #[test]
    fn pasid_entries_roundtrip() {
        roundtrip(PasidEntry::FirstLevel {
            did: 7,
            root: 0x1_2345_6000,
            levels: 5,
        });
        roundtrip(PasidEntry::SecondLevel {
            did: 0xffff,
            root: 0x1_0000_0000,
            levels: 3,
            dirty_tracking: true,
        });
        roundtrip(PasidEntry::Nested {
            did: 9,
            s1_root: 0x8000,
            s1_levels: 4,
            s1_flags: S1Flags {
                sre: true,
                eafe: true,
                wpe: true,
            },
            s2_root: 0x2_0000_0000,
            s2_levels: 4,
            dirty_tracking: false,
        });
        roundtrip(PasidEntry::PassThrough { did: 1 });
    }

    #[test]
    fn bad_pgtt_and_absent_entries() {
        assert_eq!(
            decode_pasid_entry([0, 0, 0]).unwrap_err(),
            FaultReason::PasidNotPresent
        );
        assert_eq!(
            decode_pasid_entry([1 | 5 << 6, 0, 0]).unwrap_err(),
            FaultReason::Reserved
        );
        assert_eq!(
            decode_pasid_entry([1 | PASID_ENTRY_PGTT_FL_ONLY << 6, 0, 2 << 2]).unwrap_err(),
            FaultReason::Reserved
        );
        let fpd = decode_pasid_entry([1 | 2 | PASID_ENTRY_PGTT_PT << 6, 1, 0]).unwrap();
        assert!(fpd.fpd);
    }

    #[test]
    fn context_and_root_words() {
        assert_eq!(root_word_offset(3, 0x7f), 48);
        assert_eq!(root_word_offset(3, 0x80), 56);
        assert_eq!(context_entry_offset(0x81), 32);
        let ctx = ScalableContext {
            pasid_dir: 0x5000,
            pdts: ScalableContext::pdts_for(1 << 14),
            pasid_enable: true,
            fpd: false,
        };
        assert_eq!(ctx.pdts, 7);
        assert_eq!(ctx.dir_entries(), 1 << 14);
        let raw = ctx.encode();
        assert_eq!(raw[0], 0x5000 | 7 << 9 | 1 << 3 | 1);
        assert_eq!(ScalableContext::decode(raw[0]), Some(ctx));
        assert_eq!(ScalableContext::decode(0), None);
        assert_eq!(decode_root_word(encode_root_word(0x9000)), Some(0x9000));
        assert_eq!(
            decode_pasid_dir_entry(encode_pasid_dir_entry(0xa000)),
            Some((0xa000, false))
        );
    }
}
