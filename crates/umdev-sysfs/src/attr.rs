//! Attribute `show` and `store`: the kernel's formats and parsing, each
//! store a call into the model whose errno is the write's.

use umdev_pci::{Bdf, FunctionInfo};
use umdev_vfio::mdev::{MdevType, ParentId};

use crate::SysfsError;
use crate::kstrtox::kstrtou16;
use crate::node::{Attr, DriverAttr, PAGE_SIZE, PciAttr, TypeAttr};
use crate::tree::Tree;

/// The name VFIO gives an emulated-IOMMU group, which is what an mdev's
/// group is (drivers/vfio/group.c `vfio_noiommu_group_alloc`).
const EMULATED_GROUP_NAME: &str = "vfio-noiommu";

/// Config space bytes a reader without `CAP_SYS_ADMIN` sees.
const UNPRIVILEGED_CONFIG: u16 = 64;

impl Tree {
    /// The attribute's content now, for a reader with or without
    /// `CAP_SYS_ADMIN` (`privileged`).
    pub(crate) fn show(
        &self,
        attr: &Attr,
        path: &str,
        privileged: bool,
    ) -> Result<Vec<u8>, SysfsError> {
        let gone = || SysfsError::NotFound {
            path: path.to_owned(),
        };
        let text = match attr {
            Attr::Pci(bdf, PciAttr::Config { size }) => {
                // pci-sysfs.c `pci_read_config`: 64 bytes (the type 0/1
                // header) without CAP_SYS_ADMIN.
                let size = if privileged {
                    *size
                } else {
                    UNPRIVILEGED_CONFIG
                };
                let mut buf = vec![0u8; usize::from(size)];
                self.platform().config_read(*bdf, 0, &mut buf)?;
                return Ok(buf);
            }
            Attr::Pci(bdf, a) => self.show_pci(*bdf, *a).ok_or_else(gone)?,
            Attr::Type(id, name, a) => {
                let t = self.mdev_type(id, name, path)?;
                match a {
                    TypeAttr::Name => format!("{}\n", t.pretty_name()),
                    TypeAttr::Description => format!("{}\n", t.description().ok_or_else(gone)?),
                    TypeAttr::DeviceApi => format!("{}\n", t.device_api()),
                    TypeAttr::AvailableInstances => format!("{}\n", t.available_instances()),
                    // Write-only: `Tree::read` refuses before getting here.
                    TypeAttr::Create => String::new(),
                }
            }
            Attr::GroupName(_) => format!("{EMULATED_GROUP_NAME}\n"),
            // drivers/base/core.c `dev_uevent`: DRIVER= when bound; the
            // mdev bus adds nothing.
            Attr::MdevUevent(uuid) => {
                let mdev = self.mdev(*uuid).ok_or_else(gone)?;
                self.mdev_driver_name(&mdev)
                    .map(|d| format!("DRIVER={d}\n"))
                    .unwrap_or_default()
            }
            Attr::Driver(..) | Attr::DriversProbe | Attr::Remove(_) => String::new(),
        };
        Ok(text.into_bytes())
    }

    /// drivers/pci/pci-sysfs.c and iov.c show functions.
    fn show_pci(&self, bdf: Bdf, attr: PciAttr) -> Option<String> {
        let info = self.platform().function(bdf)?;
        let sriov = info.sriov.as_ref();
        Some(match attr {
            PciAttr::Vendor => format!("0x{:04x}\n", info.vendor),
            PciAttr::Device => format!("0x{:04x}\n", info.device),
            PciAttr::SubsystemVendor => format!("0x{:04x}\n", info.subsystem_vendor),
            PciAttr::SubsystemDevice => format!("0x{:04x}\n", info.subsystem_device),
            PciAttr::Class => format!("0x{:06x}\n", info.class),
            PciAttr::Revision => format!("0x{:02x}\n", info.revision),
            // `driver_override_show`: "%s\n" of a NULL pointer prints
            // "(null)".
            PciAttr::DriverOverride => {
                format!("{}\n", info.driver_override.as_deref().unwrap_or("(null)"))
            }
            PciAttr::SriovNumvfs => format!("{}\n", sriov.map(|_| info.num_vfs)?),
            PciAttr::SriovTotalvfs => format!("{}\n", sriov?.total_vfs),
            PciAttr::SriovOffset => format!("{}\n", sriov?.first_vf_offset),
            PciAttr::SriovStride => format!("{}\n", sriov?.vf_stride),
            PciAttr::SriovVfDevice => format!("{:x}\n", sriov?.vf_device),
            // drivers/base/core.c `dev_uevent` (DRIVER=) then
            // drivers/pci/pci-driver.c `pci_uevent`.
            PciAttr::Uevent => {
                let driver = info.driver.as_deref().map(|d| format!("DRIVER={d}\n"));
                format!(
                    "{}PCI_CLASS={:04X}\nPCI_ID={:04X}:{:04X}\nPCI_SUBSYS_ID={:04X}:{:04X}\n\
                     PCI_SLOT_NAME={bdf}\nMODALIAS={}\n",
                    driver.unwrap_or_default(),
                    info.class,
                    info.vendor,
                    info.device,
                    info.subsystem_vendor,
                    info.subsystem_device,
                    modalias(&info)
                )
            }
            PciAttr::Modalias => format!("{}\n", modalias(&info)),
            PciAttr::Config { .. } => return None,
        })
    }

