//! Which (unit, domain id, device, PASID) a domain is attached to: the
//! domain id is allocated on a unit at the first attachment there and
//! freed at the last (Linux domain_attach_iommu / domain_detach_iommu),
//! and the strict flushes of map changes go to every one of them.

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_pci::Bdf;

use super::unit::IntelIommu;
use crate::vtd::{DomainId, FaultHandler, InvDesc, IommuUnit, IotlbInvalidation};

#[derive(Debug)]
struct UnitAttachment {
    iommu: Arc<IntelIommu>,
    did: DomainId,
    users: Vec<(Bdf, u32)>,
}

/// The attachments of one domain. Lock order: `units`, then `handler`.
#[derive(Default)]
pub(super) struct Attachments {
    units: Mutex<Vec<UnitAttachment>>,
    handler: Mutex<Option<Arc<dyn FaultHandler>>>,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments")
            .field("units", &*self.units.lock())
            .finish_non_exhaustive()
    }
}

impl Attachments {
    /// Records (bdf, pasid) on `unit` and returns the domain's id there,
    /// allocating it (and registering the fault handler) on first use.
    pub(super) fn attach(
        &self,
        iommu: &Arc<IntelIommu>,
        bdf: Bdf,
        pasid: u32,
    ) -> Result<DomainId, Errno> {
        let mut units = self.units.lock();
        if let Some(a) = units.iter_mut().find(|a| Arc::ptr_eq(&a.iommu, iommu)) {
            a.users.push((bdf, pasid));
            return Ok(a.did);
        }
        let did = iommu.alloc_domain_id().map_err(|e| e.errno())?;
        if let Some(handler) = &*self.handler.lock() {
            iommu
                .unit()
                .set_fault_handler(did, Some(Arc::clone(handler)));
        }
        units.push(UnitAttachment {
            iommu: Arc::clone(iommu),
            did,
            users: vec![(bdf, pasid)],
        });
        Ok(did)
    }

    /// Forgets (bdf, pasid); the last user on a unit frees the domain id
    /// there (which flushes it).
    pub(super) fn detach(&self, iommu: &Arc<IntelIommu>, bdf: Bdf, pasid: u32) {
        let freed = {
            let mut units = self.units.lock();
            let Some(i) = units.iter().position(|a| Arc::ptr_eq(&a.iommu, iommu)) else {
                return;
            };
            let users = &mut units[i].users;
            if let Some(j) = users.iter().position(|&u| u == (bdf, pasid)) {
                users.swap_remove(j);
            }
            users.is_empty().then(|| units.swap_remove(i))
        };
        if let Some(a) = freed {
            a.iommu.free_domain_id(a.did);
        }
    }

    /// The domain's id on `unit`, while attached there.
    pub(super) fn did_on(&self, unit: &IommuUnit) -> Option<DomainId> {
        self.units
            .lock()
            .iter()
            .find(|a| std::ptr::eq(Arc::as_ptr(a.iommu.unit()), unit))
            .map(|a| a.did)
    }

    /// Every (unit, did).
    pub(super) fn targets(&self) -> Vec<(Arc<IntelIommu>, DomainId)> {
        self.units
            .lock()
            .iter()
            .map(|a| (Arc::clone(&a.iommu), a.did))
            .collect()
    }

    /// Every (unit, did, device, PASID).
    pub(super) fn users(&self) -> Vec<(Arc<IntelIommu>, DomainId, Bdf, u32)> {
        self.units
            .lock()
            .iter()
            .flat_map(|a| {
                a.users
                    .iter()
                    .map(|&(bdf, pasid)| (Arc::clone(&a.iommu), a.did, bdf, pasid))
            })
            .collect()
    }

    /// Routes faults tagged with the domain's ids to `handler`, now and on
    /// units attached later.
    pub(super) fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>) {
        let units = self.units.lock();
        *self.handler.lock() = handler.clone();
        for a in units.iter() {
            a.iommu.unit().set_fault_handler(a.did, handler.clone());
        }
    }
}

/// Strict flush: every invalidation first, then one wait per unit.
pub(super) fn flush_all(flushes: Vec<(Arc<IntelIommu>, IotlbInvalidation)>) {
    for (iommu, inv) in &flushes {
        iommu.unit().submit(&[InvDesc::Iotlb(*inv)]);
    }
    let mut drained: Vec<&Arc<IntelIommu>> = Vec::new();
    for (iommu, _) in &flushes {
        if !drained.iter().any(|u| Arc::ptr_eq(u, iommu)) {
            iommu.unit().submit(&[InvDesc::Wait]);
            drained.push(iommu);
        }
    }
}
