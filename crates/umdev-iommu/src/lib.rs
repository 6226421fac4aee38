//! umdev IOMMU layer.
//!
//! A software model of an Intel VT-d unit in scalable mode and of the Linux
//! IOMMU core above it:
//! - [`memory`]: memory objects in a simulated host-physical address space;
//! - [`pgtable`]: page tables in the real VT-d first-level (x86-64 4/5-level)
//!   and second-level formats;
//! - [`vtd`]: the VT-d hardware unit (capability registers, root / scalable
//!   context entries, PASID directory and tables with PGTT as hardware
//!   reads them, translation, IOTLB, fault log);
//! - [`intel`]: the intel-iommu driver over it (drivers/iommu/intel/: it
//!   writes the tables, owns the domain ids, invalidates);
//! - [`dma`]: the DMA interface device models use, by requester;
//! - [`failpoint`]: `fail_nth`-style fault injection at every fallible step;
//! - [`system`]: bring-up of a platform with its units and core;
//! - [`iommu`]: groups, domains, DMA ownership, attach / PASID attach and the
//!   legacy auxiliary-domain API, as drivers/iommu/iommu.c has them.

pub mod dma;
pub mod failpoint;
pub mod intel;
pub mod iommu;
pub mod memory;
pub mod pgtable;
pub mod system;
pub mod vtd;
