//! The fault log (VT-d fault-recording registers, as a bounded queue) and
//! the per-domain-id fault handlers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::{DomainId, FaultHandler, FaultRecord};

/// A unit's bounded fault log: when full, the oldest record is dropped
/// and counted.
#[derive(Debug)]
pub struct FaultLog {
    capacity: usize,
    records: Mutex<VecDeque<FaultRecord>>,
    total: AtomicU64,
    dropped: AtomicU64,
    suppressed: AtomicU64,
}

impl FaultLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            records: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Most records kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> Vec<FaultRecord> {
        self.records.lock().iter().copied().collect()
    }

    /// Removes and returns the records kept, oldest first (software
    /// reading and clearing the fault-recording registers).
    pub fn take(&self) -> Vec<FaultRecord> {
        self.records.lock().drain(..).collect()
    }

    /// Number of records kept.
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    /// No record kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Faults recorded since the unit was created.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Records dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Faults not recorded because of FPD.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, record: FaultRecord) {
        let mut records = self.records.lock();
        if records.len() == self.capacity {
            records.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        records.push_back(record);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn suppress(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fault handlers by domain id.
#[derive(Default)]
pub(crate) struct FaultHandlers {
    by_did: RwLock<HashMap<DomainId, Arc<dyn FaultHandler>>>,
}

impl std::fmt::Debug for FaultHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut dids: Vec<_> = self.by_did.read().keys().copied().collect();
        dids.sort_unstable();
        f.debug_struct("FaultHandlers")
            .field("dids", &dids)
            .finish()
    }
}

impl FaultHandlers {
    pub(crate) fn set(&self, did: DomainId, handler: Option<Arc<dyn FaultHandler>>) {
        let mut map = self.by_did.write();
        match handler {
            Some(h) => map.insert(did, h),
            None => map.remove(&did),
        };
    }

    pub(crate) fn get(&self, did: DomainId) -> Option<Arc<dyn FaultHandler>> {
        self.by_did.read().get(&did).cloned()
    }
}

#[cfg(test)]
mod tests {
    use umdev_pci::Bdf;

    use super::*;
    use crate::pgtable::Access;
    use crate::vtd::FaultReason;

    fn record(addr: u64) -> FaultRecord {
        FaultRecord {
            requester: Bdf::new(0, 0, 1, 0).unwrap(),
            pasid: None,
            addr,
            access: Access::Read,
            reason: FaultReason::PasidNotPresent,
            did: None,
        }
    }

    #[test]
    fn bounded_oldest_dropped() {
        let log = FaultLog::new(3);
        for addr in 0..5 {
            log.record(record(addr));
        }
        let kept: Vec<u64> = log.records().iter().map(|r| r.addr).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!((log.total(), log.dropped(), log.len()), (5, 2, 3));
        assert_eq!(log.take().len(), 3);
        assert!(log.is_empty());
        assert_eq!(log.total(), 5);
    }
}
