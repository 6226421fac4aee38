//! Driver binding with Linux's results: drivers/base/bus.c (`bind_store`,
//! `unbind_store`, `drivers_probe_store`), drivers/base/dd.c
//! (`really_probe`, `device_release_driver`), drivers/base/driver.c
//! (`driver_set_override`) and drivers/pci/pci-driver.c (`new_id_store`,
//! `remove_id_store`).

use std::sync::Arc;

use crate::device::{DeviceOps, PciDev};
use crate::driver::DriverEntry;
use crate::error::PciError;
use crate::function::Function;
use crate::info::FunctionInfo;
use crate::{Bdf, Platform};

/// `driver_set_override` refuses `len >= PAGE_SIZE - 1`.
const DRIVER_OVERRIDE_MAX: usize = 4096 - 2;

impl Platform {
    /// `echo <bdf> > /sys/bus/pci/drivers/<driver>/bind`: `ENODEV` if there
    /// is no such device or the driver does not match it (id table, dynamic
    /// ids, `driver_override`), `EBUSY` if it already has a driver, else
    /// the probe's result.
    pub fn bind(&self, driver: &str, bdf: Bdf) -> Result<(), PciError> {
        let entry = self.driver_entry(driver)?;
        let f = self.lookup(bdf)?;
        if !self.matches(&entry, &f) {
            return Err(PciError::NoMatch {
                driver: driver.to_owned(),
                bdf,
            });
        }
        let _dev = f.device_lock.lock();
        self.driver_probe_device_locked(&f, &entry)
    }

    /// `echo <bdf> > /sys/bus/pci/drivers/<driver>/unbind`: `ENODEV` unless
    /// the device is bound to that driver.
    pub fn unbind(&self, driver: &str, bdf: Bdf) -> Result<(), PciError> {
        let entry = self.driver_entry(driver)?;
        let f = self.lookup(bdf)?;
        let _dev = f.device_lock.lock();
        let bound_here = f
            .state
            .lock()
            .driver
            .as_ref()
            .is_some_and(|d| Arc::ptr_eq(d, &entry));
        if !bound_here {
            return Err(PciError::NotBound {
                bdf,
                driver: driver.to_owned(),
            });
        }
        self.release_driver_locked(&f);
        Ok(())
    }

    /// Writes `driver_override` as sysfs does: text up to the first NUL and
    /// the first newline; an empty value or a lone `"\n"` clears it; 4095
    /// bytes or more is `EINVAL`.
    pub fn set_driver_override(&self, bdf: Bdf, value: &str) -> Result<(), PciError> {
        let f = self.lookup(bdf)?;
        if value.len() > DRIVER_OVERRIDE_MAX {
            return Err(PciError::OverrideTooLong { len: value.len() });
        }
        let s = value.split('\0').next().unwrap_or_default();
        let s = s.split('\n').next().unwrap_or_default();
        f.state.lock().driver_override = (!s.is_empty()).then(|| s.to_owned());
        Ok(())
    }

    /// The current `driver_override` (`ENODEV` if no such device).
    pub fn driver_override(&self, bdf: Bdf) -> Result<Option<String>, PciError> {
        Ok(self.lookup(bdf)?.state.lock().driver_override.clone())
    }

    /// `echo "vvvv dddd [ssvv ssdd cccc mmmm data]" > .../new_id`: adds a
    /// dynamic id (`EINVAL` for fewer than two hex fields or driver_data
    /// not in the static table, `EEXIST` if the id already matches), then
    /// offers the driver every unbound device (probe errors are ignored,
    /// as `driver_attach` does).
    pub fn new_id(&self, driver: &str, text: &str) -> Result<(), PciError> {
        let entry = self.driver_entry(driver)?;
        entry.new_id(text)?;
        self.driver_attach(&entry);
        Ok(())
    }

    /// `echo "vvvv dddd [...]" > .../remove_id`: `ENODEV` if no dynamic id
    /// matches. Bound devices stay bound.
    pub fn remove_id(&self, driver: &str, text: &str) -> Result<(), PciError> {
        self.driver_entry(driver)?.remove_id(text)
    }

    /// `echo <bdf> > /sys/bus/pci/drivers_probe`: offers an unbound device
    /// to every driver in registration order until one binds. A probe
    /// failure moves on to the next driver; a DMA-ownership refusal stops
    /// with its errno. No match is not an error.
    pub fn drivers_probe(&self, bdf: Bdf) -> Result<(), PciError> {
        let f = self.lookup(bdf)?;
        self.device_attach(&f)
    }

