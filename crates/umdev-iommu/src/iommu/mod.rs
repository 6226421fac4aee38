//! The IOMMU core (drivers/iommu/iommu.c): groups, domains, DMA ownership
//! and attach.
//!
//! - [`Iommu`] ([`core`]) sits over one hardware driver ([`IommuOps`]) and
//!   implements [`umdev_pci::IommuHooks`], so the platform reports devices
//!   (probe / release) and kernel DMA-API drivers (use / unuse of the
//!   default domain) to it;
//! - [`Group`] ([`group`]): devices, default / current / blocking domain,
//!   owner cookie and count, PASID → domain array;
//! - [`Domain`] ([`domain`]): the driver's domain plus id, type, owner,
//!   fault-handler slot; map / unmap for paging domains;
//! - RID attach (`attach.rs`), PASID attach (`pasid.rs`), the legacy
//!   auxiliary-domain API ([`aux`]) and DMA ownership ([`owner`]) follow
//!   kernel-semantics §2.3–§2.5 and §4.1 errno for errno;
//! - [`ioasid`]: the global PASID space;
//! - [`Iommu::attach_platform`] wires a core to a [`umdev_pci::Platform`]
//!   and [`Iommu::group_viable`] asks it which drivers are bound.
//!
//! # Locking
//!
//! Lock order: **platform → core topology → group → domain → IOASID
//! allocator**.
//! - The platform calls the [`umdev_pci::IommuHooks`] with its own locks
//!   held; the hooks take only core locks and never call the platform.
//! - The topology lock (device → group and id → group tables) is held only
//!   to look up, add or remove entries; a group lock may be taken under it
//!   (probe, release), never the other way round.
//! - A group lock (Linux `group->mutex`) is held across every driver call
//!   that changes the group's translation, so a group switches domains
//!   atomically with respect to other core calls. No group lock is ever
//!   held while calling into the platform (the viability query collects
//!   the members first, then asks the platform) and no two group locks are
//!   ever held at once.
//! - A domain's own locks (fault handler, aux PASID) are leaves below the
//!   group lock; the driver's internal locks are below everything here.

mod attach;
pub mod aux;
pub mod core;
pub mod domain;
pub mod error;
pub mod group;
mod hooks;
pub mod ioasid;
pub mod ops;
pub mod owner;
mod pasid;
mod viable;

pub use self::core::{DefaultDomainType, Iommu};
pub use aux::DevFeature;
pub use domain::Domain;
pub use error::IommuError;
pub use group::{Group, GroupInfo};
pub use ioasid::IoasidAllocator;
pub use ops::{DeviceCaps, DomainOps, DomainType, IommuOps, PagingFlags, VtdS1Config};
pub use owner::OwnerCookie;
