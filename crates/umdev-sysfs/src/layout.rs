//! Where devices live under `devices/`, as the driver core places them:
//! a PCI function under its upstream bridge's directory, down from its
//! host bridge `pci<segment>:<bus>` (drivers/pci/probe.c); a non-PCI
//! device without bus in `virtual/<class>/` (drivers/base/core.c
//! `get_device_parent`); an mdev under its parent device.

use umdev_pci::{Bdf, Platform};
use umdev_vfio::mdev::{Mdev, ParentDevice, ParentId};

/// Name of the host bridge directory of a root bus (`pci%04x:%02x`,
/// drivers/pci/probe.c `pci_register_host_bridge`).
pub(crate) fn host_bridge_name(segment: u16, bus: u8) -> String {
    format!("pci{segment:04x}:{bus:02x}")
}

/// The host bridge `(segment, root bus)` above `bdf` and the chain of
/// functions from the root bus down to `bdf` itself.
pub(crate) fn function_chain(platform: &Platform, bdf: Bdf) -> Option<(u16, u8, Vec<Bdf>)> {
    let mut chain = vec![bdf];
    let mut at = platform.function(bdf)?;
    while let Some(up) = at.upstream_bridge {
        // The topology is a tree (each bridge has a unique secondary bus),
        // so this walk ends at a root-bus function.
        chain.push(up);
        at = platform.function(up)?;
    }
    chain.reverse();
    Some((at.bdf.segment(), at.bdf.bus(), chain))
}

/// `devices/pci0000:00/0000:00:01.0/0000:01:00.0` for `0000:01:00.0`.
pub(crate) fn function_path(platform: &Platform, bdf: Bdf) -> Option<String> {
    let (segment, bus, chain) = function_chain(platform, bdf)?;
    let mut path = format!("devices/{}", host_bridge_name(segment, bus));
    for b in chain {
        path.push('/');
        path.push_str(&b.to_string());
    }
    Some(path)
}

/// The class directory of a non-PCI parent under `devices/virtual`: the
/// name its `dev_driver_string` falls back to (the mtty sample has no bus
/// and no driver, so its string is its class, "mtty").
pub(crate) fn virtual_class(dev: &ParentDevice) -> &str {
    &dev.driver_string
}

/// The directory of an mdev parent device.
pub(crate) fn parent_path(platform: &Platform, dev: &ParentDevice) -> Option<String> {
    match &dev.id {
        ParentId::Pci(bdf) => function_path(platform, *bdf),
        ParentId::Named(name) => Some(format!("devices/virtual/{}/{name}", virtual_class(dev))),
    }
}

/// The directory of an mdev (`<parent>/<uuid>`).
pub(crate) fn mdev_path(platform: &Platform, mdev: &Mdev) -> Option<String> {
    Some(format!(
        "{}/{}",
        parent_path(platform, mdev.parent())?,
        mdev.uuid()
    ))
}
