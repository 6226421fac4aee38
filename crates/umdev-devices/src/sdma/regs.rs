//! The register page of one work queue: offsets, bits and the error
//! register's encoding. This page is what a consumer (an mdev's BAR) sees;
//! docs/sdma.md has the table.

/// Size of one work queue's register page.
pub const WQ_PAGE_SIZE: u64 = 4096;

/// u32, read-only: bit `n` set when opcode `n` is supported.
pub const WQ_OPCAP: u64 = 0x00;
/// u32, read-only: the largest `xfer_size` accepted.
pub const WQ_MAX_XFER: u64 = 0x04;
/// u32: bit 0 [`CTRL_ENABLE`]; reads back the current state.
pub const WQ_CTRL: u64 = 0x08;
/// u32, read-only: [`STATUS_ENABLED`], [`STATUS_ERROR`].
pub const WQ_STATUS: u64 = 0x0c;
/// u64: ring IOVA, 64-byte aligned; writable while disabled.
pub const WQ_RING_BASE: u64 = 0x10;
/// u32: ring slots, [`MIN_RING_SIZE`]..=[`MAX_RING_SIZE`]; writable while
/// disabled.
pub const WQ_RING_SIZE: u64 = 0x18;
/// u32, read-only to the consumer: [`PASID_VALID`] and the PASID in bits
/// 19:0, programmed by the host only.
pub const WQ_PASID: u64 = 0x1c;
/// u32, read-only: the next slot the engine will fetch.
pub const WQ_HEAD: u64 = 0x20;
/// u32: the doorbell: the slot after the last one posted.
pub const WQ_TAIL: u64 = 0x24;
/// u32: bit 0 [`INT_ENABLE`] (read-write); bits 31:16 the IMS entry the
/// host assigned (read-only, [`INT_NO_ENTRY`] when none).
pub const WQ_INT_CTRL: u64 = 0x28;
/// u64: the first error latched (see [`WqErrorCode`]); write
/// [`ERROR_VALID`] to clear.
pub const WQ_ERROR: u64 = 0x30;
/// u64, read-only: the address that goes with [`WQ_ERROR`].
pub const WQ_ERROR_ADDR: u64 = 0x38;

/// [`WQ_CTRL`]: enable the work queue.
pub const CTRL_ENABLE: u32 = 1 << 0;
/// [`WQ_STATUS`]: the work queue is enabled.
pub const STATUS_ENABLED: u32 = 1 << 0;
/// [`WQ_STATUS`]: an error is latched in [`WQ_ERROR`].
pub const STATUS_ERROR: u32 = 1 << 1;
/// [`WQ_PASID`]: a PASID is programmed.
pub const PASID_VALID: u32 = 1 << 31;
/// [`WQ_INT_CTRL`]: raise the completion interrupt.
pub const INT_ENABLE: u32 = 1 << 0;
/// [`WQ_INT_CTRL`] bits 31:16 when no IMS entry is assigned.
pub const INT_NO_ENTRY: u32 = 0xffff;
/// [`WQ_ERROR`] bit 31: an error is latched.
pub const ERROR_VALID: u64 = 1 << 31;
/// [`WQ_ERROR`] bit 30: more errors happened while one was latched.
pub const ERROR_OVERFLOW: u64 = 1 << 30;

/// Smallest ring.
pub const MIN_RING_SIZE: u32 = 2;
/// Largest ring.
pub const MAX_RING_SIZE: u32 = 1 << 16;

/// Why a work queue latched an error ([`WQ_ERROR`] bits 7:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WqErrorCode {
    /// Reading the descriptor at HEAD faulted; HEAD stays there and the
    /// next doorbell write retries. Address: the faulting IOVA.
    FetchFault = 1,
    /// Writing a completion record faulted. Address: the faulting IOVA.
    CompletionFault = 2,
    /// A completion record address is not 32-byte aligned. Address: it.
    CompletionAlign = 3,
    /// A descriptor without a completion record failed; bits 15:8 hold its
    /// status. Address: its fault address.
    Unreported = 4,
    /// ENABLE without a PASID programmed by the host.
    NoPasid = 5,
    /// ENABLE with a ring size out of range or a misaligned ring base.
    /// Address: the ring base.
    BadRing = 6,
    /// A TAIL value not below RING_SIZE. Address: the value.
    BadTail = 7,
    /// A doorbell write while disabled. Address: the value.
    Disabled = 8,
}

/// The content of [`WQ_ERROR`] / [`WQ_ERROR_ADDR`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ErrorLatch {
    /// The [`WQ_ERROR`] value.
    pub(super) error: u64,
    /// The [`WQ_ERROR_ADDR`] value.
    pub(super) addr: u64,
}

impl ErrorLatch {
    /// Records an error: the first one is kept, a later one only sets
    /// [`ERROR_OVERFLOW`] (DSA's SWERR). `slot` is the ring slot of the
    /// descriptor concerned, `status` its status for
    /// [`WqErrorCode::Unreported`]. Returns whether it was latched (and so
    /// is news for the interrupt).
    pub(super) fn latch(&mut self, code: WqErrorCode, status: u8, slot: u32, addr: u64) -> bool {
        if self.is_valid() {
            self.error |= ERROR_OVERFLOW;
            return false;
        }
        self.error = u64::from(code as u8)
            | (u64::from(status) << 8)
            | ERROR_VALID
            | (u64::from(slot) << 32);
        self.addr = addr;
        true
    }

    /// Whether an error is latched.
    pub(super) fn is_valid(&self) -> bool {
        self.error & ERROR_VALID != 0
    }
}
