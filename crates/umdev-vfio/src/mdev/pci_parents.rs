//! The parents a PCI parent driver registered: one per function it is
//! bound to, each with the driver's state for that function (what a
//! Linux parent driver keeps in its `pci_get_drvdata`). Probe registers,
//! remove unregisters (removing the function's mdevs) before the function
//! is unbound, so it can be bound again.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_pci::Bdf;

use super::{Mdev, MdevBus, MdevDriver, MdevError, MdevParent, MdevTypeDesc, ParentDevice};

/// One bound function.
struct Entry<D> {
    parent: Arc<MdevParent>,
    driver: Arc<D>,
}

/// The bound functions of one PCI parent driver, by address.
pub struct PciParents<D> {
    bound: Mutex<BTreeMap<Bdf, Entry<D>>>,
}

impl<D> Default for PciParents<D> {
    fn default() -> Self {
        Self {
            bound: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<D> std::fmt::Debug for PciParents<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.bound.lock().keys()).finish()
    }
}

impl<D: MdevDriver + 'static> PciParents<D> {
    /// None bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// From probe: `bdf`, bound to the PCI driver `pci_driver`, becomes an
    /// mdev parent on `bus` with `driver` and `types`
    /// (`mdev_register_parent`). EEXIST if it already is one.
    pub fn register(
        &self,
        bus: &Arc<MdevBus>,
        bdf: Bdf,
        pci_driver: &str,
        driver: Arc<D>,
        types: Vec<MdevTypeDesc>,
    ) -> Result<(), MdevError> {
        let parent =
            bus.register_parent(ParentDevice::pci(bdf, pci_driver), driver.clone(), types)?;
        self.bound.lock().insert(bdf, Entry { parent, driver });
        Ok(())
    }

    /// From remove: unregisters `bdf`'s parent (its mdevs are removed) and
    /// returns the driver state for the caller to tear down.
    pub fn unregister(&self, bdf: Bdf) -> Option<Arc<D>> {
        let entry = self.bound.lock().remove(&bdf)?;
        entry.parent.unregister();
        Some(entry.driver)
    }

    /// The bound functions, in address order.
    pub fn bdfs(&self) -> Vec<Bdf> {
        self.bound.lock().keys().copied().collect()
    }

    /// The parent registered for `bdf`.
    pub fn parent(&self, bdf: Bdf) -> Option<Arc<MdevParent>> {
        self.bound.lock().get(&bdf).map(|e| e.parent.clone())
    }

    /// The driver state of `bdf`.
    pub fn driver(&self, bdf: Bdf) -> Option<Arc<D>> {
        self.bound.lock().get(&bdf).map(|e| e.driver.clone())
    }

    /// The driver state of the function that created `mdev`; `None` for
    /// an mdev of another driver.
    pub fn driver_of(&self, mdev: &Mdev) -> Option<Arc<D>> {
        let bound = self.bound.lock();
        bound
            .values()
            .find(|e| e.parent.device() == mdev.parent())
            .map(|e| e.driver.clone())
    }
}
