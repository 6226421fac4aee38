//! The iommufd selftest driver (drivers/iommu/iommufd/selftest.c, the
//! kernel's `CONFIG_IOMMUFD_TEST`), behind the `selftest` cargo feature:
//! the mock IOMMU ([`mock`]), mock devices on a mock bus ([`MockBus`]),
//! the test access driver ([`access`]) and the `IOMMU_TEST_OP_*` checks
//! ([`ops`]) that a uAPI face wires to `IOMMU_TEST_CMD`.

pub mod access;
pub mod mock;
pub mod ops;

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::Iommu;
use umdev_pci::{Bdf, IommuHooks};

use crate::error::{IommufdError, Result};
use crate::ictx::Ictx;
pub use mock::{
    IOMMU_HW_INFO_SELFTEST_REGVAL, IOMMU_TEST_IOTLB_DEFAULT, MOCK_APERTURE_LAST,
    MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_NESTED_DOMAIN_IOTLB_NUM, MOCK_PAGE_SIZE,
    MockDeviceFlags, MockDomain, MockIommu, mock_of,
};

/// MOCK_FLAGS_DEVICE_NO_DIRTY.
pub const MOCK_FLAGS_DEVICE_NO_DIRTY: u32 = 1 << 0;
/// MOCK_FLAGS_DEVICE_HUGE_IOVA (Linux 6.12: 1 MiB IOMMU pages allowed).
pub const MOCK_FLAGS_DEVICE_HUGE_IOVA: u32 = 1 << 1;
/// MOCK_FLAGS_DEVICE_PASID (later kernels).
pub const MOCK_FLAGS_DEVICE_PASID: u32 = 1 << 2;

/// Mock device numbers: one PCI bus segment's worth.
const MOCK_DEV_MAX: u32 = 1 << 16;
/// The PCI segment mock devices live on (no real platform uses it).
const MOCK_SEGMENT: u16 = 0xfe57;

impl MockDeviceFlags {
    /// `mock_dev_create`'s flag check: unknown bits are EINVAL.
    pub fn from_uapi(dev_flags: u32) -> Result<Self> {
        let known =
            MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;
        if dev_flags & !known != 0 {
            return Err(IommufdError::Invalid {
                what: "mock device flags",
            });
        }
        Ok(Self {
            no_dirty: dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY != 0,
            pasid: dev_flags & MOCK_FLAGS_DEVICE_PASID != 0,
            no_huge_iova: dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA == 0,
        })
    }
}

/// What IOMMU_TEST_OP_MOCK_DOMAIN created: a mock device (its own group),
/// bound to a context and attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockDev {
    /// The device's address on the mock bus.
    pub bdf: Bdf,
    /// The DEVICE object (`out_idev_id`).
    pub dev_id: u32,
    /// What it is attached to (`out_hwpt_id`).
    pub hwpt_id: u32,
}

/// The mock bus: the mock IOMMU, its core and the device-number IDA
/// (`mock_dev_ida`).
pub struct MockBus {
    mock: Arc<MockIommu>,
    iommu: Arc<Iommu>,
    used: Mutex<BTreeSet<u32>>,
}

impl std::fmt::Debug for MockBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBus")
            .field("devices", &self.used.lock().len())
            .finish_non_exhaustive()
    }
}

impl MockBus {
    /// A bus with the mock IOMMU and no device.
    pub fn new() -> Arc<Self> {
        let mock = MockIommu::new();
        let iommu = Iommu::new(mock.clone());
        Arc::new(Self {
            mock,
            iommu,
            used: Mutex::new(BTreeSet::new()),
        })
    }

    /// The IOMMU core over the mock driver (what contexts are created on).
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// `mock_dev_create`: a new device, probed alone in its group.
    fn dev_create(&self, flags: MockDeviceFlags) -> Result<Bdf> {
        if umdev_iommu::failpoint::should_fail("selftest: mock device") {
            return Err(IommufdError::Errno {
                what: "mock device allocation",
                errno: Errno::NOMEM,
            });
        }
        let n = {
            let mut used = self.used.lock();
            let n = (0..MOCK_DEV_MAX)
                .find(|n| !used.contains(n))
                .ok_or(IommufdError::Errno {
                    what: "mock device numbers",
                    errno: Errno::NOMEM,
                })?;
            used.insert(n);
            n
        };
        let bdf = Bdf::from_rid(MOCK_SEGMENT, n as u16);
        self.mock.set_device_flags(bdf, flags);
        if let Err(errno) = self.iommu.probe_device(bdf, MOCK_DEV_MAX + n) {
            self.dev_release(bdf);
            return Err(IommufdError::Errno {
                what: "probing the mock device",
                errno,
            });
        }
        Ok(bdf)
    }

    /// `mock_dev_destroy` after the device was probed.
    fn dev_destroy(&self, bdf: Bdf) {
        self.iommu.release_device(bdf);
        self.dev_release(bdf);
    }

    fn dev_release(&self, bdf: Bdf) {
        self.mock.remove_device(bdf);
        self.used.lock().remove(&u32::from(bdf.rid()));
    }

    /// IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS) (`iommufd_test_mock_domain`): a
    /// mock device bound to `ictx` and attached to `pt_id`; on failure
    /// nothing stays.
    pub fn mock_domain(&self, ictx: &Ictx, pt_id: u32, flags: MockDeviceFlags) -> Result<MockDev> {
        let bdf = self.dev_create(flags)?;
        let dev_id = match ictx.device_bind(bdf) {
            Ok(id) => id,
            Err(e) => {
                self.dev_destroy(bdf);
                return Err(e);
            }
        };
        match ictx.device_attach(dev_id, 0, pt_id) {
            Ok(hwpt_id) => Ok(MockDev {
                bdf,
                dev_id,
                hwpt_id,
            }),
            Err(e) => {
                let _ = ictx.device_unbind(dev_id);
                self.dev_destroy(bdf);
                Err(e)
            }
        }
    }

    /// `iommufd_selftest_destroy` of a mock device: detach, unbind and
    /// destroy the device.
    pub fn destroy(&self, ictx: &Ictx, dev: &MockDev) {
        let _ = ictx.device_unbind(dev.dev_id);
        self.dev_destroy(dev.bdf);
    }

    /// Forgets a mock device whose context already unbound it (the
    /// context was closed).
    pub fn forget(&self, dev: &MockDev) {
        self.dev_destroy(dev.bdf);
    }
}
