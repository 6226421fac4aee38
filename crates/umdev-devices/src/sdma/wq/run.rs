//! Processing: the doorbell, the run over the ring, completion records,
//! the error latch and the interrupt.

use std::sync::atomic::{Ordering, fence};

use parking_lot::MutexGuard;
use umdev_iommu::dma::DmaError;

use super::WorkQueue;
use crate::sdma::completion::{COMPLETION_ALIGN, CompletionRecord, Status};
use crate::sdma::desc::{DESC_SIZE, DescFlags, Descriptor};
use crate::sdma::exec::Exec;
use crate::sdma::regs::WqErrorCode;

/// What a run needs, fixed while the queue is enabled.
#[derive(Clone, Copy)]
struct Ring {
    base: u64,
    size: u32,
    pasid: Option<u32>,
    ims_entry: Option<u16>,
}

/// How a run ended.
#[derive(PartialEq, Eq)]
enum Ran {
    /// Caught up with TAIL, or disabled.
    Idle,
    /// Stopped at a descriptor it could not fetch.
    Stalled,
}

impl WorkQueue {
    /// Latches an error; whether it is news for the interrupt.
    fn latch(&self, code: WqErrorCode, status: u8, slot: u32, addr: u64) -> bool {
        self.state.lock().error.latch(code, status, slot, addr)
    }

    /// Raises the queue's interrupt, if enabled and an entry is assigned.
    pub(super) fn raise(&self, entry: Option<u16>) {
        if let Some(entry) = entry
            && self.int_enable.load(Ordering::Acquire)
        {
            self.engine.ims.fire(usize::from(entry));
        }
    }

    pub(super) fn doorbell(&self, tail: u32) {
        let (raise, entry) = {
            let mut st = self.state.lock();
            let error = if !self.is_enabled() {
                Some(WqErrorCode::Disabled)
            } else if tail >= st.ring_size {
                Some(WqErrorCode::BadTail)
            } else {
                self.tail.store(tail, Ordering::SeqCst);
                None
            };
            let raise = error.is_some_and(|code| st.error.latch(code, 0, 0, u64::from(tail)));
            (raise, st.ims_entry)
        };
        if raise {
            self.raise(entry);
        } else {
            self.kick();
        }
    }

    fn has_work(&self) -> bool {
        self.is_enabled() && self.head.load(Ordering::SeqCst) != self.tail.load(Ordering::SeqCst)
    }

    /// Runs posted descriptors on this thread unless another thread is
    /// running them. The fences pair a doorbell's TAIL store with the
    /// runner's re-check after unlocking, so a doorbell that finds the
    /// runner busy is always seen by it.
    fn kick(&self) {
        loop {
            fence(Ordering::SeqCst);
            let Some(run) = self.runner.try_lock() else {
                return;
            };
            let ran = self.run(&run);
            drop(run);
            fence(Ordering::SeqCst);
            if ran == Ran::Stalled || !self.has_work() {
                return;
            }
        }
    }

    /// Runs descriptors from HEAD to TAIL; `runner` is held.
    fn run(&self, _runner: &MutexGuard<'_, ()>) -> Ran {
        let ring = {
            let st = self.state.lock();
            Ring {
                base: st.ring_base,
                size: st.ring_size,
                pasid: st.pasid,
                ims_entry: st.ims_entry,
            }
        };
        let dma = &*self.engine.dma;
        let exec = Exec {
            dma,
            pasid: ring.pasid,
            max_xfer: self.engine.max_xfer,
        };
        while self.is_enabled() {
            let head = self.head.load(Ordering::Acquire);
            if head == self.tail.load(Ordering::Acquire) {
                break;
            }
            let slot = ring.base + u64::from(head) * DESC_SIZE as u64;
            let mut raw = [0u8; DESC_SIZE];
            if let Err(err) = dma.read(ring.pasid, slot, &mut raw) {
                if self.latch(WqErrorCode::FetchFault, 0, head, err.record().addr) {
                    self.raise(ring.ims_entry);
                }
                return Ran::Stalled;
            }
            let desc = Descriptor::decode(&raw);
            let record = exec.run(&desc);
            let raise = self.complete(&ring, head, &desc, &record);
            self.head.store((head + 1) % ring.size, Ordering::Release);
            if raise {
                self.raise(ring.ims_entry);
            }
        }
        Ran::Idle
    }

    /// Writes the completion record (or latches why it cannot, or the
    /// unreported failure); whether to raise the interrupt.
    fn complete(
        &self,
        ring: &Ring,
        slot: u32,
        desc: &Descriptor,
        record: &CompletionRecord,
    ) -> bool {
        let flags = DescFlags::from_bits_truncate(desc.flags);
        let mut raise = flags.contains(DescFlags::RCI);
        if flags.contains(DescFlags::RCR) {
            let addr = desc.completion_addr;
            if !addr.is_multiple_of(COMPLETION_ALIGN) {
                raise |= self.latch(WqErrorCode::CompletionAlign, 0, slot, addr);
            } else if let Err(err) = self.write_record(ring.pasid, addr, record) {
                raise |= self.latch(WqErrorCode::CompletionFault, 0, slot, err.record().addr);
            }
        } else if record.status != Status::Success {
            raise |= self.latch(
                WqErrorCode::Unreported,
                record.status as u8,
                slot,
                record.fault_addr,
            );
        }
        raise
    }

    /// Writes the record with its status byte last.
    fn write_record(
        &self,
        pasid: Option<u32>,
        addr: u64,
        record: &CompletionRecord,
    ) -> Result<(), DmaError> {
        let bytes = record.encode();
        self.engine.dma.write(pasid, addr + 1, &bytes[1..])?;
        self.engine.dma.write(pasid, addr, &bytes[..1])
    }
}
