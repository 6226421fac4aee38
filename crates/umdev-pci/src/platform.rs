//! The platform object: topology, drivers and IOMMU hooks behind interior
//! locks (see [`Platform`] for the locking rules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use crate::driver::{DriverEntry, DriverInfo, PciDriver};
use crate::error::PciError;
use crate::function::Function;
use crate::group::iommu_probe_device;
use crate::info::FunctionInfo;
use crate::load::{PlatformError, load};
use crate::topology::Topology;
use crate::unit::IommuUnitSpec;
use crate::{Bdf, IommuHooks};

/// The embedded default platform description.
pub const DEFAULT_PLATFORM_TOML: &str = include_str!("../platforms/default.toml");

/// The simulated PCI platform.
///
/// `Send + Sync`; every method takes `&self`. Locking, outermost first:
/// 1. a function's bind lock (Linux `device_lock`), held across a driver's
///    `probe` / `remove` / `sriov_configure` and the [`IommuHooks`] calls
///    they trigger; a PF's is taken before its VFs';
/// 2. leaf locks, never held while calling out: the topology `RwLock`, the
///    driver list, a function's binding state and config space.
///
/// So driver callbacks may run any query or config access (and bind other
/// devices), and hooks are called with at most bind locks held. A hook
/// implementation must not call back into bind / unbind / SR-IOV
/// operations of the device it is told about (it would wait for that
/// device's bind lock); read-only queries such as [`Platform::driver_of`]
/// and [`Platform::function`] are safe from hooks.
pub struct Platform {
    origin: String,
    iommu_units: Vec<IommuUnitSpec>,
    pub(crate) topo: RwLock<Topology>,
    /// Registered drivers in registration order (the bus's driver list).
    pub(crate) drivers: RwLock<Vec<Arc<DriverEntry>>>,
    hooks: RwLock<Option<Weak<dyn IommuHooks>>>,
}

impl Platform {
    /// The embedded default platform (`platforms/default.toml`).
    pub fn default_platform() -> Result<Self, PlatformError> {
        Self::from_toml_str(DEFAULT_PLATFORM_TOML, "default.toml")
    }

