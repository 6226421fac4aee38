//! The selftest's mock IOMMU driver (drivers/iommu/iommufd/selftest.c):
//! aperture [2^24, 2^31 − 1], 2 KiB pages (MOCK_PAGE_SIZE, newest trees)
//! with 1 MiB huge pages used whenever IOVA and address are aligned for
//! one, dirty bits on PTEs, nested domains with a 4-entry "IOTLB", and the
//! device flags NO_DIRTY, PASID and (Linux 6.12) HUGE_IOVA.
//!
//! This file is also compiled into umdev-iommufd's own integration tests
//! (`tests/common/mod.rs` includes it by path), so it names only public
//! items of the crates below.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::ops::{
    DeviceCaps, DomainOps, DomainType, HwInfo, IommuOps, PagingFlags, VtdS1Config, VtdS1Invalidate,
};
use umdev_iommu::memory::PhysAddr;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::vtd::FaultHandler;
use umdev_pci::Bdf;

/// MOCK_FLAGS_DEVICE_* of one mock device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockDeviceFlags {
    /// MOCK_FLAGS_DEVICE_NO_DIRTY.
    pub no_dirty: bool,
    /// MOCK_FLAGS_DEVICE_PASID (max pasid width 20).
    pub pasid: bool,
    /// Linux 6.12's mock without MOCK_FLAGS_DEVICE_HUGE_IOVA: its paging
    /// domains use MOCK_PAGE_SIZE PTEs only (`pgsize_bitmap` without
    /// MOCK_HUGE_PAGE_SIZE).
    pub no_huge_iova: bool,
}

/// MOCK_APERTURE_START.
pub const MOCK_APERTURE_START: u64 = 1 << 24;
/// MOCK_APERTURE_LAST.
pub const MOCK_APERTURE_LAST: u64 = (1 << 31) - 1;
/// MOCK_IO_PAGE_SIZE.
pub const MOCK_PAGE_SIZE: u64 = 2048;
/// MOCK_HUGE_PAGE_SIZE.
pub const MOCK_HUGE_PAGE_SIZE: u64 = 512 * MOCK_PAGE_SIZE;
/// MOCK_NESTED_DOMAIN_IOTLB_NUM.
pub const MOCK_NESTED_DOMAIN_IOTLB_NUM: usize = 4;
/// IOMMU_TEST_IOTLB_DEFAULT.
pub const IOMMU_TEST_IOTLB_DEFAULT: u32 = 0xbadbeef;
/// MOCK_PASID_WIDTH.
pub const MOCK_PASID_WIDTH: u8 = 20;
/// IOMMU_TEST_PASID_RESERVED: replacing this PASID fails with ENOMEM.
pub const IOMMU_TEST_PASID_RESERVED: u32 = 1024;
/// IOMMU_HW_INFO_SELFTEST_REGVAL, reported as the CAP register.
pub const IOMMU_HW_INFO_SELFTEST_REGVAL: u64 = 0xdeadbeef;
/// The "IOTLB id" of a VT-d stage-1 invalidation entry is its 4 KiB page
/// index; `addr` 0 with `npages` u64::MAX is IOMMU_TEST_INVALIDATE_FLAG_ALL.
pub const MOCK_IOTLB_PAGE: u64 = 4096;

#[derive(Clone, Copy, Debug)]
struct Pte {
    phys: PhysAddr,
    size: u64,
    prot: Prot,
    dirty: bool,
}

/// A mock driver domain.
pub struct MockDomain {
    kind: DomainType,
    flags: PagingFlags,
    huge: bool,
    ptes: Mutex<BTreeMap<u64, Pte>>,
    dirty_tracking: AtomicBool,
    iotlb: Mutex<[u32; MOCK_NESTED_DOMAIN_IOTLB_NUM]>,
}

