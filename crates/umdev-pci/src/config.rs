//! One function's configuration space: bytes plus per-bit write masks.
//!
//! Every bit is read-only, read-write or write-1-to-clear, decided once when
//! the platform builds the function. A write of value `v` to a byte with
//! current value `c`, RW mask `w` and RW1C mask `x` leaves
//! `((c & !w) | (v & w)) & !(v & x)`. BAR sizing falls out of the masks: the
//! address bits below the BAR size are read-only zero, so writing all ones
//! reads back the size mask (PCI Local Bus spec §6.2.5.1).

use crate::regs::PCI_CFG_SPACE_EXP_SIZE;

const SIZE: usize = PCI_CFG_SPACE_EXP_SIZE as usize;

/// 4 KiB of config space with its write masks.
#[derive(Clone)]
pub struct ConfigSpace {
    data: Box<[u8; SIZE]>,
    rw: Box<[u8; SIZE]>,
    w1c: Box<[u8; SIZE]>,
    /// Accessible size: 256 for conventional PCI, 4096 for PCIe.
    size: u16,
}

impl ConfigSpace {
    /// All-zero, all read-only config space of `size` bytes (256 or 4096).
    pub fn new(size: u16) -> Self {
        debug_assert!(size as usize <= SIZE);
        Self {
            data: Box::new([0; SIZE]),
            rw: Box::new([0; SIZE]),
            w1c: Box::new([0; SIZE]),
            size,
        }
    }

    /// Accessible size in bytes.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Whether `len` bytes at `offset` lie inside the accessible space.
    pub fn in_range(&self, offset: u16, len: usize) -> bool {
        (offset as usize)
            .checked_add(len)
            .is_some_and(|end| end <= self.size as usize)
    }

    /// Copies bytes out; the caller checked the range with [`Self::in_range`].
    pub fn read(&self, offset: u16, buf: &mut [u8]) {
        let start = offset as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
    }

    /// Guest/driver write honouring the masks; the caller checked the range.
    pub fn write(&mut self, offset: u16, bytes: &[u8]) {
        for (i, &v) in bytes.iter().enumerate() {
            let at = offset as usize + i;
            let rw = self.rw[at];
            let cur = (self.data[at] & !rw) | (v & rw);
            self.data[at] = cur & !(v & self.w1c[at]);
        }
    }

    /// Reads a little-endian 8-bit register.
    pub fn read8(&self, offset: u16) -> u8 {
        self.data[offset as usize]
    }

    /// Reads a little-endian 16-bit register.
    pub fn read16(&self, offset: u16) -> u16 {
        let mut b = [0; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    /// Reads a little-endian 32-bit register.
    pub fn read32(&self, offset: u16) -> u32 {
        let mut b = [0; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// Device-side store of an 8-bit value, ignoring the masks.
    pub fn set8(&mut self, offset: u16, v: u8) {
        self.data[offset as usize] = v;
    }

    /// Device-side store of a 16-bit value, ignoring the masks.
    pub fn set16(&mut self, offset: u16, v: u16) {
        self.set_bytes(offset, &v.to_le_bytes());
    }

    /// Device-side store of a 32-bit value, ignoring the masks.
    pub fn set32(&mut self, offset: u16, v: u32) {
        self.set_bytes(offset, &v.to_le_bytes());
    }

    fn set_bytes(&mut self, offset: u16, bytes: &[u8]) {
        let start = offset as usize;
        self.data[start..start + bytes.len()].copy_from_slice(bytes);
    }

    /// Marks the bits of a 16-bit register read-write.
    pub fn rw16(&mut self, offset: u16, mask: u16) {
        or_bytes(&mut self.rw[..], offset, &mask.to_le_bytes());
    }

    /// Marks the bits of a 32-bit register read-write.
    pub fn rw32(&mut self, offset: u16, mask: u32) {
        or_bytes(&mut self.rw[..], offset, &mask.to_le_bytes());
    }

    /// Marks a run of whole bytes read-write.
    pub fn rw_bytes(&mut self, offset: u16, len: u16) {
        let start = offset as usize;
        self.rw[start..start + len as usize].fill(0xff);
    }

    /// Marks the bits of a 16-bit register write-1-to-clear.
    pub fn w1c16(&mut self, offset: u16, mask: u16) {
        or_bytes(&mut self.w1c[..], offset, &mask.to_le_bytes());
    }
}

fn or_bytes(masks: &mut [u8], offset: u16, bits: &[u8]) {
    for (i, b) in bits.iter().enumerate() {
        masks[offset as usize + i] |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn read_only_bits_ignore_writes() {
        let mut c = ConfigSpace::new(4096);
        c.set16(0, 0x8086);
        c.write(0, &[0xff, 0xff]);
        assert_eq!(c.read16(0), 0x8086);
    }

    #[test]
    fn rw1c_bits_clear_only_on_one() {
        let mut c = ConfigSpace::new(256);
        c.w1c16(6, 0xf900);
        c.set16(6, 0x8810);
        c.write(6, &0x0800u16.to_le_bytes());
        assert_eq!(
            c.read16(6),
            0x8010,
            "bit 11 cleared, bit 15 kept, RO bit 4 kept"
        );
        c.write(6, &0xffffu16.to_le_bytes());
        assert_eq!(c.read16(6), 0x0010);
    }

    #[test]
    fn range_check() {
        let c = ConfigSpace::new(256);
        assert!(c.in_range(252, 4));
        assert!(!c.in_range(253, 4));
        assert!(!c.in_range(u16::MAX, 2));
    }

    proptest! {
        /// Byte writes against a reference model of the mask rule.
        #[test]
        fn writes_follow_masks(
            init in proptest::collection::vec(any::<u8>(), 16),
            rw in proptest::collection::vec(any::<u8>(), 16),
            w1c in proptest::collection::vec(any::<u8>(), 16),
            writes in proptest::collection::vec((0u16..16, any::<u8>()), 1..64),
        ) {
            let mut c = ConfigSpace::new(256);
            let mut model = init.clone();
            for i in 0..16 {
                c.set8(i as u16, init[i]);
                c.rw[i] = rw[i];
                c.w1c[i] = w1c[i] & !rw[i];
            }
            for (off, v) in writes {
                let i = off as usize;
                c.write(off, &[v]);
                let keep = model[i] & !rw[i];
                model[i] = (keep | (v & rw[i])) & !(v & (w1c[i] & !rw[i]));
            }
            for (i, want) in model.iter().enumerate() {
                prop_assert_eq!(c.read8(i as u16), *want);
            }
        }
    }
}
