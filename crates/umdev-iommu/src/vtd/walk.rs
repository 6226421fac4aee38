//! The hardware's walk of the scalable-mode structures in memory: root
//! entry, context entry, PASID directory entry, PASID-table entry (VT-d
//! spec §3.4.3, §9.1-9.6). Software writes them (`crate::intel`); the unit
//! only reads them, starting at its root table address register.

use umdev_pci::Bdf;

use super::layout::{
    PASID_DIR_ENTRY_SIZE, PASID_ENTRY_SIZE, PASID_PDE_SHIFT, PASID_PTE_MASK, ScalableContext,
    context_entry_offset, decode_pasid_dir_entry, decode_root_word, root_word_offset,
};
use super::types::{FaultReason, IOMMU_NO_PASID};
use crate::memory::{HostMemory, PhysAddr};

/// A failed structure walk: why, and whether FPD was set on the way.
pub(crate) type StructureFault = (FaultReason, bool);

/// What hardware reads for a request from `bdf` with `pasid`: root entry,
/// scalable context entry, PASID directory entry, and the first three
/// words of the PASID-table entry. An FPD bit met on the way is folded
/// into bit 1 of word 0.
pub(crate) fn read_pasid_entry(
    mem: &HostMemory,
    root: PhysAddr,
    bdf: Bdf,
    pasid: Option<u32>,
) -> Result<[u64; 3], StructureFault> {
    let read =
        |addr: PhysAddr, fpd: bool| mem.read_u64(addr).map_err(|_| (FaultReason::Unbacked, fpd));
    let root_word = read(root + root_word_offset(bdf.bus(), bdf.devfn()), false)?;
    let context_table =
        decode_root_word(root_word).ok_or((FaultReason::ContextNotPresent, false))?;
    let context = ScalableContext::decode(read(
        context_table + context_entry_offset(bdf.devfn()),
        false,
    )?)
    .ok_or((FaultReason::ContextNotPresent, false))?;
    let mut fpd = context.fpd;
    if pasid.is_some() && !context.pasid_enable {
        return Err((FaultReason::PasidDisabled, fpd));
    }
    // RID_PASID: with ECAP.RPS clear hardware uses PASID 0.
    let pasid = pasid.unwrap_or(IOMMU_NO_PASID);
    let dir_index = u64::from(pasid >> PASID_PDE_SHIFT);
    if dir_index >= context.dir_entries() {
        return Err((FaultReason::PasidOutOfRange, fpd));
    }
    let dir_word = read(context.pasid_dir + dir_index * PASID_DIR_ENTRY_SIZE, fpd)?;
    let (table, dir_fpd) =
        decode_pasid_dir_entry(dir_word).ok_or((FaultReason::PasidNotPresent, fpd))?;
    fpd |= dir_fpd;
    let entry = table + u64::from(pasid & PASID_PTE_MASK) * PASID_ENTRY_SIZE;
    let mut val = [
        read(entry, fpd)?,
        read(entry + 8, fpd)?,
        read(entry + 16, fpd)?,
    ];
    if val[0] & 1 == 0 {
        return Err((FaultReason::PasidNotPresent, fpd));
    }
    val[0] |= u64::from(fpd) << 1;
    Ok(val)
}
