//! The vfio-user wire protocol (QEMU docs/interop/vfio-user.rst, spec
//! 0.9.2): message layouts ([`wire`]), command codes ([`Command`]), flag
//! bits ([`flags`]), VERSION capabilities ([`caps`]) and the one decoder
//! every incoming command goes through before anything acts on it
//! ([`decode()`]).

pub mod caps;
mod decode;
#[cfg(test)]
mod decode_tests;
mod error;
pub mod wire;

pub use decode::{IrqSetData, Message, Request, decode};
pub use error::ProtoError;

/// A command code. Open: any u16 can arrive; unknown ones are data, not
/// a decoding failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Command(pub u16);

impl Command {
    /// VFIO_USER_VERSION.
    pub const VERSION: Self = Self(1);
    /// VFIO_USER_DMA_MAP.
    pub const DMA_MAP: Self = Self(2);
    /// VFIO_USER_DMA_UNMAP.
    pub const DMA_UNMAP: Self = Self(3);
    /// VFIO_USER_DEVICE_GET_INFO.
    pub const DEVICE_GET_INFO: Self = Self(4);
    /// VFIO_USER_DEVICE_GET_REGION_INFO.
    pub const DEVICE_GET_REGION_INFO: Self = Self(5);
    /// VFIO_USER_DEVICE_GET_REGION_IO_FDS.
    pub const DEVICE_GET_REGION_IO_FDS: Self = Self(6);
    /// VFIO_USER_DEVICE_GET_IRQ_INFO.
    pub const DEVICE_GET_IRQ_INFO: Self = Self(7);
    /// VFIO_USER_DEVICE_SET_IRQS.
    pub const DEVICE_SET_IRQS: Self = Self(8);
    /// VFIO_USER_REGION_READ.
    pub const REGION_READ: Self = Self(9);
    /// VFIO_USER_REGION_WRITE.
    pub const REGION_WRITE: Self = Self(10);
    /// VFIO_USER_DMA_READ (server → client).
    pub const DMA_READ: Self = Self(11);
    /// VFIO_USER_DMA_WRITE (server → client).
    pub const DMA_WRITE: Self = Self(12);
    /// VFIO_USER_DEVICE_RESET.
    pub const DEVICE_RESET: Self = Self(13);
    /// VFIO_USER_DIRTY_PAGES (migration v1, obsolete).
    pub const DIRTY_PAGES: Self = Self(14);
    /// VFIO_USER_REGION_WRITE_MULTI.
    pub const REGION_WRITE_MULTI: Self = Self(15);
    /// VFIO_USER_DEVICE_FEATURE.
    pub const DEVICE_FEATURE: Self = Self(16);
    /// VFIO_USER_MIG_DATA_READ.
    pub const MIG_DATA_READ: Self = Self(17);
    /// VFIO_USER_MIG_DATA_WRITE.
    pub const MIG_DATA_WRITE: Self = Self(18);
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match *self {
            Self::VERSION => "VERSION",
            Self::DMA_MAP => "DMA_MAP",
            Self::DMA_UNMAP => "DMA_UNMAP",
            Self::DEVICE_GET_INFO => "DEVICE_GET_INFO",
            Self::DEVICE_GET_REGION_INFO => "DEVICE_GET_REGION_INFO",
            Self::DEVICE_GET_REGION_IO_FDS => "DEVICE_GET_REGION_IO_FDS",
            Self::DEVICE_GET_IRQ_INFO => "DEVICE_GET_IRQ_INFO",
            Self::DEVICE_SET_IRQS => "DEVICE_SET_IRQS",
            Self::REGION_READ => "REGION_READ",
            Self::REGION_WRITE => "REGION_WRITE",
            Self::DMA_READ => "DMA_READ",
            Self::DMA_WRITE => "DMA_WRITE",
            Self::DEVICE_RESET => "DEVICE_RESET",
            Self::DIRTY_PAGES => "DIRTY_PAGES",
            Self::REGION_WRITE_MULTI => "REGION_WRITE_MULTI",
            Self::DEVICE_FEATURE => "DEVICE_FEATURE",
            Self::MIG_DATA_READ => "MIG_DATA_READ",
            Self::MIG_DATA_WRITE => "MIG_DATA_WRITE",
            Self(n) => return write!(f, "command {n}"),
        };
        f.write_str(name)
    }
}

