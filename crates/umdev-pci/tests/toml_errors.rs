//! Platform files with mistakes: each error names the file, the line and
//! column, and the field. The messages are pinned.

use umdev_pci::{Platform, PlatformError};

fn err(text: &str) -> String {
    match Platform::from_toml_str(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert_eq!(e.errno(), rustix::io::Errno::INVAL);
            e.to_string()
        }
    }
}

const RP: &str = r#"
[[function]]
bdf = "00:01.0"
kind = "root-port"
vendor = 0x8086
device = 0x347a
secondary_bus = 1
"#;

fn ep(bdf: &str, extra: &str) -> String {
    format!(
        "\n[[function]]\nbdf = \"{bdf}\"\nkind = \"endpoint\"\nvendor = 1\ndevice = 2\nclass = 0x020000\n{extra}"
    )
}

#[test]
fn syntax_errors_name_line_column_and_field() {
    assert_eq!(
        err("[[function]]\nbdf = 00:01.0\n"),
        "bad.toml:2:7: invalid datetime"
    );
    assert_eq!(
        err(&format!(
            "{RP}\n[[function]]\nbdf = \"01:00.0\"\nkind = \"endpoint\"\nvendor = 0x18086\n"
        )),
        "bad.toml:12:10: field `function[1].vendor`: invalid value: integer `98438`, expected u16"
    );
    assert_eq!(
        err("[[function]]\nbdf = \"00:01.0\"\nkind = \"rootport\"\nvendor = 1\ndevice = 1\n"),
        "bad.toml:3:8: field `function[0].kind`: unknown variant `rootport`, expected one of \
         `endpoint`, `legacy-endpoint`, `rc-endpoint`, `pci-device`, `root-port`, \
         `upstream-port`, `downstream-port`, `pcie-to-pci-bridge`"
    );
    assert_eq!(
        err(&format!(
            "{RP}\n[[function]]\nbdf = \"01:00.0\"\nkind = \"endpoint\"\ndevice = 1\n"
        )),
        "bad.toml:9:1: field `function[1]`: missing field `vendor`"
    );
    assert!(err(&format!("{RP}colour = \"red\"\n")).starts_with(
        "bad.toml:8:1: field `function[0]`: unknown field `colour`, expected one of `bdf`"
    ));
    assert_eq!(
        err(
            "[[iommu]]\nname = \"dmar0\"\nsegments = [0]\naddress_widths = [48]\npage_sizes = [\"4Q\"]\n"
        ),
        "bad.toml:5:14: field `iommu[0].page_sizes`: invalid size `4Q`, expected an integer or a number with K, M or G"
    );
}

