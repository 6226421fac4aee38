//! The iommufd selftest environment (drivers/iommu/iommufd/selftest.c and
//! tools/testing/selftests/iommu/iommufd_utils.h): a mock IOMMU driver
//! with the selftest's constants and helpers that mirror `IOMMU_TEST_OP_*`.

#![allow(dead_code, unused_imports)]

// The library's mock (behind the `selftest` feature), compiled in here by
// path so that these tests need no feature.
#[path = "../../src/selftest/mock.rs"]
pub mod mock;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::{Domain, Iommu};
use umdev_iommu::memory::{HostMemory, MemoryObject, PhysAddr};
use umdev_iommu::pgtable::Access as DmaAccess;
use umdev_iommu::vtd::{FaultReason, FaultRecord};
use umdev_iommufd::access::{Access, AccessOps};
use umdev_iommufd::{Ictx, IommufdError};
use umdev_pci::{Bdf, IommuHooks};

pub use mock::{
    IOMMU_HW_INFO_SELFTEST_REGVAL, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_PASID_RESERVED,
    MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_IOTLB_PAGE,
    MOCK_NESTED_DOMAIN_IOTLB_NUM, MOCK_PAGE_SIZE, MOCK_PASID_WIDTH, MockDeviceFlags, MockDomain,
    MockIommu, mock_of,
};

/// Host page size.
pub const PAGE_SIZE: u64 = 4096;
/// The selftest's BUFFER_SIZE.
pub const BUFFER_SIZE: u64 = 16 * PAGE_SIZE;
/// The host huge page size (HUGEPAGE_SIZE, THP PMD size on x86).
pub const HUGEPAGE_SIZE: u64 = 2 << 20;

/// MOCK_FLAGS_DEVICE_NO_DIRTY.
pub const NO_DIRTY: MockDeviceFlags = MockDeviceFlags {
    no_dirty: true,
    pasid: false,
    no_huge_iova: false,
};
/// MOCK_FLAGS_DEVICE_PASID.
pub const PASID: MockDeviceFlags = MockDeviceFlags {
    no_dirty: false,
    pasid: true,
    no_huge_iova: false,
};

/// The errno of a result (what the selftest's EXPECT_ERRNO compares).
pub fn errno<T>(r: Result<T, IommufdError>) -> Result<T, Errno> {
    r.map_err(|e| e.errno())
}

/// A mock IOMMU core plus memory, the fixture every test starts from.
pub struct Env {
    pub mock: Arc<MockIommu>,
    pub iommu: Arc<Iommu>,
    pub mem: Arc<HostMemory>,
    next_dev: AtomicU8,
}

