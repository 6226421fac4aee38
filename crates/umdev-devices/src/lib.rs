//! umdev device models: what the simulated hardware does.
//!
//! - [`irq`]: the interrupt interface every model raises through;
//! - [`host`]: the whole model brought up, as the faces use it;
//! - [`dmatest`]: the DMA test device behind platform endpoints;
//! - [`mtty`]: a 16550-compatible virtual serial card (the kernel's mtty
//!   sample);
//! - [`sdma`]: a Scalable-IOV DMA engine with work queues, PASID-tagged
//!   DMA and interrupt message store;
//! - [`sdma_mdev`]: its parent driver, one work queue per mdev, isolated
//!   by PASID;
//! - [`mdev_pci`]: a PCI function wrapped as an mdev.

pub mod dmatest;
pub mod host;
pub mod irq;
pub mod mdev_pci;
pub mod mtty;
pub mod sdma;
pub mod sdma_mdev;
mod vpci;