#[test]
fn semantic_errors_name_the_offending_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{RP}{RP}"),
            "bad.toml:10:7: field `function[1].bdf`: duplicate address 0000:00:01.0 (first defined at line 2)",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "driver = \"igb\"\n")),
            "bad.toml:15:10: field `function[1].driver`: unknown driver `igb`",
        ),
        (
            format!(
                "[[driver]]\nname = \"igb\"\nids = [{{ vendor = 0x8086, device = 0x1521 }}]\n{RP}{}",
                ep("01:00.0", "driver = \"igb\"\n")
            ),
            "bad.toml:18:10: field `function[1].driver`: driver `igb` does not match 0001:0002 class 020000",
        ),
        (
            "[[driver]]\nname = \"a\"\n[[driver]]\nname = \"a\"\n".to_owned(),
            "bad.toml:4:8: field `driver[1].name`: duplicate driver name `a`",
        ),
        (
            format!("{RP}\n[[function]]\nbdf = \"01:00.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\nsecondary_bus = 2\n"),
            "bad.toml:10:7: field `function[1].kind`: a root-port cannot sit below a root-port",
        ),
        (
            format!("{RP}{}", ep("01:01.0", "")),
            "bad.toml:10:7: field `function[1].bdf`: below a PCIe port only device 0 exists",
        ),
        (
            format!("{RP}{}", ep("01:00.1", "")),
            "bad.toml:10:7: field `function[1].bdf`: 0000:01:00.1 has no function 0",
        ),
        (
            format!("{RP}\n[[function]]\nbdf = \"01:00.0\"\nkind = \"endpoint\"\nvendor = 1\ndevice = 2\n"),
            "bad.toml:9:1: field `function[1].class`: missing field `class`",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "bars = [{ index = 5, size = \"4K\" }]\n")),
            "bad.toml:15:8: field `function[1].bars`: BAR 5 does not fit in 6 BAR registers",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "bars = [{ index = 0, size = 100 }]\n")),
            "bad.toml:15:8: field `function[1].bars`: BAR 0 size 0x64 is not a power of two of at least 16",
        ),
        (
            format!(
                "{RP}{}",
                ep("01:00.0", "bars = [{ index = 0, size = \"4K\" }]\nmsix = { table_size = 512, table_offset = 0 , pba_offset = 0 }\n")
            ),
            "bad.toml:16:8: field `function[1].msix`: the table does not fit in BAR 0",
        ),
        (
            format!("{RP}\n[[function]]\nbdf = \"00:02.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\nsecondary_bus = 1\n"),
            "bad.toml:14:17: field `function[1].secondary_bus`: bus 01 is already the secondary bus of 0000:00:01.0",
        ),
        (
            format!("{RP}\n[[function]]\nbdf = \"00:02.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\nsecondary_bus = 0\n"),
            "bad.toml:14:17: field `function[1].secondary_bus`: secondary bus 00 must be above the bridge's own bus 00",
        ),
        (
            format!(
                "{RP}subordinate_bus = 3\n\n[[function]]\nbdf = \"00:02.0\"\nkind = \"root-port\"\nvendor = 1\ndevice = 2\nsecondary_bus = 2\n"
            ),
            "bad.toml:15:17: field `function[1].secondary_bus`: bus 02 lies in the bus range 01-03 of 0000:00:01.0, which is not above it",
        ),
        (
            format!("{RP}subordinate_bus = 3\n{}", ep("0000:02:00.0", "")),
            "bad.toml:11:7: field `function[1].bdf`: bus 02 is inside the bus range of 0000:00:01.0 but no bridge has it as secondary bus",
        ),
        (
            "\n[[function]]\nbdf = \"00:02.0\"\nkind = \"pci-device\"\nvendor = 1\ndevice = 2\nclass = 1\nacs = {}\n".to_owned(),
            "bad.toml:8:7: field `function[0].acs`: extended capabilities need a PCIe function",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "sriov = { total_vfs = 300, vf_device = 3, first_vf_offset = 1 }\n")),
            "bad.toml:15:9: field `function[1].sriov`: VF 255 at 0000:02:00.0 is outside the bus range 01-01",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "pasid = { max_width = 21 }\n")),
            "bad.toml:15:9: field `function[1].pasid`: max_width must be 1..=20",
        ),
        (
            format!("{RP}{}", ep("01:00.0", "dma_aliases = [\"00.0\"]\n")),
            "bad.toml:15:15: field `function[1].dma_aliases`: `00.0` is not another dd.f on this bus",
        ),
        (
            "[[iommu]]\nname = \"a\"\nsegments = [0]\naddress_widths = [48]\npage_sizes = [\"4K\"]\n\
                 [[iommu]]\nname = \"b\"\nsegments = [0]\naddress_widths = [48]\npage_sizes = [\"4K\"]\n"
            .to_owned(),
            "bad.toml:8:12: field `iommu[1].segments`: segment 0000 is already translated by `a`",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(&text), want, "\n{text}");
    }
}

#[test]
fn unreadable_file_is_an_io_error() {
    let e = Platform::from_file("/nonexistent/platform.toml")
        .err()
        .unwrap();
    assert!(matches!(e, PlatformError::Io { .. }));
    assert_eq!(e.errno(), rustix::io::Errno::NOENT);
    assert!(e.to_string().starts_with("/nonexistent/platform.toml: "));
}
