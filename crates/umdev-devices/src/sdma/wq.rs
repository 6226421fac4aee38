//! One work queue (an assignable device interface): its register page,
//! the host-only configuration (PASID, IMS entry) and the processing of
//! its ring.
//!
//! Locks, in order: `runner` (held while descriptors run; serialises
//! processing, enable, disable and reset) before `state` (registers; held
//! briefly, never across DMA or an interrupt). Interrupts are raised with
//! no lock but `runner` held, so an interrupt sink may read registers and
//! ring this queue's doorbell, but must not write CTRL or reset it.

mod mmio;
mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::Mutex;
use umdev_iommu::dma::Dma;

use super::error::SdmaError;
use super::ims::Ims;
use super::regs::{ErrorLatch, INT_NO_ENTRY};

/// Largest PASID plus one (20-bit PASIDs).
const PASID_LIMIT: u32 = 1 << 20;

/// What the work queues of one engine share.
pub(super) struct Engine {
    /// DMA of the engine's PCI function.
    pub(super) dma: Arc<dyn Dma>,
    /// The interrupt message store.
    pub(super) ims: Ims,
    /// Largest `xfer_size`.
    pub(super) max_xfer: u32,
}

/// Registers and host configuration, under `WorkQueue::state`.
#[derive(Default)]
struct WqState {
    ring_base: u64,
    ring_size: u32,
    pasid: Option<u32>,
    ims_entry: Option<u16>,
    error: ErrorLatch,
}

/// One work queue of an [`super::Sdma`] engine.
///
/// The consumer's face is [`WorkQueue::mmio_read`] / [`WorkQueue::mmio_write`]
/// on the register page (what an mdev's BAR forwards); everything else is
/// the host's (the parent driver's).
pub struct WorkQueue {
    index: usize,
    engine: Arc<Engine>,
    state: Mutex<WqState>,
    /// Set only under `state` and `runner`; cleared first by disable.
    enabled: AtomicBool,
    int_enable: AtomicBool,
    head: AtomicU32,
    tail: AtomicU32,
    runner: Mutex<()>,
}

impl std::fmt::Debug for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("index", &self.index)
            .field("enabled", &self.is_enabled())
            .field("pasid", &self.pasid())
            .field("head", &self.head.load(Ordering::Relaxed))
            .field("tail", &self.tail.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WorkQueue {
    pub(super) fn new(index: usize, engine: Arc<Engine>) -> Self {
        Self {
            index,
            engine,
            state: Mutex::new(WqState::default()),
            enabled: AtomicBool::new(false),
            int_enable: AtomicBool::new(false),
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            runner: Mutex::new(()),
        }
    }

    /// The queue's number in its engine.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether the consumer has enabled the queue.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The PASID every DMA of this queue carries.
    pub fn pasid(&self) -> Option<u32> {
        self.state.lock().pasid
    }

    /// Programs the PASID (the host's half of binding the queue to a
    /// consumer's address space); `None` leaves the queue unable to be
    /// enabled. EINVAL outside 1..2^20 (0 is `IOMMU_NO_PASID`), EPERM while
    /// enabled.
    pub fn set_pasid(&self, pasid: Option<u32>) -> Result<(), SdmaError> {
        if let Some(p) = pasid
            && !(1..PASID_LIMIT).contains(&p)
        {
            return Err(SdmaError::BadPasid { pasid: p });
        }
        self.configure(|st| st.pasid = pasid)
    }

    /// The IMS entry the queue's interrupt fires.
    pub fn ims_entry(&self) -> Option<usize> {
        self.state.lock().ims_entry.map(usize::from)
    }

    /// Assigns the IMS entry the queue's interrupt fires. EINVAL past the
    /// store, EPERM while enabled.
    pub fn set_ims_entry(&self, entry: Option<usize>) -> Result<(), SdmaError> {
        let entry = entry
            .map(|index| {
                u16::try_from(index)
                    .ok()
                    .filter(|&e| index < self.engine.ims.len() && u32::from(e) != INT_NO_ENTRY)
                    .ok_or(SdmaError::NoImsEntry {
                        index,
                        len: self.engine.ims.len(),
                    })
            })
            .transpose()?;
        self.configure(|st| st.ims_entry = entry)
    }

    fn configure(&self, f: impl FnOnce(&mut WqState)) -> Result<(), SdmaError> {
        let mut st = self.state.lock();
        if self.is_enabled() {
            return Err(SdmaError::WqEnabled { wq: self.index });
        }
        f(&mut st);
        Ok(())
    }

    /// Disables the queue, waits for the descriptor in flight and clears
    /// the consumer's registers; PASID and IMS entry stay (a device reset
    /// of the mdev owning the queue).
    pub fn reset(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        let _run = self.runner.lock();
        let mut st = self.state.lock();
        st.ring_base = 0;
        st.ring_size = 0;
        st.error = ErrorLatch::default();
        self.int_enable.store(false, Ordering::Release);
        self.head.store(0, Ordering::Release);
        self.tail.store(0, Ordering::Release);
    }
}
