//! `umdev platform show`: text and JSON views of a running system.

use std::fmt::Write;

use serde_json::{Value, json};
use umdev_iommu::system::System;

/// The platform's own rendering plus what only the IOMMU layer knows: unit
/// registers and each group's domain and owner.
pub fn text(system: &System) -> String {
    let mut out = system.platform.describe();
    out.push_str("\nIOMMU units (registers):\n");
    for unit in system.vtd.units() {
        let _ = writeln!(
            out,
            "  {}: CAP_REG {:#018x} ECAP_REG {:#018x}",
            unit.name(),
            unit.cap().0,
            unit.ecap().0
        );
    }
    out.push_str("\nIOMMU group state:\n");
    for g in system.iommu.group_infos() {
        let state = if g.domain == g.default_domain {
            "default domain"
        } else if g.domain == g.blocking_domain {
            "blocked"
        } else {
            "attached"
        };
        let owner = match g.owner {
            Some(o) => format!("owned by user (cookie {o})"),
            None if g.owner_cnt > 0 => format!("{} DMA-API driver(s)", g.owner_cnt),
            None => "unused".to_string(),
        };
        let _ = writeln!(
            out,
            "  group {}: {state}, {owner}, {} PASID(s) attached",
            g.id,
            g.pasids.len()
        );
    }
    out
}

/// Machine-readable form of the same information.
pub fn json(system: &System) -> Value {
    let platform = &system.platform;
    let functions: Vec<Value> = platform
        .functions()
        .into_iter()
        .filter_map(|b| platform.function(b))
        .map(|f| {
            json!({
                "bdf": f.bdf.to_string(),
                "kind": format!("{:?}", f.kind),
                "vendor": format!("{:04x}", f.vendor),
                "device": format!("{:04x}", f.device),
                "subsystem_vendor": format!("{:04x}", f.subsystem_vendor),
                "subsystem_device": format!("{:04x}", f.subsystem_device),
                "class": format!("{:06x}", f.class),
                "revision": f.revision,
                "multifunction": f.multifunction,
                "upstream_bridge": f.upstream_bridge.map(|b| b.to_string()),
                "pasid_width": f.pasid.map(|p| p.max_width),
                "sriov": f.sriov.as_ref().map(|s| json!({"total_vfs": s.total_vfs, "num_vfs": f.num_vfs})),
                "iommu_group": f.iommu_group,
                "driver": f.driver,
            })
        })
        .collect();
    let groups: Vec<Value> = system
        .iommu
        .group_infos()
        .into_iter()
        .map(|g| {
            json!({
                "id": g.id,
                "devices": g.devices.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "domain": g.domain,
                "default_domain": g.default_domain,
                "blocking_domain": g.blocking_domain,
                "owner": g.owner,
                "owner_cnt": g.owner_cnt,
                "pasids": g.pasids,
            })
        })
        .collect();
    let units: Vec<Value> = system
        .vtd
        .units()
        .iter()
        .map(|u| {
            let c = u.config();
            json!({
                "name": u.name(),
                "segments": c.segments,
                "address_widths": c.address_widths,
                "pasid_bits": c.pasid_bits,
                "pgsize_bitmap": c.pgsize_bitmap,
                "nesting": c.nesting,
                "dirty_tracking": c.dirty_tracking,
                "cap_reg": u.cap().0,
                "ecap_reg": u.ecap().0,
            })
        })
        .collect();
    let drivers: Vec<Value> = platform
        .drivers()
        .into_iter()
        .map(|d| json!({"name": d.name, "driver_managed_dma": d.driver_managed_dma}))
        .collect();
    json!({
        "platform": platform.origin(),
        "iommu_units": units,
        "functions": functions,
        "iommu_groups": groups,
        "drivers": drivers,
    })
}
