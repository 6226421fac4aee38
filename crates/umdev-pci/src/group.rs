//! IOMMU grouping, as Linux `pci_device_group` (drivers/iommu/iommu.c)
//! computes it when a device is probed, with the ACS helpers of
//! drivers/pci/pci.c. This follows the mainline algorithm with
//! `REQ_ACS_FLAGS` (the proposed `PCI_ACS_ISOLATED` rework is not modelled).
//!
//! Groups only ever form from groups that already exist: a device probed
//! later joins the group of an earlier device it cannot be isolated from,
//! or gets a new group. The platform probes devices in address order at
//! start (Linux's device-list order) and VFs as they appear.

use std::sync::Arc;

use crate::Bdf;
use crate::function::Function;
use crate::regs::*;
use crate::topology::Topology;

/// ACS features that isolate a function from its peers
/// (drivers/iommu/iommu.c `REQ_ACS_FLAGS`).
pub const REQ_ACS_FLAGS: u16 = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

/// drivers/pci/pci.c `pci_acs_flags_enabled`: features missing from the
/// capability register count as hard-wired on, except egress control.
fn pci_acs_flags_enabled(f: &Function, flags: u16) -> bool {
    let Some((cap, ctrl)) = f.acs_regs() else {
        return false;
    };
    let flags = flags & (cap | PCI_ACS_EC);
    ctrl & flags == flags
}

/// drivers/pci/pci.c `pci_acs_enabled` (no device-specific quirks).
pub(crate) fn pci_acs_enabled(f: &Function, flags: u16) -> bool {
    // Conventional PCI never isolates: every device on the bus sees DMA.
    let Some(pcie_type) = f.spec.pcie_type() else {
        return false;
    };
    match pcie_type {
        PCI_EXP_TYPE_PCIE_BRIDGE | PCI_EXP_TYPE_PCI_BRIDGE | PCI_EXP_TYPE_RC_EC => false,
        PCI_EXP_TYPE_DOWNSTREAM | PCI_EXP_TYPE_ROOT_PORT => pci_acs_flags_enabled(f, flags),
        PCI_EXP_TYPE_ENDPOINT
        | PCI_EXP_TYPE_UPSTREAM
        | PCI_EXP_TYPE_LEG_END
        | PCI_EXP_TYPE_RC_END
            if f.spec.multifunction =>
        {
            pci_acs_flags_enabled(f, flags)
        }
        // PCIe 3.0 §6.12.1.3: ACS does not apply to single-function
        // devices other than downstream ports.
        _ => true,
    }
}

/// Grouping queries over one topology snapshot.
struct Grouping<'a> {
    topo: &'a Topology,
}

