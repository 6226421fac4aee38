//! Bring-up: the platform, the VT-d driver over the platform's units and
//! the IOMMU core, wired together as the kernel boots them
//! (`iommu_device_register` → bus probe → driver binding).

use std::sync::Arc;

use umdev_pci::{Bdf, PciError, Platform, PlatformError};

use crate::dma::DmaPort;
use crate::intel::VtdIommu;
use crate::iommu::{DefaultDomainType, Iommu};
use crate::memory::HostMemory;
use crate::vtd::UnitError;

/// Why bring-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The platform description could not be loaded.
    #[error(transparent)]
    Load(#[from] PlatformError),
    /// The platform's IOMMU description is unusable.
    #[error("IOMMU unit: {0}")]
    Unit(#[from] UnitError),
    /// Probing devices or binding start-up drivers failed.
    #[error("platform: {0}")]
    Platform(#[from] PciError),
}

impl SystemError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> rustix::io::Errno {
        match self {
            SystemError::Load(e) => e.errno(),
            SystemError::Unit(e) => e.errno(),
            SystemError::Platform(e) => e.errno(),
        }
    }
}

/// A running platform with its IOMMU.
#[derive(Clone)]
pub struct System {
    /// The simulated PCI hardware.
    pub platform: Arc<Platform>,
    /// The VT-d driver (units, fault logs).
    pub vtd: Arc<VtdIommu>,
    /// The IOMMU core (groups, domains, ownership).
    pub iommu: Arc<Iommu>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("vtd", &self.vtd)
            .finish_non_exhaustive()
    }
}

impl System {
    /// Builds the units the platform describes, registers the core as the
    /// platform's IOMMU layer (every function is probed into its group)
    /// and binds the start-up drivers.
    pub fn start(platform: Platform) -> Result<Self, SystemError> {
        Self::start_with(platform, DefaultDomainType::default())
    }

    /// [`System::start`] with a chosen kind of default domain.
    pub fn start_with(
        platform: Platform,
        default_domain: DefaultDomainType,
    ) -> Result<Self, SystemError> {
        let platform = Arc::new(platform);
        let configs = platform.iommu_units();
        let weak = Arc::downgrade(&platform);
        let pasid_width = move |bdf: Bdf| {
            weak.upgrade()
                .and_then(|p| p.function(bdf))
                .and_then(|f| f.pasid)
                .map_or(0, |p| p.max_width)
        };
        let vtd = Arc::new(VtdIommu::new(HostMemory::new(), configs, pasid_width)?);
        let iommu = Iommu::with_default_domain(vtd.clone(), default_domain);
        iommu.attach_platform(&platform)?;
        platform.bind_startup_drivers()?;
        Ok(Self {
            platform,
            vtd,
            iommu,
        })
    }

    /// DMA as the requester `bdf` issues it, through the unit the platform
    /// routes its requests to (the DRHD whose scope covers its segment);
    /// ENODEV when no unit does.
    pub fn dma_for(&self, bdf: Bdf) -> Result<DmaPort, rustix::io::Errno> {
        DmaPort::for_requester(self.vtd.units(), bdf)
    }

    /// The embedded default platform, started.
    pub fn default_platform() -> Result<Self, SystemError> {
        Self::start(Platform::default_platform()?)
    }
}
