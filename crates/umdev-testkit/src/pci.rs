//! PCI platform fixtures: addresses of the default platform, a recording
//! IOMMU layer and a configurable driver.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::{Bdf, PciDev, PciDeviceId, PciDriver, Platform, SriovConfigure};

/// Parses an address (`ssss:bb:dd.f`); panics on a malformed one.
pub fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

/// The default platform's NVMe function (0000:05:00.0).
pub fn nvme() -> Bdf {
    bdf("0000:05:00.0")
}

/// What the platform told the IOMMU layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `probe_device`: the device and the group it was put in.
    Probe(Bdf, u32),
    /// `release_device`.
    Release(Bdf),
    /// A DMA-API user appeared on the device (driver bound).
    Use(Bdf),
    /// The DMA-API user went away.
    Unuse(Bdf),
}

/// An IOMMU layer that records calls and refuses the default domain
/// (EBUSY) for devices of groups marked user-owned.
#[derive(Default)]
pub struct MockIommu {
    /// Every call, in order.
    pub events: Mutex<Vec<Event>>,
    /// The group of each probed device.
    pub groups: Mutex<BTreeMap<Bdf, u32>>,
    /// Groups marked user-owned.
    pub owned: Mutex<BTreeSet<u32>>,
    /// DMA-API users per group (iommu group owner_cnt with owner NULL).
    pub users: Mutex<BTreeMap<u32, usize>>,
}

impl MockIommu {
    /// Every call so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.events.lock().clear();
    }

    /// Marks group `g` user-owned.
    pub fn own_group(&self, g: u32) {
        self.owned.lock().insert(g);
    }
}

impl umdev_pci::IommuHooks for MockIommu {
    fn probe_device(&self, bdf: Bdf, group: u32) -> Result<(), Errno> {
        self.groups.lock().insert(bdf, group);
        self.events.lock().push(Event::Probe(bdf, group));
        Ok(())
    }

    fn release_device(&self, bdf: Bdf) {
        self.groups.lock().remove(&bdf);
        self.events.lock().push(Event::Release(bdf));
    }

    fn device_use_default_domain(&self, bdf: Bdf) -> Result<(), Errno> {
        let g = self.groups.lock()[&bdf];
        if self.owned.lock().contains(&g) {
            return Err(Errno::BUSY);
        }
        *self.users.lock().entry(g).or_default() += 1;
        self.events.lock().push(Event::Use(bdf));
        Ok(())
    }

    fn device_unuse_default_domain(&self, bdf: Bdf) {
        let g = self.groups.lock()[&bdf];
        *self.users.lock().get_mut(&g).unwrap() -= 1;
        self.events.lock().push(Event::Unuse(bdf));
    }
}

/// Installs a fresh mock IOMMU on `p`.
pub fn hook(p: &Platform) -> Arc<MockIommu> {
    let m = Arc::new(MockIommu::default());
    let weak = Arc::downgrade(&m) as std::sync::Weak<dyn umdev_pci::IommuHooks>;
    p.set_iommu_hooks(weak).unwrap();
    m
}

/// A driver whose probe result and behaviour tests choose.
pub struct TestDriver {
    /// The driver's name.
    pub name: String,
    /// Whether it is a DMA-API (kernel) driver.
    pub managed: bool,
    /// The ids it matches.
    pub ids: Vec<PciDeviceId>,
    /// What `probe` returns.
    pub probe_result: Mutex<Result<(), Errno>>,
    /// Devices probed so far.
    pub probed: Mutex<Vec<Bdf>>,
    /// Devices removed so far.
    pub removed: Mutex<Vec<Bdf>>,
    /// Its `sriov_configure`, if any.
    pub sriov: Option<SriovMode>,
    /// What probe saw through read-only platform queries.
    pub seen: Mutex<Vec<String>>,
}

/// How the driver's `sriov_configure` behaves.
pub enum SriovMode {
    /// Enables / disables as asked.
    Simple,
    /// Fails with this errno.
    Fail(Errno),
}

impl TestDriver {
    /// A driver named `name` matching `ids`.
    pub fn new(name: &str, managed: bool, ids: Vec<PciDeviceId>) -> Self {
        Self {
            name: name.into(),
            managed,
            ids,
            probe_result: Mutex::new(Ok(())),
            probed: Mutex::new(Vec::new()),
            removed: Mutex::new(Vec::new()),
            sriov: None,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The driver behind an `Arc`.
    pub fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

impl PciDriver for TestDriver {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver_managed_dma(&self) -> bool {
        self.managed
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        self.ids.clone()
    }

    fn probe(&self, dev: &PciDev<'_>) -> Result<(), Errno> {
        // Read-only queries must work while the platform probes.
        let mut vendor = [0u8; 2];
        dev.config_read(0, &mut vendor).unwrap();
        let p = dev.platform();
        let info = p.function(dev.bdf()).unwrap();
        let bound = p.driver_of(dev.bdf()).map(|d| d.name);
        self.seen.lock().push(format!(
            "{} {:04x} {:?} {:?}",
            dev.bdf(),
            u16::from_le_bytes(vendor),
            info.driver,
            bound
        ));
        self.probed.lock().push(dev.bdf());
        *self.probe_result.lock()
    }

    fn remove(&self, dev: &PciDev<'_>) {
        self.removed.lock().push(dev.bdf());
    }

    fn sriov_configure(&self) -> Option<&dyn SriovConfigure> {
        self.sriov.as_ref().map(|_| self as &dyn SriovConfigure)
    }
}

impl SriovConfigure for TestDriver {
    fn configure(&self, dev: &PciDev<'_>, num_vfs: u16) -> Result<u16, Errno> {
        match self.sriov {
            Some(SriovMode::Fail(e)) => Err(e),
            _ if num_vfs == 0 => {
                dev.disable_sriov();
                Ok(0)
            }
            _ => {
                dev.enable_sriov(num_vfs).map_err(|e| e.errno())?;
                Ok(num_vfs)
            }
        }
    }
}
