//! The embedded default platform: tree, config space, exact IOMMU groups,
//! start-up drivers and SR-IOV.

use umdev_pci::regs::*;
use umdev_pci::{FunctionKind, Platform};
use umdev_testkit::bdf;
use umdev_testkit::pci::{Event, hook};

fn platform() -> Platform {
    let p = Platform::default_platform().unwrap();
    p.bind_startup_drivers().unwrap();
    p
}

fn members(p: &Platform, g: u32) -> Vec<String> {
    p.iommu_groups()[&g].iter().map(|b| b.to_string()).collect()
}

#[test]
fn exact_groups_at_start() {
    let p = platform();
    let groups: Vec<(u32, Vec<String>)> = p
        .iommu_groups()
        .into_iter()
        .map(|(g, m)| (g, m.iter().map(|b| b.to_string()).collect()))
        .collect();
    let want: Vec<(u32, Vec<&str>)> = vec![
        (0, vec!["0000:00:01.0"]),
        (1, vec!["0000:00:02.0"]),
        (2, vec!["0000:00:03.0"]),
        (3, vec!["0000:00:04.0"]),
        (4, vec!["0000:00:05.0"]),
        (5, vec!["0000:01:00.0"]),
        (6, vec!["0000:02:00.0"]),
        // Downstream port without ACS: a non-singleton group.
        (7, vec!["0000:03:00.0", "0000:04:00.0", "0000:04:00.1"]),
        (8, vec!["0000:03:01.0"]),
        (9, vec!["0000:05:00.0"]),
        // Multifunction device without ACS.
        (10, vec!["0000:06:00.0", "0000:06:00.1"]),
        (11, vec!["0000:07:00.0"]),
        // Conventional PCI behind a PCIe-to-PCI bridge.
        (12, vec!["0000:08:00.0", "0000:09:00.0", "0000:09:01.0"]),
    ];
    let want: Vec<(u32, Vec<String>)> = want
        .into_iter()
        .map(|(g, m)| (g, m.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(groups, want);
}

#[test]
fn startup_drivers_and_dma_flags() {
    let p = platform();
    let d = |s: &str| p.driver_of(bdf(s)).map(|d| (d.name, d.driver_managed_dma));
    assert_eq!(d("0000:00:01.0"), Some(("pcieport".into(), true)));
    assert_eq!(d("0000:03:00.0"), Some(("pcieport".into(), true)));
    assert_eq!(d("0000:01:00.0"), Some(("idxd".into(), false)));
    assert_eq!(d("0000:07:00.0"), Some(("i40e".into(), false)));
    assert_eq!(d("0000:09:01.0"), Some(("e1000".into(), false)));
    // The PCIe-to-PCI bridge has no driver, as in Linux.
    assert_eq!(d("0000:08:00.0"), None);
    let stub = p
        .drivers()
        .into_iter()
        .find(|d| d.name == "pci-stub")
        .unwrap();
    assert!(stub.driver_managed_dma && stub.ids.is_empty());
    // Every endpoint has BAR0 for later device models.
    for b in p.functions() {
        let info = p.function(b).unwrap();
        if info.header_type() == 0 {
            assert!(info.bars.iter().any(|bar| bar.index == 0), "{b} lacks BAR0");
        }
    }
}

#[test]
fn iommu_unit_is_scalable_dmar0() {
    let p = platform();
    let units = p.iommu_units();
    assert_eq!(units.len(), 1);
    let u = &units[0];
    assert_eq!(u.name, "dmar0");
    assert_eq!(u.segments, vec![0]);
    assert_eq!(u.address_widths, vec![48, 57]);
    assert_eq!(u.pasid_bits, 20);
    assert_eq!(u.pgsize_bitmap, (1 << 12) | (1 << 21) | (1 << 30));
    assert!(u.nesting && u.dirty_tracking);
    assert_eq!(u.fault_log_size, 256);
}

#[test]
fn dma_engine_identity_and_pasid_capability() {
    let p = platform();
    let b = bdf("0000:01:00.0");
    let info = p.function(b).unwrap();
    assert_eq!(
        (info.vendor, info.device, info.class),
        (0x8086, 0x0b25, 0x088000)
    );
    assert_eq!(info.kind, FunctionKind::Endpoint);
    assert_eq!(info.pcie_type(), Some(PCI_EXP_TYPE_ENDPOINT));
    assert_eq!(info.pasid.unwrap().max_width, 20);
    assert!(info.ats.is_some() && info.pri.is_some());
    let pasid = info.ext_capability(PCI_EXT_CAP_ID_PASID).unwrap();
    let mut cap = [0u8; 4];
    p.config_read(b, pasid, &mut cap).unwrap();
    assert_eq!(
        u32::from_le_bytes(cap) & 0xffff,
        u32::from(PCI_EXT_CAP_ID_PASID)
    );
    p.config_read(b, pasid + PCI_PASID_CAP, &mut cap[..2])
        .unwrap();
    assert_eq!(
        u16::from_le_bytes([cap[0], cap[1]]),
        (20 << 8) | PCI_PASID_CAP_PRIV
    );
    // BAR0 is a 64K 64-bit prefetchable BAR: sizing reads back the mask.
    p.config_write(b, PCI_BASE_ADDRESS_0, &[0xff; 4]).unwrap();
    p.config_write(b, PCI_BASE_ADDRESS_0 + 4, &[0xff; 4])
        .unwrap();
    let mut bar = [0u8; 8];
    p.config_read(b, PCI_BASE_ADDRESS_0, &mut bar).unwrap();
    assert_eq!(u64::from_le_bytes(bar), 0xffff_ffff_ffff_000c);
}

#[test]
fn bridge_bus_numbers_are_in_the_type1_headers() {
    let p = platform();
    let mut buses = [0u8; 3];
    p.config_read(bdf("0000:00:02.0"), PCI_PRIMARY_BUS, &mut buses)
        .unwrap();
    assert_eq!(buses, [0x00, 0x02, 0x05]);
    p.config_read(bdf("0000:02:00.0"), PCI_PRIMARY_BUS, &mut buses)
        .unwrap();
    assert_eq!(buses, [0x02, 0x03, 0x05]);
    let mut ht = [0u8];
    p.config_read(bdf("0000:06:00.1"), PCI_HEADER_TYPE, &mut ht)
        .unwrap();
    assert_eq!(ht[0], PCI_HEADER_TYPE_MFD);
    // Conventional PCI has 256 bytes of config space.
    let mut b = [0u8; 4];
    assert_eq!(
        p.config_read(bdf("0000:09:00.0"), 0x100, &mut b)
            .unwrap_err()
            .errno(),
        rustix::io::Errno::INVAL
    );
}

#[test]
fn sriov_vfs_appear_with_groups_and_drivers_and_vanish() {
    let p = platform();
    let m = hook(&p);
    m.clear();
    let pf = bdf("0000:07:00.0");
    p.set_sriov_numvfs(pf, 4).unwrap();
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 4);
    let vfs = [
        "0000:07:02.0",
        "0000:07:02.1",
        "0000:07:02.2",
        "0000:07:02.3",
    ];
    for (i, vf) in vfs.iter().enumerate() {
        let info = p.function(bdf(vf)).unwrap();
        assert!(info.is_virtfn());
        assert_eq!(info.physfn, Some(pf));
        assert_eq!((info.vendor, info.device), (0x8086, 0x154c));
        assert_eq!(info.iommu_group, Some(13 + i as u32));
        assert_eq!(info.driver.as_deref(), Some("iavf"));
        // A VF's own vendor / device registers read all ones.
        let mut id = [0u8; 4];
        p.config_read(bdf(vf), 0, &mut id).unwrap();
        assert_eq!(u32::from_le_bytes(id), 0xffff_ffff);
    }
    // The IOMMU layer saw each VF, then iavf's DMA-API use of it.
    let expect: Vec<Event> = vfs
        .iter()
        .enumerate()
        .flat_map(|(i, v)| [Event::Probe(bdf(v), 13 + i as u32), Event::Use(bdf(v))])
        .collect();
    assert_eq!(m.events(), expect);
    // The PF's SR-IOV control has VF Enable and NumVFs set.
    let pos = p
        .function(pf)
        .unwrap()
        .ext_capability(PCI_EXT_CAP_ID_SRIOV)
        .unwrap();
    let mut w = [0u8; 2];
    p.config_read(pf, pos + PCI_SRIOV_CTRL, &mut w).unwrap();
    assert_eq!(
        u16::from_le_bytes(w) & PCI_SRIOV_CTRL_VFE,
        PCI_SRIOV_CTRL_VFE
    );
    p.config_read(pf, pos + PCI_SRIOV_NUM_VF, &mut w).unwrap();
    assert_eq!(u16::from_le_bytes(w), 4);

    m.clear();
    p.set_sriov_numvfs(pf, 0).unwrap();
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 0);
    assert!(vfs.iter().all(|v| p.function(bdf(v)).is_none()));
    assert_eq!(*p.iommu_groups().keys().last().unwrap(), 12);
    let expect: Vec<Event> = vfs
        .iter()
        .flat_map(|v| [Event::Unuse(bdf(v)), Event::Release(bdf(v))])
        .collect();
    assert_eq!(m.events(), expect);
    p.config_read(pf, pos + PCI_SRIOV_CTRL, &mut w).unwrap();
    assert_eq!(u16::from_le_bytes(w) & PCI_SRIOV_CTRL_VFE, 0);
}

