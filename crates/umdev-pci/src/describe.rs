//! A text rendering of the platform: IOMMU units, the PCI tree in the
//! style of `lspci -tv` with groups and drivers, the groups, the drivers.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::bdf::Bdf;
use crate::info::FunctionInfo;
use crate::platform::Platform;

impl Platform {
    /// Renders the platform for `umdev platform show`.
    pub fn describe(&self) -> String {
        let infos: Vec<FunctionInfo> = self
            .functions()
            .into_iter()
            .filter_map(|b| self.function(b))
            .collect();
        let mut out = String::new();
        let _ = writeln!(out, "platform {}", self.origin());
        for u in self.iommu_units() {
            let sizes: Vec<String> = (0..64)
                .filter(|b| u.pgsize_bitmap & (1u64 << b) != 0)
                .map(|b| human_size(1u64 << b))
                .collect();
            let mode = if u.pasid_bits > 0 {
                "scalable"
            } else {
                "legacy"
            };
            let _ = writeln!(
                out,
                "iommu {}: segments {:?}, {mode} mode, address widths {:?}, PASID {} bits, pages {}{}{}, fault log {}",
                u.name,
                u.segments,
                u.address_widths,
                u.pasid_bits,
                sizes.join("|"),
                if u.nesting { ", nesting" } else { "" },
                if u.dirty_tracking {
                    ", dirty tracking"
                } else {
                    ""
                },
                u.fault_log_size,
            );
        }
        out.push_str("\nPCI tree:\n");
        // Children of each bus, by (segment, bus); VFs on a virtual bus
        // are shown on their PF's bus.
        let mut by_bus: BTreeMap<(u16, u8), Vec<&FunctionInfo>> = BTreeMap::new();
        for i in &infos {
            let bus = i.physfn.map_or(i.bdf.bus(), |pf| pf.bus());
            by_bus.entry((i.bdf.segment(), bus)).or_default().push(i);
        }
        for i in infos.iter().filter(|i| i.upstream_bridge.is_none()) {
            render(&mut out, i, &by_bus, "", true, true);
        }
        out.push_str("\nIOMMU groups:\n");
        for (g, members) in self.iommu_groups() {
            let list: Vec<String> = members.iter().map(Bdf::to_string).collect();
            let _ = writeln!(out, "  {g:>3}: {}", list.join(" "));
        }
        out.push_str("\nDrivers:\n");
        for d in self.drivers() {
            let bound: Vec<String> = infos
                .iter()
                .filter(|i| i.driver.as_deref() == Some(d.name.as_str()))
                .map(|i| i.bdf.to_string())
                .collect();
            let _ = writeln!(
                out,
                "  {:<14} {:<20} {}{}",
                d.name,
                if d.driver_managed_dma {
                    "driver_managed_dma"
                } else {
                    "DMA API"
                },
                if bound.is_empty() {
                    "-".to_owned()
                } else {
                    bound.join(" ")
                },
                if d.sriov_configure {
                    "  (sriov_configure)"
                } else {
                    ""
                },
            );
        }
        out
    }
}

fn render(
    out: &mut String,
    i: &FunctionInfo,
    by_bus: &BTreeMap<(u16, u8), Vec<&FunctionInfo>>,
    prefix: &str,
    last: bool,
    top: bool,
) {
    let branch = match (top, last) {
        (true, _) => "",
        (false, true) => "\\- ",
        (false, false) => "+- ",
    };
    let _ = writeln!(out, "  {prefix}{branch}{}", line(i));
    let Some((secondary, _)) = i.buses() else {
        return;
    };
    let children = by_bus
        .get(&(i.bdf.segment(), secondary))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let child_prefix = match (top, last) {
        (true, _) => prefix.to_owned(),
        (false, true) => format!("{prefix}   "),
        (false, false) => format!("{prefix}|  "),
    };
    for (n, c) in children.iter().enumerate() {
        render(
            out,
            c,
            by_bus,
            &child_prefix,
            n + 1 == children.len(),
            false,
        );
    }
}

fn line(i: &FunctionInfo) -> String {
    let mut s = format!(
        "{} [{:04x}:{:04x}] {:06x} {}",
        i.bdf,
        i.vendor,
        i.device,
        i.class,
        i.kind.name()
    );
    if let Some(pf) = i.physfn {
        let _ = write!(s, " (VF of {pf})");
    }
    if let Some((sec, sub)) = i.buses() {
        let _ = write!(s, " [bus {sec:02x}-{sub:02x}]");
    }
    let mut tags = Vec::new();
    if i.multifunction {
        tags.push("multifunction".to_owned());
    }
    if let Some((cap, ctrl)) = i.acs_regs {
        tags.push(format!("ACS {cap:#04x}/{ctrl:#04x}"));
    }
    if let Some(p) = i.pasid {
        tags.push(format!("PASID {}", p.max_width));
    }
    if let Some(s) = &i.sriov {
        tags.push(format!("SR-IOV {}/{}", i.num_vfs, s.total_vfs));
    }
    if !i.dma_aliases.is_empty() {
        tags.push("DMA alias".to_owned());
    }
    if !tags.is_empty() {
        let _ = write!(s, " <{}>", tags.join(", "));
    }
    match i.iommu_group {
        Some(g) => {
            let _ = write!(s, " group {g}");
        }
        None => s.push_str(" no-iommu"),
    }
    let _ = write!(s, " driver {}", i.driver.as_deref().unwrap_or("-"));
    s
}

fn human_size(v: u64) -> String {
    match v.trailing_zeros() {
        30.. => format!("{}G", v >> 30),
        20.. => format!("{}M", v >> 20),
        10.. => format!("{}K", v >> 10),
        _ => v.to_string(),
    }
}
