//! The in-flight DMA drain that makes invalidation strict.
//!
//! A DMA holds a [`GateGuard`] from before it looks up its translation
//! until its last byte is copied. An invalidation first removes the stale
//! state (PTEs, IOTLB and PASID-cache entries), then calls
//! [`DmaGate::synchronize`], which waits for every DMA that might have seen
//! that state. It is an SRCU-style pair of per-shard counters: readers
//! count themselves under the current epoch's parity; `synchronize` flips
//! the epoch and waits for the old parity to drain. New DMAs never wait,
//! and a waiting invalidation cannot be starved by them.
//!
//! Ordering: a reader increments its counter and then re-reads the epoch
//! (both SeqCst). If it read the old epoch, its increment precedes the
//! flip in the SeqCst order and `synchronize` sees it; if it read the new
//! epoch, it synchronised with the flip and therefore sees every store the
//! invalidation made before flipping.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::shard::{Padded, SHARDS, backoff, shard_index};

/// In-flight DMA accounting for one unit.
pub(crate) struct DmaGate {
    epoch: Padded<AtomicU64>,
    readers: Box<[Padded<[AtomicU64; 2]>]>,
    writer: Mutex<()>,
}

/// Marks one DMA in flight; dropping it ends the DMA.
#[derive(Debug)]
pub(crate) struct GateGuard<'a> {
    counter: &'a AtomicU64,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Release);
    }
}

impl std::fmt::Debug for DmaGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaGate")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DmaGate {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Padded(AtomicU64::new(0)),
            readers: (0..SHARDS).map(|_| Padded::default()).collect(),
            writer: Mutex::new(()),
        }
    }

    /// Starts a DMA. Never blocks. A thread may hold several guards; it
    /// must not call [`DmaGate::synchronize`] while holding one.
    pub(crate) fn enter(&self) -> GateGuard<'_> {
        let shard = &self.readers[shard_index()];
        loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let counter = &shard[(epoch & 1) as usize];
            counter.fetch_add(1, Ordering::SeqCst);
            if self.epoch.load(Ordering::SeqCst) == epoch {
                return GateGuard { counter };
            }
            counter.fetch_sub(1, Ordering::Release);
        }
    }

    /// Waits until every DMA that started before this call has finished.
    pub(crate) fn synchronize(&self) {
        let _writer = self.writer.lock();
        let old = (self.epoch.fetch_add(1, Ordering::SeqCst) & 1) as usize;
        for shard in self.readers.iter() {
            let mut spins = 0;
            while shard[old].load(Ordering::SeqCst) != 0 {
                backoff(&mut spins);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn synchronize_waits_for_a_guard_taken_before_it() {
        let gate = Arc::new(DmaGate::new());
        let released = Arc::new(AtomicBool::new(false));
        let guard = gate.enter();
        let waiter = {
            let (gate, released) = (Arc::clone(&gate), Arc::clone(&released));
            std::thread::spawn(move || {
                gate.synchronize();
                released.load(Ordering::SeqCst)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Nested guards are allowed.
        let nested = gate.enter();
        released.store(true, Ordering::SeqCst);
        drop(nested);
        drop(guard);
        assert!(
            waiter.join().unwrap(),
            "synchronize returned before the guard dropped"
        );
        gate.synchronize();
    }
}
