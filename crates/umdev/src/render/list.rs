//! `umdev list` and `umdev groups` as text.

use super::table::{Table, opt};
use crate::views::{Group, List};

/// Parents with their types, then mdevs, then served devices.
pub fn list(view: &List) -> String {
    let mut types = Table::new(&["PARENT", "TYPE", "NAME", "API", "AVAILABLE", "MDEVS"]);
    for p in &view.parents {
        for t in &p.types {
            types.row(vec![
                p.name.clone(),
                t.name.clone(),
                t.pretty_name.clone(),
                t.device_api.clone(),
                t.available_instances.to_string(),
                t.devices.len().to_string(),
            ]);
        }
    }
    let mut mdevs = Table::new(&["UUID", "PARENT", "TYPE", "GROUP", "IOMMU", "CONSUMER"]);
    for m in &view.mdevs {
        let iommu = match (&m.iommu_device, m.pasid) {
            (Some(d), Some(p)) => format!("{d} pasid {p}"),
            (Some(d), None) => d.clone(),
            (None, _) => "emulated".to_owned(),
        };
        mdevs.row(vec![
            m.uuid.clone(),
            m.parent.clone(),
            m.mdev_type.clone(),
            m.iommu_group.to_string(),
            iommu,
            opt(m.consumer_devid.map(|d| format!("devid {d}"))),
        ]);
    }
    let mut served = Table::new(&["DEVICE", "KIND", "ATTACHED", "SESSIONS", "SOCKET"]);
    for d in &view.devices {
        served.row(vec![
            d.name.clone(),
            d.kind.clone(),
            if d.attached { "yes" } else { "no" }.to_owned(),
            d.sessions.to_string(),
            opt(d.socket.as_deref()),
        ]);
    }
    format!(
        "mdev types:\n{}\nmdevs:\n{}\nserved devices:\n{}",
        types.render("  (no mdev parent)"),
        mdevs.render("  (none)"),
        served.render("  (none)")
    )
}

/// IOMMU groups: members, state, domain, owner, PASIDs.
pub fn groups(groups: &[Group]) -> String {
    let mut t = Table::new(&[
        "GROUP", "KIND", "STATE", "DOMAIN", "OWNER", "PASIDS", "DEVICES",
    ]);
    for g in groups {
        let owner = match (g.owner, g.owner_cnt) {
            (Some(cookie), n) => format!("user {cookie} ({n})"),
            (None, 0) => "-".to_owned(),
            (None, n) if g.kind == "mdev" => format!("consumer ({n})"),
            (None, n) => format!("{n} DMA-API driver(s)"),
        };
        let pasids = g
            .pasids
            .iter()
            .map(|p| format!("{}->d{}", p.pasid, p.domain))
            .collect::<Vec<_>>()
            .join(",");
        t.row(vec![
            g.id.to_string(),
            g.kind.clone(),
            g.state.clone(),
            opt(g.domain.map(|d| format!("d{d}"))),
            owner,
            if pasids.is_empty() {
                "-".to_owned()
            } else {
                pasids
            },
            g.devices.join(" "),
        ]);
    }
    t.render("(no IOMMU group)")
}