impl MockDomain {
    fn new(kind: DomainType, flags: PagingFlags, huge: bool) -> Arc<Self> {
        Arc::new(Self {
            kind,
            flags,
            huge,
            ptes: Mutex::new(BTreeMap::new()),
            dirty_tracking: AtomicBool::new(false),
            iotlb: Mutex::new([IOMMU_TEST_IOTLB_DEFAULT; MOCK_NESTED_DOMAIN_IOTLB_NUM]),
        })
    }

    /// Starts of the PTEs intersecting `[iova, last]`.
    fn ptes_in(ptes: &BTreeMap<u64, Pte>, iova: u64, last: u64) -> Vec<u64> {
        let before = ptes
            .range(..iova)
            .next_back()
            .filter(|(s, p)| *s + p.size > iova)
            .map(|(&s, _)| s);
        before
            .into_iter()
            .chain(ptes.range(iova..=last).map(|(&s, _)| s))
            .collect()
    }

    /// The mock's `set_dirty`: marks the PTE holding `iova` dirty, as a
    /// device write through it would (IOMMU_TEST_OP_DIRTY). False if
    /// nothing maps `iova`.
    pub fn set_dirty(&self, iova: u64) -> bool {
        let mut ptes = self.ptes.lock();
        let Some(start) = Self::ptes_in(&ptes, iova, iova).first().copied() else {
            return false;
        };
        ptes.get_mut(&start).expect("pte").dirty = true;
        true
    }

    /// Size of the PTE mapping `iova`.
    pub fn pte_size(&self, iova: u64) -> Option<u64> {
        let ptes = self.ptes.lock();
        Self::ptes_in(&ptes, iova, iova)
            .first()
            .map(|s| ptes[s].size)
    }

    /// Permissions of the PTE mapping `iova`.
    pub fn pte_prot(&self, iova: u64) -> Option<Prot> {
        let ptes = self.ptes.lock();
        Self::ptes_in(&ptes, iova, iova)
            .first()
            .map(|s| ptes[s].prot)
    }

