//! How device models raise interrupts.
//!
//! A model never knows who listens: the VFIO layer connects each vector to
//! the consumer's eventfd (SET_IRQS), honouring masks, and a test can
//! connect a counter.

/// The interrupt vectors of one device (MSI/MSI-X vectors, or INTx as
/// vector 0).
pub trait Interrupts: Send + Sync {
    /// Signals `vector` (an edge: one eventfd write).
    fn trigger(&self, vector: u32);
}
