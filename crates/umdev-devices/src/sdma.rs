//! Placeholder for the sdma model (being written).