/// Flag bits of the header and of the command payloads.
pub mod flags {
    /// Header: the message-type field (bits 0-3).
    pub const TYPE_MASK: u32 = 0xf;
    /// Header type: a command.
    pub const TYPE_COMMAND: u32 = 0;
    /// Header type: a reply.
    pub const TYPE_REPLY: u32 = 1;
    /// Header: the sender wants no reply.
    pub const NO_REPLY: u32 = 1 << 4;
    /// Header: an error reply; `error_no` holds the errno.
    pub const ERROR: u32 = 1 << 5;

    /// DMA_MAP: the device may read.
    pub const DMA_MAP_READ: u32 = 1 << 0;
    /// DMA_MAP: the device may write.
    pub const DMA_MAP_WRITE: u32 = 1 << 1;
    /// DMA_UNMAP: return the dirty bitmap (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP).
    pub const DMA_UNMAP_GET_DIRTY_BITMAP: u32 = 1 << 0;
    /// DMA_UNMAP: everything (VFIO_DMA_UNMAP_FLAG_ALL).
    pub const DMA_UNMAP_ALL: u32 = 1 << 1;

    /// DEVICE_FEATURE: the feature number (bits 0-15).
    pub const FEATURE_MASK: u32 = 0xffff;
    /// DEVICE_FEATURE: GET.
    pub const FEATURE_GET: u32 = 1 << 16;
    /// DEVICE_FEATURE: SET.
    pub const FEATURE_SET: u32 = 1 << 17;
    /// DEVICE_FEATURE: PROBE.
    pub const FEATURE_PROBE: u32 = 1 << 18;
    /// VFIO_DEVICE_FEATURE_DMA_LOGGING_START.
    pub const FEATURE_DMA_LOGGING_START: u32 = 6;
    /// VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP.
    pub const FEATURE_DMA_LOGGING_STOP: u32 = 7;
    /// VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT.
    pub const FEATURE_DMA_LOGGING_REPORT: u32 = 8;

    /// VFIO_REGION_INFO_CAP_SPARSE_MMAP.
    pub const CAP_SPARSE_MMAP: u16 = 1;
}

/// The protocol version this server speaks.
pub const VERSION_MAJOR: u16 = 0;
/// The highest minor version this server speaks (libvfio-user's).
pub const VERSION_MINOR: u16 = 2;

/// What the decoder accepts: the limits this server advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `count` of a REGION_READ / REGION_WRITE.
    pub max_data_xfer_size: u32,
    /// Most fds one message may carry.
    pub max_msg_fds: u32,
    /// Most entries of one REGION_WRITE_MULTI.
    pub max_write_multi: u32,
}

impl Limits {
    /// The server's defaults: 1 MiB transfers (the spec default), 16 fds
    /// (QEMU refuses more), 200 multi-write entries (QEMU's batch size).
    pub const DEFAULT: Self = Self {
        max_data_xfer_size: 1 << 20,
        max_msg_fds: 16,
        max_write_multi: 200,
    };

    /// The largest message (header included) this server reads: a full
    /// REGION_WRITE plus slack for any fixed part.
    pub fn max_msg_size(&self) -> u32 {
        self.max_data_xfer_size.saturating_add(4096)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The DMA page size this server supports (`pgsizes`).
pub const PAGE_SIZE: u64 = 4096;

/// The most DMA mappings a client may hold (`max_dma_maps`).
pub const MAX_DMA_MAPS: u32 = 65535;
