//! Shared fixtures of the unit_* integration tests.

use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::intel::{IntelIommu, VtdIommu};
use umdev_iommu::iommu::{DomainOps, IommuOps, PagingFlags};
use umdev_iommu::memory::HostMemory;
use umdev_iommu::vtd::{FaultHandler, FaultRecord, IommuUnit};
use umdev_pci::{Bdf, IommuUnitSpec};

/// 4K | 2M | 1G.
pub const ALL_SIZES: u64 = (1 << 12) | (1 << 21) | (1 << 30);

/// A unit like the default platform's: 48/57-bit, 20-bit PASIDs, all
/// page sizes, nesting, dirty tracking, SRS and EAFS.
pub fn config(name: &str, segments: &[u16]) -> IommuUnitSpec {
    IommuUnitSpec {
        name: name.into(),
        segments: segments.to_vec(),
        address_widths: vec![48, 57],
        pasid_bits: 20,
        pgsize_bitmap: ALL_SIZES,
        nesting: true,
        dirty_tracking: true,
        supervisor_requests: true,
        extended_accessed: true,
        fault_log_size: 64,
    }
}

/// A driver over `configs`; every device has a 20-bit PASID capability
/// except function 7 of any slot, which has none.
pub fn driver(configs: Vec<IommuUnitSpec>) -> (Arc<HostMemory>, Arc<VtdIommu>) {
    let mem = HostMemory::new();
    let driver = VtdIommu::new(Arc::clone(&mem), configs, |bdf| {
        if bdf.function() == 7 { 0 } else { 20 }
    })
    .unwrap();
    (mem, Arc::new(driver))
}

/// A bare unit, with the driver's state of it (root tables programmed,
/// nothing else).
pub fn unit(config: IommuUnitSpec) -> (Arc<HostMemory>, Arc<IntelIommu>) {
    let mem = HostMemory::new();
    let unit = IommuUnit::new(Arc::clone(&mem), config).unwrap();
    (mem, IntelIommu::new(unit).unwrap())
}

/// `0000:bus:dev.fn`.
pub fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf::new(0, bus, device, function).unwrap()
}

/// A probed device attached to a new paging domain.
pub fn attached_paging(driver: &VtdIommu, dev: Bdf, flags: PagingFlags) -> Arc<dyn DomainOps> {
    driver.probe_device(dev).unwrap();
    let domain = driver.domain_alloc_paging(dev, flags).unwrap();
    driver.attach_dev(&domain, dev).unwrap();
    domain
}

/// A fault handler that keeps what it is given.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<FaultRecord>>);

impl FaultHandler for Recorder {
    fn report(&self, fault: &FaultRecord) {
        self.0.lock().push(*fault);
    }
}

impl Recorder {
    /// The records seen so far, forgotten.
    pub fn take(&self) -> Vec<FaultRecord> {
        std::mem::take(&mut *self.0.lock())
    }
}