/// What `IOMMU_TEST_OP_MOCK_DOMAIN` creates: a mock device (its own
/// group), bound and attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockDev {
    pub bdf: Bdf,
    /// The DEVICE object (the selftest's idev_id; destroying the selftest's
    /// stdev_id is [`Ictx::device_unbind`] of it).
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

    /// A context over the mock. (The selftest's memory "limit" bounds the
    /// kernel's temporary batch buffers, not pins; it has no counterpart.)
    pub fn ictx(&self) -> Arc<Ictx> {
        Ictx::new(self.iommu.clone())
    }

    /// A new mock device, alone in its group (selftest.c mock devices).
    pub fn mock_device(&self, flags: MockDeviceFlags) -> Bdf {
        let n = self.next_dev.fetch_add(1, Ordering::Relaxed);
        let bdf = Bdf::new(0, n, 0, 0).expect("valid bdf");
        self.mock.set_device_flags(bdf, flags);
        self.iommu
            .probe_device(bdf, u32::from(n))
            .expect("probe mock device");
        bdf
    }

    /// IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: a device bound to `ictx` and
    /// attached to `pt_id`; on failure nothing stays bound.
    pub fn mock_domain_flags(
        &self,
        ictx: &Ictx,
        pt_id: u32,
        flags: MockDeviceFlags,
    ) -> Result<MockDev, IommufdError> {
        let bdf = self.mock_device(flags);
        let dev_id = ictx.device_bind(bdf)?;
        match ictx.device_attach(dev_id, 0, pt_id) {
            Ok(hwpt_id) => Ok(MockDev {
                bdf,
                dev_id,
                hwpt_id,
            }),
            Err(e) => {
                ictx.device_unbind(dev_id).expect("unbind");
                Err(e)
            }
        }
    }

    /// IOMMU_TEST_OP_MOCK_DOMAIN.
    pub fn mock_domain(&self, ictx: &Ictx, pt_id: u32) -> Result<MockDev, IommufdError> {
        self.mock_domain_flags(ictx, pt_id, MockDeviceFlags::default())
    }

    /// A buffer of `size` bytes of anonymous memory (the selftest's
    /// `buffer`), filled with a pattern.
    pub fn buffer(&self, size: u64) -> Arc<MemoryObject> {
        let obj = self
            .mem
            .alloc_anonymous(size.next_multiple_of(PAGE_SIZE))
            .expect("buffer");
        fill(&obj, size);
        obj
    }

    /// A memfd of `size` bytes (the selftest's `mfd_buffer`), filled.
    pub fn memfd(&self, size: u64) -> Arc<MemoryObject> {
        let obj = self
            .mem
            .alloc_memfd("iommufd-test", size.next_multiple_of(PAGE_SIZE))
            .expect("memfd");
        fill(&obj, size);
        obj
    }

    /// IOMMU_TEST_OP_TRIGGER_IOPF: a page request from `bdf` (with
    /// `pasid`) for `addr`, reported to the domain translating it as the
    /// unit reports a translation fault. False if that domain has no fault
    /// handler.
    pub fn trigger_iopf(&self, bdf: Bdf, pasid: Option<u32>, addr: u64) -> bool {
        let Some(domain) = self.iommu.device_domain(bdf, pasid) else {
            return false;
        };
        let Some(handler) = domain.fault_handler() else {
            return false;
        };
        handler.report(&FaultRecord {
            requester: bdf,
            pasid,
            addr,
            access: DmaAccess::Write,
            reason: FaultReason::FirstLevelNotPresent { level: 1 },
            did: None,
        });
        true
    }
}

fn fill(obj: &MemoryObject, size: u64) {
    let pattern: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    obj.write(0, &pattern).expect("fill");
}

/// The mock driver domain of HWPT `hwpt_id`.
pub fn hwpt_mock(ictx: &Ictx, hwpt_id: u32) -> Arc<Domain> {
    ictx.hwpt_domain(hwpt_id).expect("a HWPT")
}

/// IOMMU_TEST_OP_MD_CHECK_MAP: every MOCK_PAGE_SIZE step of
/// `[iova, iova + length)` in HWPT `hwpt_id` translates to `phys` + the
/// same offset.
pub fn check_mock_iova(ictx: &Ictx, hwpt_id: u32, iova: u64, phys: PhysAddr, length: u64) {
    let domain = hwpt_mock(ictx, hwpt_id);
    let mut off = 0;
    while off < length {
        assert_eq!(
            domain.iova_to_phys(iova + off),
            Some(phys + off),
            "hwpt {hwpt_id}: iova {:#x}",
            iova + off
        );
        off += MOCK_PAGE_SIZE;
    }
}

/// IOMMU_TEST_OP_MD_CHECK_REFS: every host page of `[phys, phys +
/// length)` holds exactly `refs` pins.
pub fn check_refs(ictx: &Ictx, phys: PhysAddr, length: u64, refs: u32) {
    if length == 0 {
        return;
    }
    let first = phys / PAGE_SIZE;
    let last = (phys + length - 1) / PAGE_SIZE;
    for page in first..=last {
        assert_eq!(
            ictx.account().page_pins(page * PAGE_SIZE),
            refs,
            "page {:#x}",
            page * PAGE_SIZE
        );
    }
}

