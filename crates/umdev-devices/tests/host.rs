//! The default host: every driver registered, vfio-pci and mdev devices
//! listed as servable as they appear.

use umdev_devices::host::Host;
use umdev_pci::Bdf;
use umdev_vfio::vfio_pci::VfioPci;

#[test]
fn default_host_serves_vfio_pci_functions_and_mdevs() {
    let host = Host::default_platform().unwrap();
    assert!(host.servable().is_empty());
    assert_eq!(host.bus.parents().len(), 1, "mtty parent registered");

    let nvme: Bdf = "0000:05:00.0".parse().unwrap();
    let p = host.platform();
    p.unbind("nvme", nvme).unwrap();
    p.set_driver_override(nvme, VfioPci::NAME).unwrap();
    p.drivers_probe(nvme).unwrap();
    let names: Vec<String> = host.servable().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["0000:05:00.0"]);
    assert!(host.pci_device(nvme).is_some());
}
