//! The hardware page walk, over any [`TableReader`].
//!
//! Nothing here assumes the tables live in host memory: a nested walk
//! passes a reader that translates the guest's table addresses through the
//! second level first.

use std::sync::atomic::{AtomicU64, Ordering};

use super::pte::{ENTRIES_PER_TABLE, MAX_LEVELS, PTE_ADDR_MASK, level_index, level_size};
use super::{Access, Prot, PtFormat, TableReader, Translation, WalkFault};
use crate::memory::{HostMemory, PhysAddr};

/// One entry the walk went through.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    table: PhysAddr,
    index: usize,
    entry: u64,
    level: u8,
}

/// The entries of a walk from the top level down to the leaf.
struct Path {
    steps: [Step; MAX_LEVELS],
    len: usize,
}

impl Path {
    fn steps(&self) -> &[Step] {
        &self.steps[..self.len]
    }
}

/// Reads the entries translating `iova` down to its leaf, checking only
/// the structure (input width, present bits, reserved bits).
fn descend(
    reader: &dyn TableReader,
    format: PtFormat,
    root: PhysAddr,
    iova: u64,
) -> Result<Path, WalkFault> {
    if !format.is_valid() || !format.accepts_input(iova) {
        return Err(WalkFault::OutOfAperture);
    }
    let mut path = Path {
        steps: [Step::default(); MAX_LEVELS],
        len: 0,
    };
    let mut table = root;
    let mut level = format.levels();
    loop {
        let index = level_index(iova, level);
        let entry = reader.read_entry(table, index)?;
        if !format.is_present(entry) {
            return Err(WalkFault::NotPresent { level });
        }
        if format.is_malformed(entry, level) {
            return Err(WalkFault::Reserved { level });
        }
        path.steps[path.len] = Step {
            table,
            index,
            entry,
            level,
        };
        path.len += 1;
        // Level 1 entries are always leaves, so the loop ends there.
        if format.is_leaf(entry, level) {
            return Ok(path);
        }
        table = entry & PTE_ADDR_MASK;
        level -= 1;
    }
}

/// The translation a complete path gives: the leaf's output, and what
/// every level together allows.
fn translation(format: PtFormat, path: &Path, iova: u64) -> Translation {
    let steps = path.steps();
    let leaf = steps[steps.len() - 1];
    let prot = steps.iter().fold(Prot::READ | Prot::WRITE, |prot, s| {
        prot & format.entry_prot(s.entry)
    });
    Translation {
        phys: format.leaf_output(leaf.entry, leaf.level, iova),
        page_size: level_size(leaf.level),
        prot,
    }
}

/// Software lookup: the translation of `iova` if a leaf maps it, with no
/// permission check and no Accessed / Dirty update (Linux
/// intel_iommu_iova_to_phys).
pub fn lookup(
    reader: &dyn TableReader,
    format: PtFormat,
    root: PhysAddr,
    iova: u64,
) -> Option<Translation> {
    let path = descend(reader, format, root, iova).ok()?;
    Some(translation(format, &path, iova))
}

/// The hardware walk of `iova` for one `access`.
///
/// Checks, in the order hardware finds them: the input width (first level:
/// canonical), then top-down the present bit and reserved bits of each
/// entry, then the permission of every entry on the path (first level: U/S
/// everywhere, R/W everywhere for writes; second level: R or W everywhere).
/// A permission fault names the highest level that refused.
///
/// On success it sets, through [`TableReader::set_entry_bits`], Accessed in
/// every entry used and Dirty in the leaf on writes: always for the first
/// level, only with `dirty_tracking` (PASID-entry SSADE) for the second.
pub fn walk(
    reader: &dyn TableReader,
    format: PtFormat,
    root: PhysAddr,
    iova: u64,
    access: Access,
    dirty_tracking: bool,
) -> Result<Translation, WalkFault> {
    let path = descend(reader, format, root, iova)?;
    let needs = access.needs();
    if let Some(refused) = path
        .steps()
        .iter()
        .find(|s| !format.entry_prot(s.entry).contains(needs))
    {
        return Err(WalkFault::Permission {
            level: refused.level,
        });
    }
    let track = match format {
        PtFormat::FirstLevel { .. } => true,
        PtFormat::SecondLevel { .. } => dirty_tracking,
    };
    if track {
        let accessed = format.accessed_bit();
        let dirty = format.dirty_bit();
        let last = path.len - 1;
        for (i, step) in path.steps().iter().enumerate() {
            let mut bits = accessed;
            if i == last && access == Access::Write {
                bits |= dirty;
            }
            if step.entry & bits != bits {
                reader.set_entry_bits(step.table, step.index, bits);
            }
        }
    }
    Ok(translation(format, &path, iova))
}

/// ORs `bits` into a little-endian entry, but only while it is present in
/// either format (bit 0 or 1 set), the way hardware updates Accessed /
/// Dirty with a locked operation on the entry it just used: an entry that
/// software cleared meanwhile stays clear.
pub fn set_bits_if_present(entry: &AtomicU64, bits: u64) {
    // The closure never fails for a present entry, so the result only
    // says whether the entry was present; either outcome is fine.
    let _ = entry.fetch_update(Ordering::AcqRel, Ordering::Acquire, |raw| {
        let value = u64::from_le(raw);
        (value & 0b11 != 0).then_some((value | bits).to_le())
    });
}

/// [`TableReader`] over host-owned tables: table addresses are
/// host-physical.
#[derive(Clone, Copy, Debug)]
pub struct HostTableReader<'a> {
    mem: &'a HostMemory,
}

impl<'a> HostTableReader<'a> {
    /// A reader of tables placed in `mem`.
    pub fn new(mem: &'a HostMemory) -> Self {
        Self { mem }
    }

    fn entry_addr(table: PhysAddr, index: usize) -> Result<PhysAddr, WalkFault> {
        let fault = WalkFault::TableRead { addr: table };
        if index >= ENTRIES_PER_TABLE {
            return Err(fault);
        }
        table.checked_add(index as u64 * 8).ok_or(fault)
    }
}

impl TableReader for HostTableReader<'_> {
    fn read_entry(&self, table: PhysAddr, index: usize) -> Result<u64, WalkFault> {
        let addr = Self::entry_addr(table, index)?;
        self.mem
            .read_u64(addr)
            .map_err(|_| WalkFault::TableRead { addr: table })
    }

    fn set_entry_bits(&self, table: PhysAddr, index: usize, bits: u64) {
        let Ok(addr) = Self::entry_addr(table, index) else {
            return;
        };
        let _ = self.mem.with_object(addr, 8, |object, offset| {
            if let Ok(entry) = object.atomic_u64(offset) {
                set_bits_if_present(entry, bits);
            }
        });
    }
}