#[test]
fn describe_shows_tree_groups_and_drivers() {
    let p = platform();
    let text = p.describe();
    for needle in [
        "iommu dmar0: segments [0], scalable mode",
        "0000:01:00.0 [8086:0b25] 088000 endpoint <PASID 20> group 5 driver idxd",
        "|  +- 0000:04:00.0 [8086:1521]",
        "    7: 0000:03:00.0 0000:04:00.0 0000:04:00.1",
        "pci-stub",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert_eq!(members(&p, 10), vec!["0000:06:00.0", "0000:06:00.1"]);
}

#[test]
fn snapshots_serialize_for_json_output() {
    let p = platform();
    let info = p.function(bdf("0000:09:01.0")).unwrap();
    let v = serde_json::to_value(&info).unwrap();
    assert_eq!(v["bdf"], "0000:09:01.0");
    assert_eq!(v["kind"], "pci-device");
    assert_eq!(v["upstream_bridge"], "0000:08:00.0");
    assert_eq!(v["physfn"], serde_json::Value::Null);
    assert_eq!(v["iommu_group"], 12);
    assert_eq!(v["driver"], "e1000");
    let units = serde_json::to_value(p.iommu_units()).unwrap();
    assert_eq!(units[0]["pgsize_bitmap"], 0x4020_1000u64);
}
