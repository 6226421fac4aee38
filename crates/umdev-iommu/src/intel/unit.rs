//! [`IntelIommu`]: the driver's state of one VT-d unit (Linux `struct
//! intel_iommu`): the translation structures it allocated, the domain ids
//! it hands out (`iommu->domain_ida`), and the invalidations it queues to
//! the unit (drivers/iommu/intel/dmar.c `qi_submit_sync`). The hardware it
//! drives is an [`IommuUnit`].

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::did::DomainIds;
use super::tables::Tables;
use crate::vtd::{DomainId, InvDesc, IommuUnit, IotlbInvalidation, UnitError};

/// What software owns of a unit: the structures and the domain ids.
pub(super) struct Control {
    pub(super) tables: Tables,
    dids: DomainIds,
}

/// The driver's view of one unit.
pub struct IntelIommu {
    unit: Arc<IommuUnit>,
    /// Serialises every structure write and domain-id change on the unit
    /// (Linux `iommu->lock`).
    control: Mutex<Control>,
}

impl std::fmt::Debug for IntelIommu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntelIommu")
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

impl IntelIommu {
    /// Takes over `unit`: allocates an empty root table per segment and
    /// programs the unit's root table address (iommu_alloc_root_entry +
    /// iommu_set_root_entry).
    pub fn new(unit: Arc<IommuUnit>) -> Result<Arc<Self>, UnitError> {
        let tables = Tables::new(Arc::clone(unit.memory()), &unit.config().segments)?;
        for (segment, root) in tables.root_addrs() {
            unit.set_root_table(segment, root);
        }
        Ok(Arc::new(Self {
            control: Mutex::new(Control {
                tables,
                dids: DomainIds::new(unit.cap().ndoms()),
            }),
            unit,
        }))
    }

    /// The hardware unit.
    pub fn unit(&self) -> &Arc<IommuUnit> {
        &self.unit
    }

    /// A free domain id (never 0 or 1); ENOSPC when all are in use.
    pub fn alloc_domain_id(&self) -> Result<DomainId, UnitError> {
        if crate::failpoint::should_fail("unit: domain id") {
            return Err(UnitError::NoDomainId);
        }
        self.control
            .lock()
            .dids
            .alloc()
            .ok_or(UnitError::NoDomainId)
    }

    /// Returns a domain id: its IOTLB entries are flushed and its fault
    /// handler removed first, so a later owner of the id inherits nothing.
    pub fn free_domain_id(&self, did: DomainId) {
        self.flush_iotlb(IotlbInvalidation::Domain(did));
        self.unit.set_fault_handler(did, None);
        self.control.lock().dids.free(did);
    }

    /// Domain ids in use.
    pub fn domain_ids_in_use(&self) -> usize {
        self.control.lock().dids.in_use()
    }

    /// Strict IOTLB flush: removes the entries, then waits for every DMA
    /// that may still use them. When it returns, no DMA uses them.
    pub fn flush_iotlb(&self, inv: IotlbInvalidation) {
        self.unit.submit(&[InvDesc::Iotlb(inv), InvDesc::Wait]);
    }

    /// The control state, locked (for reads of the structures).
    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock()
    }

    /// Runs a structure update under the control lock, with the unit's
    /// structure seqlock held for writing so its walks never see a
    /// half-written entry.
    pub(super) fn write_structures<R>(&self, update: impl FnOnce(&mut Control) -> R) -> R {
        let mut control = self.control.lock();
        self.unit.write_structures(|| update(&mut control))
    }
}
