//! PCI addressing: segment, bus, device, function.

use std::fmt;
use std::str::FromStr;

use rustix::io::Errno;

/// A PCI function address, `ssss:bb:dd.f` as sysfs spells it.
///
/// The requester ID a function puts on the bus is `bus << 8 | devfn`
/// (PCIe base spec §2.2.6.2); the segment selects the root complex and
/// therefore the IOMMU unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    segment: u16,
    bus: u8,
    devfn: u8,
}

impl Bdf {
    /// Builds an address; `device` must be below 32 and `function` below 8.
    pub const fn new(segment: u16, bus: u8, device: u8, function: u8) -> Option<Self> {
        if device >= 32 || function >= 8 {
            return None;
        }
        Some(Self {
            segment,
            bus,
            devfn: (device << 3) | function,
        })
    }

    /// Builds an address from a segment and a 16-bit requester ID.
    pub const fn from_rid(segment: u16, rid: u16) -> Self {
        Self {
            segment,
            bus: (rid >> 8) as u8,
            devfn: rid as u8,
        }
    }

    /// PCI segment (domain) number.
    pub const fn segment(self) -> u16 {
        self.segment
    }

    /// Bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// Device (slot) number, 0..32.
    pub const fn device(self) -> u8 {
        self.devfn >> 3
    }

    /// Function number, 0..8.
    pub const fn function(self) -> u8 {
        self.devfn & 7
    }

    /// `device << 3 | function`, as in Linux `PCI_DEVFN`.
    pub const fn devfn(self) -> u8 {
        self.devfn
    }

    /// Requester ID: `bus << 8 | devfn` (Linux `PCI_DEVID`).
    pub const fn rid(self) -> u16 {
        ((self.bus as u16) << 8) | self.devfn as u16
    }

    /// The same slot with another function number.
    pub const fn with_function(self, function: u8) -> Option<Self> {
        Self::new(self.segment, self.bus, self.device(), function)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.segment,
            self.bus,
            self.device(),
            self.function()
        )
    }
}

impl FromStr for Bdf {
    type Err = Errno;

    /// Parses `ssss:bb:dd.f` (or `bb:dd.f`, segment 0) as the kernel's
    /// `bind` attribute does; anything else is `ENODEV`, the errno of a
    /// `bind` write naming no device (drivers/base/bus.c `bind_store`).
    fn from_str(s: &str) -> Result<Self, Errno> {
        let s = s.trim_end_matches('\n');
        let mut parts: Vec<&str> = s.split(':').collect();
        let segment = if parts.len() == 3 {
            let seg = parts.remove(0);
            u16::from_str_radix(seg, 16).map_err(|_| Errno::NODEV)?
        } else {
            0
        };
        let [bus, devfn] = parts.as_slice() else {
            return Err(Errno::NODEV);
        };
        let (dev, func) = devfn.split_once('.').ok_or(Errno::NODEV)?;
        let hex = |t: &str, max: u32| {
            if t.is_empty() || t.len() > 4 {
                return Err(Errno::NODEV);
            }
            let v = u32::from_str_radix(t, 16).map_err(|_| Errno::NODEV)?;
            if v > max { Err(Errno::NODEV) } else { Ok(v) }
        };
        let bus = hex(bus, 0xff)? as u8;
        let dev = hex(dev, 0x1f)? as u8;
        let func = hex(func, 7)? as u8;
        Bdf::new(segment, bus, dev, func).ok_or(Errno::NODEV)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let b = Bdf::new(0, 0x3a, 0x1f, 7).unwrap();
        assert_eq!(b.to_string(), "0000:3a:1f.7");
        assert_eq!("0000:3a:1f.7".parse::<Bdf>().unwrap(), b);
        assert_eq!("3a:1f.7\n".parse::<Bdf>().unwrap(), b);
        assert_eq!(b.rid(), 0x3aff);
        assert_eq!(Bdf::from_rid(0, 0x3aff), b);
    }

    #[test]
    fn malformed_addresses_are_enodev() {
        for bad in [
            "",
            "0000:00:00",
            "0000:00:20.0",
            "0000:00:00.8",
            "x:00:00.0",
            "0:0:0:0.0",
        ] {
            assert_eq!(bad.parse::<Bdf>(), Err(Errno::NODEV), "{bad}");
        }
    }
}
