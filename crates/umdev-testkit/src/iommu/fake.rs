//! A tiny in-memory IOMMU driver used only to inject failures the real
//! VT-d model never produces (a driver refusing an attach half-way through
//! a group, a domain without `set_dev_pasid`). It records which domain each
//! RID and PASID points at, so tests can check that reverts really happened.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::iommu::{DeviceCaps, DomainOps, DomainType, IommuOps, PagingFlags, VtdS1Config};
use umdev_iommu::memory::PhysAddr;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::vtd::FaultHandler;
use umdev_pci::Bdf;

/// A domain of the fake driver.
pub struct FakeDomain {
    domain_type: DomainType,
    pasid_ok: bool,
}

impl DomainOps for FakeDomain {
    fn domain_type(&self) -> DomainType {
        self.domain_type
    }
    fn driver_name(&self) -> &str {
        "fake"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn aperture(&self) -> (u64, u64) {
        (0, u64::MAX)
    }
    fn pgsize_bitmap(&self) -> u64 {
        1 << 12
    }
    fn supports_set_dev_pasid(&self) -> bool {
        self.pasid_ok
    }
    fn map(&self, _: u64, _: PhysAddr, _: u64, _: Prot) -> Result<(), Errno> {
        Ok(())
    }
    fn unmap(&self, _: u64, len: u64) -> u64 {
        len
    }
    fn iova_to_phys(&self, _: u64) -> Option<PhysAddr> {
        None
    }
    fn set_fault_handler(&self, _: Option<Arc<dyn FaultHandler>>) {}
}

/// Address of a driver domain, to compare what the fake recorded.
pub fn key(domain: &Arc<dyn DomainOps>) -> usize {
    Arc::as_ptr(domain).cast::<()>() as usize
}

/// The fake driver.
pub struct FakeOps {
    blocked: Arc<dyn DomainOps>,
    identity: Arc<dyn DomainOps>,
    max_pasids: BTreeMap<Bdf, u32>,
    /// attach_dev / set_dev_pasid fail for these devices.
    pub fail: Mutex<BTreeSet<Bdf>>,
    /// Paging domains allocated from now on cannot do PASIDs.
    pub paging_without_pasid: Mutex<bool>,
    /// RID → domain currently programmed.
    pub rid: Mutex<BTreeMap<Bdf, usize>>,
    /// (device, PASID) → domain currently programmed.
    pub pasid: Mutex<BTreeMap<(Bdf, u32), usize>>,
}

impl FakeOps {
    /// A driver for devices with the given PASID limits.
    pub fn new(devices: &[(Bdf, u32)]) -> Arc<Self> {
        Arc::new(Self {
            blocked: Arc::new(FakeDomain {
                domain_type: DomainType::Blocked,
                pasid_ok: true,
            }),
            identity: Arc::new(FakeDomain {
                domain_type: DomainType::Identity,
                pasid_ok: true,
            }),
            max_pasids: devices.iter().copied().collect(),
            fail: Mutex::new(BTreeSet::new()),
            paging_without_pasid: Mutex::new(false),
            rid: Mutex::new(BTreeMap::new()),
            pasid: Mutex::new(BTreeMap::new()),
        })
    }

    fn refuse(&self, bdf: Bdf) -> Result<(), Errno> {
        if self.fail.lock().contains(&bdf) {
            Err(Errno::NOMEM)
        } else {
            Ok(())
        }
    }
}

impl IommuOps for FakeOps {
    fn name(&self) -> &str {
        "fake"
    }
    fn probe_device(&self, bdf: Bdf) -> Result<DeviceCaps, Errno> {
        let max_pasids = *self.max_pasids.get(&bdf).ok_or(Errno::NODEV)?;
        Ok(DeviceCaps {
            max_pasids,
            dirty_tracking: false,
            nesting: false,
        })
    }
    fn release_device(&self, bdf: Bdf) {
        self.rid.lock().remove(&bdf);
        self.pasid.lock().retain(|&(b, _), _| b != bdf);
    }
    fn blocked_domain(&self) -> Arc<dyn DomainOps> {
        self.blocked.clone()
    }
    fn identity_domain(&self) -> Arc<dyn DomainOps> {
        self.identity.clone()
    }
    fn domain_alloc_paging(&self, _: Bdf, _: PagingFlags) -> Result<Arc<dyn DomainOps>, Errno> {
        Ok(Arc::new(FakeDomain {
            domain_type: DomainType::Paging,
            pasid_ok: !*self.paging_without_pasid.lock(),
        }))
    }
    fn domain_alloc_nested(
        &self,
        _: Bdf,
        _: &Arc<dyn DomainOps>,
        _: VtdS1Config,
        _: bool,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        Err(Errno::OPNOTSUPP)
    }
    fn attach_dev(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno> {
        self.refuse(bdf)?;
        self.rid.lock().insert(bdf, key(domain));
        Ok(())
    }
    fn set_dev_pasid(
        &self,
        domain: &Arc<dyn DomainOps>,
        bdf: Bdf,
        pasid: u32,
        _: Option<&Arc<dyn DomainOps>>,
    ) -> Result<(), Errno> {
        self.refuse(bdf)?;
        self.pasid.lock().insert((bdf, pasid), key(domain));
        Ok(())
    }
    fn remove_dev_pasid(&self, bdf: Bdf, pasid: u32, _: &Arc<dyn DomainOps>) {
        self.pasid.lock().remove(&(bdf, pasid));
    }
}
