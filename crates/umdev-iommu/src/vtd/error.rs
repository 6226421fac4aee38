//! Errors of programming a unit.

use rustix::io::Errno;
use umdev_pci::Bdf;

use crate::memory::MemoryError;

/// Why a unit refused a configuration or programming request.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// The unit description is not one this model can build.
    #[error("unit {unit}: {reason}")]
    BadConfig {
        /// Unit name.
        unit: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No unit translates the device's segment.
    #[error("no IOMMU unit translates {0}")]
    NotCovered(Bdf),
    /// The device has no context entry (not probed, or released).
    #[error("{0} has no context entry")]
    NoContext(Bdf),
    /// The device already has a context entry.
    #[error("{0} already has a context entry")]
    ContextExists(Bdf),
    /// The PASID is beyond the unit's width or the device's directory.
    #[error("PASID {pasid:#x} is out of range for {bdf}")]
    PasidRange {
        /// The device.
        bdf: Bdf,
        /// The PASID.
        pasid: u32,
    },
    /// Replacing a PASID entry that is not present.
    #[error("PASID entry {bdf}/{pasid:#x} is not present")]
    NotPresent {
        /// The device.
        bdf: Bdf,
        /// The PASID.
        pasid: u32,
    },
    /// The PASID entry is already present.
    #[error("PASID entry {bdf}/{pasid:#x} is already present")]
    Busy {
        /// The device.
        bdf: Bdf,
        /// The PASID.
        pasid: u32,
    },
    /// Every domain id is in use.
    #[error("no free domain id")]
    NoDomainId,
    /// No memory for a translation structure.
    #[error("cannot allocate a translation structure: {0}")]
    Memory(#[from] MemoryError),
}

impl UnitError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            // intel_pasid_replace_*: "if (!pasid_pte_is_present(pte))
            // ... return -EINVAL".
            UnitError::BadConfig { .. }
            | UnitError::PasidRange { .. }
            | UnitError::NotPresent { .. } => Errno::INVAL,
            // intel_iommu_probe_device: no DMAR unit for the device.
            UnitError::NotCovered(_) | UnitError::NoContext(_) => Errno::NODEV,
            UnitError::ContextExists(_) => Errno::EXIST,
            // drivers/iommu/intel/pasid.c intel_pasid_setup_*: "if
            // (pasid_pte_is_present(pte)) ... return -EBUSY".
            UnitError::Busy { .. } => Errno::BUSY,
            // domain_attach_iommu: ida_alloc_range fails with -ENOSPC.
            UnitError::NoDomainId => Errno::NOSPC,
            UnitError::Memory(e) => e.errno(),
        }
    }
}
