//! Placeholder for the mtty model (being written).
