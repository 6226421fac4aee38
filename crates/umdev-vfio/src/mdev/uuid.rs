//! mdev UUIDs as the kernel parses and names them (lib/uuid.c
//! `uuid_is_valid` / `guid_parse`, the `%pUl` device name).

use std::fmt;

use super::MdevError;

/// `UUID_STRING_LEN`: the canonical form without a terminator.
pub const UUID_STRING_LEN: usize = 36;

/// Offsets of the hyphens in the canonical form (lib/uuid.c `si`).
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The UUID of an mdev. Displayed in the canonical lower-case form the
/// kernel uses as the device name (`dev_set_name(.., "%pUl", uuid)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MdevUuid([u8; 16]);

impl MdevUuid {
    /// The UUID with these 16 bytes, in the order they are written.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes, in the order they are written.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the first [`UUID_STRING_LEN`] bytes of `s` as lib/uuid.c
    /// `guid_parse` does: hex digits of either case with '-' at offsets 8,
    /// 13, 18 and 23; no braces, no version or variant check. Whatever
    /// follows the 36th byte is ignored (the caller checks the length).
    /// EINVAL ([`MdevError::InvalidUuid`]) otherwise.
    pub fn parse(s: &[u8]) -> Result<Self, MdevError> {
        let s = s.get(..UUID_STRING_LEN).ok_or(MdevError::InvalidUuid)?;
        let mut nibbles = [0u8; 32];
        let mut n = 0;
        for (i, &c) in s.iter().enumerate() {
            if HYPHENS.contains(&i) {
                if c != b'-' {
                    return Err(MdevError::InvalidUuid);
                }
                continue;
            }
            nibbles[n] = hex_value(c).ok_or(MdevError::InvalidUuid)?;
            n += 1;
        }
        let mut bytes = [0u8; 16];
        for (b, pair) in bytes.iter_mut().zip(nibbles.chunks_exact(2)) {
            *b = (pair[0] << 4) | pair[1];
        }
        Ok(Self(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

impl fmt::Display for MdevUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for MdevUuid {
    type Err = MdevError;

    /// Exactly the canonical 36-character form (either case).
    fn from_str(s: &str) -> Result<Self, MdevError> {
        if s.len() != UUID_STRING_LEN {
            return Err(MdevError::InvalidUuid);
        }
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_lower_case() {
        let u = MdevUuid::parse(b"83B8F4F2-509F-382F-3C1E-E6BFE0FA1001").unwrap();
        assert_eq!(u.to_string(), "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001");
        assert_eq!(u.as_bytes()[0], 0x83);
        assert_eq!(u.as_bytes()[15], 0x01);
    }

    #[test]
    fn rejects_misplaced_hyphens_and_non_hex() {
        for bad in [
            "83b8f4f2509f-382f-3c1e-e6bfe0fa1001-",
            "83b8f4f2-509f-382f-3c1e-e6bfe0fa100g",
            "{3b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
            "83b8f4f2-509f-382f-3c1e-e6bfe0fa100",
        ] {
            assert!(MdevUuid::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
