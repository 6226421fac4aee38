//! The mtty device types (`struct mtty_type` in `samples/vfio-mdev/mtty.c`).

/// An mtty device type (`struct mtty_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MttyType {
    /// One UART behind BAR0.
    Single,
    /// Two UARTs, behind BAR0 and BAR1.
    Dual,
}

impl MttyType {
    /// Both types, in the order the sample registers them.
    pub const ALL: [MttyType; 2] = [MttyType::Single, MttyType::Dual];

    /// Number of serial ports (and I/O BARs) of a device of this type.
    pub fn nr_ports(self) -> u32 {
        match self {
            Self::Single => 1,
            Self::Dual => 2,
        }
    }

    /// The type's `sysfs_name`: "1" or "2".
    pub fn sysfs_name(self) -> &'static str {
        match self {
            Self::Single => "1",
            Self::Dual => "2",
        }
    }

    /// The type's `pretty_name`, shown in the type's `name` attribute.
    pub fn pretty_name(self) -> &'static str {
        match self {
            Self::Single => "Single port serial",
            Self::Dual => "Dual port serial",
        }
    }

    /// The type whose `sysfs_name` is `name`.
    pub fn from_sysfs_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sysfs_name() == name)
    }
}
