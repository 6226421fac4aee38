//! Placeholder for the dmatest model (being written).