    /// One store of `data` (at `offset`, which only binary attributes
    /// use). Returns the bytes consumed.
    pub(crate) fn store(
        &self,
        attr: &Attr,
        path: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, SysfsError> {
        if let Attr::Pci(bdf, PciAttr::Config { size }) = attr {
            return self.store_config(*bdf, *size, path, offset, data);
        }
        // fs/kernfs/file.c `kernfs_fop_write_iter`: sysfs text attributes
        // take at most a page per write (`atomic_write_len`), and
        // fs/sysfs/file.c `sysfs_kf_write` returns 0 for an empty one.
        if data.len() as u64 > PAGE_SIZE {
            return Err(SysfsError::TooBig {
                path: path.to_owned(),
                len: data.len(),
            });
        }
        if data.is_empty() {
            return Ok(0);
        }
        let platform = self.platform();
        match attr {
            Attr::Pci(bdf, PciAttr::DriverOverride) => {
                platform.set_driver_override(*bdf, &String::from_utf8_lossy(data))?;
            }
            Attr::Pci(bdf, PciAttr::SriovNumvfs) => {
                let n = kstrtou16(data).map_err(|e| number_error(e, path))?;
                platform.set_sriov_numvfs(*bdf, n)?;
            }
            Attr::Driver(drv, a) => match a {
                DriverAttr::Bind => platform.bind(drv, device_named(data)?)?,
                DriverAttr::Unbind => platform.unbind(drv, device_named(data)?)?,
                DriverAttr::NewId => platform.new_id(drv, &text(data, path)?)?,
                DriverAttr::RemoveId => platform.remove_id(drv, &text(data, path)?)?,
            },
            Attr::DriversProbe => platform.drivers_probe(device_named(data)?)?,
            Attr::Pci(_, PciAttr::Uevent) | Attr::MdevUevent(_) => synth_uevent(data, path)?,
            Attr::Type(id, name, TypeAttr::Create) => {
                return Ok(self.mdev_type(id, name, path)?.create_store(data)?);
            }
            Attr::Remove(uuid) => {
                let mdev = self.mdev(*uuid).ok_or_else(|| SysfsError::NotFound {
                    path: path.to_owned(),
                })?;
                return Ok(mdev.remove_store(data)?);
            }
            // Attributes without a store: `Tree::write` refuses them by
            // mode before getting here.
            Attr::Pci(..) | Attr::Type(..) | Attr::GroupName(_) => {
                return Err(SysfsError::Access {
                    path: path.to_owned(),
                });
            }
        }
        Ok(data.len())
    }

    /// drivers/pci/pci-sysfs.c `pci_write_config` behind fs/sysfs/file.c
    /// `sysfs_kf_bin_write`: EFBIG at or past the end, else clipped to the
    /// config space.
    fn store_config(
        &self,
        bdf: Bdf,
        size: u16,
        path: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, SysfsError> {
        let size = u64::from(size);
        if offset >= size {
            return Err(SysfsError::PastEnd {
                path: path.to_owned(),
            });
        }
        let len = (data.len() as u64).min(size - offset) as usize;
        // offset < size <= 4096 fits u16.
        self.platform()
            .config_write(bdf, offset as u16, &data[..len])?;
        Ok(len)
    }

    /// The type `name` of the registered parent `id`.
    fn mdev_type(&self, id: &ParentId, name: &str, path: &str) -> Result<MdevType, SysfsError> {
        let parent = self.parent(id).ok_or_else(|| SysfsError::NotFound {
            path: path.to_owned(),
        })?;
        Ok(parent.mdev_type(name)?)
    }
}

/// The PCI modalias (drivers/pci/pci-sysfs.c `modalias_show`).
fn modalias(info: &FunctionInfo) -> String {
    let [_, base, sub, prog] = info.class.to_be_bytes();
    format!(
        "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{base:02X}sc{sub:02X}i{prog:02X}",
        info.vendor, info.device, info.subsystem_vendor, info.subsystem_device
    )
}

/// A write to `uevent` (lib/kobject_uevent.c `kobject_synth_uevent`): the
/// action must be one of the kobject actions (EINVAL otherwise). There is
/// no uevent netlink here, so a valid request announces nothing.
fn synth_uevent(data: &[u8], path: &str) -> Result<(), SysfsError> {
    const ACTIONS: [&str; 8] = [
        "add", "remove", "change", "move", "online", "offline", "bind", "unbind",
    ];
    let text = String::from_utf8_lossy(data);
    let action = text.split([' ', '\n']).next().unwrap_or_default();
    if ACTIONS.contains(&action) {
        Ok(())
    } else {
        Err(SysfsError::InvalidValue {
            path: path.to_owned(),
        })
    }
}

/// `bus_find_device_by_name(bus, NULL, buf)` (drivers/base/bus.c
/// `bind_store`, `unbind_store`, `drivers_probe_store`): ENODEV when the
/// text names no device.
fn device_named(data: &[u8]) -> Result<Bdf, SysfsError> {
    let s = String::from_utf8_lossy(data);
    s.parse::<Bdf>()
        .map_err(|_| SysfsError::NoDevice(s.trim_end().to_owned()))
}

/// A store's text; EINVAL if it is not UTF-8 (no PCI id text is).
fn text(data: &[u8], path: &str) -> Result<String, SysfsError> {
    String::from_utf8(data.to_vec()).map_err(|_| SysfsError::InvalidValue {
        path: path.to_owned(),
    })
}

fn number_error(errno: rustix::io::Errno, path: &str) -> SysfsError {
    let path = path.to_owned();
    if errno == rustix::io::Errno::RANGE {
        SysfsError::OutOfRange { path }
    } else {
        SysfsError::InvalidValue { path }
    }
}