impl Grouping<'_> {
    fn dev(&self, bdf: Bdf) -> &Function {
        self.topo
            .get(bdf)
            .expect("grouping only visits present functions")
    }

    /// drivers/pci/pci.c `pci_acs_path_enabled(start, NULL, flags)`: ACS on
    /// `start` and every bridge above it up to the root bus.
    fn acs_path_enabled(&self, start: Bdf) -> bool {
        let mut pdev = start;
        loop {
            let f = self.dev(pdev);
            if !pci_acs_enabled(f, REQ_ACS_FLAGS) {
                return false;
            }
            match f.spec.upstream_bridge {
                None => return true,
                Some(parent) => pdev = parent,
            }
        }
    }

    /// drivers/pci/search.c `pci_for_each_dma_alias` feeding
    /// `get_pci_alias_or_group`: returns the group found, or the last device
    /// the walk reported (the point of minimum IOMMU granularity).
    fn alias_or_group(&self, bdf: Bdf) -> Result<u32, Bdf> {
        let mut last = bdf;
        // The device itself and its quirk aliases (not yet grouped: it is
        // the device being probed).
        if let Some(g) = self.topo.group(bdf) {
            return Ok(g);
        }
        let mut bridge = self.dev(bdf).spec.upstream_bridge;
        while let Some(tmp) = bridge {
            let f = self.dev(tmp);
            match f.spec.pcie_type() {
                Some(PCI_EXP_TYPE_ROOT_PORT | PCI_EXP_TYPE_UPSTREAM | PCI_EXP_TYPE_DOWNSTREAM) => {}
                // PCIe-to-PCI bridges take ownership of downstream
                // transactions (alias: secondary bus, devfn 0); reported
                // against the bridge. Conventional bridges use their own RID.
                _ => {
                    last = tmp;
                    if let Some(g) = self.topo.group(tmp) {
                        return Ok(g);
                    }
                }
            }
            bridge = f.spec.upstream_bridge;
        }
        Err(last)
    }

    /// drivers/pci/search.c `pci_devs_are_dma_aliases`.
    fn are_dma_aliases(&self, a: &Function, b: &Function) -> bool {
        a.spec.dma_aliases.contains(&b.spec.bdf.devfn())
            || b.spec.dma_aliases.contains(&a.spec.bdf.devfn())
    }

    fn same_bus(a: Bdf, b: Bdf) -> bool {
        a.segment() == b.segment() && a.bus() == b.bus()
    }

    /// drivers/iommu/iommu.c `get_pci_alias_group`.
    fn alias_group(&self, pdev: Bdf, devfns: &mut [bool; 256]) -> Option<u32> {
        let slot = &mut devfns[usize::from(pdev.devfn())];
        if *slot {
            return None;
        }
        *slot = true;
        if let Some(g) = self.topo.group(pdev) {
            return Some(g);
        }
        let me = self.dev(pdev);
        for tmp in self.topo.iter() {
            let t = tmp.spec.bdf;
            if t == pdev || !Self::same_bus(t, pdev) || !self.are_dma_aliases(me, tmp) {
                continue;
            }
            if let Some(g) = self.alias_group(t, devfns) {
                return Some(g);
            }
            if let Some(g) = self.function_alias_group(t, devfns) {
                return Some(g);
            }
        }
        None
    }

    /// drivers/iommu/iommu.c `get_pci_function_alias_group`: functions of a
    /// multifunction device without ACS share a group.
    fn function_alias_group(&self, pdev: Bdf, devfns: &mut [bool; 256]) -> Option<u32> {
        let me = self.dev(pdev);
        if !me.spec.multifunction || pci_acs_enabled(me, REQ_ACS_FLAGS) {
            return None;
        }
        for tmp in self.topo.iter() {
            let t = tmp.spec.bdf;
            if t == pdev
                || !Self::same_bus(t, pdev)
                || t.device() != pdev.device()
                || pci_acs_enabled(tmp, REQ_ACS_FLAGS)
            {
                continue;
            }
            if let Some(g) = self.alias_group(t, devfns) {
                return Some(g);
            }
        }
        None
    }
}

/// drivers/iommu/iommu.c `pci_device_group` for the function at `bdf`,
/// already present in `topo` but not yet grouped: the existing group it
/// must join, or `None` when it gets a new one.
fn pci_device_group(topo: &Topology, bdf: Bdf) -> Option<u32> {
    let g = Grouping { topo };
    // The upstream DMA alias: a device must not be aliased due to topology
    // to have its own group.
    let mut pdev = match g.alias_or_group(bdf) {
        Ok(group) => return Some(group),
        Err(pdev) => pdev,
    };
    // Continue upstream until devices are protected from peer-to-peer DMA
    // by ACS.
    let mut bridge = g.dev(pdev).spec.upstream_bridge;
    while let Some(up) = bridge {
        if g.acs_path_enabled(up) {
            break;
        }
        pdev = up;
        if let Some(group) = topo.group(pdev) {
            return Some(group);
        }
        bridge = g.dev(pdev).spec.upstream_bridge;
    }
    let mut devfns = [false; 256];
    g.alias_group(pdev, &mut devfns)
        .or_else(|| g.function_alias_group(pdev, &mut devfns))
}

/// drivers/iommu/iommu.c `iommu_probe_device` → `pci_device_group`: adds
/// the function to `topo` and, when an IOMMU covers its segment, places it
/// in the group of a device it cannot be isolated from or in the lowest
/// free number.
pub(crate) fn iommu_probe_device(topo: &mut Topology, f: Function) -> (Arc<Function>, Option<u32>) {
    let f = topo.insert(f);
    let bdf = f.spec.bdf;
    if !topo.translates(bdf.segment()) {
        return (f, None);
    }
    let existing = pci_device_group(topo, bdf);
    (f, Some(topo.join(bdf, existing)))
}
