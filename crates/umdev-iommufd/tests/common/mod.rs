//! The iommufd selftest environment (drivers/iommu/iommufd/selftest.c):
//! a mock IOMMU driver with the selftest's constants and helpers that
//! mirror `IOMMU_TEST_OP_*`.

#![allow(dead_code, unused_imports)]

pub mod mock;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use umdev_iommu::iommu::Iommu;
use umdev_iommu::memory::{HostMemory, MemoryObject};
use umdev_iommufd::Ictx;
use umdev_pci::{Bdf, IommuHooks};

pub use mock::{MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_PAGE_SIZE, MockIommu};

/// Host page size.
pub const PAGE_SIZE: u64 = 4096;

/// MOCK_FLAGS_DEVICE_*.
#[derive(Clone, Copy, Debug, Default)]
pub struct MockDeviceFlags {
    /// MOCK_FLAGS_DEVICE_NO_DIRTY.
    pub no_dirty: bool,
    /// MOCK_FLAGS_DEVICE_PASID (max pasid width 20).
    pub pasid: bool,
}

/// A mock IOMMU core plus memory, the fixture every test starts from.
pub struct Env {
    pub mock: Arc<MockIommu>,
    pub iommu: Arc<Iommu>,
    pub mem: Arc<HostMemory>,
    next_dev: AtomicU8,
}

/// What `IOMMU_TEST_OP_MOCK_DOMAIN` returns.
#[derive(Clone, Copy, Debug)]
pub struct MockDomain {
    pub bdf: Bdf,
    pub dev_id: u32,
    pub hwpt_id: u32,
}

impl Env {
    pub fn new() -> Self {
        let mem = HostMemory::new();
        let mock = MockIommu::new();
        let iommu = Iommu::new(mock.clone());
        Self {
            mock,
            iommu,
            mem,
            next_dev: AtomicU8::new(1),
        }
    }

    /// A new mock device, alone in its group (selftest.c mock devices).
    pub fn mock_device(&self, flags: MockDeviceFlags) -> Bdf {
        let n = self.next_dev.fetch_add(1, Ordering::Relaxed);
        let bdf = Bdf::new(0, n, 0, 0).expect("valid bdf");
        self.mock.set_device_flags(bdf, flags);
        self.iommu.probe_device(bdf, u32::from(n)).expect("probe mock device");
        bdf
    }

    /// IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS): a device bound to `ictx` and
    /// attached to `pt_id`.
    pub fn mock_domain_flags(
        &self,
        ictx: &Ictx,
        pt_id: u32,
        flags: MockDeviceFlags,
    ) -> Result<MockDomain, umdev_iommufd::IommufdError> {
        let bdf = self.mock_device(flags);
        let dev_id = ictx.device_bind(bdf)?;
        let hwpt_id = ictx.device_attach(dev_id, 0, pt_id)?;
        Ok(MockDomain { bdf, dev_id, hwpt_id })
    }

    pub fn mock_domain(&self, ictx: &Ictx, pt_id: u32) -> Result<MockDomain, umdev_iommufd::IommufdError> {
        self.mock_domain_flags(ictx, pt_id, MockDeviceFlags::default())
    }

    /// A buffer of `size` bytes of anonymous memory (the selftest's
    /// `buffer`), filled with a pattern.
    pub fn buffer(&self, size: u64) -> Arc<MemoryObject> {
        let obj = self.mem.alloc_anonymous(size.next_multiple_of(PAGE_SIZE)).expect("buffer");
        let pattern: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        obj.write(0, &pattern).expect("fill");
        obj
    }
}
