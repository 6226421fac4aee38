//! IOMMU grouping, one small topology per Linux `pci_device_group` rule.

use std::collections::BTreeMap;

use umdev_pci::regs::*;
use umdev_pci::{PciDeviceId, Platform};
use umdev_testkit::bdf;
use umdev_testkit::pci::{SriovMode, TestDriver, hook};

const IOMMU: &str = r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
page_sizes = ["4K"]
"#;

const ACS: &str = r#"acs = { capability = ["SV", "RR", "CR", "UF"] }"#;

fn func(bdf: &str, kind: &str, extra: &str) -> String {
    format!(
        "[[function]]\nbdf = \"{bdf}\"\nkind = \"{kind}\"\nvendor = 0x8086\ndevice = 0x1234\n{extra}\n"
    )
}

fn port(bdf: &str, kind: &str, secondary: u8, acs: bool) -> String {
    let extra = format!(
        "secondary_bus = {secondary}\n{}",
        if acs { ACS } else { "" }
    );
    func(bdf, kind, &extra)
}

fn ep(bdf: &str, extra: &str) -> String {
    func(bdf, "endpoint", &format!("class = 0x020000\n{extra}"))
}

fn load(parts: &[String]) -> Platform {
    let text = format!("{IOMMU}\n{}", parts.concat());
    Platform::from_toml_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Groups as lists of addresses, by group number.
fn groups(p: &Platform) -> BTreeMap<u32, Vec<String>> {
    p.iommu_groups()
        .into_iter()
        .map(|(g, m)| (g, m.iter().map(|b| b.to_string()[5..].to_owned()).collect()))
        .collect()
}

fn g(list: &[(u32, &[&str])]) -> BTreeMap<u32, Vec<String>> {
    list.iter()
        .map(|(n, m)| (*n, m.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn switch_downstream_port_with_and_without_acs() {
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        port("01:00.0", "upstream-port", 2, false),
        port("02:00.0", "downstream-port", 3, true),
        port("02:01.0", "downstream-port", 4, false),
        ep("03:00.0", ""),
        ep("04:00.0", ACS),
        ep("04:00.1", ACS),
    ]);
    assert_eq!(
        groups(&p),
        g(&[
            (0, &["00:01.0"]),
            (1, &["01:00.0"]),
            (2, &["02:00.0"]),
            // pci_acs_path_enabled fails at the port: everything below
            // joins the port's group, whatever ACS the endpoint has.
            (3, &["02:01.0", "04:00.0", "04:00.1"]),
            (4, &["03:00.0"]),
        ])
    );
}

#[test]
fn multifunction_without_acs_shares_a_group() {
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        ep("01:00.0", ""),
        ep("01:00.1", ""),
        ep("01:00.2", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:01.0"]), (1, &["01:00.0", "01:00.1", "01:00.2"])])
    );
}

#[test]
fn multifunction_with_acs_is_split() {
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        ep("01:00.0", ACS),
        ep("01:00.1", ACS),
    ]);
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:01.0"]), (1, &["01:00.0"]), (2, &["01:00.1"])])
    );
}

#[test]
fn multifunction_with_acs_on_one_function_only() {
    // get_pci_function_alias_group skips functions that have ACS.
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        ep("01:00.0", ""),
        ep("01:00.1", ACS),
        ep("01:00.2", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[
            (0, &["00:01.0"]),
            (1, &["01:00.0", "01:00.2"]),
            (2, &["01:00.1"])
        ])
    );
}

#[test]
fn acs_capability_with_control_off_does_not_isolate() {
    let off = r#"acs = { capability = ["SV", "RR", "CR", "UF"], control = [] }"#;
    let partial = r#"acs = { capability = ["SV", "RR", "CR", "UF"], control = ["SV", "RR"] }"#;
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        ep("01:00.0", off),
        ep("01:00.1", partial),
    ]);
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:01.0"]), (1, &["01:00.0", "01:00.1"])])
    );
}

#[test]
fn pcie_to_pci_bridge_aliases_conventional_devices() {
    let pci = |b: &str| func(b, "pci-device", "class = 0x020000");
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        port("01:00.0", "pcie-to-pci-bridge", 2, false),
        pci("02:00.0"),
        pci("02:01.0"),
        port("00:02.0", "root-port", 3, true),
        ep("03:00.0", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[
            (0, &["00:01.0"]),
            (1, &["00:02.0"]),
            (2, &["01:00.0", "02:00.0", "02:01.0"]),
            (3, &["03:00.0"]),
        ])
    );
}

