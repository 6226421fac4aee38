//! Nested translation (PGTT 3): the guest's first-level table lives in
//! guest memory, so every table read goes through the second level first,
//! as hardware does; the final guest-physical address then goes through
//! the second level too.

use super::FaultReason;
use crate::memory::{PAGE_SIZE, PhysAddr};
use crate::pgtable::{
    Access, HostTableReader, PtFormat, TableReader, Translation, WalkFault, walk,
};

/// Which stage of a translation a walk fault happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// A host-owned first-level table (PGTT 1).
    First,
    /// A second-level table (PGTT 2, or the second stage of PGTT 3).
    Second,
    /// The guest's first-level table of a nested entry.
    NestedFirst,
}

/// The fault reason a walk fault in `stage` reports.
pub(super) fn fault_reason(fault: WalkFault, stage: Stage) -> FaultReason {
    match fault {
        WalkFault::OutOfAperture => FaultReason::OutOfAperture,
        WalkFault::NotPresent { level } if stage == Stage::Second => {
            FaultReason::SecondLevelNotPresent { level }
        }
        WalkFault::NotPresent { level } => FaultReason::FirstLevelNotPresent { level },
        WalkFault::Permission { .. } => FaultReason::Permission,
        WalkFault::Reserved { .. } => FaultReason::Reserved,
        WalkFault::TableRead { addr } if stage == Stage::NestedFirst => {
            FaultReason::NestedTableRead { gpa: addr }
        }
        WalkFault::TableRead { .. } => FaultReason::Unbacked,
    }
}

/// The second stage of a nested entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct SecondStage {
    /// Host-physical root of the parent table.
    pub(super) root: PhysAddr,
    /// Its format.
    pub(super) format: PtFormat,
    /// SSADE.
    pub(super) dirty_tracking: bool,
}

impl SecondStage {
    fn walk(
        &self,
        host: &HostTableReader<'_>,
        gpa: u64,
        access: Access,
    ) -> Result<Translation, WalkFault> {
        walk(
            host,
            self.format,
            self.root,
            gpa,
            access,
            self.dirty_tracking,
        )
    }
}

/// Reads guest first-level tables: table addresses are guest-physical
/// and are translated through the second stage before each read.
struct GuestTableReader<'a> {
    host: HostTableReader<'a>,
    stage2: SecondStage,
}

impl GuestTableReader<'_> {
    /// The host page and index holding entry `index` of the guest table at
    /// `table`, translated for `access`.
    fn locate(
        &self,
        table: PhysAddr,
        index: usize,
        access: Access,
    ) -> Result<(PhysAddr, usize), WalkFault> {
        let fault = WalkFault::TableRead { addr: table };
        let gpa = table.checked_add(index as u64 * 8).ok_or(fault)?;
        let t = self
            .stage2
            .walk(&self.host, gpa, access)
            .map_err(|_| fault)?;
        Ok((
            t.phys & !(PAGE_SIZE - 1),
            ((t.phys & (PAGE_SIZE - 1)) / 8) as usize,
        ))
    }
}

impl TableReader for GuestTableReader<'_> {
    fn read_entry(&self, table: PhysAddr, index: usize) -> Result<u64, WalkFault> {
        let (page, index) = self.locate(table, index, Access::Read)?;
        self.host
            .read_entry(page, index)
            .map_err(|_| WalkFault::TableRead { addr: table })
    }

    fn set_entry_bits(&self, table: PhysAddr, index: usize, bits: u64) {
        // Setting Accessed / Dirty writes guest memory: it needs (and, with
        // SSADE, dirties) a writable second-stage mapping.
        if let Ok((page, index)) = self.locate(table, index, Access::Write) {
            self.host.set_entry_bits(page, index, bits);
        }
    }
}

/// Both stages of a nested translation. Faults carry the address they
/// concern: the IOVA for first-stage faults, the guest-physical address for
/// a second-stage fault on the final address.
pub(super) fn walk_nested(
    host: HostTableReader<'_>,
    (s1_root, s1_format): (PhysAddr, PtFormat),
    stage2: SecondStage,
    iova: u64,
    access: Access,
) -> Result<Translation, (FaultReason, u64)> {
    let guest = GuestTableReader { host, stage2 };
    let s1 = walk(&guest, s1_format, s1_root, iova, access, false)
        .map_err(|f| (fault_reason(f, Stage::NestedFirst), iova))?;
    let s2 = stage2
        .walk(&host, s1.phys, access)
        .map_err(|f| (fault_reason(f, Stage::Second), s1.phys))?;
    Ok(Translation {
        phys: s2.phys,
        page_size: s1.page_size.min(s2.page_size),
        prot: s1.prot & s2.prot,
    })
}
