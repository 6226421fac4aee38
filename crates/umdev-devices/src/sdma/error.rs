//! Errors of the sdma engine's host and register interfaces. Descriptor
//! failures are not errors of this kind: they end in completion-record
//! statuses and the work queue's error register.

use rustix::io::Errno;

/// A refused host or register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdmaError {
    /// Host configuration of an enabled work queue.
    #[error("work queue {wq} is enabled")]
    WqEnabled {
        /// The work queue.
        wq: usize,
    },
    /// A PASID that is not a valid non-zero 20-bit value.
    #[error("PASID {pasid:#x} is outside 1..2^20")]
    BadPasid {
        /// The value given.
        pasid: u32,
    },
    /// An interrupt message store index past its end.
    #[error("no IMS entry {index} (the store has {len})")]
    NoImsEntry {
        /// The index given.
        index: usize,
        /// Entries in the store.
        len: usize,
    },
    /// A register access that is outside the page, not 4 or 8 bytes, or
    /// not naturally aligned.
    #[error("bad register access of {len} bytes at {offset:#x}")]
    BadAccess {
        /// Offset into the register page.
        offset: u64,
        /// Access size in bytes.
        len: usize,
    },
    /// An engine configuration that cannot be built.
    #[error("invalid sdma configuration: {reason}")]
    BadConfig {
        /// What is wrong.
        reason: &'static str,
    },
}

impl SdmaError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            // idxd refuses work-queue configuration while the queue is
            // not disabled with EPERM (drivers/dma/idxd/sysfs.c, the
            // wq_*_store handlers).
            SdmaError::WqEnabled { .. } => Errno::PERM,
            // An out-of-range BAR access is EINVAL in vfio-pci
            // (vfio_pci_bar_rw).
            SdmaError::BadPasid { .. }
            | SdmaError::NoImsEntry { .. }
            | SdmaError::BadAccess { .. }
            | SdmaError::BadConfig { .. } => Errno::INVAL,
        }
    }
}
