//! PCI drivers: the trait higher layers implement, id tables and matching
//! (drivers/pci/pci-driver.c), snapshots of registered drivers, and the simple built-in drivers a platform
//! file declares.

use parking_lot::Mutex;
use rustix::io::Errno;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

use crate::device::PciDev;
use crate::error::PciError;
use crate::regs::PCI_ANY_ID;

/// One `struct pci_device_id` entry. `PCI_ANY_ID` (`!0`) in an id field
/// matches anything; `class` is compared under `class_mask`.
///
/// In a platform file's `[[driver]]` table the ids are 16-bit and an
/// absent id is `PCI_ANY_ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciDeviceId {
    /// Vendor ID or `PCI_ANY_ID`.
    #[serde(default = "any_id", deserialize_with = "id16")]
    pub vendor: u32,
    /// Device ID or `PCI_ANY_ID`.
    #[serde(default = "any_id", deserialize_with = "id16")]
    pub device: u32,
    /// Subsystem vendor ID or `PCI_ANY_ID`.
    #[serde(default = "any_id", deserialize_with = "id16")]
    pub subvendor: u32,
    /// Subsystem device ID or `PCI_ANY_ID`.
    #[serde(default = "any_id", deserialize_with = "id16")]
    pub subdevice: u32,
    /// 24-bit class code.
    #[serde(default)]
    pub class: u32,
    /// Class bits that must match.
    #[serde(default)]
    pub class_mask: u32,
    /// Opaque data handed back to the driver.
    #[serde(default)]
    pub driver_data: u64,
    /// Matches only devices whose `driver_override` names the driver
    /// (`PCI_DRIVER_OVERRIDE_DEVICE_VFIO`).
    #[serde(default)]
    pub override_only: bool,
}

fn any_id() -> u32 {
    PCI_ANY_ID
}

/// A 16-bit id of a platform file.
fn id16<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    u16::deserialize(d).map(u32::from)
}

impl PciDeviceId {
    /// `PCI_DEVICE(vendor, device)`.
    pub const fn device(vendor: u16, device: u16) -> Self {
        Self {
            vendor: vendor as u32,
            device: device as u32,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class: 0,
            class_mask: 0,
            driver_data: 0,
            override_only: false,
        }
    }

    /// `PCI_DEVICE_CLASS(class, mask)`.
    pub const fn class(class: u32, class_mask: u32) -> Self {
        Self {
            vendor: PCI_ANY_ID,
            device: PCI_ANY_ID,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class,
            class_mask,
            driver_data: 0,
            override_only: false,
        }
    }

    /// drivers/pci/pci.h `pci_match_one_device`.
    pub fn matches(&self, dev: &DeviceIds) -> bool {
        let field = |id: u32, v: u16| id == PCI_ANY_ID || id == u32::from(v);
        field(self.vendor, dev.vendor)
            && field(self.device, dev.device)
            && field(self.subvendor, dev.subsystem_vendor)
            && field(self.subdevice, dev.subsystem_device)
            && (self.class ^ dev.class) & self.class_mask == 0
    }

    /// Whether this is the end marker of a C id table (all of vendor,
    /// subvendor and class_mask zero), which `pci_match_id` never matches.
    fn is_terminator(&self) -> bool {
        self.vendor == 0 && self.subvendor == 0 && self.class_mask == 0
    }
}

/// The identity fields of a device that id tables match against (the
/// `struct pci_dev` copies; a VF's vendor is its PF's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceIds {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem device ID.
    pub subsystem_device: u16,
    /// 24-bit class code.
    pub class: u32,
}

/// A PCI driver.
///
/// `probe`, `remove` and `SriovConfigure::configure` run with the device's
/// bind lock held (Linux `device_lock`) and no other platform lock: they may
/// call read-only platform queries and config accesses, and bind / unbind
/// *other* devices, but not bind or unbind their own device.
pub trait PciDriver: Send + Sync {
    /// Driver name (`/sys/bus/pci/drivers/<name>`).
    fn name(&self) -> &str;