    /// Binds every function to its start-up driver from the platform file,
    /// in address order; stops at the first failure.
    pub fn bind_startup_drivers(&self) -> Result<(), PciError> {
        let startup: Vec<(Bdf, String)> = self
            .topo
            .read()
            .iter()
            .filter_map(|f| Some((f.spec.bdf, f.spec.startup_driver.clone()?)))
            .collect();
        for (bdf, driver) in startup {
            self.bind(&driver, bdf)?;
        }
        Ok(())
    }

    /// `pci_match_device` for a function's current override.
    fn matches(&self, entry: &DriverEntry, f: &Function) -> bool {
        let over = f.state.lock().driver_override.clone();
        entry.match_device(&f.ids(), over.as_deref())
    }

    /// drivers/base/dd.c `__driver_attach` for every present function:
    /// unbound matching devices are probed; failures are ignored.
    pub(crate) fn driver_attach(&self, entry: &Arc<DriverEntry>) {
        let present: Vec<Arc<Function>> = self.topo.read().iter().cloned().collect();
        for f in present {
            if !self.matches(entry, &f) {
                continue;
            }
            let _dev = f.device_lock.lock();
            // EBUSY for bound devices and probe failures are dropped.
            let _ = self.driver_probe_device_locked(&f, entry);
        }
    }

    /// drivers/base/dd.c `device_attach`: registered drivers in order.
    pub(crate) fn device_attach(&self, f: &Arc<Function>) -> Result<(), PciError> {
        let _dev = f.device_lock.lock();
        if f.state.lock().driver.is_some() {
            return Ok(());
        }
        let drivers: Vec<Arc<DriverEntry>> = self.drivers.read().clone();
        for entry in drivers {
            if !self.matches(&entry, f) {
                continue;
            }
            match self.driver_probe_device_locked(f, &entry) {
                Ok(()) => return Ok(()),
                // A refused default domain is a negative return from
                // really_probe and ends the walk; probe errors do not.
                Err(e @ PciError::DmaOwnership { .. }) => return Err(e),
                Err(_) => continue,
            }
        }
        Ok(())
    }

    /// drivers/base/dd.c `__driver_probe_device` + `really_probe`, with the
    /// device lock held by the caller.
    fn driver_probe_device_locked(
        &self,
        f: &Arc<Function>,
        entry: &Arc<DriverEntry>,
    ) -> Result<(), PciError> {
        let bdf = f.spec.bdf;
        {
            let state = f.state.lock();
            if state.dead {
                return Err(PciError::NoDevice(bdf));
            }
            if let Some(cur) = &state.driver {
                return Err(PciError::AlreadyBound {
                    bdf,
                    driver: cur.name.clone(),
                });
            }
        }
        // pci_dma_configure: a DMA-API driver needs the default domain.
        let hooks = self.dma_hooks(bdf);
        if !entry.managed_dma
            && let Some(h) = &hooks
        {
            h.device_use_default_domain(bdf)
                .map_err(|errno| PciError::DmaOwnership { bdf, errno })?;
        }
        // local_pci_probe sets pci_dev->driver before calling probe.
        f.state.lock().driver = Some(entry.clone());
        match entry.driver.probe(&PciDev::new(self, f)) {
            Ok(()) => Ok(()),
            Err(errno) => {
                f.state.lock().driver = None;
                if !entry.managed_dma
                    && let Some(h) = &hooks
                {
                    h.device_unuse_default_domain(bdf);
                }
                Err(PciError::Probe {
                    bdf,
                    driver: entry.name.clone(),
                    errno,
                })
            }
        }
    }

    /// drivers/base/dd.c `__device_release_driver`, device lock held:
    /// `remove`, then the DMA-API driver gives the default domain back.
    pub(crate) fn release_driver_locked(&self, f: &Arc<Function>) {
        let Some(entry) = f.state.lock().driver.clone() else {
            return;
        };
        entry.driver.remove(&PciDev::new(self, f));
        if !entry.managed_dma
            && let Some(h) = self.dma_hooks(f.spec.bdf)
        {
            h.device_unuse_default_domain(f.spec.bdf);
        }
        f.state.lock().driver = None;
    }
}

/// What a driver reaches through its [`PciDev`].
impl DeviceOps for Arc<Function> {
    fn bdf(&self) -> Bdf {
        self.spec.bdf
    }

    fn info(&self, group: Option<u32>) -> FunctionInfo {
        Function::info(self, group)
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        Function::config_read(self, offset, buf)
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        Function::config_write(self, offset, data)
    }

    fn enable_sriov(&self, platform: &Platform, num_vfs: u16) -> Result<(), PciError> {
        platform.sriov_enable(self, num_vfs)
    }

    fn disable_sriov(&self, platform: &Platform) {
        platform.sriov_disable(self);
    }

    fn num_vfs(&self) -> u16 {
        self.state.lock().vfs.len() as u16
    }
}