#[test]
fn explicit_dma_alias_joins_groups_in_both_directions() {
    let rc = |b: &str, extra: &str| func(b, "rc-endpoint", &format!("class = 0x010601\n{extra}"));
    // The earlier device names the later one...
    let p = load(&[
        rc("00:02.0", r#"dma_aliases = ["03.0"]"#),
        rc("00:03.0", ""),
        rc("00:04.0", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:02.0", "00:03.0"]), (1, &["00:04.0"])])
    );
    // ...or the later one names the earlier one.
    let p = load(&[
        rc("00:02.0", ""),
        rc("00:03.0", r#"dma_aliases = ["02.0"]"#),
        rc("00:04.0", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:02.0", "00:03.0"]), (1, &["00:04.0"])])
    );
    // Without the quirk all three are isolated.
    let p = load(&[rc("00:02.0", ""), rc("00:03.0", ""), rc("00:04.0", "")]);
    assert_eq!(groups(&p).len(), 3);
}

#[test]
fn root_port_without_acs_takes_everything_below() {
    let p = load(&[
        port("00:01.0", "root-port", 1, false),
        port("01:00.0", "upstream-port", 2, false),
        port("02:00.0", "downstream-port", 3, true),
        ep("03:00.0", ""),
        port("00:02.0", "root-port", 4, true),
        ep("04:00.0", ""),
    ]);
    assert_eq!(
        groups(&p),
        g(&[
            (0, &["00:01.0", "01:00.0", "02:00.0", "03:00.0"]),
            (1, &["00:02.0"]),
            (2, &["04:00.0"]),
        ])
    );
}

#[test]
fn acs_capability_without_bits_counts_as_hardwired() {
    // pci_acs_flags_enabled: features missing from the capability register
    // are treated as enabled.
    let p = load(&[
        func("00:01.0", "root-port", "secondary_bus = 1\nacs = {}"),
        ep("01:00.0", ""),
    ]);
    assert_eq!(groups(&p), g(&[(0, &["00:01.0"]), (1, &["01:00.0"])]));
}

#[test]
fn segments_without_an_iommu_have_no_groups() {
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        ep("01:00.0", ""),
        port("0001:00:01.0", "root-port", 1, true),
        ep("0001:01:00.0", ""),
    ]);
    assert_eq!(p.iommu_group(bdf("0001:01:00.0")), None);
    assert_eq!(p.iommu_group(bdf("0000:01:00.0")), Some(1));
    let m = hook(&p);
    assert_eq!(
        m.groups.lock().len(),
        2,
        "only grouped functions reach the IOMMU"
    );
}

fn pf(b: &str, total: u16) -> String {
    ep(
        b,
        &format!("sriov = {{ total_vfs = {total}, vf_device = 0x1235, first_vf_offset = 8 }}"),
    )
}

fn sriov_driver(p: &Platform) {
    let mut d = TestDriver::new("pf", true, vec![PciDeviceId::device(0x8086, 0x1234)]);
    d.sriov = Some(SriovMode::Simple);
    p.register_driver(d.arc()).unwrap();
}

#[test]
fn vfs_take_the_lowest_free_group_numbers_and_free_them() {
    let p = load(&[
        port("00:01.0", "root-port", 1, true),
        pf("01:00.0", 2),
        port("00:02.0", "root-port", 2, true),
        pf("02:00.0", 2),
    ]);
    sriov_driver(&p);
    assert_eq!(p.driver_of(bdf("01:00.0")).unwrap().name, "pf");
    let a = bdf("01:00.0");
    let b = bdf("02:00.0");
    p.set_sriov_numvfs(a, 2).unwrap();
    p.set_sriov_numvfs(b, 1).unwrap();
    let vf = |s: &str| p.iommu_group(bdf(s));
    assert_eq!(
        (vf("01:01.0"), vf("01:01.1"), vf("02:01.0")),
        (Some(4), Some(5), Some(6))
    );
    p.set_sriov_numvfs(a, 0).unwrap();
    p.set_sriov_numvfs(b, 0).unwrap();
    assert_eq!(groups(&p).len(), 4);
    // Freed numbers are reused lowest first (ida_alloc).
    p.set_sriov_numvfs(b, 2).unwrap();
    assert_eq!((vf("02:01.0"), vf("02:01.1")), (Some(4), Some(5)));
}

#[test]
fn vfs_follow_the_live_acs_path() {
    let p = load(&[port("00:01.0", "root-port", 1, true), pf("01:00.0", 2)]);
    sriov_driver(&p);
    // Turn the root port's ACS control off: VFs added now cannot be
    // isolated and join the port's group.
    let rp = bdf("00:01.0");
    let acs = p
        .function(rp)
        .unwrap()
        .ext_capability(PCI_EXT_CAP_ID_ACS)
        .unwrap();
    p.config_write(rp, acs + PCI_ACS_CTRL, &[0, 0]).unwrap();
    assert_eq!(p.function(rp).unwrap().acs_regs, Some((0x1d, 0)));
    p.set_sriov_numvfs(bdf("01:00.0"), 2).unwrap();
    assert_eq!(
        groups(&p),
        g(&[(0, &["00:01.0", "01:01.0", "01:01.1"]), (1, &["01:00.0"])])
    );
}

#[test]
fn ungrouped_functions_skip_the_default_domain_hooks() {
    let p = load(&[
        port("0001:00:01.0", "root-port", 1, true),
        ep("0001:01:00.0", ""),
    ]);
    let m = hook(&p);
    let d = TestDriver::new("dma", false, vec![PciDeviceId::device(0x8086, 0x1234)]).arc();
    p.register_driver(d.clone()).unwrap();
    assert_eq!(p.driver_of(bdf("0001:01:00.0")).unwrap().name, "dma");
    p.unbind("dma", bdf("0001:01:00.0")).unwrap();
    assert!(m.events().is_empty());
}
