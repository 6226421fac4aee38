//! sdma: a Scalable-IOV DMA engine in the spirit of Intel DSA (the idxd
//! driver's device).
//!
//! The physical function has N work queues, each an assignable device
//! interface (ADI) with its own 4 KiB register page: enable, a descriptor
//! ring in the consumer's memory (base IOVA and size), HEAD/TAIL doorbell,
//! interrupt control and an error register. The host (the parent driver)
//! gives each queue a PASID and an entry of the interrupt message store
//! ([`Ims`]); the consumer cannot change either through its page. Every
//! DMA of a queue (descriptor fetch, operands, completion record) goes
//! through the function's [`Dma`] port tagged with that PASID, so queues
//! handed to different consumers are isolated by the IOMMU, one PASID
//! domain each.
//!
//! Operations ([`Opcode`]): memmove, fill (8-byte pattern), compare,
//! compare-pattern and CRC-32C. Each may write a 32-byte
//! [`CompletionRecord`] and raise the queue's interrupt. A DMA fault ends
//! its descriptor with [`Status::PageFault`] and the faulting IOVA; the
//! queue goes on with the next descriptor and other queues never notice.
//!
//! Processing model: a TAIL write runs the posted descriptors
//! synchronously on the writer's thread before it returns. The model needs
//! no threads, a test sees every effect of a doorbell when the write
//! returns, and the work is paid by the consumer that posted it. Each
//! queue has its own locks and nothing is shared between queues but the
//! lock-free DMA port and the per-entry IMS locks, so queues rung from
//! different threads run in parallel. A doorbell that finds its queue busy
//! on another thread leaves the work to that thread.
//!
//! The register map and the binary formats are in docs/sdma.md.

mod completion;
mod crc32c;
mod desc;
mod error;
mod exec;
mod ims;
pub mod regs;
mod wq;

use std::sync::Arc;

use umdev_iommu::dma::Dma;
use umdev_pci::Bdf;

pub use completion::{COMPLETION_ALIGN, COMPLETION_SIZE, CompletionRecord, FaultInfo, Status};
pub use desc::{DESC_SIZE, DescFlags, Descriptor, Opcode};
pub use error::SdmaError;
pub use ims::{Ims, ImsEntry, ImsMessage};
pub use wq::WorkQueue;

use crate::irq::Interrupts;
use wq::Engine;

/// The shape of an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdmaConfig {
    /// Work queues (1..=256).
    pub wqs: usize,
    /// Interrupt message store entries (at most 65535).
    pub ims_entries: usize,
    /// Largest `xfer_size` of a descriptor (non-zero).
    pub max_xfer_size: u32,
}

impl Default for SdmaConfig {
    /// Eight work queues, 64 IMS entries, 2 MiB transfers.
    fn default() -> Self {
        Self {
            wqs: 8,
            ims_entries: 64,
            max_xfer_size: 2 << 20,
        }
    }
}

/// One engine: its work queues and interrupt message store.
pub struct Sdma {
    config: SdmaConfig,
    engine: Arc<Engine>,
    wqs: Box<[Arc<WorkQueue>]>,
}

impl std::fmt::Debug for Sdma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sdma")
            .field("requester", &self.requester())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sdma {
    /// An engine doing DMA through `dma` (its function's port) and
    /// delivering IMS messages to `irq`. EINVAL for a configuration out of
    /// the ranges [`SdmaConfig`] documents.
    pub fn new(
        dma: Arc<dyn Dma>,
        irq: Arc<dyn Interrupts>,
        config: SdmaConfig,
    ) -> Result<Self, SdmaError> {
        let reason = if !(1..=256).contains(&config.wqs) {
            Some("work queues must be 1..=256")
        } else if config.ims_entries > usize::from(u16::MAX) {
            Some("at most 65535 IMS entries")
        } else if config.max_xfer_size == 0 {
            Some("max_xfer_size must be non-zero")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(SdmaError::BadConfig { reason });
        }
        let engine = Arc::new(Engine {
            dma,
            ims: Ims::new(config.ims_entries, irq),
            max_xfer: config.max_xfer_size,
        });
        let wqs = (0..config.wqs)
            .map(|i| Arc::new(WorkQueue::new(i, engine.clone())))
            .collect();
        Ok(Self {
            config,
            engine,
            wqs,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> SdmaConfig {
        self.config
    }

    /// The requester ID its DMA carries.
    pub fn requester(&self) -> Bdf {
        self.engine.dma.requester()
    }

    /// Every work queue, by index.
    pub fn wqs(&self) -> &[Arc<WorkQueue>] {
        &self.wqs
    }

    /// Work queue `index`.
    pub fn wq(&self, index: usize) -> Option<&Arc<WorkQueue>> {
        self.wqs.get(index)
    }

    /// The interrupt message store.
    pub fn ims(&self) -> &Ims {
        &self.engine.ims
    }
}
