//! The default host: every driver registered, vfio-pci and mdev devices
//! listed as servable as they appear.

use umdev_devices::host::Host;
use umdev_devices::sdma_mdev::SdmaMdev;
use umdev_pci::Bdf;
use umdev_vfio::registration::Isolation;
use umdev_vfio::vfio_pci::VfioPci;

#[test]
fn default_host_serves_vfio_pci_functions_and_mdevs() {
    let host = Host::default_platform().unwrap();
    assert!(host.servable().is_empty());
    let parents: Vec<String> = host
        .bus
        .parents()
        .iter()
        .map(|p| p.device().id.to_string())
        .collect();
    assert_eq!(parents, ["0000:01:00.0", "mtty"], "sdma and mtty parents");
    // The platform's "idxd" stub was replaced by the sdma parent driver.
    let dsa: Bdf = "0000:01:00.0".parse().unwrap();
    let idxd = host.platform().driver_of(dsa).unwrap();
    assert!(!idxd.builtin && idxd.name == SdmaMdev::NAME);
    assert_eq!(host.sdma.parents(), [dsa]);

    let nvme: Bdf = "0000:05:00.0".parse().unwrap();
    let p = host.platform();
    p.unbind("nvme", nvme).unwrap();
    p.set_driver_override(nvme, VfioPci::NAME).unwrap();
    p.drivers_probe(nvme).unwrap();
    let names: Vec<String> = host.servable().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["0000:05:00.0"]);
    assert!(host.pci_device(nvme).is_some());

    // Every mdev is servable through its registration, whatever its
    // parent driver and isolation.
    let mtty = host.mtty.mdev_type("mtty-1").unwrap();
    let tty = mtty
        .create("11111111-2222-4333-8444-555555555555".parse().unwrap())
        .unwrap();
    let wq = host.sdma.parent(dsa).unwrap().mdev_type("idxd-wq").unwrap();
    let dma = wq
        .create("66666666-2222-4333-8444-555555555555".parse().unwrap())
        .unwrap();
    let servable = host.servable();
    let by_name = |n: String| servable.iter().find(|s| s.name == n).unwrap();
    let tty_dev = &by_name(tty.uuid().to_string()).device;
    assert_eq!(tty_dev.isolation(), Isolation::Emulated);
    assert_eq!(tty_dev.group(), tty.group());
    assert_eq!(
        by_name(dma.uuid().to_string()).device.isolation(),
        Isolation::IommuBacked {
            iommu_device: dsa,
            pasid: dma.iommu_pasid()
        }
    );
    assert_eq!(servable.len(), 3);
    tty.remove().unwrap();
    assert_eq!(host.servable().len(), 2);
}