/// IOMMU_TEST_OP_DIRTY: marks dirty, in HWPT `hwpt_id`, the page of every
/// bit set in `bitmap` (bit i = `iova + i * page_size`); returns the count.
pub fn mock_domain_set_dirty(
    ictx: &Ictx,
    hwpt_id: u32,
    length: u64,
    iova: u64,
    page_size: u64,
    bitmap: &[u8],
) -> u64 {
    let domain = hwpt_mock(ictx, hwpt_id);
    let mock = mock_of(domain.ops());
    let mut count = 0;
    for i in 0..length / page_size {
        if bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 {
            assert!(
                mock.set_dirty(iova + i * page_size),
                "nothing mapped at bit {i}"
            );
            count += 1;
        }
    }
    count
}

/// IOMMU_TEST_OP_MD_CHECK_IOTLB.
pub fn hwpt_check_iotlb(ictx: &Ictx, hwpt_id: u32, id: usize, value: u32) {
    let domain = hwpt_mock(ictx, hwpt_id);
    assert_eq!(
        mock_of(domain.ops()).iotlb(id),
        value,
        "hwpt {hwpt_id} iotlb {id}"
    );
}

/// test_cmd_hwpt_check_iotlb_all.
pub fn hwpt_check_iotlb_all(ictx: &Ictx, hwpt_id: u32, value: u32) {
    for id in 0..MOCK_NESTED_DOMAIN_IOTLB_NUM {
        hwpt_check_iotlb(ictx, hwpt_id, id, value);
    }
}

/// The selftest access driver (IOMMU_TEST_OP_CREATE_ACCESS): its unmap
/// callback drops every pin it holds in the range, as an mdev driver's
/// dma_unmap must.
struct TestAccessOps {
    needs_pin_pages: bool,
    access: OnceLock<Weak<Access>>,
    pins: Mutex<BTreeMap<u32, (u64, u64)>>,
    unmap_calls: AtomicU32,
}

impl AccessOps for TestAccessOps {
    fn needs_pin_pages(&self) -> bool {
        self.needs_pin_pages
    }

    fn unmap(&self, iova: u64, length: u64) {
        self.unmap_calls.fetch_add(1, Ordering::Relaxed);
        let Some(access) = self.access.get().and_then(Weak::upgrade) else {
            return;
        };
        let last = iova.saturating_add(length.saturating_sub(1));
        let mut pins = self.pins.lock();
        let hit: Vec<u32> = pins
            .iter()
            .filter(|(_, (i, l))| *i <= last && i + (l - 1) >= iova)
            .map(|(&id, _)| id)
            .collect();
        for id in hit {
            let (i, l) = pins.remove(&id).expect("pin");
            access.unpin_pages(i, l);
        }
    }
}

/// An access created by the test driver.
pub struct TestAccess {
    pub id: u32,
    pub access: Arc<Access>,
    ops: Arc<TestAccessOps>,
    next: AtomicU32,
}

impl TestAccess {
    /// IOMMU_TEST_OP_CREATE_ACCESS on `ioas_id` (with
    /// MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES when `needs_pin_pages`).
    pub fn create(ictx: &Ictx, ioas_id: u32, needs_pin_pages: bool) -> Result<Self, IommufdError> {
        let ops = Arc::new(TestAccessOps {
            needs_pin_pages,
            access: OnceLock::new(),
            pins: Mutex::new(BTreeMap::new()),
            unmap_calls: AtomicU32::new(0),
        });
        let (id, access) = ictx.access_create(ops.clone())?;
        ops.access.set(Arc::downgrade(&access)).expect("set once");
        if let Err(e) = ictx.access_attach(id, ioas_id) {
            ictx.access_destroy(id).expect("destroy");
            return Err(e);
        }
        Ok(Self {
            id,
            access,
            ops,
            next: AtomicU32::new(1),
        })
    }

    /// IOMMU_TEST_OP_ACCESS_PAGES: pins and returns (access_pages_id, the
    /// host page of each page).
    pub fn pin(&self, iova: u64, length: u64) -> Result<(u32, Vec<PhysAddr>), Errno> {
        let pages = errno(self.access.pin_pages(iova, length, false))?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.ops.pins.lock().insert(id, (iova, length));
        Ok((id, pages))
    }

