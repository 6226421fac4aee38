//! CRC-32C (Castagnoli, polynomial 0x1EDC6F41, bit-reflected) as DSA's
//! CRC generation computes it: the running value starts as the inverse of
//! the seed and the result is inverted, so seed 0 gives the standard
//! CRC-32C and a result is the seed that continues it over following bytes.
//!
//! Table-driven, eight bytes per step ("slicing by 8").

/// The reflected polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[k][b]`: the CRC contribution of byte `b` followed by `k` zero
/// bytes.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// A CRC-32C in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Crc32c(u32);

impl Crc32c {
    /// Starts from `seed` (0, or the result over the preceding bytes).
    pub(super) fn new(seed: u32) -> Self {
        Self(!seed)
    }

    /// Adds `data`.
    pub(super) fn update(&mut self, data: &[u8]) {
        let t = &TABLES;
        let mut crc = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let lo = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) ^ crc;
            let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xff) as usize]
                ^ t[2][((hi >> 8) & 0xff) as usize]
                ^ t[1][((hi >> 16) & 0xff) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in words.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
        }
        self.0 = crc;
    }

    /// The CRC of everything added, with the seed applied.
    pub(super) fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(seed: u32, data: &[u8]) -> u32 {
        let mut c = Crc32c::new(seed);
        c.update(data);
        c.finish()
    }

    #[test]
    fn check_value_and_chaining() {
        // The catalogue check value of CRC-32C.
        assert_eq!(crc(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc(0, b""), 0);
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let first = crc(0, &data[..split]);
            assert_eq!(crc(first, &data[split..]), crc(0, &data), "split {split}");
        }
    }
}
