//! Plain data the unit's users exchange with it: configuration, PASID-entry
//! programming requests, fault records.

use umdev_pci::Bdf;

use crate::memory::PhysAddr;
use crate::pgtable::Access;

/// The PASID a request without a PASID TLP prefix is translated with
/// (Linux `IOMMU_NO_PASID`; scalable-mode RID_PASID is programmed as 0).
pub const IOMMU_NO_PASID: u32 = 0;

/// VT-d domain identifier (16 bits; 0 and 1 are reserved, see
/// kernel-semantics §5.1).
pub type DomainId = u16;

/// Flags of a user (guest) first-level table in a nested entry
/// (struct iommu_hwpt_vtd_s1 flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct S1Flags {
    /// Supervisor requests enabled (SRE).
    pub sre: bool,
    /// Extended accessed flag enabled (EAFE).
    pub eafe: bool,
    /// Write-protect enable (WPE).
    pub wpe: bool,
}

/// What to program into a scalable-mode PASID-table entry; the PGTT follows
/// from the variant (VT-d spec §9.6: 1 first-stage, 2 second-stage,
/// 3 nested, 4 pass-through).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PasidEntry {
    /// PGTT 1: a host-owned first-level table.
    FirstLevel {
        /// Domain id tagging IOTLB entries.
        did: DomainId,
        /// Host-physical address of the top-level table.
        root: PhysAddr,
        /// 4 or 5.
        levels: u8,
    },
    /// PGTT 2: a second-level table.
    SecondLevel {
        /// Domain id tagging IOTLB entries.
        did: DomainId,
        /// Host-physical address of the top-level table.
        root: PhysAddr,
        /// 3, 4 or 5.
        levels: u8,
        /// SSADE: hardware sets second-stage dirty bits.
        dirty_tracking: bool,
    },
    /// PGTT 3: a guest first-level table translated through a second level.
    Nested {
        /// Domain id tagging IOTLB entries.
        did: DomainId,
        /// Guest-physical address of the guest's top-level table.
        s1_root: PhysAddr,
        /// 4 or 5.
        s1_levels: u8,
        /// SRE / WPE / EAFE from the user.
        s1_flags: S1Flags,
        /// Host-physical address of the parent second-level table.
        s2_root: PhysAddr,
        /// Levels of the parent table.
        s2_levels: u8,
        /// SSADE on the parent.
        dirty_tracking: bool,
    },
    /// PGTT 4: untranslated (identity) DMA.
    PassThrough {
        /// Domain id (Linux uses FLPT_DEFAULT_DID = 1).
        did: DomainId,
    },
}

impl PasidEntry {
    /// The domain id this entry tags its translations with.
    pub fn did(&self) -> DomainId {
        match *self {
            PasidEntry::FirstLevel { did, .. }
            | PasidEntry::SecondLevel { did, .. }
            | PasidEntry::Nested { did, .. }
            | PasidEntry::PassThrough { did } => did,
        }
    }
}

/// Why a DMA request faulted (VT-d fault reasons, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// No present context entry for the requester.
    ContextNotPresent,
    /// The PASID is above the unit's or the context's PASID range.
    PasidOutOfRange,
    /// No present PASID entry for (requester, PASID): a blocked device.
    PasidNotPresent,
    /// A request with a PASID from a requester whose context entry does
    /// not enable PASIDs (PASIDE clear).
    PasidDisabled,
    /// The address is outside the table's input width.
    OutOfAperture,
    /// A first-level (or the only) translation has no present entry.
    FirstLevelNotPresent {
        /// Level of the missing entry.
        level: u8,
    },
    /// The second level has no entry (in a nested walk: for the final GPA
    /// or for one of the guest's table addresses).
    SecondLevelNotPresent {
        /// Level of the missing entry.
        level: u8,
    },
    /// Reading a guest first-level table through the second level failed.
    NestedTableRead {
        /// The guest-physical table address.
        gpa: PhysAddr,
    },
    /// The mapping exists but does not allow the access.
    Permission,
    /// An entry has reserved bits set.
    Reserved,
    /// The translated host-physical range is not backed by memory.
    Unbacked,
}

/// One entry of a unit's fault log (a VT-d fault recording register).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// The requester.
    pub requester: Bdf,
    /// PASID of the request, if it had one.
    pub pasid: Option<u32>,
    /// The faulting input address (IOVA, or GPA for a nested S2 fault).
    pub addr: u64,
    /// Read or write.
    pub access: Access,
    /// What went wrong.
    pub reason: FaultReason,
    /// Domain id of the PASID entry, when one was found.
    pub did: Option<DomainId>,
}

/// Receives faults for one domain id; the domain's owner registers it
/// (Linux `iommu_set_fault_handler` / the iommufd fault queue).
pub trait FaultHandler: Send + Sync {
    /// Called on the faulting DMA's thread, after the record is logged.
    fn report(&self, fault: &FaultRecord);
}