    /// Whether the driver manages DMA itself and may bind to devices of a
    /// user-owned group (vfio-pci, pci-stub, pcieport). When false the
    /// platform asks the IOMMU layer for the default domain before probing.
    fn driver_managed_dma(&self) -> bool;

    /// Static id table; empty means "dynamic ids and overrides only".
    fn id_table(&self) -> Vec<PciDeviceId>;

    /// Binds to `dev`; an error fails the bind with that errno.
    fn probe(&self, dev: &PciDev<'_>) -> Result<(), Errno>;

    /// Unbinds from `dev`.
    fn remove(&self, dev: &PciDev<'_>);

    /// The driver's `sriov_configure`, if it has one.
    fn sriov_configure(&self) -> Option<&dyn SriovConfigure> {
        None
    }
}

/// A PF driver's `sriov_configure` callback.
pub trait SriovConfigure: Send + Sync {
    /// Enables `num_vfs` VFs (with [`PciDev::enable_sriov`]) or, for 0,
    /// disables them; returns the number enabled.
    fn configure(&self, dev: &PciDev<'_>, num_vfs: u16) -> Result<u16, Errno>;
}

/// A registered driver and its dynamic ids.
pub(crate) struct DriverEntry {
    pub driver: Arc<dyn PciDriver>,
    pub name: String,
    pub managed_dma: bool,
    pub ids: Vec<PciDeviceId>,
    pub builtin: bool,
    /// `drv->dynids`, newest last.
    pub dynids: Mutex<Vec<PciDeviceId>>,
}

impl DriverEntry {
    pub fn new(driver: Arc<dyn PciDriver>, builtin: bool) -> Self {
        Self {
            name: driver.name().to_owned(),
            managed_dma: driver.driver_managed_dma(),
            ids: driver.id_table(),
            driver,
            builtin,
            dynids: Mutex::new(Vec::new()),
        }
    }

    /// drivers/pci/pci-driver.c `pci_match_device`: with an override only
    /// the named driver matches (even without ids); dynamic ids first, then
    /// the static table (override-only entries need an override).
    pub fn match_device(&self, dev: &DeviceIds, driver_override: Option<&str>) -> bool {
        if driver_override.is_some_and(|o| o != self.name) {
            return false;
        }
        if self.dynids.lock().iter().any(|id| id.matches(dev)) {
            return true;
        }
        let static_match = self
            .ids
            .iter()
            .filter(|id| !id.is_terminator() && id.matches(dev))
            .any(|id| !id.override_only || driver_override.is_some());
        static_match || driver_override.is_some()
    }

    /// drivers/pci/pci-driver.c `new_id_store`.
    pub fn new_id(&self, text: &str) -> Result<(), PciError> {
        let f = parse_id_fields(text, 7)?;
        let get = |i: usize, default: u64| f.get(i).copied().unwrap_or(default);
        let id = PciDeviceId {
            vendor: get(0, 0) as u32,
            device: get(1, 0) as u32,
            subvendor: get(2, PCI_ANY_ID.into()) as u32,
            subdevice: get(3, PCI_ANY_ID.into()) as u32,
            class: get(4, 0) as u32,
            class_mask: get(5, 0) as u32,
            driver_data: get(6, 0),
            override_only: false,
        };
        // Without driver_data the id must not already match (a fake device
        // with these ids; u32 ids truncate to the 16-bit pci_dev fields).
        if f.len() != 7 {
            let fake = DeviceIds {
                vendor: id.vendor as u16,
                device: id.device as u16,
                subsystem_vendor: id.subvendor as u16,
                subsystem_device: id.subdevice as u16,
                class: id.class,
            };
            if self.match_device(&fake, None) {
                return Err(PciError::IdExists {
                    driver: self.name.clone(),
                });
            }
        }
        // Only driver_data values of an existing static entry are accepted.
        let live: Vec<_> = self.ids.iter().filter(|i| !i.is_terminator()).collect();
        if !self.ids.is_empty() && !live.iter().any(|i| i.driver_data == id.driver_data) {
            return Err(PciError::DriverDataMismatch {
                driver: self.name.clone(),
                driver_data: id.driver_data,
            });
        }
        self.dynids.lock().push(id);
        Ok(())
    }

    /// drivers/pci/pci-driver.c `remove_id_store`.
    pub fn remove_id(&self, text: &str) -> Result<(), PciError> {
        let f = parse_id_fields(text, 6)?;
        let get = |i: usize, default: u64| f.get(i).copied().unwrap_or(default) as u32;
        let (vendor, device) = (get(0, 0), get(1, 0));
        let (subvendor, subdevice) = (get(2, PCI_ANY_ID.into()), get(3, PCI_ANY_ID.into()));
        let (class, class_mask) = (get(4, 0), get(5, 0));
        let mut dynids = self.dynids.lock();
        let pos = dynids.iter().position(|id| {
            id.vendor == vendor
                && id.device == device
                && (subvendor == PCI_ANY_ID || id.subvendor == subvendor)
                && (subdevice == PCI_ANY_ID || id.subdevice == subdevice)
                && (id.class ^ class) & class_mask == 0
        });
        match pos {
            Some(i) => {
                dynids.remove(i);
                Ok(())
            }
            None => Err(PciError::NoSuchId {
                driver: self.name.clone(),
            }),
        }
    }
}

/// `sscanf(buf, "%x %x ...")` as the kernel does it: whitespace-separated
/// hex fields (optional `0x`), stopping at the first field that does not
/// parse; fewer than two fields is `EINVAL`. The first `max` are returned.
fn parse_id_fields(text: &str, max: usize) -> Result<Vec<u64>, PciError> {
    let mut out = Vec::new();
    for tok in text.split_whitespace().take(max) {
        let t = tok
            .strip_prefix("0x")
            .or_else(|| tok.strip_prefix("0X"))
            .unwrap_or(tok);
        // %x takes the longest hex prefix of the token.
        let end = t.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(t.len());
        let Ok(v) = u64::from_str_radix(&t[..end], 16) else {
            break;
        };
        // %x stores an unsigned int; %lx (driver_data) a long.
        out.push(if out.len() == 6 { v } else { v & 0xffff_ffff });
        if end != t.len() {
            break;
        }
    }
    if out.len() < 2 {
        return Err(PciError::InvalidId {
            text: text.trim_end().to_owned(),
        });
    }
    Ok(out)
}

/// A snapshot of a registered driver, handed out by platform queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    /// Name.
    pub name: String,
    /// Whether binding it leaves DMA ownership alone (`driver_managed_dma`).
    pub driver_managed_dma: bool,
    /// Declared in the platform file rather than registered in code.
    pub builtin: bool,
    /// Static id table.
    pub ids: Vec<PciDeviceId>,
    /// Ids added with `new_id`.
    pub dynamic_ids: Vec<PciDeviceId>,
    /// Whether it implements `sriov_configure`.
    pub sriov_configure: bool,
}

impl DriverEntry {
    /// A snapshot of the entry.
    pub fn info(&self) -> DriverInfo {
        DriverInfo {
            name: self.name.clone(),
            driver_managed_dma: self.managed_dma,
            builtin: self.builtin,
            ids: self.ids.clone(),
            dynamic_ids: self.dynids.lock().clone(),
            sriov_configure: self.driver.sriov_configure().is_some(),
        }
    }
}

/// `[[driver]]`: a driver declared in the platform file. Its probe always
/// succeeds; with `sriov_configure` it behaves like
/// `pci_sriov_configure_simple` and, like i40e / ixgbe, disables its VFs on
/// remove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimpleDriver {
    /// Driver name as in `/sys/bus/pci/drivers/<name>`.
    pub name: String,
    /// Whether the driver does no kernel DMA (vfio-pci, pci-stub,
    /// pcieport): binding it does not claim the group for the DMA API.
    #[serde(default, rename = "driver_managed_dma")]
    pub managed_dma: bool,
    /// Static id table.
    #[serde(default)]
    pub ids: Vec<PciDeviceId>,
    /// Whether the driver implements `sriov_configure`.
    #[serde(default, rename = "sriov_configure")]
    pub sriov: bool,
}

impl PciDriver for SimpleDriver {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver_managed_dma(&self) -> bool {
        self.managed_dma
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        self.ids.clone()
    }

