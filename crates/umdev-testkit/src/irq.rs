//! Interrupt sinks for device models under test: a per-vector counter and
//! the glue that raises a model's interrupts on its VFIO device.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_devices::irq::Interrupts;
use umdev_vfio::vfio_pci::VfioPciDevice;

/// Counts triggers per vector.
#[derive(Default)]
pub struct Counter {
    counts: Mutex<BTreeMap<u32, u64>>,
}

impl Counter {
    /// Triggers of `vector` so far.
    pub fn count(&self, vector: u32) -> u64 {
        self.counts.lock().get(&vector).copied().unwrap_or(0)
    }

    /// Triggers of every vector so far.
    pub fn total(&self) -> u64 {
        self.counts.lock().values().sum()
    }

    /// Triggers so far, asserting they were all on `vector`.
    pub fn only(&self, vector: u32) -> u64 {
        let counts = self.counts.lock();
        assert!(
            counts.keys().all(|&v| v == vector),
            "expected only vector {vector}, got {counts:?}"
        );
        counts.get(&vector).copied().unwrap_or(0)
    }
}

impl Interrupts for Counter {
    fn trigger(&self, vector: u32) {
        *self.counts.lock().entry(vector).or_default() += 1;
    }
}

/// A model's interrupts raised on a VFIO PCI device (what a device layer's
/// glue does).
pub struct ToVfio(pub Arc<VfioPciDevice>);

impl Interrupts for ToVfio {
    fn trigger(&self, vector: u32) {
        self.0.raise(vector);
    }
}
