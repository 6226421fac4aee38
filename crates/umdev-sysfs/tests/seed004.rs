//! The seed 004 recipe (vfio-mdev-pci usage, steps b–g), literally, as
//! shell commands against the mounted tree, with the model checked after
//! each step.

use umdev_devices::mdev_pci::MdevPci;
use umdev_pci::Bdf;
use umdev_testkit::sysfs::Rig;

const UUID: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003";

#[test]
fn seed_004_recipe_through_the_mount() {
    let m = Rig::new();
    let bdf: Bdf = "0000:05:00.0".parse().unwrap();
    let platform = m.host.platform().clone();
    assert_eq!(platform.driver_of(bdf).unwrap().name, "nvme");

    // b) unbind the original driver (through the `driver` link).
    m.bash_ok("dev_bdf=0000:05:00.0; echo $dev_bdf > bus/pci/devices/$dev_bdf/driver/unbind");
    assert!(platform.driver_of(bdf).is_none());
    m.bash_ok("test ! -e bus/pci/devices/0000:05:00.0/driver");

    // c) bind mdev-pci by id.
    let ids = m.bash_ok(
        "d=bus/pci/devices/0000:05:00.0; printf '%s %s' $(cut -c3- $d/vendor) $(cut -c3- $d/device)",
    );
    assert_eq!(ids, "8086 0953");
    m.bash_ok("echo 8086 0953 > bus/pci/drivers/mdev-pci/new_id");
    assert_eq!(platform.driver_of(bdf).unwrap().name, MdevPci::NAME);
    let driver = m.bash_ok("readlink -f bus/pci/devices/0000:05:00.0/driver");
    assert_eq!(
        driver.trim(),
        m.sys().join("bus/pci/drivers/mdev-pci").to_str().unwrap()
    );

    // d) the supported types.
    let types = m.bash_ok("ls bus/pci/devices/0000:05:00.0/mdev_supported_types/");
    let info = platform.function(bdf).unwrap();
    let type_dir = format!("mdev-pci-{}", umdev_devices::mdev_pci::type_name(&info));
    assert_eq!(types.trim(), type_dir);
    let attrs = m.bash_ok(&format!(
        "ls bus/pci/devices/0000:05:00.0/mdev_supported_types/{type_dir}/"
    ));
    // The seed's listing, plus `description` when the driver shows one
    // (mdev_sysfs.c `mdev_types_core_is_visible`).
    let parent = m.host.mdev_pci.parent(bdf).expect("registered parent");
    let has_description = parent.types()[0].description().is_some();
    let mut expected = vec![
        "available_instances",
        "create",
        "device_api",
        "devices",
        "name",
    ];
    if has_description {
        expected.insert(2, "description");
    }
    assert_eq!(attrs.split_whitespace().collect::<Vec<_>>(), expected);
    let t = format!("bus/pci/devices/0000:05:00.0/mdev_supported_types/{type_dir}");
    assert_eq!(m.bash_ok(&format!("cat {t}/available_instances")), "1\n");
    assert_eq!(m.bash_ok(&format!("cat {t}/device_api")), "vfio-pci\n");

    // e) create the mdev.
    let before = m.changes();
    m.bash_ok(&format!("echo \"{UUID}\" > \\\n {t}/create"));
    assert_eq!(m.changes(), before + 1, "on_change ran for the write");
    let uuid = UUID.parse().unwrap();
    let mdev = m.host.bus.find(uuid).expect("the mdev exists in the model");
    assert_eq!(m.bash_ok(&format!("cat {t}/available_instances")), "0\n");
    m.bash_ok(&format!("test -e bus/mdev/devices/{UUID}"));
    // f) what QEMU's sysfsdev= resolves: the device dir and its group.
    let dev = m.bash_ok(&format!("readlink -f bus/mdev/devices/{UUID}"));
    assert_eq!(
        dev.trim(),
        m.sys()
            .join(format!(
                "devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:01.0/0000:05:00.0/{UUID}"
            ))
            .to_str()
            .unwrap()
    );
    let group = m.bash_ok(&format!(
        "basename $(readlink -f bus/mdev/devices/{UUID}/iommu_group)"
    ));
    assert_eq!(group.trim(), mdev.group().to_string());
    let mtype = m.bash_ok(&format!(
        "basename $(readlink -f bus/mdev/devices/{UUID}/mdev_type)"
    ));
    assert_eq!(mtype.trim(), type_dir);
    m.bash_ok(&format!("test -L {t}/devices/{UUID}"));

    // g) destroy it.
    m.bash_ok(&format!("echo 1 > $SYS/bus/mdev/devices/{UUID}/remove"));
    assert!(m.host.bus.find(uuid).is_none());
    m.bash_ok(&format!("test ! -e bus/mdev/devices/{UUID}"));
    assert_eq!(m.bash_ok(&format!("cat {t}/available_instances")), "1\n");
}
