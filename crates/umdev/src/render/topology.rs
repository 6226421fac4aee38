//! `umdev topology`: the PCI tree with drivers, groups and mdevs, then
//! the IOMMU groups with their domains and PASIDs, then the consumers.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::list::groups;
use super::table::{Table, opt};
use crate::views::{Function, MdevInfo, Topology};

fn function_line(f: &Function) -> String {
    let mut line = format!("{} [{}] {}", f.bdf, f.ids, f.kind);
    let _ = write!(line, " driver={}", opt(f.driver.as_deref()));
    if let Some(o) = &f.driver_override {
        let _ = write!(line, " override={o}");
    }
    if let Some(g) = f.iommu_group {
        let _ = write!(line, " group={g}");
    }
    if let Some((n, total)) = f.sriov {
        let _ = write!(line, " vfs={n}/{total}");
    }
    line
}

fn tree(
    out: &mut String,
    at: Option<&str>,
    depth: usize,
    children: &BTreeMap<Option<&str>, Vec<&Function>>,
    mdevs: &BTreeMap<&str, Vec<&MdevInfo>>,
) {
    for f in children.get(&at).into_iter().flatten() {
        let _ = writeln!(out, "{}{}", "  ".repeat(depth + 1), function_line(f));
        for m in mdevs.get(f.bdf.as_str()).into_iter().flatten() {
            let _ = writeln!(
                out,
                "{}mdev {} {} group={}",
                "  ".repeat(depth + 2),
                m.uuid,
                m.mdev_type,
                m.iommu_group
            );
        }
        tree(out, Some(&f.bdf), depth + 1, children, mdevs);
    }
}

/// The whole topology as indented text and tables.
pub fn text(view: &Topology) -> String {
    let mut out = String::from("IOMMU units:\n");
    for u in &view.units {
        let _ = writeln!(
            out,
            "  {} segments={:?} pasid_bits={}",
            u.name, u.segments, u.pasid_bits
        );
    }
    let mut children: BTreeMap<Option<&str>, Vec<&Function>> = BTreeMap::new();
    for f in &view.functions {
        children.entry(f.upstream.as_deref()).or_default().push(f);
    }
    let mut by_parent: BTreeMap<&str, Vec<&MdevInfo>> = BTreeMap::new();
    for m in &view.mdevs {
        by_parent.entry(m.parent.as_str()).or_default().push(m);
    }
    out.push_str("\nPCI tree:\n");
    tree(&mut out, None, 0, &children, &by_parent);
    let pci: Vec<&str> = view.functions.iter().map(|f| f.bdf.as_str()).collect();
    for (parent, mdevs) in by_parent.iter().filter(|(p, _)| !pci.contains(p)) {
        let _ = writeln!(out, "  {parent} (virtual)");
        for m in mdevs {
            let _ = writeln!(
                out,
                "    mdev {} {} group={}",
                m.uuid, m.mdev_type, m.iommu_group
            );
        }
    }
    out.push_str("\nIOMMU groups:\n");
    out.push_str(&groups(&view.groups));
    out.push_str("\nconsumers:\n");
    let mut t = Table::new(&["DEVICE", "KIND", "ATTACHED", "DEVID", "SOCKET"]);
    for d in &view.devices {
        t.row(vec![
            d.name.clone(),
            d.kind.clone(),
            if d.attached { "yes" } else { "no" }.to_owned(),
            opt(d.consumer_devid),
            opt(d.socket.as_deref()),
        ]);
    }
    out.push_str(&t.render("  (no servable device)"));
    out
}