    /// IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: ENOENT if the unmap callback
    /// already dropped them.
    pub fn destroy_pages(&self, id: u32) -> Result<(), Errno> {
        let (iova, length) = self.ops.pins.lock().remove(&id).ok_or(Errno::NOENT)?;
        self.access.unpin_pages(iova, length);
        Ok(())
    }

    /// IOMMU_TEST_OP_ACCESS_RW.
    pub fn rw(&self, iova: u64, buf: &mut [u8], write: bool) -> Result<(), Errno> {
        errno(self.access.rw(iova, buf, write))
    }

    /// Times the unmap callback ran.
    pub fn unmap_calls(&self) -> u32 {
        self.ops.unmap_calls.load(Ordering::Relaxed)
    }

    /// Pins still held.
    pub fn pins(&self) -> usize {
        self.ops.pins.lock().len()
    }

    /// IOMMU_TEST_OP_ACCESS_REPLACE_IOAS.
    pub fn replace_ioas(&self, ictx: &Ictx, ioas_id: u32) -> Result<(), Errno> {
        errno(ictx.access_replace(self.id, ioas_id))
    }

    /// Closing the access fd: pins dropped, object destroyed.
    pub fn destroy(self, ictx: &Ictx) {
        let ids: Vec<u32> = self.ops.pins.lock().keys().copied().collect();
        for id in ids {
            self.destroy_pages(id).expect("unpin");
        }
        ictx.access_destroy(self.id).expect("destroy access");
    }
}

/// test_cmd_trigger_iopf(_pasid): a page request from `dev`, read from the
/// queue (one fault, with the device, PASID and LAST_PAGE), answered
/// SUCCESS by its cookie, and seen by the device as that answer.
pub fn trigger_iopf(env: &Env, fault: &umdev_iommufd::FaultFd, dev: &MockDev, pasid: Option<u32>) {
    use umdev_iommufd::fault::{PgfaultFlags, PgfaultPerm};
    use umdev_iommufd::{PageResponse, PageResponseCode};

    assert!(
        env.trigger_iopf(dev.bdf, pasid, 0xdeadbeaf),
        "no fault handler"
    );
    let faults = fault.read(4);
    assert_eq!(faults.len(), 1, "{faults:?}");
    let f = faults[0];
    assert_eq!(f.dev_id, dev.dev_id);
    assert_eq!(f.pasid, pasid.unwrap_or(0));
    assert_eq!(f.addr, 0xdeadb000);
    assert_eq!(f.perm, PgfaultPerm::WRITE);
    let mut flags = PgfaultFlags::LAST_PAGE;
    if pasid.is_some() {
        flags |= PgfaultFlags::PASID_VALID;
    }
    assert_eq!(f.flags, flags);
    assert_ne!(f.cookie, 0);
    let response = PageResponse {
        cookie: f.cookie,
        code: PageResponseCode::Success,
    };
    assert_eq!(fault.write(&[response]).unwrap(), 1);
    let answered = fault.take_responses();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].code, PageResponseCode::Success);
    assert!(!answered[0].auto);
    assert_eq!(
        (answered[0].dev_id, answered[0].pasid, answered[0].grpid),
        (dev.dev_id, pasid, f.grpid)
    );
}

/// teardown_iommufd: close the context and check that nothing leaked:
/// no object, no pinned page, every device back in its default domain and
/// free to be owned again.
pub fn teardown(env: &Env, ictx: &Ictx, devices: &[Bdf]) {
    ictx.close();
    assert!(ictx.objects().is_empty(), "{:?}", ictx.objects());
    assert_eq!(ictx.account().pinned(), 0);
    for &bdf in devices {
        let domain = env.iommu.device_domain(bdf, None).expect("probed");
        assert_eq!(
            domain.domain_type(),
            umdev_iommu::iommu::DomainType::Identity
        );
        let other = env.ictx();
        let id = other.device_bind(bdf).expect("ownership was released");
        other.device_unbind(id).unwrap();
    }
}