    /// Bytes mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.ptes.lock().values().map(|p| p.size).sum()
    }

    /// Was the domain allocated with DIRTY_TRACKING (MOCK_DIRTY_TRACK)?
    pub fn dirty_capable(&self) -> bool {
        self.flags.dirty_tracking
    }

    /// Is this a nested domain (`mock_iommu_domain_nested`)?
    pub fn is_nested(&self) -> bool {
        self.kind == DomainType::Nested
    }

    /// MD_CHECK_IOTLB: the nested domain's IOTLB entry `id`.
    pub fn iotlb(&self, id: usize) -> u32 {
        self.iotlb.lock()[id]
    }

    fn invalidate(&self, e: &VtdS1Invalidate) -> Result<(), Errno> {
        if e.flags & !1 != 0 {
            return Err(Errno::OPNOTSUPP);
        }
        let mut iotlb = self.iotlb.lock();
        if e.addr == 0 && e.npages == u64::MAX {
            iotlb.fill(0);
            return Ok(());
        }
        if !e.addr.is_multiple_of(MOCK_IOTLB_PAGE) || e.npages == 0 || e.npages == u64::MAX {
            return Err(Errno::INVAL);
        }
        let first = e.addr / MOCK_IOTLB_PAGE;
        let last = first.checked_add(e.npages - 1).ok_or(Errno::INVAL)?;
        if last >= MOCK_NESTED_DOMAIN_IOTLB_NUM as u64 {
            return Err(Errno::INVAL);
        }
        iotlb[first as usize..=last as usize].fill(0);
        Ok(())
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
        if self.huge {
            MOCK_PAGE_SIZE | MOCK_HUGE_PAGE_SIZE
        } else {
            MOCK_PAGE_SIZE
        }
    }

    fn pasid_compat(&self) -> bool {
        self.flags.pasid
    }

    fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), Errno> {
        if self.kind != DomainType::Paging {
            return Err(Errno::INVAL);
        }
        if !iova.is_multiple_of(MOCK_PAGE_SIZE) || !len.is_multiple_of(MOCK_PAGE_SIZE) || len == 0 {
            return Err(Errno::INVAL);
        }
        if iova < MOCK_APERTURE_START || iova + (len - 1) > MOCK_APERTURE_LAST {
            return Err(Errno::INVAL);
        }
        let mut ptes = self.ptes.lock();
        if !Self::ptes_in(&ptes, iova, iova + (len - 1)).is_empty() {
            return Err(Errno::EXIST);
        }
        let mut off = 0;
        while off < len {
            let huge = self.huge
                && (iova + off).is_multiple_of(MOCK_HUGE_PAGE_SIZE)
                && (phys + off).is_multiple_of(MOCK_HUGE_PAGE_SIZE)
                && len - off >= MOCK_HUGE_PAGE_SIZE;
            let size = if huge {
                MOCK_HUGE_PAGE_SIZE
            } else {
                MOCK_PAGE_SIZE
            };
            ptes.insert(
                iova + off,
                Pte {
                    phys: phys + off,
                    size,
                    prot,
                    dirty: false,
                },
            );
            off += size;
        }
        Ok(())
    }

    fn unmap(&self, iova: u64, len: u64) -> u64 {
        let mut ptes = self.ptes.lock();
        let Some(last) = len.checked_sub(1).map(|l| iova + l) else {
            return 0;
        };
        Self::ptes_in(&ptes, iova, last)
            .into_iter()
            .filter_map(|s| ptes.remove(&s))
            .map(|p| p.size)
            .sum()
    }

    fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr> {
        let ptes = self.ptes.lock();
        Self::ptes_in(&ptes, iova, iova)
            .first()
            .map(|s| ptes[s].phys + (iova - s))
    }

    fn set_fault_handler(&self, _handler: Option<Arc<dyn FaultHandler>>) {}

    fn set_dirty_tracking(&self, enable: bool) -> Result<(), Errno> {
        if !self.flags.dirty_tracking {
            return Err(Errno::OPNOTSUPP);
        }
        if enable && !self.dirty_tracking.load(Ordering::Acquire) {
            for pte in self.ptes.lock().values_mut() {
                pte.dirty = false;
            }
        }
        self.dirty_tracking.store(enable, Ordering::Release);
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
        // mock_domain_read_and_clear_dirty: reading needs tracking on.
        if !self.dirty_tracking.load(Ordering::Acquire) {
            return Err(Errno::INVAL);
        }
        let mut ptes = self.ptes.lock();
        for start in Self::ptes_in(&ptes, iova, iova + (len - 1)) {
            let pte = ptes.get_mut(&start).expect("pte");
            if pte.dirty {
                record(start, pte.size);
                if clear {
                    pte.dirty = false;
                }
            }
        }
        Ok(())
    }

    fn cache_invalidate_user(&self, entries: &[VtdS1Invalidate]) -> Result<(), (usize, Errno)> {
        if self.kind != DomainType::Nested {
            return Err((0, Errno::OPNOTSUPP));
        }
        for (done, e) in entries.iter().enumerate() {
            self.invalidate(e).map_err(|errno| (done, errno))?;
        }
        Ok(())
    }
}

/// The mock driver.
pub struct MockIommu {
    blocked: Arc<MockDomain>,
    identity: Arc<MockDomain>,
    devices: Mutex<BTreeMap<Bdf, MockDeviceFlags>>,
}

impl MockIommu {
    /// A mock driver with no device yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            blocked: MockDomain::new(DomainType::Blocked, PagingFlags::default(), false),
            identity: MockDomain::new(DomainType::Identity, PagingFlags::default(), false),
            devices: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records the flags of the mock device `bdf` (before it is probed).
    pub fn set_device_flags(&self, bdf: Bdf, flags: MockDeviceFlags) {
        self.devices.lock().insert(bdf, flags);
    }

