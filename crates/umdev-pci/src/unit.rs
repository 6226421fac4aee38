//! `[[iommu]]`: the description of one DMA remapping unit, from the
//! platform file to the IOMMU layer that builds the unit from it.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::spec::Size;

/// One IOMMU unit of the platform file, as the IOMMU layer builds it (its
/// CAP / ECAP registers follow from these fields).
///
/// A unit with `pasid_bits > 0` runs in scalable mode (PASID tables,
/// first- and second-level translation); with 0 in legacy mode.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IommuUnitSpec {
    /// Unit name, e.g. `dmar0`.
    pub name: String,
    /// PCI segments whose functions this unit translates.
    pub segments: Vec<u16>,
    /// Supported input address widths in bits: 48 and/or 57 (57 sets
    /// CAP.FL5LP and a 5-level SAGAW bit).
    pub address_widths: Vec<u32>,
    /// PASID width in bits (ECAP.PSS + 1); 20 on current hardware, 0 means
    /// no PASID support (legacy mode).
    #[serde(default)]
    pub pasid_bits: u8,
    /// Supported page sizes, one bit per size (bit 12 = 4K); the file lists
    /// them as `page_sizes = ["4K", "2M", "1G"]`.
    #[serde(rename(deserialize = "page_sizes"), deserialize_with = "pgsize_bitmap")]
    pub pgsize_bitmap: u64,
    /// Nested translation, a user stage 1 over a stage-2 parent (ECAP.NEST).
    #[serde(default)]
    pub nesting: bool,
    /// Second-stage access/dirty bits (ECAP.SLADS), for dirty tracking.
    #[serde(default)]
    pub dirty_tracking: bool,
    /// Supervisor requests (ECAP.SRS): a nested stage 1 may set SRE. Not
    /// read from the file: current VT-d hardware (and Linux's nested
    /// checks) have it.
    #[serde(skip, default = "current_hardware")]
    pub supervisor_requests: bool,
    /// Extended accessed flag (ECAP.EAFS): a nested stage 1 may set EAFE.
    /// Not read from the file, as `supervisor_requests`.
    #[serde(skip, default = "current_hardware")]
    pub extended_accessed: bool,
    /// Entries of the per-unit fault log; older records are dropped (and
    /// counted).
    #[serde(default = "default_fault_log_size")]
    pub fault_log_size: usize,
}

fn current_hardware() -> bool {
    true
}

fn default_fault_log_size() -> usize {
    256
}

/// `page_sizes` → `pgsize_bitmap`; each size a power of two of at least 4K.
fn pgsize_bitmap<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let mut bitmap = 0;
    for Size(size) in Vec::<Size>::deserialize(d)? {
        if !size.is_power_of_two() || size < 4096 {
            return Err(de::Error::custom(format!(
                "page size {size:#x} is not a power of two of at least 4K"
            )));
        }
        bitmap |= size;
    }
    Ok(bitmap)
}
