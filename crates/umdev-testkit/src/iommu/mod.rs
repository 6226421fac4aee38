//! The real stack for IOMMU-core tests: a platform (the embedded default or
//! a small TOML one), the VT-d driver over its units, and the core wired
//! to both, with start-up drivers bound.
//!
//! [`fake`] is a driver for failures the real model never produces.

pub mod fake;

use std::sync::Arc;

use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::intel::VtdIommu;
use umdev_iommu::iommu::{DefaultDomainType, Domain, Iommu, PagingFlags};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::system::System;
use umdev_pci::{Bdf, Platform};

/// Platform + driver + core.
pub struct Rig {
    /// The platform.
    pub platform: Arc<Platform>,
    /// The VT-d driver over the platform's units.
    pub vtd: Arc<VtdIommu>,
    /// The IOMMU core.
    pub iommu: Arc<Iommu>,
}

impl Rig {
    /// The embedded default platform.
    pub fn default_platform() -> Self {
        Self::new(
            Platform::default_platform().unwrap(),
            DefaultDomainType::Identity,
        )
    }

    /// The embedded default platform, with paging (DMA-API) default domains.
    pub fn default_platform_dma() -> Self {
        Self::new(
            Platform::default_platform().unwrap(),
            DefaultDomainType::Dma,
        )
    }

    /// A platform from TOML text.
    pub fn from_toml(text: &str) -> Self {
        Self::new(
            Platform::from_toml_str(text, "test.toml").unwrap(),
            DefaultDomainType::Identity,
        )
    }

    fn new(platform: Platform, default_domain: DefaultDomainType) -> Self {
        let System {
            platform,
            vtd,
            iommu,
        } = System::start_with(platform, default_domain).unwrap();
        Self {
            platform,
            vtd,
            iommu,
        }
    }

    /// DMA as device `bdf` issues it.
    pub fn dma(&self, bdf: Bdf) -> DmaPort {
        DmaPort::for_requester(self.vtd.units(), bdf).unwrap()
    }

    /// A paging domain for `bdf` with `len` bytes of fresh memory mapped
    /// read/write at `iova`.
    pub fn mapped_domain(&self, bdf: Bdf, iova: u64, len: u64) -> (Arc<Domain>, Arc<MemoryObject>) {
        let domain = self
            .iommu
            .domain_alloc_paging(bdf, PagingFlags::default())
            .unwrap();
        let memory = self.vtd.memory().alloc_anonymous(len).unwrap();
        domain
            .map(iova, memory.base(), len, Prot::READ | Prot::WRITE)
            .unwrap();
        (domain, memory)
    }

    /// Whether `bdf` can write `value` at `iova` (tagged `pasid`), checked
    /// by reading it back through the same translation.
    pub fn dma_roundtrip(&self, bdf: Bdf, pasid: Option<u32>, iova: u64, value: u64) -> bool {
        let port = self.dma(bdf);
        if port.write(pasid, iova, &value.to_le_bytes()).is_err() {
            return false;
        }
        let mut back = [0u8; 8];
        port.read(pasid, iova, &mut back).is_ok() && u64::from_le_bytes(back) == value
    }
}