    /// Forgets the mock device `bdf` (mock_dev_destroy, after release).
    pub fn remove_device(&self, bdf: Bdf) {
        self.devices.lock().remove(&bdf);
    }

    fn flags(&self, bdf: Bdf) -> MockDeviceFlags {
        self.devices.lock().get(&bdf).copied().unwrap_or_default()
    }

    /// mock_domain_nop_attach: a dirty-tracking domain refuses a NO_DIRTY
    /// device.
    fn check_attach(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno> {
        if mock_of(domain).flags.dirty_tracking && self.flags(bdf).no_dirty {
            return Err(Errno::INVAL);
        }
        Ok(())
    }
}

/// The mock driver domain behind a core domain.
pub fn mock_of(domain: &Arc<dyn DomainOps>) -> &MockDomain {
    domain
        .as_any()
        .downcast_ref::<MockDomain>()
        .expect("a mock domain")
}

impl IommuOps for MockIommu {
    fn name(&self) -> &str {
        "iommufd-mock"
    }

    fn probe_device(&self, bdf: Bdf) -> Result<DeviceCaps, Errno> {
        let flags = self.flags(bdf);
        Ok(DeviceCaps {
            max_pasids: if flags.pasid {
                1 << MOCK_PASID_WIDTH
            } else {
                0
            },
            dirty_tracking: !flags.no_dirty,
            nesting: true,
        })
    }

    fn release_device(&self, _bdf: Bdf) {}

    fn blocked_domain(&self) -> Arc<dyn DomainOps> {
        self.blocked.clone()
    }

    fn identity_domain(&self) -> Arc<dyn DomainOps> {
        self.identity.clone()
    }

    fn domain_alloc_paging(
        &self,
        bdf: Bdf,
        flags: PagingFlags,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        if flags.dirty_tracking && self.flags(bdf).no_dirty {
            return Err(Errno::OPNOTSUPP);
        }
        Ok(MockDomain::new(
            DomainType::Paging,
            flags,
            !self.flags(bdf).no_huge_iova,
        ))
    }

    fn domain_alloc_nested(
        &self,
        _bdf: Bdf,
        parent: &Arc<dyn DomainOps>,
        config: VtdS1Config,
        pasid: bool,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        let p = parent
            .as_any()
            .downcast_ref::<MockDomain>()
            .ok_or(Errno::INVAL)?;
        if p.kind != DomainType::Paging || !p.flags.nest_parent {
            return Err(Errno::INVAL);
        }
        if config.addr_width != 48 && config.addr_width != 57 {
            return Err(Errno::INVAL);
        }
        Ok(MockDomain::new(
            DomainType::Nested,
            PagingFlags {
                pasid,
                ..Default::default()
            },
            false,
        ))
    }

    fn attach_dev(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno> {
        self.check_attach(domain, bdf)
    }

    fn set_dev_pasid(
        &self,
        domain: &Arc<dyn DomainOps>,
        bdf: Bdf,
        pasid: u32,
        old: Option<&Arc<dyn DomainOps>>,
    ) -> Result<(), Errno> {
        self.check_attach(domain, bdf)?;
        if pasid == IOMMU_TEST_PASID_RESERVED && old.is_some() {
            return Err(Errno::NOMEM);
        }
        Ok(())
    }

    fn hw_info(&self, bdf: Bdf) -> Option<HwInfo> {
        let flags = self.flags(bdf);
        Some(HwInfo {
            cap_reg: IOMMU_HW_INFO_SELFTEST_REGVAL,
            ecap_reg: 0,
            max_pasid_log2: if flags.pasid { MOCK_PASID_WIDTH } else { 0 },
            dirty_tracking: !flags.no_dirty,
        })
    }

    fn remove_dev_pasid(&self, _bdf: Bdf, _pasid: u32, _domain: &Arc<dyn DomainOps>) {}
}
