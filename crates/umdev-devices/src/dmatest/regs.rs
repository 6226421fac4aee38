//! The register map of BAR 0 (documented in docs/dmatest.md).
//!
//! Registers are 32 bits wide; 64-bit values are LO/HI pairs.

/// Identification, read-only: "DMAT".
pub const DMATEST_ID: u64 = 0x00;
/// Register-map version, read-only.
pub const DMATEST_VERSION: u64 = 0x04;
/// Source IOVA, low half.
pub const DMATEST_SRC_LO: u64 = 0x08;
/// Source IOVA, high half.
pub const DMATEST_SRC_HI: u64 = 0x0c;
/// Destination IOVA, low half.
pub const DMATEST_DST_LO: u64 = 0x10;
/// Destination IOVA, high half.
pub const DMATEST_DST_HI: u64 = 0x14;
/// Transfer length in bytes.
pub const DMATEST_LEN: u64 = 0x18;
/// Command: operation and start.
pub const DMATEST_CMD: u64 = 0x1c;
/// Status: busy, done, error and the error code.
pub const DMATEST_STATUS: u64 = 0x20;
/// Interrupt control.
pub const DMATEST_IRQ_CTRL: u64 = 0x24;
/// IOVA of the faulting access, low half, read-only.
pub const DMATEST_FAULT_LO: u64 = 0x28;
/// IOVA of the faulting access, high half, read-only.
pub const DMATEST_FAULT_HI: u64 = 0x2c;
/// Fill pattern, low half.
pub const DMATEST_FILL_LO: u64 = 0x30;
/// Fill pattern, high half.
pub const DMATEST_FILL_HI: u64 = 0x34;
/// Bytes of the last command known to be in the destination, read-only.
pub const DMATEST_DONE_BYTES: u64 = 0x38;
/// Commands finished since reset (wrapping), read-only.
pub const DMATEST_COMPLETIONS: u64 = 0x3c;
/// Size of the register window; the rest of BAR 0 reads zero.
pub const DMATEST_REGS_SIZE: u64 = 0x40;

/// The value of [`DMATEST_ID`].
pub const DMATEST_ID_VALUE: u32 = 0x444d_4154;
/// The value of [`DMATEST_VERSION`].
pub const DMATEST_VERSION_VALUE: u32 = 1;

/// CMD: start the operation (reads as zero).
pub const DMATEST_CMD_START: u32 = 1 << 0;
/// CMD: operation field.
pub const DMATEST_CMD_OP_MASK: u32 = 0xe;
/// Operation: copy LEN bytes from SRC to DST.
pub const DMATEST_OP_COPY: u32 = 0;
/// Operation: write LEN bytes of the FILL pattern to DST.
pub const DMATEST_OP_FILL: u32 = 1 << 1;

/// STATUS: an operation is running.
pub const DMATEST_STATUS_BUSY: u32 = 1 << 0;
/// STATUS: the last operation completed (write 1 to clear).
pub const DMATEST_STATUS_DONE: u32 = 1 << 1;
/// STATUS: the last operation failed (write 1 to clear, with the code).
pub const DMATEST_STATUS_ERROR: u32 = 1 << 2;
/// STATUS: the error code field.
pub const DMATEST_STATUS_CODE_MASK: u32 = 0xff << 8;
/// Shift of the error code field.
pub const DMATEST_STATUS_CODE_SHIFT: u32 = 8;

/// Error code: a DMA read from the source faulted.
pub const DMATEST_ERR_READ_FAULT: u32 = 1;
/// Error code: a DMA write to the destination faulted.
pub const DMATEST_ERR_WRITE_FAULT: u32 = 2;
/// Error code: bus mastering is disabled in the command register.
pub const DMATEST_ERR_NO_BUS_MASTER: u32 = 3;
/// Error code: unknown operation, length above the limit, or a range
/// that wraps the 64-bit IOVA space.
pub const DMATEST_ERR_INVALID: u32 = 4;

/// IRQ_CTRL: raise vector 0 when an operation finishes.
pub const DMATEST_IRQ_ENABLE: u32 = 1 << 0;

/// Largest LEN accepted.
pub const DMATEST_MAX_LEN: u32 = 16 << 20;
