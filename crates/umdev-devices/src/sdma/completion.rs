//! The 32-byte completion record the engine writes for a descriptor
//! (little-endian, modelled on DSA's `struct dsa_completion_record`).

/// Size of a completion record.
pub const COMPLETION_SIZE: usize = 32;

/// Required alignment of a completion record's IOVA (DSA's, which idxd's
/// `idxd_submit_user_descriptor` enforces).
pub const COMPLETION_ALIGN: u64 = 32;

/// How a descriptor ended (DSA status codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// Done. A compare that found a difference is a success too, with
    /// `result` 1.
    Success = 0x01,
    /// A DMA access faulted (DSA `PAGE_FAULT_NOBOF`): `fault_addr` is the
    /// faulting IOVA, `bytes_completed` how far the operation got.
    PageFault = 0x03,
    /// Unsupported opcode (DSA `BAD_OPCODE`).
    BadOpcode = 0x10,
    /// A flag bit that is not defined (DSA `INVALID_FLAGS`).
    InvalidFlags = 0x11,
    /// `xfer_size` above the work queue's maximum (DSA `XFER_ERANGE`).
    XferSize = 0x13,
}

impl Status {
    /// The status with number `raw`, if defined.
    pub fn from_raw(raw: u8) -> Option<Self> {
        [
            Status::Success,
            Status::PageFault,
            Status::BadOpcode,
            Status::InvalidFlags,
            Status::XferSize,
        ]
        .into_iter()
        .find(|s| *s as u8 == raw)
    }
}

bitflags::bitflags! {
    /// Byte 2 of the record: about the fault of a [`Status::PageFault`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct FaultInfo: u8 {
        /// The faulting access was a write (else a read).
        const WRITE = 1 << 0;
    }
}

/// A completion record, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompletionRecord {
    /// Byte 0; written last, so a consumer polling it sees the whole
    /// record once it is non-zero.
    pub status: Status,
    /// Byte 1: compare and compare-pattern: 0 equal, 1 different; memmove:
    /// 1 when the copy ran from the end (overlapping, destination above
    /// source), so `bytes_completed` counts from the end.
    pub result: u8,
    /// Byte 2.
    pub fault_info: FaultInfo,
    /// Bytes 4..8: bytes processed (for a difference: its offset).
    pub bytes_completed: u32,
    /// Bytes 8..16: the faulting IOVA of a [`Status::PageFault`].
    pub fault_addr: u64,
    /// Bytes 16..24: compare: offset of the first difference; CRC-32C: the
    /// CRC (of the bytes processed, so a faulted CRC can be resumed with
    /// it as seed).
    pub value: u64,
}

impl CompletionRecord {
    /// A record with `status` and nothing else.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            result: 0,
            fault_info: FaultInfo::empty(),
            bytes_completed: 0,
            fault_addr: 0,
            value: 0,
        }
    }

    /// The 32 bytes of the record (reserved bytes zero).
    pub fn encode(&self) -> [u8; COMPLETION_SIZE] {
        let mut b = [0u8; COMPLETION_SIZE];
        b[0] = self.status as u8;
        b[1] = self.result;
        b[2] = self.fault_info.bits();
        b[4..8].copy_from_slice(&self.bytes_completed.to_le_bytes());
        b[8..16].copy_from_slice(&self.fault_addr.to_le_bytes());
        b[16..24].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    /// The record in `b`; `None` while the status byte is 0 (not written
    /// yet) or unknown.
    pub fn decode(b: &[u8; COMPLETION_SIZE]) -> Option<Self> {
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Some(Self {
            status: Status::from_raw(b[0])?,
            result: b[1],
            fault_info: FaultInfo::from_bits_retain(b[2]),
            bytes_completed: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            fault_addr: u64_at(8),
            value: u64_at(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips_and_zero_status_is_not_a_record() {
        let r = CompletionRecord {
            status: Status::PageFault,
            result: 1,
            fault_info: FaultInfo::WRITE,
            bytes_completed: 0x0102_0304,
            fault_addr: 0x1122_3344_5566_7788,
            value: 0xa0a1_a2a3_a4a5_a6a7,
        };
        let b = r.encode();
        assert_eq!(&b[0..4], &[0x03, 0x01, 0x01, 0x00]);
        assert_eq!(&b[4..8], &[0x04, 0x03, 0x02, 0x01]);
        assert_eq!(b[8], 0x88);
        assert_eq!(b[16], 0xa7);
        assert!(b[24..].iter().all(|&x| x == 0));
        assert_eq!(CompletionRecord::decode(&b), Some(r));
        assert_eq!(CompletionRecord::decode(&[0; COMPLETION_SIZE]), None);
    }
}
