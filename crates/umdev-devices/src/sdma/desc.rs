//! The 64-byte descriptor a consumer writes into its ring (little-endian,
//! modelled on DSA's `struct dsa_hw_desc`; docs/sdma.md has the table).

/// Size of a descriptor and of a ring slot.
pub const DESC_SIZE: usize = 64;

/// What a descriptor asks for (DSA opcode numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Nothing; completes with success.
    Noop = 0x00,
    /// Copy `xfer_size` bytes from `src` to `dst`; overlapping ranges are
    /// handled as `memmove` does.
    Memmove = 0x03,
    /// Fill `xfer_size` bytes at `dst` with the 8-byte pattern in the
    /// `src` slot.
    Fill = 0x04,
    /// Compare `xfer_size` bytes at `src` with those at the second source
    /// in the `dst` slot.
    Compare = 0x05,
    /// Compare `xfer_size` bytes at `src` with the 8-byte pattern in the
    /// `dst` slot.
    ComparePattern = 0x06,
    /// CRC-32C of `xfer_size` bytes at `src`, continuing from `crc_seed`.
    Crc32c = 0x10,
}

impl Opcode {
    /// Every supported opcode.
    pub const ALL: [Opcode; 6] = [
        Opcode::Noop,
        Opcode::Memmove,
        Opcode::Fill,
        Opcode::Compare,
        Opcode::ComparePattern,
        Opcode::Crc32c,
    ];

    /// The opcode with number `raw`, if supported.
    pub fn from_raw(raw: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|op| *op as u8 == raw)
    }
}

bitflags::bitflags! {
    /// Descriptor flags (the low 24 bits of bytes 4..8; DSA bit positions).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DescFlags: u32 {
        /// Request a completion record at `completion_addr` (DSA `RCR`).
        const RCR = 1 << 3;
        /// Request the work queue's completion interrupt (DSA `RCI`).
        const RCI = 1 << 4;
    }
}

/// A descriptor, field by field, exactly as it sits in the ring. Fields
/// hold raw values so that invalid descriptors can be expressed too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// Bytes 0..4: a PASID field, ignored: the engine tags every DMA of a
    /// work queue with the PASID the host programmed for it (as DSA does
    /// on a dedicated work queue).
    pub pasid: u32,
    /// Bytes 4..7: [`DescFlags`] bits (24 bits; others are invalid).
    pub flags: u32,
    /// Byte 7: the [`Opcode`] number.
    pub opcode: u8,
    /// Bytes 8..16: IOVA of the 32-byte completion record.
    pub completion_addr: u64,
    /// Bytes 16..24: source IOVA; for [`Opcode::Fill`] the pattern.
    pub src: u64,
    /// Bytes 24..32: destination IOVA; for [`Opcode::Compare`] the second
    /// source, for [`Opcode::ComparePattern`] the pattern.
    pub dst: u64,
    /// Bytes 32..36: bytes to process.
    pub xfer_size: u32,
    /// Bytes 40..44: CRC seed for [`Opcode::Crc32c`].
    pub crc_seed: u32,
}

impl Descriptor {
    fn op(opcode: Opcode, src: u64, dst: u64, xfer_size: u32) -> Self {
        Self {
            opcode: opcode as u8,
            src,
            dst,
            xfer_size,
            ..Self::default()
        }
    }

    /// A no-op.
    pub fn noop() -> Self {
        Self::op(Opcode::Noop, 0, 0, 0)
    }

    /// Copy `len` bytes from `src` to `dst`.
    pub fn memmove(src: u64, dst: u64, len: u32) -> Self {
        Self::op(Opcode::Memmove, src, dst, len)
    }

    /// Fill `len` bytes at `dst` with `pattern` (byte `i` is byte `i % 8`
    /// of the pattern's little-endian form).
    pub fn fill(dst: u64, pattern: u64, len: u32) -> Self {
        Self::op(Opcode::Fill, pattern, dst, len)
    }

    /// Compare `len` bytes at `src1` and `src2`.
    pub fn compare(src1: u64, src2: u64, len: u32) -> Self {
        Self::op(Opcode::Compare, src1, src2, len)
    }

