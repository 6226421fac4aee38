//! I/O page tables in the real VT-d formats.
//!
//! Tables are 4 KiB pages of 512 little-endian u64 entries placed in the
//! simulated host-physical space ([`crate::memory::HostMemory`]), exactly as
//! hardware reads them:
//! - first level: x86-64 IA-32e paging, 4-level (48-bit) or 5-level (57-bit)
//!   (VT-d spec §3.6, kernel-semantics §5.1);
//! - second level: VT-d second-stage, 3/4/5 levels (39/48/57-bit).

mod dirty;
mod error;
mod map;
mod pool;
pub mod pte;
mod table;
mod unmap;
mod walk;

pub use error::PgtableError;
pub use table::{PGSIZE_4K_2M_1G, PageTable};
pub use walk::{HostTableReader, lookup, set_bits_if_present, walk};

use crate::memory::PhysAddr;

bitflags::bitflags! {
    /// What a mapping allows (Linux `IOMMU_READ` / `IOMMU_WRITE`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Prot: u32 {
        /// Device reads (DMA to the device) are allowed.
        const READ = 1 << 0;
        /// Device writes (DMA from the device) are allowed.
        const WRITE = 1 << 1;
    }
}

/// The direction of one DMA access, from the device's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// The device reads memory.
    Read,
    /// The device writes memory.
    Write,
}

impl Access {
    /// The permission this access needs.
    pub fn needs(self) -> Prot {
        match self {
            Access::Read => Prot::READ,
            Access::Write => Prot::WRITE,
        }
    }
}

/// Which page-table format, and how many levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtFormat {
    /// x86-64 paging: 4 levels (48-bit input) or 5 levels (57-bit).
    FirstLevel {
        /// 4 or 5.
        levels: u8,
    },
    /// VT-d second-stage: 3, 4 or 5 levels (39/48/57-bit input).
    SecondLevel {
        /// 3, 4 or 5.
        levels: u8,
    },
}

impl PtFormat {
    /// Number of table levels.
    pub fn levels(self) -> u8 {
        match self {
            PtFormat::FirstLevel { levels } | PtFormat::SecondLevel { levels } => levels,
        }
    }

    /// Input address width in bits: 12 + 9 × levels.
    pub fn address_width(self) -> u32 {
        12 + 9 * u32::from(self.levels())
    }
}

/// The result of a successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Host-physical address of the translated IOVA (not of the page start).
    pub phys: PhysAddr,
    /// Size of the leaf that maps it: 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    /// What the leaf (and every table above it) allows.
    pub prot: Prot,
}

/// Why a hardware walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WalkFault {
    /// The address is above the table's input width (or non-canonical).
    OutOfAperture,
    /// An entry on the way is not present; `level` counts from 1 (leaf
    /// tables) up to the top level.
    NotPresent {
        /// Level of the missing entry.
        level: u8,
    },
    /// The leaf (or a table entry above it) does not allow the access.
    Permission {
        /// Level of the entry that refused.
        level: u8,
    },
    /// An entry has reserved bits set or a superpage where the format
    /// forbids one.
    Reserved {
        /// Level of the malformed entry.
        level: u8,
    },
    /// A table address could not be read: unbacked host memory, or, in a
    /// nested walk, a first-level table address the second level does not
    /// translate.
    TableRead {
        /// The table address that failed (guest-physical in a nested walk).
        addr: PhysAddr,
    },
}

/// Where a hardware walk reads table entries from.
///
/// Host-owned tables are read straight from host memory; a guest-owned
/// first-level table (nested translation) is read through the parent
/// second-level translation, so its table addresses are guest-physical.
pub trait TableReader {
    /// Loads entry `index` (0..512) of the table at `table`.
    fn read_entry(&self, table: PhysAddr, index: usize) -> Result<u64, WalkFault>;

    /// Atomically ORs `bits` into the entry (hardware setting Accessed /
    /// Dirty). Best effort: a failure leaves the walk result unchanged.
    fn set_entry_bits(&self, table: PhysAddr, index: usize, bits: u64);
}
