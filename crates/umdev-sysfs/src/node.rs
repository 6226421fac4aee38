//! What a tree path names: a directory, an attribute file or a link, and
//! the metadata `stat` reports for it.

use umdev_pci::Bdf;
use umdev_vfio::mdev::{MdevUuid, ParentId};

/// The kind of a tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory (a kobject).
    Dir,
    /// An attribute file.
    File,
    /// A symbolic link.
    Symlink,
}

/// What `stat` reports for a tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its kind.
    pub kind: NodeKind,
    /// Permission bits (0755 directories, 0777 links, the attribute's mode).
    pub mode: u16,
    /// Size: 4096 for text attributes (a page, as sysfs reports), the
    /// config space size for `config`, the target length for links, 0 for
    /// directories.
    pub size: u64,
}

/// A resolved tree entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Dir(Dir),
    Attr(Attr),
    /// A link to this tree path (made relative when read).
    Link(String),
}

/// A directory, by the object whose entries it lists. Each lists nothing
/// once its object is gone, so a node kept from an earlier lookup never
/// shows stale entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Root,
    Bus,
    BusPci,
    BusPciDevices,
    BusPciDrivers,
    PciDriver(String),
    BusMdev,
    BusMdevDevices,
    BusMdevDrivers,
    MdevDriver(String),
    Class,
    ClassMdevBus,
    Devices,
    /// `devices/pci<segment>:<bus>`, a PCI host bridge.
    PciRoot {
        segment: u16,
        bus: u8,
    },
    Virtual,
    /// `devices/virtual/<class>`.
    VirtualClass(String),
    /// `devices/virtual/<class>/<name>`, a non-PCI mdev parent.
    NamedParent(String),
    Kernel,
    /// An empty directory where Linux mounts another filesystem
    /// (`kernel/debug` for debugfs): `umdev run` mounts there.
    MountPoint,
    IommuGroups,
    IommuGroup(u32),
    IommuGroupDevices(u32),
    Function(Bdf),
    SupportedTypes(ParentId),
    Type(ParentId, String),
    TypeDevices(ParentId, String),
    /// An mdev's directory under its parent.
    Mdev(ParentId, MdevUuid),
}

/// An attribute file, by what shows and stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Attr {
    Pci(Bdf, PciAttr),
    Driver(String, DriverAttr),
    /// `bus/pci/drivers_probe`.
    DriversProbe,
    Type(ParentId, String, TypeAttr),
    /// `<mdev>/remove`.
    Remove(MdevUuid),
    /// `<mdev>/uevent`.
    MdevUevent(MdevUuid),
    /// `kernel/iommu_groups/<n>/name` of a VFIO emulated-IOMMU group.
    GroupName(u32),
}

/// Attributes of a PCI function (drivers/pci/pci-sysfs.c, iov.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PciAttr {
    Vendor,
    Device,
    SubsystemVendor,
    SubsystemDevice,
    Class,
    Revision,
    /// The binary config space attribute; its size is the config space's.
    Config {
        size: u16,
    },
    DriverOverride,
    SriovNumvfs,
    SriovTotalvfs,
    SriovOffset,
    SriovStride,
    SriovVfDevice,
    Uevent,
    Modalias,
}

/// Attributes of a PCI driver (drivers/base/bus.c, drivers/pci/pci-driver.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DriverAttr {
    Bind,
    Unbind,
    NewId,
    RemoveId,
}

/// Attributes of an mdev type (drivers/vfio/mdev/mdev_sysfs.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeAttr {
    Name,
    Description,
    DeviceApi,
    AvailableInstances,
    Create,
}

/// A page: what sysfs reports as the size of every text attribute.
pub(crate) const PAGE_SIZE: u64 = 4096;

impl Attr {
    /// The file mode the kernel gives the attribute.
    pub(crate) fn mode(&self) -> u16 {
        match self {
            // pci-sysfs.c: DEVICE_ATTR_RO ids; config is 0644 (bin attr
            // `pci_config_attr` / `pcie_config_attr`); driver_override RW.
            // drivers/base/core.c `static DEVICE_ATTR_RW(uevent)`.
            Attr::Pci(_, a) => match a {
                PciAttr::Config { .. } | PciAttr::DriverOverride | PciAttr::Uevent => 0o644,
                // iov.c: `static DEVICE_ATTR_RW(sriov_numvfs)` is 0664.
                PciAttr::SriovNumvfs => 0o664,
                _ => 0o444,
            },
            // bus.c DRIVER_ATTR_IGNORE_LOCKDEP(bind/unbind, 0200, ..),
            // pci-driver.c DRIVER_ATTR_WO(new_id/remove_id), bus.c
            // BUS_ATTR_WO(drivers_probe), mdev_sysfs.c MDEV_TYPE_ATTR_WO(create)
            // and DEVICE_ATTR_WO(remove).
            Attr::Driver(..) | Attr::DriversProbe | Attr::Remove(_) => 0o200,
            Attr::Type(_, _, TypeAttr::Create) => 0o200,
            Attr::Type(..) | Attr::GroupName(_) => 0o444,
            Attr::MdevUevent(_) => 0o644,
        }
    }

    /// The size `stat` reports.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Attr::Pci(_, PciAttr::Config { size }) => u64::from(*size),
            _ => PAGE_SIZE,
        }
    }
}

impl Node {
    /// Its `stat`.
    pub(crate) fn stat(&self, link_text_len: impl FnOnce() -> usize) -> Stat {
        match self {
            Node::Dir(_) => Stat {
                kind: NodeKind::Dir,
                mode: 0o755,
                size: 0,
            },
            Node::Attr(a) => Stat {
                kind: NodeKind::File,
                mode: a.mode(),
                size: a.size(),
            },
            Node::Link(_) => Stat {
                kind: NodeKind::Symlink,
                mode: 0o777,
                size: link_text_len() as u64,
            },
        }
    }

    /// Its kind.
    pub(crate) fn kind(&self) -> NodeKind {
        match self {
            Node::Dir(_) => NodeKind::Dir,
            Node::Attr(_) => NodeKind::File,
            Node::Link(_) => NodeKind::Symlink,
        }
    }
}