    /// Compare `len` bytes at `src` with `pattern`.
    pub fn compare_pattern(src: u64, pattern: u64, len: u32) -> Self {
        Self::op(Opcode::ComparePattern, src, pattern, len)
    }

    /// CRC-32C of `len` bytes at `src`, continuing from `seed`.
    pub fn crc32c(src: u64, len: u32, seed: u32) -> Self {
        Self {
            crc_seed: seed,
            ..Self::op(Opcode::Crc32c, src, 0, len)
        }
    }

    /// The same descriptor asking for a completion record at `addr` and,
    /// with `interrupt`, the completion interrupt.
    pub fn with_completion(self, addr: u64, interrupt: bool) -> Self {
        let mut flags = DescFlags::RCR;
        flags.set(DescFlags::RCI, interrupt);
        Self {
            completion_addr: addr,
            flags: flags.bits(),
            ..self
        }
    }

    /// The opcode, if supported.
    pub fn opcode(&self) -> Option<Opcode> {
        Opcode::from_raw(self.opcode)
    }

    /// The flags, if every bit set is a known flag.
    pub fn flags(&self) -> Option<DescFlags> {
        DescFlags::from_bits(self.flags)
    }

    /// The 64 bytes of the descriptor (reserved bytes zero).
    pub fn encode(&self) -> [u8; DESC_SIZE] {
        let mut b = [0u8; DESC_SIZE];
        b[0..4].copy_from_slice(&self.pasid.to_le_bytes());
        let word = (self.flags & 0x00ff_ffff) | (u32::from(self.opcode) << 24);
        b[4..8].copy_from_slice(&word.to_le_bytes());
        b[8..16].copy_from_slice(&self.completion_addr.to_le_bytes());
        b[16..24].copy_from_slice(&self.src.to_le_bytes());
        b[24..32].copy_from_slice(&self.dst.to_le_bytes());
        b[32..36].copy_from_slice(&self.xfer_size.to_le_bytes());
        b[40..44].copy_from_slice(&self.crc_seed.to_le_bytes());
        b
    }

    /// The descriptor in `b` (reserved bytes ignored).
    pub fn decode(b: &[u8; DESC_SIZE]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
        let word = u32_at(4);
        Self {
            pasid: u32_at(0),
            flags: word & 0x00ff_ffff,
            opcode: (word >> 24) as u8,
            completion_addr: u64_at(8),
            src: u64_at(16),
            dst: u64_at(24),
            xfer_size: u32_at(32),
            crc_seed: u32_at(40),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_little_endian_at_the_documented_offsets() {
        let d = Descriptor {
            pasid: 0x0001_2345,
            flags: 0x18,
            opcode: 0x10,
            completion_addr: 0x1122_3344_5566_7780,
            src: 0x0102_0304_0506_0708,
            dst: 0xa1a2_a3a4_a5a6_a7a8,
            xfer_size: 0xdead_beef,
            crc_seed: 0xcafe_f00d,
        };
        let b = d.encode();
        assert_eq!(&b[0..4], &[0x45, 0x23, 0x01, 0x00]);
        assert_eq!(&b[4..8], &[0x18, 0x00, 0x00, 0x10]);
        assert_eq!(b[8], 0x80);
        assert_eq!(b[15], 0x11);
        assert_eq!(b[16], 0x08);
        assert_eq!(b[31], 0xa1);
        assert_eq!(&b[32..36], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&b[36..40], &[0; 4]);
        assert_eq!(&b[40..44], &[0x0d, 0xf0, 0xfe, 0xca]);
        assert!(b[44..].iter().all(|&x| x == 0));
        assert_eq!(Descriptor::decode(&b), d);
        assert_eq!(d.opcode(), Some(Opcode::Crc32c));
        assert_eq!(d.flags(), Some(DescFlags::RCR | DescFlags::RCI));
    }

    #[test]
    fn unknown_opcodes_and_flags_are_reported() {
        let d = Descriptor {
            opcode: 0x7f,
            flags: 1 << 20,
            ..Descriptor::default()
        };
        assert_eq!(d.opcode(), None);
        assert_eq!(d.flags(), None);
        assert_eq!(
            Opcode::ALL.map(|op| Opcode::from_raw(op as u8)),
            Opcode::ALL.map(Some)
        );
    }
}
