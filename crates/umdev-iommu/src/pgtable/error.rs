//! Errors of page-table construction and mapping.

use rustix::io::Errno;

use super::PtFormat;
use crate::memory::{MemoryError, PhysAddr};

/// Why a page table could not be created or a range not mapped.
#[derive(Debug, thiserror::Error)]
pub enum PgtableError {
    /// Not a format VT-d has (first level 4/5 levels, second level 3/4/5).
    #[error("unsupported page-table format {0:?}")]
    BadFormat(PtFormat),
    /// The page-size bitmap lacks 4 KiB or has sizes other than 4K/2M/1G.
    #[error("page-size bitmap {0:#x} must hold 4K and only 4K/2M/1G")]
    BadPageSizes(u64),
    /// IOVA, physical address or length not 4 KiB aligned.
    #[error("iova {iova:#x} / phys {phys:#x} / length {len:#x} not page aligned")]
    Misaligned {
        /// Requested IOVA.
        iova: u64,
        /// Requested physical address.
        phys: PhysAddr,
        /// Requested length.
        len: u64,
    },
    /// The IOVA range ends above what the table can translate.
    #[error("iova range {iova:#x}+{len:#x} exceeds the input limit {limit:#x}")]
    OutOfRange {
        /// Requested IOVA.
        iova: u64,
        /// Requested length.
        len: u64,
        /// End (exclusive) of the mappable IOVA space.
        limit: u64,
    },
    /// The physical range does not fit the 52-bit address field.
    #[error("physical range {phys:#x}+{len:#x} does not fit a page-table entry")]
    BadPhys {
        /// Requested physical address.
        phys: PhysAddr,
        /// Requested length.
        len: u64,
    },
    /// Neither read nor write was requested.
    #[error("mapping without read or write permission")]
    NoPermission,
    /// Part of the range is already mapped (existing leaf, or a superpage
    /// over an existing table).
    #[error("iova {iova:#x} is already mapped")]
    Exists {
        /// The first IOVA found mapped.
        iova: u64,
    },
    /// A table entry points outside this table's pages (the table memory
    /// was overwritten).
    #[error("table entry points at {table:#x}, not a table page of this page table")]
    Corrupt {
        /// The address the entry holds.
        table: PhysAddr,
    },
    /// No memory for a table page.
    #[error("cannot allocate a table page: {0}")]
    NoMemory(#[source] MemoryError),
}

impl PgtableError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            // drivers/iommu/iommu.c __iommu_map: unaligned iova/paddr/size
            // is -EINVAL; drivers/iommu/intel/iommu.c __domain_mapping: no
            // READ/WRITE is -EINVAL.
            PgtableError::BadFormat(_)
            | PgtableError::BadPageSizes(_)
            | PgtableError::Misaligned { .. }
            | PgtableError::BadPhys { .. }
            | PgtableError::NoPermission => Errno::INVAL,
            // intel_iommu_map: "iommu width is not sufficient for the
            // mapped address" is -EFAULT.
            PgtableError::OutOfRange { .. } | PgtableError::Corrupt { .. } => Errno::FAULT,
            // io-pgtable-arm.c arm_lpae_init_pte and generic_pt refuse to
            // replace a present entry with -EEXIST ("We require an unmap
            // first").
            PgtableError::Exists { .. } => Errno::EXIST,
            // pfn_to_dma_pte: table page allocation failure.
            PgtableError::NoMemory(_) => Errno::NOMEM,
        }
    }
}
