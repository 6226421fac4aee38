//! The selftest's mock IOMMU driver (drivers/iommu/iommufd/selftest.c):
//! aperture [2^24, 2^31 − 1], 2 KiB pages (MOCK_PAGE_SIZE, newest trees)
//! with 1 MiB huge pages, dirty bits set by the test.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::ops::{DeviceCaps, DomainOps, DomainType, IommuOps, PagingFlags, VtdS1Config};
use umdev_iommu::memory::PhysAddr;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::unit::FaultHandler;
use umdev_pci::Bdf;

use super::MockDeviceFlags;

pub const MOCK_APERTURE_START: u64 = 1 << 24;
pub const MOCK_APERTURE_LAST: u64 = (1 << 31) - 1;
pub const MOCK_PAGE_SIZE: u64 = 2048;
pub const MOCK_HUGE_PAGE_SIZE: u64 = 512 * MOCK_PAGE_SIZE;

/// A mock domain: a map of 2 KiB IOVA pages.
pub struct MockDomain {
    kind: DomainType,
    flags: PagingFlags,
    pages: Mutex<BTreeMap<u64, (PhysAddr, Prot)>>,
    dirty: Mutex<(bool, BTreeSet<u64>)>,
    parent: Option<Arc<dyn DomainOps>>,
}

impl MockDomain {
    fn new(kind: DomainType, flags: PagingFlags) -> Arc<Self> {
        Arc::new(Self {
            kind,
            flags,
            pages: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new((false, BTreeSet::new())),
            parent: None,
        })
    }

    /// IOMMU_TEST_OP_DIRTY: marks mapped pages in the range dirty (as a
    /// device write would), returns how many.
    pub fn mark_dirty(&self, iova: u64, len: u64) -> usize {
        let pages = self.pages.lock();
        let mut dirty = self.dirty.lock();
        let mut n = 0;
        for page in (iova..iova + len).step_by(MOCK_PAGE_SIZE as usize) {
            if pages.contains_key(&(page / MOCK_PAGE_SIZE)) {
                dirty.1.insert(page / MOCK_PAGE_SIZE);
                n += 1;
            }
        }
        n
    }

    /// Number of mapped mock pages.
    pub fn mapped_pages(&self) -> usize {
        self.pages.lock().len()
    }
}

impl DomainOps for MockDomain {
    fn domain_type(&self) -> DomainType {
        self.kind
    }

    fn driver_name(&self) -> &str {
        "iommufd-mock"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn aperture(&self) -> (u64, u64) {
        match self.kind {
            DomainType::Paging => (MOCK_APERTURE_START, MOCK_APERTURE_LAST),
            _ => (0, u64::MAX),
        }
    }

    fn pgsize_bitmap(&self) -> u64 {
        MOCK_PAGE_SIZE | MOCK_HUGE_PAGE_SIZE
    }

    fn pasid_compat(&self) -> bool {
        self.flags.pasid
    }

    fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), Errno> {
        if self.kind != DomainType::Paging {
            return Err(Errno::INVAL);
        }
        if iova % MOCK_PAGE_SIZE != 0 || len % MOCK_PAGE_SIZE != 0 || len == 0 {
            return Err(Errno::INVAL);
        }
        if iova < MOCK_APERTURE_START || iova + (len - 1) > MOCK_APERTURE_LAST {
            return Err(Errno::INVAL);
        }
        let mut pages = self.pages.lock();
        let first = iova / MOCK_PAGE_SIZE;
        let n = len / MOCK_PAGE_SIZE;
        if pages.range(first..first + n).next().is_some() {
            return Err(Errno::EXIST);
        }
        for i in 0..n {
            pages.insert(first + i, (phys + i * MOCK_PAGE_SIZE, prot));
        }
        Ok(())
    }

    fn unmap(&self, iova: u64, len: u64) -> u64 {
        let mut pages = self.pages.lock();
        let first = iova / MOCK_PAGE_SIZE;
        let last = (iova + len.max(1) - 1) / MOCK_PAGE_SIZE;
        let keys: Vec<u64> = pages.range(first..=last).map(|(&k, _)| k).collect();
        for k in &keys {
            pages.remove(k);
        }
        keys.len() as u64 * MOCK_PAGE_SIZE
    }

    fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr> {
        self.pages
            .lock()
            .get(&(iova / MOCK_PAGE_SIZE))
            .map(|(p, _)| p + iova % MOCK_PAGE_SIZE)
    }

    fn set_fault_handler(&self, _handler: Option<Arc<dyn FaultHandler>>) {}

    fn set_dirty_tracking(&self, enable: bool) -> Result<(), Errno> {
        if !self.flags.dirty_tracking {
            return Err(Errno::OPNOTSUPP);
        }
        let mut d = self.dirty.lock();
        if enable && !d.0 {
            d.1.clear();
        }
        d.0 = enable;
        Ok(())
    }

