//! Snapshots of functions handed out by platform queries.

use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;

use crate::caps::CapInfo;
use crate::spec::FunctionSpec;

/// A snapshot of one function: its description (Linux `struct pci_dev`'s
/// fixed part, which the snapshot dereferences to) and its live state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionInfo {
    /// The description the platform keeps for the function.
    #[serde(flatten)]
    pub spec: Arc<FunctionSpec>,
    /// Capabilities in list order.
    pub capabilities: Vec<CapInfo>,
    /// Live ACS (capability, control) registers.
    pub acs_regs: Option<(u16, u16)>,
    /// PFs: VFs currently enabled (`pci_num_vf`).
    pub num_vfs: u16,
    /// IOMMU group number, `None` when no IOMMU covers the segment.
    pub iommu_group: Option<u32>,
    /// Bound driver.
    pub driver: Option<String>,
    /// `driver_override`.
    pub driver_override: Option<String>,
}

impl Deref for FunctionInfo {
    type Target = FunctionSpec;

    fn deref(&self) -> &FunctionSpec {
        &self.spec
    }
}

impl FunctionInfo {
    /// Offset of standard capability `id` (`pci_find_capability`).
    pub fn capability(&self, id: u8) -> Option<u16> {
        self.find_cap(u16::from(id), false)
    }

    /// Offset of extended capability `id` (`pci_find_ext_capability`).
    pub fn ext_capability(&self, id: u16) -> Option<u16> {
        self.find_cap(id, true)
    }

    fn find_cap(&self, id: u16, extended: bool) -> Option<u16> {
        self.capabilities
            .iter()
            .find(|c| c.extended == extended && c.id == id)
            .map(|c| c.offset)
    }
}
