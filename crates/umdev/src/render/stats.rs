//! `umdev stats` and `umdev faults` as text.

use super::table::{Table, opt};
use crate::views::{Counters, Faults, Stats};

fn ratio(c: &Counters) -> String {
    opt(c.iotlb_hit_ratio.map(|r| format!("{:.1}%", r * 100.0)))
}

/// Per unit, then per device.
pub fn stats(view: &Stats) -> String {
    let mut units = Table::new(&[
        "UNIT",
        "DMA READ",
        "DMA WRITE",
        "IOTLB HIT",
        "HITS",
        "MISSES",
        "FAULTS",
        "INVAL",
    ]);
    for u in &view.units {
        let c = &u.counters;
        units.row(vec![
            u.name.clone(),
            c.dma_read_bytes.to_string(),
            c.dma_write_bytes.to_string(),
            ratio(c),
            c.iotlb_hits.to_string(),
            c.iotlb_misses.to_string(),
            c.faults.to_string(),
            u.iotlb_invalidations.to_string(),
        ]);
    }
    let mut devices = Table::new(&[
        "DEVICE",
        "REQUESTER",
        "DMA READ",
        "DMA WRITE",
        "IOTLB HIT",
        "FAULTS",
        "MAPS",
    ]);
    for d in &view.devices {
        let c = &d.counters;
        let requester = match (&d.requester, d.pasid) {
            (Some(r), Some(p)) => format!("{r} pasid {p}"),
            (Some(r), None) => r.clone(),
            (None, _) => "emulated".to_owned(),
        };
        devices.row(vec![
            d.name.clone(),
            requester,
            c.dma_read_bytes.to_string(),
            c.dma_write_bytes.to_string(),
            ratio(c),
            c.faults.to_string(),
            opt(d.dma_maps),
        ]);
    }
    format!(
        "IOMMU units:\n{}\ndevices:\n{}",
        units.render("  (none)"),
        devices.render("  (no device has done DMA)")
    )
}

/// Every unit's fault log, oldest first.
pub fn faults(view: &Faults) -> String {
    let mut out = String::new();
    for u in &view.units {
        out.push_str(&format!(
            "{}: {} fault(s), {} dropped, {} suppressed (FPD)\n",
            u.name, u.total, u.dropped, u.suppressed
        ));
        let mut t = Table::new(&[
            "REQUESTER",
            "PASID",
            "DEVICE",
            "ADDRESS",
            "ACCESS",
            "DID",
            "REASON",
        ]);
        for f in &u.records {
            t.row(vec![
                f.requester.clone(),
                opt(f.pasid),
                opt(f.device.as_deref()),
                format!("{:#x}", f.addr),
                f.access.clone(),
                opt(f.did),
                f.reason.clone(),
            ]);
        }
        out.push_str(&t.render("  (log empty)"));
    }
    out
}