    fn read_and_clear_dirty(
        &self,
        iova: u64,
        len: u64,
        clear: bool,
        record: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Errno> {
        if !self.flags.dirty_tracking {
            return Err(Errno::OPNOTSUPP);
        }
        let mut d = self.dirty.lock();
        let first = iova / MOCK_PAGE_SIZE;
        let last = (iova + len - 1) / MOCK_PAGE_SIZE;
        let hits: Vec<u64> = d.1.range(first..=last).copied().collect();
        for p in hits {
            record(p * MOCK_PAGE_SIZE, MOCK_PAGE_SIZE);
            if clear {
                d.1.remove(&p);
            }
        }
        Ok(())
    }
}

/// The mock driver.
pub struct MockIommu {
    blocked: Arc<MockDomain>,
    identity: Arc<MockDomain>,
    devices: Mutex<BTreeMap<Bdf, MockDeviceFlags>>,
    /// (device, pasid) → domain currently programmed.
    attached: Mutex<BTreeMap<(Bdf, u32), usize>>,
}

impl MockIommu {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            blocked: MockDomain::new(DomainType::Blocked, PagingFlags::default()),
            identity: MockDomain::new(DomainType::Identity, PagingFlags::default()),
            devices: Mutex::new(BTreeMap::new()),
            attached: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn set_device_flags(&self, bdf: Bdf, flags: MockDeviceFlags) {
        self.devices.lock().insert(bdf, flags);
    }

    fn flags(&self, bdf: Bdf) -> MockDeviceFlags {
        self.devices.lock().get(&bdf).copied().unwrap_or_default()
    }

    /// The driver domain programmed for (device, pasid), by address.
    pub fn programmed(&self, bdf: Bdf, pasid: u32) -> Option<usize> {
        self.attached.lock().get(&(bdf, pasid)).copied()
    }

    fn record(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf, pasid: u32) {
        let key = Arc::as_ptr(domain) as *const () as usize;
        self.attached.lock().insert((bdf, pasid), key);
    }
}

/// The mock driver domain behind a core domain.
pub fn mock_of(domain: &Arc<dyn DomainOps>) -> &MockDomain {
    domain.as_any().downcast_ref::<MockDomain>().expect("a mock domain")
}

impl IommuOps for MockIommu {
    fn name(&self) -> &str {
        "iommufd-mock"
    }

    fn probe_device(&self, bdf: Bdf) -> Result<DeviceCaps, Errno> {
        let flags = self.flags(bdf);
        Ok(DeviceCaps {
            max_pasids: if flags.pasid { 1 << 20 } else { 0 },
            dirty_tracking: !flags.no_dirty,
            nesting: true,
        })
    }

    fn release_device(&self, bdf: Bdf) {
        self.attached.lock().retain(|(b, _), _| *b != bdf);
    }

    fn blocked_domain(&self) -> Arc<dyn DomainOps> {
        self.blocked.clone()
    }

    fn identity_domain(&self) -> Arc<dyn DomainOps> {
        self.identity.clone()
    }

    fn domain_alloc_paging(&self, bdf: Bdf, flags: PagingFlags) -> Result<Arc<dyn DomainOps>, Errno> {
        if flags.dirty_tracking && self.flags(bdf).no_dirty {
            return Err(Errno::OPNOTSUPP);
        }
        Ok(MockDomain::new(DomainType::Paging, flags))
    }

    fn domain_alloc_nested(
        &self,
        _bdf: Bdf,
        parent: &Arc<dyn DomainOps>,
        _config: VtdS1Config,
        pasid: bool,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        let p = parent.as_any().downcast_ref::<MockDomain>().ok_or(Errno::INVAL)?;
        if p.kind != DomainType::Paging || !p.flags.nest_parent {
            return Err(Errno::INVAL);
        }
        Ok(Arc::new(MockDomain {
            kind: DomainType::Nested,
            flags: PagingFlags { pasid, ..Default::default() },
            pages: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new((false, BTreeSet::new())),
            parent: Some(parent.clone()),
        }))
    }

    fn attach_dev(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno> {
        let m = mock_of(domain);
        if m.flags.dirty_tracking && self.flags(bdf).no_dirty {
            return Err(Errno::INVAL);
        }
        self.record(domain, bdf, 0);
        Ok(())
    }

    fn set_dev_pasid(
        &self,
        domain: &Arc<dyn DomainOps>,
        bdf: Bdf,
        pasid: u32,
        _old: Option<&Arc<dyn DomainOps>>,
    ) -> Result<(), Errno> {
        let m = mock_of(domain);
        if m.flags.dirty_tracking && self.flags(bdf).no_dirty {
            return Err(Errno::INVAL);
        }
        // IOMMU_TEST_PASID_RESERVED: replace fails with ENOMEM.
        if pasid == 1024 && _old.is_some() {
            return Err(Errno::NOMEM);
        }
        self.record(domain, bdf, pasid);
        Ok(())
    }

    fn remove_dev_pasid(&self, bdf: Bdf, pasid: u32, _domain: &Arc<dyn DomainOps>) {
        self.attached.lock().remove(&(bdf, pasid));
    }
}
