//! Snapshots of functions and drivers handed out by platform queries.

use serde::{Serialize, Serializer};

use crate::Bdf;
use crate::caps::CapInfo;
use crate::driver::{DriverEntry, PciDeviceId};
use crate::function::Function;
use crate::regs::*;
use crate::spec::FunctionKind;

/// One IOMMU unit of the platform file.
///
/// A unit with `pasid_bits > 0` runs in scalable mode (PASID tables,
/// first- and second-level translation); with 0 in legacy mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IommuUnitSpec {
    /// Unit name, e.g. `dmar0`.
    pub name: String,
    /// PCI segments it translates for.
    pub segments: Vec<u16>,
    /// Supported input address widths in bits.
    pub address_widths: Vec<u32>,
    /// PASID width in bits (0: no PASID support).
    pub pasid_bits: u8,
    /// Supported page sizes, one bit per size (bit 12 = 4K).
    pub pgsize_bitmap: u64,
    /// Nested translation supported.
    pub nesting: bool,
    /// Dirty tracking supported.
    pub dirty_tracking: bool,
    /// Entries of the fault log.
    pub fault_log_size: usize,
}

/// A memory BAR as the device decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BarInfo {
    /// BAR register number.
    pub index: u8,
    /// Size in bytes.
    pub size: u64,
    /// 64-bit BAR.
    pub mem64: bool,
    /// Prefetchable.
    pub prefetchable: bool,
}

/// The PASID capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PasidInfo {
    /// Max PASID width in bits.
    pub max_width: u8,
    /// Execute permission supported.
    pub exec: bool,
    /// Privileged mode supported.
    pub privileged: bool,
}

/// The SR-IOV capability of a PF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SriovInfo {
    /// TotalVFs.
    pub total_vfs: u16,
    /// VFs currently enabled.
    pub num_vfs: u16,
    /// VF device ID.
    pub vf_device: u16,
    /// First VF offset.
    pub first_vf_offset: u16,
    /// VF stride.
    pub vf_stride: u16,
}

/// A snapshot of one function (the `struct pci_dev` view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionInfo {
    /// Address.
    #[serde(serialize_with = "bdf_str")]
    pub bdf: Bdf,
    /// Kind (VFs are endpoints with `physfn` set).
    pub kind: FunctionKind,
    /// Vendor ID (a VF's is its PF's; the VF's register reads 0xffff).
    pub vendor: u16,
    /// Device ID (a VF's is the PF's VF device ID).
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem device ID.
    pub subsystem_device: u16,
    /// 24-bit class code.
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// Header layout: 0 (normal) or 1 (bridge).
    pub header_type: u8,
    /// Header type bit 7.
    pub multifunction: bool,
    /// PCIe device/port type, `None` for conventional PCI.
    pub pcie_type: Option<u8>,
    /// `pci_upstream_bridge`.
    #[serde(serialize_with = "opt_bdf_str")]
    pub upstream_bridge: Option<Bdf>,
    /// Bridges: (secondary, subordinate) bus numbers.
    pub buses: Option<(u8, u8)>,
    /// Memory BARs.
    pub bars: Vec<BarInfo>,
    /// Capabilities in list order.
    pub capabilities: Vec<CapInfo>,
    /// Live ACS (capability, control) registers.
    pub acs: Option<(u16, u16)>,
    /// PASID capability.
    pub pasid: Option<PasidInfo>,
    /// ATS capability present.
    pub ats: bool,
    /// PRI capability present.
    pub pri: bool,
    /// SR-IOV capability (PFs).
    pub sriov: Option<SriovInfo>,
    /// VFs: the PF.
    #[serde(serialize_with = "opt_bdf_str")]
    pub physfn: Option<Bdf>,
    /// Quirk DMA alias devfns.
    pub dma_aliases: Vec<u8>,
    /// IOMMU group number, `None` when no IOMMU covers the segment.
    pub iommu_group: Option<u32>,
    /// Bound driver.
    pub driver: Option<String>,
    /// `driver_override`.
    pub driver_override: Option<String>,
    /// Start-up driver from the platform file.
    pub startup_driver: Option<String>,
}

impl FunctionInfo {
    /// Whether this is an SR-IOV VF (`pdev->is_virtfn`).
    pub fn is_virtfn(&self) -> bool {
        self.physfn.is_some()
    }

    /// Whether this is an SR-IOV PF (`pdev->is_physfn`).
    pub fn is_physfn(&self) -> bool {
        self.sriov.is_some()
    }

    /// Requester ID.
    pub fn rid(&self) -> u16 {
        self.bdf.rid()
    }

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

    pub(crate) fn new(f: &Function, group: Option<u32>) -> Self {
        let d = &f.desc;
        let state = f.state.lock();
        let num_vfs = state.vfs.len() as u16;
        let driver = state.driver.as_ref().map(|e| e.name.clone());
        let driver_override = state.driver_override.clone();
        drop(state);
        Self {
            bdf: d.bdf,
            kind: d.kind,
            vendor: d.vendor,
            device: d.device,
            subsystem_vendor: d.subsystem_vendor,
            subsystem_device: d.subsystem_device,
            class: d.class,
            revision: d.revision,
            header_type: if d.is_bridge() {
                PCI_HEADER_TYPE_BRIDGE
            } else {
                PCI_HEADER_TYPE_NORMAL
            },
            multifunction: d.multifunction,
            pcie_type: d.pcie_type(),
            upstream_bridge: d.upstream_bridge,
            buses: d.buses,
            bars: d
                .bars
                .iter()
                .map(|b| BarInfo {
                    index: b.index,
                    size: b.size.0,
                    mem64: b.mem64,
                    prefetchable: b.prefetchable,
                })
                .collect(),
            capabilities: f.caps.clone(),
            acs: f.acs_regs(),
            pasid: d.pasid.map(|p| PasidInfo {
                max_width: p.max_width,
                exec: p.exec,
                privileged: p.privileged,
            }),
            ats: d.ats.is_some(),
            pri: d.pri.is_some(),
            sriov: d.sriov.as_ref().map(|s| SriovInfo {
                total_vfs: s.total_vfs,
                num_vfs,
                vf_device: s.vf_device,
                first_vf_offset: s.first_vf_offset,
                vf_stride: s.vf_stride,
            }),
            physfn: d.physfn,
            dma_aliases: d.dma_aliases.clone(),
            iommu_group: group,
            driver,
            driver_override,
            startup_driver: d.startup_driver.clone(),
        }
    }
}

/// A registered driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    /// Name.
    pub name: String,
    /// Whether binding it leaves DMA ownership alone (`driver_managed_dma`).
    pub driver_managed_dma: bool,
    /// Declared in the platform file rather than registered in code.
    pub builtin: bool,
    /// Static id table.
    pub ids: Vec<PciDeviceId>,
    /// Ids added with `new_id`.
    pub dynamic_ids: Vec<PciDeviceId>,
    /// Whether it implements `sriov_configure`.
    pub sriov_configure: bool,
}

impl DriverInfo {
    pub(crate) fn new(e: &DriverEntry) -> Self {
        Self {
            name: e.name.clone(),
            driver_managed_dma: e.managed_dma,
            builtin: e.builtin,
            ids: e.ids.clone(),
            dynamic_ids: e.dynids.lock().clone(),
            sriov_configure: e.driver.sriov_configure().is_some(),
        }
    }
}

/// Addresses serialize as `ssss:bb:dd.f`.
fn bdf_str<S: Serializer>(b: &Bdf, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(b)
}

fn opt_bdf_str<S: Serializer>(b: &Option<Bdf>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.collect_str(b),
        None => s.serialize_none(),
    }
}