    /// A platform from TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, PlatformError> {
        let loaded = load(text, origin)?;
        let iommu_segments: BTreeSet<u16> = loaded
            .units
            .iter()
            .flat_map(|u| u.segments.iter().copied())
            .collect();
        let mut topo = Topology::new(iommu_segments);
        for spec in loaded.functions {
            iommu_probe_device(&mut topo, Function::new(spec));
        }
        let drivers = loaded
            .drivers
            .into_iter()
            .map(|d| Arc::new(DriverEntry::new(Arc::new(d), true)))
            .collect();
        Ok(Self {
            origin: origin.to_owned(),
            iommu_units: loaded.units,
            topo: RwLock::new(topo),
            drivers: RwLock::new(drivers),
            hooks: RwLock::new(None),
        })
    }

    /// A platform from a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PlatformError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PlatformError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Name of the description this platform came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The IOMMU units of the description.
    pub fn iommu_units(&self) -> Vec<IommuUnitSpec> {
        self.iommu_units.clone()
    }

    /// Registers the IOMMU layer. Calls `probe_device` for every grouped
    /// function in address order, then `device_use_default_domain` for
    /// functions already bound to DMA-API drivers, so the IOMMU layer's
    /// counts match. Returns the first `probe_device` error, after
    /// offering every function.
    pub fn set_iommu_hooks(&self, hooks: Weak<dyn IommuHooks>) -> Result<(), PciError> {
        *self.hooks.write() = Some(hooks);
        let Some(h) = self.hooks() else {
            return Ok(());
        };
        let present: Vec<(Arc<Function>, Option<u32>)> = {
            let topo = self.topo.read();
            topo.iter()
                .map(|f| (f.clone(), topo.group(f.spec.bdf)))
                .collect()
        };
        let mut first_err = None;
        for (f, group) in &present {
            let bdf = f.spec.bdf;
            if let Some(group) = group
                && let Err(errno) = h.probe_device(bdf, *group)
            {
                first_err.get_or_insert(PciError::IommuProbe { bdf, errno });
            }
        }
        for (f, group) in &present {
            if group.is_none() {
                continue;
            }
            let _dev = f.device_lock.lock();
            let dma_api = f
                .state
                .lock()
                .driver
                .as_ref()
                .is_some_and(|e| !e.managed_dma);
            if dma_api && let Err(errno) = h.device_use_default_domain(f.spec.bdf) {
                first_err.get_or_insert(PciError::DmaOwnership {
                    bdf: f.spec.bdf,
                    errno,
                });
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The registered IOMMU layer, if it is still alive.
    pub(crate) fn hooks(&self) -> Option<Arc<dyn IommuHooks>> {
        self.hooks.read().as_ref().and_then(Weak::upgrade)
    }

    /// The IOMMU layer for default-domain use by `bdf`'s driver: none when
    /// the function has no group (`iommu_device_use_default_domain` is a
    /// no-op for devices without a group).
    pub(crate) fn dma_hooks(&self, bdf: Bdf) -> Option<Arc<dyn IommuHooks>> {
        self.iommu_group(bdf).and(self.hooks())
    }

    /// Addresses of all present functions, in address order.
    pub fn functions(&self) -> Vec<Bdf> {
        self.topo.read().iter().map(|f| f.spec.bdf).collect()
    }

    /// A snapshot of the function at `bdf`.
    pub fn function(&self, bdf: Bdf) -> Option<FunctionInfo> {
        let (f, group) = {
            let topo = self.topo.read();
            (topo.get(bdf)?.clone(), topo.group(bdf))
        };
        Some(f.info(group))
    }

    /// IOMMU group number of `bdf` (`/sys/bus/pci/devices/<bdf>/iommu_group`).
    pub fn iommu_group(&self, bdf: Bdf) -> Option<u32> {
        self.topo.read().group(bdf)
    }

    /// All IOMMU groups with their members (`/sys/kernel/iommu_groups`).
    pub fn iommu_groups(&self) -> BTreeMap<u32, Vec<Bdf>> {
        self.topo.read().groups()
    }

    /// Reads `buf.len()` bytes of config space at `offset`.
    pub fn config_read(&self, bdf: Bdf, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        self.lookup(bdf)?.config_read(offset, buf)
    }

    /// Writes config space at `offset` through the registers' write masks.
    pub fn config_write(&self, bdf: Bdf, offset: u16, data: &[u8]) -> Result<(), PciError> {
        self.lookup(bdf)?.config_write(offset, data)
    }

    /// The function at `bdf`, or `ENODEV`.
    pub(crate) fn lookup(&self, bdf: Bdf) -> Result<Arc<Function>, PciError> {
        self.topo
            .read()
            .get(bdf)
            .cloned()
            .ok_or(PciError::NoDevice(bdf))
    }

    /// Registered drivers in registration order.
    pub fn drivers(&self) -> Vec<DriverInfo> {
        self.drivers.read().iter().map(|e| e.info()).collect()
    }

    /// The driver bound to `bdf`.
    pub fn driver_of(&self, bdf: Bdf) -> Option<DriverInfo> {
        let f = self.lookup(bdf).ok()?;
        let entry = f.state.lock().driver.clone()?;
        Some(entry.info())
    }

    /// The registered driver named `name`.
    pub(crate) fn driver_entry(&self, name: &str) -> Result<Arc<DriverEntry>, PciError> {
        self.drivers
            .read()
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .ok_or_else(|| PciError::NoDriver(name.to_owned()))
    }

    /// Registers a driver (`pci_register_driver`): `EEXIST` if the name is
    /// taken; then offers it every unbound device it matches.
    pub fn register_driver(&self, driver: Arc<dyn PciDriver>) -> Result<(), PciError> {
        let entry = Arc::new(DriverEntry::new(driver, false));
        {
            let mut drivers = self.drivers.write();
            if drivers.iter().any(|e| e.name == entry.name) {
                return Err(PciError::DriverExists(entry.name.clone()));
            }
            drivers.push(entry.clone());
        }
        self.driver_attach(&entry);
        Ok(())
    }

    /// Unregisters a driver (`pci_unregister_driver`), unbinding it from
    /// every device first; `ENODEV` if no such driver.
    pub fn unregister_driver(&self, name: &str) -> Result<(), PciError> {
        let entry = {
            let mut drivers = self.drivers.write();
            let pos = drivers
                .iter()
                .position(|e| e.name == name)
                .ok_or_else(|| PciError::NoDriver(name.to_owned()))?;
            drivers.remove(pos)
        };
        let bound: Vec<Arc<Function>> = self.topo.read().iter().cloned().collect();
        for f in bound {
            let _dev = f.device_lock.lock();
            let mine = f
                .state
                .lock()
                .driver
                .as_ref()
                .is_some_and(|d| Arc::ptr_eq(d, &entry));
            if mine {
                self.release_driver_locked(&f);
            }
        }
        Ok(())
    }
}
