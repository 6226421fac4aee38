//! The `umdev` binary as a user runs it.

use std::process::Command;

fn umdev(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_umdev"))
        .args(args)
        .output()
        .expect("run umdev")
}

#[test]
fn platform_show_json_reports_the_default_groups_and_unit() {
    let out = umdev(&["platform", "show", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = v["iommu_groups"].as_array().unwrap();
    let non_singleton: Vec<Vec<&str>> = groups
        .iter()
        .map(|g| {
            g["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|d| d.len() > 1)
        .collect();
    assert!(non_singleton.contains(&vec!["0000:03:00.0", "0000:04:00.0", "0000:04:00.1"]));
    assert!(non_singleton.contains(&vec!["0000:06:00.0", "0000:06:00.1"]));
    let unit = &v["iommu_units"][0];
    assert_eq!(unit["name"], "dmar0");
    assert_eq!(unit["pasid_bits"], 20);
    // ECAP.PASID (bit 40) and ECAP.SMTS (bit 43) in the register a guest reads.
    let ecap = unit["ecap_reg"].as_u64().unwrap();
    assert_ne!(ecap & (1 << 40), 0);
    assert_ne!(ecap & (1 << 43), 0);
}

#[test]
fn platform_show_text_lists_tree_groups_and_drivers() {
    let out = umdev(&["platform", "show"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "PCI tree:",
        "IOMMU groups:",
        "Drivers:",
        "0000:01:00.0",
        "CAP_REG",
        "pcieport",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn malformed_platform_file_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[iommu]]\nname = \"dmar0\"\nsegments = [0]\npasid_bits = \"twenty\"\n",
    )
    .unwrap();
    let out = umdev(&["platform", "show", "--platform", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml:4:"), "{err}");
    assert!(err.contains("pasid_bits"), "{err}");
}

#[test]
fn default_description_round_trips_through_a_file() {
    let out = umdev(&["platform", "default"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let shown = umdev(&[
        "platform",
        "show",
        "--platform",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(v["iommu_groups"].as_array().unwrap().len(), 13);
}
