//! `umdev topology --dot`: the topology as a Graphviz digraph. IOMMU
//! groups are clusters around their functions, labelled with their state;
//! domains other than the default ones are nodes the groups (RID) and
//! PASIDs point at; mdevs hang off their parents with a
//! dashed edge to the function whose requester ID their DMA carries;
//! attached consumers hang off the devices they use.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::views::Topology;

/// A quoted DOT id.
fn q(id: &str) -> String {
    format!("\"{}\"", id.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The topology as a `digraph`.
pub fn dot(view: &Topology) -> String {
    let mut out =
        String::from("digraph umdev {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
    for u in &view.units {
        let _ = writeln!(
            out,
            "  {} [shape=box3d, label={}];",
            q(&u.name),
            q(&format!("{} (VT-d)", u.name))
        );
    }
    for g in view.groups.iter().filter(|g| g.kind == "platform") {
        let _ = writeln!(
            out,
            "  subgraph \"cluster_group{}\" {{\n    label=\"group {} ({})\"; style=dashed;",
            g.id, g.id, g.state
        );
        for d in &g.devices {
            let _ = writeln!(out, "    {};", q(d));
        }
        out.push_str("  }\n");
    }
    for f in &view.functions {
        let label = format!(
            "{}\\n{} {}\\n{}",
            f.bdf,
            f.ids,
            f.kind,
            f.driver.as_deref().unwrap_or("(no driver)")
        );
        let _ = writeln!(
            out,
            "  {} [shape=box, label=\"{}\"];",
            q(&f.bdf),
            label.replace('"', "'")
        );
        match &f.upstream {
            Some(up) => {
                let _ = writeln!(out, "  {} -> {};", q(up), q(&f.bdf));
            }
            // Root-bus functions sit behind the units of their segment.
            None => {
                for u in &view.units {
                    let _ = writeln!(out, "  {} -> {} [style=dotted];", q(&u.name), q(&f.bdf));
                }
            }
        }
    }
    let mut domains = BTreeSet::new();
    // Groups in their default domain say so in their label; only the
    // others point at the domain they are attached to.
    for g in view.groups.iter().filter(|g| g.kind == "platform") {
        if let (Some(d), Some(first), false) = (g.domain, g.devices.first(), g.state == "default") {
            domains.insert(d);
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"RID\", style=dotted];",
                q(first),
                q(&format!("domain {d}"))
            );
        }
        for p in &g.pasids {
            domains.insert(p.domain);
            if let Some(first) = g.devices.first() {
                let _ = writeln!(
                    out,
                    "  {} -> {} [label=\"PASID {}\", style=dotted];",
                    q(first),
                    q(&format!("domain {}", p.domain)),
                    p.pasid
                );
            }
        }
    }
    for m in &view.mdevs {
        if let Some(d) = m.domain {
            domains.insert(d);
            let _ = writeln!(
                out,
                "  {} -> {} [style=dotted];",
                q(&m.uuid),
                q(&format!("domain {d}"))
            );
        }
    }
    for d in domains {
        let _ = writeln!(out, "  {} [shape=cylinder];", q(&format!("domain {d}")));
    }
    let pci: BTreeSet<&str> = view.functions.iter().map(|f| f.bdf.as_str()).collect();
    let virtual_parents: BTreeSet<&str> = view
        .mdevs
        .iter()
        .map(|m| m.parent.as_str())
        .filter(|p| !pci.contains(p))
        .collect();
    for p in virtual_parents {
        let _ = writeln!(
            out,
            "  {} [shape=box, style=rounded, label={}];",
            q(p),
            q(&format!("{p} (virtual)"))
        );
    }
    for m in &view.mdevs {
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, label=\"mdev {}\\n{}\\ngroup {}\"];",
            q(&m.uuid),
            m.uuid,
            m.mdev_type,
            m.iommu_group
        );
        let _ = writeln!(out, "  {} -> {};", q(&m.parent), q(&m.uuid));
        if let Some(dev) = &m.iommu_device {
            let label = m.pasid.map_or("RID".to_owned(), |p| format!("PASID {p}"));
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed, label={}];",
                q(&m.uuid),
                q(dev),
                q(&label)
            );
        }
    }
    for d in view
        .devices
        .iter()
        .filter(|d| d.attached || d.consumer_devid.is_some())
    {
        let consumer = format!("consumer of {}", d.name);
        let _ = writeln!(out, "  {} [shape=house];", q(&consumer));
        let _ = writeln!(out, "  {} -> {};", q(&consumer), q(&d.name));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{Function, MdevInfo};

    #[test]
    fn edges_follow_the_tree_and_mdevs() {
        let view = Topology {
            functions: vec![
                Function {
                    bdf: "0000:00:01.0".into(),
                    upstream: None,
                    kind: "RootPort".into(),
                    ids: "8086:0001".into(),
                    driver: Some("pcieport".into()),
                    driver_override: None,
                    iommu_group: Some(0),
                    sriov: None,
                    physfn: None,
                },
                Function {
                    bdf: "0000:01:00.0".into(),
                    upstream: Some("0000:00:01.0".into()),
                    kind: "Endpoint".into(),
                    ids: "8086:0b25".into(),
                    driver: None,
                    driver_override: None,
                    iommu_group: Some(1),
                    sriov: None,
                    physfn: None,
                },
            ],
            mdevs: vec![MdevInfo {
                uuid: "u1".into(),
                parent: "0000:01:00.0".into(),
                mdev_type: "idxd-wq".into(),
                iommu_group: 20,
                iommu_device: Some("0000:01:00.0".into()),
                pasid: Some(3),
                domain: None,
                consumer_devid: None,
            }],
            ..Topology::default()
        };
        let text = dot(&view);
        assert!(text.starts_with("digraph umdev {"));
        assert!(text.contains("\"0000:00:01.0\" -> \"0000:01:00.0\";"));
        assert!(text.contains("\"0000:01:00.0\" -> \"u1\";"));
        assert!(text.contains("\"u1\" -> \"0000:01:00.0\" [style=dashed, label=\"PASID 3\"];"));
        assert!(text.trim_end().ends_with('}'));
    }
}