    fn probe(&self, _dev: &PciDev<'_>) -> Result<(), Errno> {
        Ok(())
    }

    fn remove(&self, dev: &PciDev<'_>) {
        if self.sriov {
            dev.disable_sriov();
        }
    }

    fn sriov_configure(&self) -> Option<&dyn SriovConfigure> {
        self.sriov.then_some(self as &dyn SriovConfigure)
    }
}

impl SriovConfigure for SimpleDriver {
    /// drivers/pci/iov.c `pci_sriov_configure_simple`.
    fn configure(&self, dev: &PciDev<'_>, num_vfs: u16) -> Result<u16, Errno> {
        if num_vfs == 0 {
            dev.disable_sriov();
            return Ok(0);
        }
        dev.enable_sriov(num_vfs).map_err(|e| e.errno())?;
        Ok(num_vfs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(vendor: u16, device: u16, class: u32) -> DeviceIds {
        DeviceIds {
            vendor,
            device,
            subsystem_vendor: vendor,
            subsystem_device: 0,
            class,
        }
    }

    fn entry(table: Vec<PciDeviceId>) -> DriverEntry {
        DriverEntry::new(
            Arc::new(SimpleDriver {
                name: "d".into(),
                managed_dma: false,
                ids: table,
                sriov: false,
            }),
            true,
        )
    }

    #[test]
    fn match_one_device_fields_and_class_mask() {
        let dev = ids(0x8086, 0x1572, 0x020000);
        assert!(PciDeviceId::device(0x8086, 0x1572).matches(&dev));
        assert!(!PciDeviceId::device(0x8086, 0x1573).matches(&dev));
        assert!(PciDeviceId::class(0x020000, 0xffff00).matches(&dev));
        assert!(!PciDeviceId::class(0x060400, 0xffffff).matches(&dev));
        assert!(
            PciDeviceId::class(0x060400, 0).matches(&dev),
            "mask 0 matches any class"
        );
    }

    #[test]
    fn override_only_entries_need_an_override() {
        let mut id = PciDeviceId::device(0x8086, 0x1572);
        id.override_only = true;
        let e = entry(vec![id]);
        let dev = ids(0x8086, 0x1572, 0);
        assert!(!e.match_device(&dev, None));
        assert!(e.match_device(&dev, Some("d")));
        assert!(!e.match_device(&dev, Some("other")));
    }

    #[test]
    fn new_id_parsing_and_errnos() {
        let e = entry(vec![]);
        assert_eq!(e.new_id("8086").unwrap_err().errno(), Errno::INVAL);
        assert_eq!(e.new_id("zz 1234").unwrap_err().errno(), Errno::INVAL);
        e.new_id("8086 0b25\n").unwrap();
        assert_eq!(e.new_id("8086 0b25").unwrap_err().errno(), Errno::EXIST);
        // With all seven fields the duplicate check is skipped, as in Linux.
        e.new_id("8086 0b25 ffffffff ffffffff 0 0 0").unwrap();
        assert!(e.match_device(&ids(0x8086, 0x0b25, 0x088000), None));
        e.remove_id("8086 0b25").unwrap();
        e.remove_id("8086 0b25").unwrap();
        assert_eq!(e.remove_id("8086 0b25").unwrap_err().errno(), Errno::NODEV);
        assert_eq!(e.remove_id("8086").unwrap_err().errno(), Errno::INVAL);
    }

    #[test]
    fn new_id_driver_data_must_exist_in_static_table() {
        let mut known = PciDeviceId::device(0x8086, 0x1572);
        known.driver_data = 5;
        let e = entry(vec![known]);
        assert_eq!(
            e.new_id("8086 1234 ffffffff ffffffff 0 0 7")
                .unwrap_err()
                .errno(),
            Errno::INVAL
        );
        e.new_id("8086 1234 ffffffff ffffffff 0 0 5").unwrap();
        // Default driver_data 0 is not in the table either.
        assert_eq!(e.new_id("8086 1235").unwrap_err().errno(), Errno::INVAL);
        // A static id already matches: EEXIST comes first.
        assert_eq!(e.new_id("8086 1572").unwrap_err().errno(), Errno::EXIST);
    }
}
