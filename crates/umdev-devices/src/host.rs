//! The whole model brought up: the platform with its IOMMU, the device
//! models behind its endpoints, the mdev bus and every parent driver
//! registered (what a booted Linux host with the vfio, mdev, mdev-pci,
//! sdma and mtty modules loaded has). The faces (sysfs, vfio-user, the
//! control API) hold one [`Host`] and translate requests into calls on it.

use std::sync::Arc;

use umdev_iommu::system::{System, SystemError};
use umdev_pci::{Bdf, PciError, Platform};
use umdev_vfio::mdev::{MdevBus, MdevError, MdevParent};
use umdev_vfio::registration::VfioDevice;
use umdev_vfio::vfio_pci::VfioPci;

use crate::dmatest::{DmaTest, attach_dmatest};
use crate::mdev_pci::MdevPci;
use crate::mtty::register_mtty;
use crate::sdma::SdmaConfig;
use crate::sdma_mdev::SdmaMdev;

/// Errors of bringing a host up.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The platform or its IOMMU failed to start.
    #[error(transparent)]
    System(#[from] SystemError),
    /// A PCI driver failed to register.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// An mdev parent failed to register.
    #[error(transparent)]
    Mdev(#[from] MdevError),
}

impl HostError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> rustix::io::Errno {
        match self {
            HostError::System(e) => e.errno(),
            HostError::Pci(e) => e.errno(),
            HostError::Mdev(e) => e.errno(),
        }
    }
}

/// A VFIO device a consumer can open, with the name it is known by.
#[derive(Clone, Debug)]
pub struct Servable {
    /// The PCI address (`0000:01:00.0`) of a vfio-pci device, or the UUID
    /// of an mdev.
    pub name: String,
    /// Its registration.
    pub device: Arc<VfioDevice>,
}

/// The running model.
///
/// Bring up the embedded default platform, carve an mtty mdev out of its
/// `mtty` parent and find it among the devices the faces serve:
///
/// ```
/// use umdev_devices::host::Host;
///
/// let host = Host::default_platform()?;
/// let mtty1 = host.mtty.mdev_type("mtty-1")?;
/// let mdev = mtty1.create("83b8f4f2-509f-382f-3c1e-e6bfe0fa0001".parse()?)?;
/// let served = host.servable();
/// assert!(served.iter().any(|s| s.name == mdev.uuid().to_string()));
/// // A second create with the same UUID fails as the kernel's does.
/// let again = mtty1.create(mdev.uuid());
/// assert_eq!(again.unwrap_err().errno(), rustix::io::Errno::EXIST);
/// mdev.remove()?;
/// assert!(host.servable().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Host {
    /// Platform, VT-d driver and IOMMU core.
    pub system: System,
    /// The mdev bus (every parent and mdev).
    pub bus: Arc<MdevBus>,
    /// The vfio-pci driver.
    pub vfio_pci: Arc<VfioPci>,
    /// The mdev-pci parent driver.
    pub mdev_pci: Arc<MdevPci>,
    /// The mtty parent (a virtual device, not a PCI function).
    pub mtty: Arc<MdevParent>,
    /// The sdma parent driver ("idxd"), bound to the platform's DMA
    /// engines.
    pub sdma: Arc<SdmaMdev>,
    /// The DMA test models behind the platform's endpoints.
    pub dmatest: Vec<Arc<DmaTest>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Starts `platform` (binding its start-up drivers), puts the device
    /// models behind its endpoints and registers the VFIO and mdev drivers.
    /// A platform file's "idxd" driver is a stub standing for the real one:
    /// it is unregistered (its devices unbound) and the sdma parent driver
    /// registered under that name binds them again.
    pub fn start(platform: Platform) -> Result<Arc<Self>, HostError> {
        let system = System::start(platform)?;
        let bus = MdevBus::new();
        if system
            .platform
            .drivers()
            .iter()
            .any(|d| d.name == SdmaMdev::NAME && d.builtin)
        {
            system.platform.unregister_driver(SdmaMdev::NAME)?;
        }
        let sdma = SdmaMdev::register(&system, &bus, SdmaConfig::default())?;
        let dmatest = attach_dmatest(&system);
        let vfio_pci = VfioPci::register(&system.platform)?;
        let mdev_pci = MdevPci::register(&system.platform, &bus)?;
        let mtty = register_mtty(&bus)?;
        Ok(Arc::new(Self {
            system,
            bus,
            vfio_pci,
            mdev_pci,
            mtty,
            sdma,
            dmatest,
        }))
    }

    /// The embedded default platform, started.
    pub fn default_platform() -> Result<Arc<Self>, HostError> {
        let platform = Platform::default_platform().map_err(SystemError::from)?;
        Self::start(platform)
    }

    /// The platform.
    pub fn platform(&self) -> &Arc<Platform> {
        &self.system.platform
    }

    /// The VFIO device of a function bound to vfio-pci.
    pub fn pci_device(&self, bdf: Bdf) -> Option<Arc<VfioDevice>> {
        self.vfio_pci.device(bdf)
    }

    /// Every device a consumer can open right now: the functions bound to
    /// vfio-pci (by address) and every created mdev, of any parent driver
    /// (by UUID, [`umdev_vfio::mdev::Mdev::registration`]).
    pub fn servable(&self) -> Vec<Servable> {
        let pci = self.vfio_pci.devices().into_iter().filter_map(|bdf| {
            Some(Servable {
                name: bdf.to_string(),
                device: self.vfio_pci.device(bdf)?,
            })
        });
        let mdevs = self.bus.devices().into_iter().filter_map(|mdev| {
            Some(Servable {
                name: mdev.uuid().to_string(),
                device: mdev.registration()?,
            })
        });
        pci.chain(mdevs).collect()
    }
}
