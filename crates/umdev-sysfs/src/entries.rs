//! Every directory's entries, computed from the model at the time of the
//! call. Each directory lists nothing once its object is gone.

use std::collections::BTreeSet;
use std::sync::Arc;

use umdev_pci::{Bdf, FunctionInfo};
use umdev_vfio::mdev::{Mdev, MdevParent, MdevUuid, ParentId};

use crate::Tree;
use crate::layout::{function_path, host_bridge_name, mdev_path, parent_path, virtual_class};
use crate::node::{Attr, Dir, DriverAttr, Node, PciAttr, TypeAttr};

/// Config space sizes (include/uapi/linux/pci_regs.h `PCI_CFG_SPACE_SIZE`,
/// `PCI_CFG_SPACE_EXP_SIZE`).
const CFG_SPACE_SIZE: u16 = 256;
const CFG_SPACE_EXP_SIZE: u16 = 4096;

/// A directory's entries: name and node.
pub(crate) type Entries = Vec<(String, Node)>;

impl Tree {
    /// The entries of `dir`, computed from the model now.
    pub(crate) fn entries(&self, dir: &Dir) -> Entries {
        let d = |name: &str, dir: Dir| (name.to_owned(), Node::Dir(dir));
        match dir {
            Dir::Root => vec![
                d("bus", Dir::Bus),
                d("class", Dir::Class),
                d("devices", Dir::Devices),
                d("kernel", Dir::Kernel),
            ],
            Dir::Bus => vec![d("pci", Dir::BusPci), d("mdev", Dir::BusMdev)],
            Dir::BusPci => vec![
                d("devices", Dir::BusPciDevices),
                d("drivers", Dir::BusPciDrivers),
                ("drivers_probe".to_owned(), Node::Attr(Attr::DriversProbe)),
            ],
            Dir::BusPciDevices => self.function_links(|_| true),
            Dir::BusPciDrivers => self
                .platform()
                .drivers()
                .into_iter()
                .map(|drv| d(&drv.name, Dir::PciDriver(drv.name.clone())))
                .collect(),
            Dir::PciDriver(name) => self.pci_driver_entries(name),
            Dir::BusMdev => vec![
                d("devices", Dir::BusMdevDevices),
                d("drivers", Dir::BusMdevDrivers),
            ],
            Dir::BusMdevDevices => self.mdev_links(|_| true),
            Dir::BusMdevDrivers => {
                let names: BTreeSet<String> = self
                    .host()
                    .bus
                    .parents()
                    .iter()
                    .map(|p| p.driver().name().to_owned())
                    .collect();
                names
                    .into_iter()
                    .map(|n| d(&n, Dir::MdevDriver(n.clone())))
                    .collect()
            }
            Dir::MdevDriver(name) => {
                self.mdev_links(|m| self.mdev_driver_name(m).as_deref() == Some(name.as_str()))
            }
            Dir::Class => vec![d("mdev_bus", Dir::ClassMdevBus)],
            Dir::ClassMdevBus => self
                .host()
                .bus
                .parents()
                .iter()
                .filter_map(|p| {
                    let target = parent_path(self.platform(), p.device())?;
                    Some((p.device().id.to_string(), Node::Link(target)))
                })
                .collect(),
            Dir::Devices => self.devices_entries(),
            Dir::PciRoot { segment, bus } => self
                .functions()
                .into_iter()
                .filter(|f| {
                    f.upstream_bridge.is_none()
                        && f.bdf.segment() == *segment
                        && f.bdf.bus() == *bus
                })
                .map(|f| d(&f.bdf.to_string(), Dir::Function(f.bdf)))
                .collect(),
            Dir::Virtual => {
                let classes: BTreeSet<String> = self
                    .named_parents()
                    .iter()
                    .map(|p| virtual_class(p.device()).to_owned())
                    .collect();
                classes
                    .into_iter()
                    .map(|c| d(&c, Dir::VirtualClass(c.clone())))
                    .collect()
            }
            Dir::VirtualClass(class) => self
                .named_parents()
                .iter()
                .filter(|p| virtual_class(p.device()) == class)
                .map(|p| {
                    let name = p.device().id.to_string();
                    d(&name, Dir::NamedParent(name.clone()))
                })
                .collect(),
            Dir::NamedParent(name) => self.parent_entries(&ParentId::Named(name.clone())),
            Dir::Kernel => vec![
                d("debug", Dir::MountPoint),
                d("iommu_groups", Dir::IommuGroups),
            ],
            Dir::MountPoint => Vec::new(),
            Dir::IommuGroups => {
                let mut groups: BTreeSet<u32> =
                    self.platform().iommu_groups().into_keys().collect();
                groups.extend(self.host().bus.devices().iter().map(|m| m.group()));
                groups
                    .into_iter()
                    .map(|n| d(&n.to_string(), Dir::IommuGroup(n)))
                    .collect()
            }
            Dir::IommuGroup(n) => {
                let emulated = self.host().bus.devices().iter().any(|m| m.group() == *n);
                let platform = self.platform().iommu_groups().contains_key(n);
                let mut e = Vec::new();
                if platform || emulated {
                    e.push(d("devices", Dir::IommuGroupDevices(*n)));
                }
                if emulated {
                    e.push(("name".to_owned(), Node::Attr(Attr::GroupName(*n))));
                }
                e
            }
            Dir::IommuGroupDevices(n) => {
                let mut e = self.function_links(|f| f.iommu_group == Some(*n));
                e.extend(self.mdev_links(|m| m.group() == *n));
                e
            }
            Dir::Function(bdf) => self.function_entries(*bdf),
            Dir::SupportedTypes(id) => self
                .parent(id)
                .map(|p| p.types())
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let name = t.name();
                    d(&name, Dir::Type(id.clone(), name.clone()))
                })
                .collect(),
            Dir::Type(id, name) => self.type_entries(id, name),
            Dir::TypeDevices(id, name) => {
                let uuids = self
                    .parent(id)
                    .and_then(|p| p.mdev_type(name).ok())
                    .map(|t| t.devices())
                    .unwrap_or_default();
                self.mdev_links(|m| uuids.contains(&m.uuid()))
            }
            Dir::Mdev(id, uuid) => self.mdev_entries(id, *uuid),
        }
    }

    /// Snapshots of every function.
    fn functions(&self) -> Vec<FunctionInfo> {
        let p = self.platform();
        p.functions()
            .into_iter()
            .filter_map(|b| p.function(b))
            .collect()
    }

    /// Links named by address to the functions `keep` selects.
    fn function_links(&self, keep: impl Fn(&FunctionInfo) -> bool) -> Entries {
        self.functions()
            .into_iter()
            .filter(|f| keep(f))
            .filter_map(|f| {
                let target = function_path(self.platform(), f.bdf)?;
                Some((f.bdf.to_string(), Node::Link(target)))
            })
            .collect()
    }

    /// Links named by UUID to the mdevs `keep` selects.
    fn mdev_links(&self, keep: impl Fn(&Mdev) -> bool) -> Entries {
        self.host()
            .bus
            .devices()
            .into_iter()
            .filter(|m| keep(m))
            .filter_map(|m| {
                let target = mdev_path(self.platform(), &m)?;
                Some((m.uuid().to_string(), Node::Link(target)))
            })
            .collect()
    }

    /// The mdev driver bound to `mdev`: its parent's driver.
    pub(crate) fn mdev_driver_name(&self, mdev: &Mdev) -> Option<String> {
        let mtype = mdev.mdev_type()?;
        Some(mtype.parent().driver().name().to_owned())
    }

    fn named_parents(&self) -> Vec<Arc<MdevParent>> {
        self.host()
            .bus
            .parents()
            .into_iter()
            .filter(|p| matches!(p.device().id, ParentId::Named(_)))
            .collect()
    }

    fn devices_entries(&self) -> Entries {
        let roots: BTreeSet<(u16, u8)> = self
            .functions()
            .iter()
            .filter(|f| f.upstream_bridge.is_none())
            .map(|f| (f.bdf.segment(), f.bdf.bus()))
            .collect();
        let mut e: Entries = roots
            .into_iter()
            .map(|(segment, bus)| {
                (
                    host_bridge_name(segment, bus),
                    Node::Dir(Dir::PciRoot { segment, bus }),
                )
            })
            .collect();
        e.push(("virtual".to_owned(), Node::Dir(Dir::Virtual)));
        e
    }

    fn pci_driver_entries(&self, name: &str) -> Entries {
        if !self.platform().drivers().iter().any(|d| d.name == name) {
            return Vec::new();
        }
        let attr =
            |n: &str, a: DriverAttr| (n.to_owned(), Node::Attr(Attr::Driver(name.to_owned(), a)));
        let mut e = vec![
            attr("bind", DriverAttr::Bind),
            attr("unbind", DriverAttr::Unbind),
            attr("new_id", DriverAttr::NewId),
            attr("remove_id", DriverAttr::RemoveId),
        ];
        e.extend(self.function_links(|f| f.driver.as_deref() == Some(name)));
        e
    }

    fn function_entries(&self, bdf: Bdf) -> Entries {
        let Some(info) = self.platform().function(bdf) else {
            return Vec::new();
        };
        let attr = |n: &str, a: PciAttr| (n.to_owned(), Node::Attr(Attr::Pci(bdf, a)));
        let config_size = if info.pcie_type().is_some() {
            CFG_SPACE_EXP_SIZE
        } else {
            CFG_SPACE_SIZE
        };
        let mut e = vec![
            attr("vendor", PciAttr::Vendor),
            attr("device", PciAttr::Device),
            attr("subsystem_vendor", PciAttr::SubsystemVendor),
            attr("subsystem_device", PciAttr::SubsystemDevice),
            attr("class", PciAttr::Class),
            attr("revision", PciAttr::Revision),
            attr("config", PciAttr::Config { size: config_size }),
            attr("driver_override", PciAttr::DriverOverride),
            attr("uevent", PciAttr::Uevent),
            attr("modalias", PciAttr::Modalias),
            ("subsystem".to_owned(), Node::Link("bus/pci".to_owned())),
        ];
        if info.sriov.is_some() {
            e.extend([
                attr("sriov_numvfs", PciAttr::SriovNumvfs),
                attr("sriov_totalvfs", PciAttr::SriovTotalvfs),
                attr("sriov_offset", PciAttr::SriovOffset),
                attr("sriov_stride", PciAttr::SriovStride),
                attr("sriov_vf_device", PciAttr::SriovVfDevice),
            ]);
        }
        if let Some(drv) = &info.driver {
            e.push((
                "driver".to_owned(),
                Node::Link(format!("bus/pci/drivers/{drv}")),
            ));
        }
        if let Some(group) = info.iommu_group {
            e.push((
                "iommu_group".to_owned(),
                Node::Link(format!("kernel/iommu_groups/{group}")),
            ));
        }
        let platform = self.platform();
        if let Some(pf) = info.physfn
            && let Some(target) = function_path(platform, pf)
        {
            e.push(("physfn".to_owned(), Node::Link(target)));
        }
        let all = self.functions();
        // drivers/pci/iov.c `pci_iov_sysfs_link`: "virtfn%u" on the PF, in
        // VF index (= address) order.
        for (i, vf) in all.iter().filter(|f| f.physfn == Some(bdf)).enumerate() {
            if let Some(target) = function_path(platform, vf.bdf) {
                e.push((format!("virtfn{i}"), Node::Link(target)));
            }
        }
        // Child devices: functions on buses below this bridge (not VFs,
        // which the driver core places beside their PF).
        for f in all.iter().filter(|f| f.upstream_bridge == Some(bdf)) {
            e.push((f.bdf.to_string(), Node::Dir(Dir::Function(f.bdf))));
        }
        e.extend(self.parent_entries(&ParentId::Pci(bdf)));
        e
    }

    /// `mdev_supported_types/` and the mdev directories of a registered
    /// parent (nothing if `id` is not one).
    fn parent_entries(&self, id: &ParentId) -> Entries {
        if self.parent(id).is_none() {
            return Vec::new();
        }
        let mut e = vec![(
            "mdev_supported_types".to_owned(),
            Node::Dir(Dir::SupportedTypes(id.clone())),
        )];
        e.extend(
            self.host()
                .bus
                .devices()
                .iter()
                .filter(|m| &m.parent().id == id)
                .map(|m| {
                    (
                        m.uuid().to_string(),
                        Node::Dir(Dir::Mdev(id.clone(), m.uuid())),
                    )
                }),
        );
        e
    }

    fn type_entries(&self, id: &ParentId, name: &str) -> Entries {
        let Some(mtype) = self.parent(id).and_then(|p| p.mdev_type(name).ok()) else {
            return Vec::new();
        };
        let attr = |n: &str, a: TypeAttr| {
            (
                n.to_owned(),
                Node::Attr(Attr::Type(id.clone(), name.to_owned(), a)),
            )
        };
        let mut e = vec![
            attr("create", TypeAttr::Create),
            attr("name", TypeAttr::Name),
            attr("device_api", TypeAttr::DeviceApi),
            attr("available_instances", TypeAttr::AvailableInstances),
        ];
        // mdev_sysfs.c `mdev_types_core_is_visible`: description only if
        // the driver shows one.
        if mtype.description().is_some() {
            e.push(attr("description", TypeAttr::Description));
        }
        e.push((
            "devices".to_owned(),
            Node::Dir(Dir::TypeDevices(id.clone(), name.to_owned())),
        ));
        e
    }

    fn mdev_entries(&self, id: &ParentId, uuid: MdevUuid) -> Entries {
        let Some(mdev) = self.mdev(uuid).filter(|m| &m.parent().id == id) else {
            return Vec::new();
        };
        let Some(parent) = parent_path(self.platform(), mdev.parent()) else {
            return Vec::new();
        };
        let mut e = vec![
            ("remove".to_owned(), Node::Attr(Attr::Remove(uuid))),
            ("uevent".to_owned(), Node::Attr(Attr::MdevUevent(uuid))),
            (
                "mdev_type".to_owned(),
                Node::Link(format!(
                    "{parent}/mdev_supported_types/{}",
                    mdev.type_name()
                )),
            ),
            (
                "iommu_group".to_owned(),
                Node::Link(format!("kernel/iommu_groups/{}", mdev.group())),
            ),
            ("subsystem".to_owned(), Node::Link("bus/mdev".to_owned())),
        ];
        if let Some(drv) = self.mdev_driver_name(&mdev) {
            e.push((
                "driver".to_owned(),
                Node::Link(format!("bus/mdev/drivers/{drv}")),
            ));
        }
        e
    }
}
