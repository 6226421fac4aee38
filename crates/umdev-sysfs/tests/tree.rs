//! The tree model without FUSE: layout, link targets, attribute formats,
//! live changes and the errno of every refusal.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_devices::host::Host;
use umdev_sysfs::{NodeKind, Tree};
use umdev_vfio::mdev::MdevUuid;

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";
const MTTY1: &str = "class/mdev_bus/mtty/mdev_supported_types/mtty-1";

fn tree() -> Tree {
    Tree::new(Host::default_platform().expect("default host"))
}

fn text(t: &Tree, path: &str) -> String {
    String::from_utf8(t.read(path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn errno<T: std::fmt::Debug>(r: Result<T, umdev_sysfs::SysfsError>) -> Errno {
    r.expect_err("expected an error").errno()
}

/// Every path of the tree with its kind (links not followed).
fn walk(t: &Tree) -> Vec<(String, NodeKind)> {
    let mut out = Vec::new();
    let mut todo = vec![String::new()];
    while let Some(dir) = todo.pop() {
        for (name, kind) in t.readdir(&dir).unwrap() {
            let path = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if kind == NodeKind::Dir {
                todo.push(path.clone());
            }
            out.push((path, kind));
        }
    }
    out
}

/// `dir/target` with ".." folded, as the VFS walks a relative link.
fn follow(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        if c == ".." {
            parts.pop().expect("link target climbs above the root");
        } else {
            parts.push(c);
        }
    }
    parts.join("/")
}

#[test]
fn every_link_is_relative_and_lands_on_an_entry() {
    let t = tree();
    let all = walk(&t);
    let links: Vec<_> = all
        .iter()
        .filter(|(_, k)| *k == NodeKind::Symlink)
        .collect();
    assert!(links.len() > 50, "{} links", links.len());
    for (link, _) in links {
        let target = t.readlink(link).unwrap();
        assert!(!target.starts_with('/'), "{link} -> {target}");
        let landed = follow(link, &target);
        let st = t
            .stat(&landed)
            .unwrap_or_else(|e| panic!("{link} -> {target}: {e}"));
        assert_eq!(st.kind, NodeKind::Dir, "{link} -> {target}");
    }
    // readdir and stat agree on every entry.
    for (path, kind) in &all {
        assert_eq!(t.stat(path).unwrap().kind, *kind, "{path}");
    }
}

#[test]
fn kernel_layout_and_link_targets() {
    let t = tree();
    assert_eq!(
        t.readlink("bus/pci/devices/0000:05:00.0").unwrap(),
        "../../../devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:01.0/0000:05:00.0"
    );
    assert_eq!(
        t.readlink("devices/pci0000:00/0000:00:01.0/0000:01:00.0/iommu_group")
            .unwrap(),
        "../../../../kernel/iommu_groups/5"
    );
    assert_eq!(
        t.readlink("bus/pci/devices/0000:04:00.1/driver").unwrap(),
        "../../../../../../bus/pci/drivers/igb"
    );
    assert_eq!(
        t.readlink("kernel/iommu_groups/7/devices/0000:04:00.0")
            .unwrap(),
        "../../../../devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:00.0/0000:04:00.0"
    );
    assert_eq!(
        t.readlink("class/mdev_bus/mtty").unwrap(),
        "../../devices/virtual/mtty/mtty"
    );
    let mut group7: Vec<String> = t
        .readdir("kernel/iommu_groups/7/devices")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    group7.sort();
    assert_eq!(group7, ["0000:03:00.0", "0000:04:00.0", "0000:04:00.1"]);
    // mdevctl skips type directories that are links: they must be dirs.
    assert_eq!(t.stat(MTTY1).unwrap().kind, NodeKind::Dir);
    // Writable and write-only modes as the kernel's.
    let mode = |p: &str| t.stat(p).unwrap().mode;
    assert_eq!(mode(&format!("{MTTY1}/create")), 0o200);
    assert_eq!(mode(&format!("{MTTY1}/available_instances")), 0o444);
    assert_eq!(mode("bus/pci/drivers/igb/bind"), 0o200);
    assert_eq!(mode("bus/pci/drivers_probe"), 0o200);
    assert_eq!(mode("bus/pci/devices/0000:07:00.0/sriov_numvfs"), 0o664);
    assert_eq!(mode("bus/pci/devices/0000:07:00.0/driver_override"), 0o644);
    assert_eq!(
        t.stat("bus/pci/devices/0000:07:00.0/vendor").unwrap().size,
        4096
    );
    assert_eq!(
        t.stat("bus/pci/devices/0000:07:00.0/config").unwrap().size,
        4096
    );
    // Conventional PCI has the 256-byte config space.
    assert_eq!(
        t.stat("bus/pci/devices/0000:09:00.0/config").unwrap().size,
        256
    );
}

#[test]
fn pci_attributes_print_as_linux() {
    let t = tree();
    let platform = t.host().platform().clone();
    for bdf in platform.functions() {
        let f = platform.function(bdf).unwrap();
        let d = format!("bus/pci/devices/{bdf}");
        assert_eq!(
            text(&t, &format!("{d}/vendor")),
            format!("0x{:04x}\n", f.vendor)
        );
        assert_eq!(
            text(&t, &format!("{d}/device")),
            format!("0x{:04x}\n", f.device)
        );
        assert_eq!(
            text(&t, &format!("{d}/class")),
            format!("0x{:06x}\n", f.class)
        );
        assert_eq!(
            text(&t, &format!("{d}/revision")),
            format!("0x{:02x}\n", f.revision)
        );
        assert_eq!(text(&t, &format!("{d}/driver_override")), "(null)\n");
        let config = t.read(&format!("{d}/config")).unwrap();
        assert_eq!(
            u16::from_le_bytes([config[0], config[1]]),
            f.vendor,
            "{bdf}"
        );
    }
    assert_eq!(text(&t, "bus/pci/devices/0000:06:00.1/class"), "0x040300\n");
    assert_eq!(
        text(&t, "bus/pci/devices/0000:05:00.0/modalias"),
        "pci:v00008086d00000953sv00008086sd00000000bc01sc08i02\n"
    );
    assert_eq!(
        text(&t, "bus/pci/devices/0000:05:00.0/uevent"),
        "DRIVER=nvme\nPCI_CLASS=10802\nPCI_ID=8086:0953\nPCI_SUBSYS_ID=8086:0000\n\
         PCI_SLOT_NAME=0000:05:00.0\n\
         MODALIAS=pci:v00008086d00000953sv00008086sd00000000bc01sc08i02\n"
    );
    // The bridge without a driver has no DRIVER= line.
    assert!(text(&t, "bus/pci/devices/0000:08:00.0/uevent").starts_with("PCI_CLASS=60400\n"));
    let uevent = "bus/pci/devices/0000:05:00.0/uevent";
    assert_eq!(t.write(uevent, 0, b"change\n").unwrap(), 7);
    assert_eq!(errno(t.write(uevent, 0, b"explode\n")), Errno::INVAL);
    assert_eq!(
        text(&t, "bus/pci/devices/0000:07:00.0/sriov_totalvfs"),
        "4\n"
    );
    assert_eq!(
        text(&t, "bus/pci/devices/0000:07:00.0/sriov_vf_device"),
        "154c\n"
    );
    assert_eq!(text(&t, "bus/pci/devices/0000:07:00.0/sriov_numvfs"), "0\n");
    assert_eq!(text(&t, &format!("{MTTY1}/name")), "Single port serial\n");
    assert_eq!(text(&t, &format!("{MTTY1}/device_api")), "vfio-pci\n");
    assert_eq!(text(&t, &format!("{MTTY1}/available_instances")), "24\n");
}

#[test]
fn sriov_numvfs_adds_and_removes_vfs() {
    let t = tree();
    let pf = "bus/pci/devices/0000:07:00.0";
    assert_eq!(
        errno(t.write(&format!("{pf}/sriov_numvfs"), 0, b"5\n")),
        Errno::RANGE
    );
    assert_eq!(
        errno(t.write(&format!("{pf}/sriov_numvfs"), 0, b"two")),
        Errno::INVAL
    );
    assert_eq!(
        errno(t.write(&format!("{pf}/sriov_numvfs"), 0, b"65536")),
        Errno::RANGE
    );
    assert_eq!(
        t.write(&format!("{pf}/sriov_numvfs"), 0, b"2\n").unwrap(),
        2
    );
    assert_eq!(text(&t, &format!("{pf}/sriov_numvfs")), "2\n");
    assert_eq!(
        t.readlink(&format!("{pf}/virtfn1")).unwrap(),
        "../0000:07:02.1"
    );
    assert_eq!(
        t.readlink("bus/pci/devices/0000:07:02.1/physfn").unwrap(),
        "../0000:07:00.0"
    );
    // The VF sits beside its PF and reads its PF's vendor.
    assert_eq!(
        t.readlink("bus/pci/devices/0000:07:02.0").unwrap(),
        "../../../devices/pci0000:00/0000:00:04.0/0000:07:02.0"
    );
    assert_eq!(text(&t, "bus/pci/devices/0000:07:02.0/device"), "0x154c\n");
    t.write(&format!("{pf}/sriov_numvfs"), 0, b"0").unwrap();
    assert_eq!(errno(t.stat("bus/pci/devices/0000:07:02.0")), Errno::NOENT);
}

#[test]
fn binding_through_driver_attributes() {
    let t = tree();
    let platform = t.host().platform().clone();
    let nvme = "0000:05:00.0".parse().unwrap();
    assert_eq!(
        errno(t.write("bus/pci/drivers/nvme/unbind", 0, b"0000:04:00.0\n")),
        Errno::NODEV
    );
    assert_eq!(
        errno(t.write("bus/pci/drivers/nvme/bind", 0, b"nonsense\n")),
        Errno::NODEV
    );
    t.write(
        "bus/pci/devices/0000:05:00.0/driver/unbind",
        0,
        b"0000:05:00.0\n",
    )
    .unwrap();
    assert!(platform.driver_of(nvme).is_none());
    assert_eq!(
        errno(t.stat("bus/pci/devices/0000:05:00.0/driver")),
        Errno::NOENT
    );
    t.write(
        "bus/pci/devices/0000:05:00.0/driver_override",
        0,
        b"pci-stub\n",
    )
    .unwrap();
    assert_eq!(
        text(&t, "bus/pci/devices/0000:05:00.0/driver_override"),
        "pci-stub\n"
    );
    t.write("bus/pci/drivers_probe", 0, b"0000:05:00.0")
        .unwrap();
    assert_eq!(platform.driver_of(nvme).unwrap().name, "pci-stub");
    assert_eq!(
        t.readlink("bus/pci/drivers/pci-stub/0000:05:00.0").unwrap(),
        "../../../../devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:01.0/0000:05:00.0"
    );
    // new_id's own errors pass through (EINVAL for one field).
    assert_eq!(
        errno(t.write("bus/pci/drivers/vfio-pci/new_id", 0, b"8086\n")),
        Errno::INVAL
    );
}

#[test]
fn mdevs_appear_and_go_live() {
    let t = tree();
    let u1: MdevUuid = U1.parse().unwrap();
    assert_eq!(
        t.write(
            &format!("{MTTY1}/create"),
            0,
            format!("{}\n", U1.to_uppercase()).as_bytes()
        )
        .unwrap(),
        37
    );
    let mdev = t.host().bus.find(u1).expect("created in the model");
    let dev = "devices/virtual/mtty/mtty/".to_owned() + U1;
    assert_eq!(t.stat(&dev).unwrap().kind, NodeKind::Dir);
    assert_eq!(
        t.readlink(&format!("bus/mdev/devices/{U1}")).unwrap(),
        format!("../../../{dev}")
    );
    assert_eq!(
        t.readlink(&format!("{dev}/mdev_type")).unwrap(),
        "../mdev_supported_types/mtty-1"
    );
    assert_eq!(
        t.readlink(&format!("{dev}/driver")).unwrap(),
        "../../../../../bus/mdev/drivers/mtty"
    );
    assert_eq!(
        t.readlink(&format!("{MTTY1}/devices/{U1}")).unwrap(),
        format!("../../../{U1}")
    );
    let group = mdev.group();
    assert_eq!(
        t.readlink(&format!("{dev}/iommu_group")).unwrap(),
        format!("../../../../../kernel/iommu_groups/{group}")
    );
    assert_eq!(
        text(&t, &format!("kernel/iommu_groups/{group}/name")),
        "vfio-noiommu\n"
    );
    assert_eq!(
        t.readdir(&format!("kernel/iommu_groups/{group}/devices"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(text(&t, &format!("{MTTY1}/available_instances")), "23\n");
    assert_eq!(
        text(
            &t,
            "class/mdev_bus/mtty/mdev_supported_types/mtty-2/available_instances"
        ),
        "11\n"
    );
    // Links are followed on the way, as the VFS does.
    assert_eq!(
        t.write(&format!("bus/mdev/devices/{U1}/remove"), 0, b"0")
            .unwrap(),
        1
    );
    assert!(t.host().bus.find(u1).is_some(), "0 is a no-op");
    t.write(&format!("bus/mdev/devices/{U1}/remove"), 0, b"1\n")
        .unwrap();
    assert!(t.host().bus.find(u1).is_none());
    assert_eq!(errno(t.stat(&dev)), Errno::NOENT);
    assert_eq!(
        errno(t.stat(&format!("kernel/iommu_groups/{group}"))),
        Errno::NOENT
    );
    assert_eq!(text(&t, &format!("{MTTY1}/available_instances")), "24\n");
}

#[test]
fn refusals_carry_the_kernel_errno() {
    let t = tree();
    let create = format!("{MTTY1}/create");
    t.write(&create, 0, U1.as_bytes()).unwrap();
    // mdev_core.c: a UUID is global across parents and types.
    let mtty2 = "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create";
    assert_eq!(errno(t.write(mtty2, 0, U1.as_bytes())), Errno::EXIST);
    // create_store: 36 or 37 bytes, then guid_parse.
    assert_eq!(errno(t.write(&create, 0, b"not-a-uuid")), Errno::INVAL);
    assert_eq!(
        errno(t.write(&create, 0, format!("{U2}\n\n").as_bytes())),
        Errno::INVAL
    );
    assert_eq!(
        errno(t.write(&create, 0, b"83b8f4f2-509f-382f-3c1e-e6bfe0fa10zz")),
        Errno::INVAL
    );
    assert_eq!(
        errno(t.write(&format!("bus/mdev/devices/{U1}/remove"), 0, b"yes")),
        Errno::INVAL
    );
    // Read-only and write-only attributes: EACCES, as kernfs_fop_open.
    assert_eq!(
        errno(t.write(&format!("{MTTY1}/name"), 0, b"x")),
        Errno::ACCESS
    );
    assert_eq!(
        errno(t.write("bus/pci/devices/0000:01:00.0/vendor", 0, b"1")),
        Errno::ACCESS
    );
    assert_eq!(errno(t.read(&create)), Errno::ACCESS);
    // Paths.
    assert_eq!(errno(t.stat("bus/pci/devices/0000:0a:00.0")), Errno::NOENT);
    assert_eq!(errno(t.stat("bus/pci/drivers_probe/x")), Errno::NOTDIR);
    assert_eq!(errno(t.read("bus/pci")), Errno::ISDIR);
    assert_eq!(errno(t.readlink("bus/pci/drivers_probe")), Errno::INVAL);
    assert_eq!(errno(t.readdir("bus/pci/drivers_probe")), Errno::NOTDIR);
    // One page at most per store.
    assert_eq!(errno(t.write(&create, 0, &[b'0'; 4097])), Errno::TOOBIG);
    // An empty write stores nothing.
    assert_eq!(t.write(&create, 0, b"").unwrap(), 0);
    // Config space: EFBIG past the end, clipped at it.
    let config = "bus/pci/devices/0000:09:00.0/config";
    assert_eq!(errno(t.write(config, 256, &[0])), Errno::FBIG);
    assert_eq!(t.write(config, 0xfe, &[0, 0, 0, 0]).unwrap(), 2);
}

/// The host stays shared: a tree of an `Arc<Host>` sees changes made
/// through the model directly.
#[test]
fn the_tree_reads_the_model_live() {
    let host: Arc<Host> = Host::default_platform().unwrap();
    let t = Tree::new(host.clone());
    let mtype = host.mtty.mdev_type("mtty-2").unwrap();
    mtype.create(U2.parse().unwrap()).unwrap();
    let names: Vec<String> = t
        .readdir("bus/mdev/devices")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [U2]);
    assert_eq!(text(&t, &format!("{MTTY1}/available_instances")), "22\n");
}
