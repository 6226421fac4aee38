//! Errors of a session: per command (answered with an error reply) and
//! fatal (the connection ends).

use rustix::io::Errno;
use umdev_iommu::memory::MemoryError;
use umdev_iommufd::IommufdError;
use umdev_vfio::device::VfioError;
use umdev_vfio::registration::RegistrationError;

use crate::proto::ProtoError;
use crate::transport::TransportError;

/// Why one command failed; the client gets an error reply with
/// [`CmdError::errno`] and the session goes on.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Refused by the decoder.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// Refused by the device.
    #[error(transparent)]
    Device(#[from] VfioError),
    /// Refused by iommufd (IOAS map/unmap, dirty tracking).
    #[error(transparent)]
    Iommufd(#[from] IommufdError),
    /// The client's memory could not be mapped.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A DMA_MAP overlapping an existing one: EEXIST (libvfio-user
    /// dma_controller_add_region).
    #[error("DMA map {addr:#x}+{size:#x} overlaps an existing one")]
    MapExists {
        /// IOVA.
        addr: u64,
        /// Size.
        size: u64,
    },
    /// A DMA_UNMAP that matches no map exactly: ENOENT (libvfio-user
    /// dma_controller_remove_region).
    #[error("no DMA map {addr:#x}+{size:#x}")]
    NoMap {
        /// IOVA.
        addr: u64,
        /// Size.
        size: u64,
    },
    /// The DMA_MAP fd cannot be inspected (fstat failed).
    #[error("DMA_MAP fd: {errno}")]
    BadFd {
        /// fstat's errno.
        errno: Errno,
    },
    /// DMA logging started twice: EBUSY.
    #[error("DMA logging already started")]
    LoggingActive,
    /// Message-based maps beyond the session's limit: ENOMEM.
    #[error("message-based DMA maps beyond {limit:#x} bytes")]
    RemoteLimit {
        /// The limit.
        limit: u64,
    },
    /// More maps than `max_dma_maps`: ENOSPC.
    #[error("too many DMA maps")]
    TooManyMaps,
    /// A dirty bitmap was asked for while DMA logging is off: EINVAL
    /// (vfio_iommu_type1: GET_DIRTY_BITMAP needs dirty tracking started).
    #[error("dirty bitmap requested while DMA logging is off")]
    NotLogging,
    /// Something this server does not do (the named feature): ENOTTY, as
    /// an unsupported VFIO_DEVICE_FEATURE (vfio_ioctl_device_feature).
    #[error("{what} not supported")]
    NotSupported {
        /// What was asked.
        what: &'static str,
    },
    /// The device has no REGION_IO_FDS: EOPNOTSUPP.
    #[error("region {index}: no I/O fds")]
    NoIoFds {
        /// The region.
        index: u32,
    },
    /// DMA through client messages failed (client gone, error reply, no
    /// answer in time).
    #[error("message-based DMA: {what}")]
    RemoteDma {
        /// What failed.
        what: &'static str,
        /// Its errno.
        errno: Errno,
    },
}

impl CmdError {
    /// The errno of the error reply.
    pub fn errno(&self) -> Errno {
        match self {
            CmdError::Proto(e) => e.errno(),
            CmdError::Device(e) => e.errno(),
            CmdError::Iommufd(e) => e.errno(),
            CmdError::Memory(e) => e.errno(),
            CmdError::MapExists { .. } => Errno::EXIST,
            CmdError::NoMap { .. } => Errno::NOENT,
            CmdError::TooManyMaps => Errno::NOSPC,
            CmdError::RemoteLimit { .. } => Errno::NOMEM,
            CmdError::BadFd { errno } => *errno,
            CmdError::LoggingActive => Errno::BUSY,
            CmdError::NotLogging => Errno::INVAL,
            CmdError::NotSupported { .. } => Errno::NOTTY,
            CmdError::NoIoFds { .. } => Errno::OPNOTSUPP,
            CmdError::RemoteDma { errno, .. } => *errno,
        }
    }
}

/// Why a session could not start or ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The device refused the consumer (in use, group not viable,
    /// unregistered).
    #[error("bind: {0}")]
    Bind(#[from] RegistrationError),
    /// The session's iommufd context could not be set up.
    #[error("iommufd: {0}")]
    Iommufd(#[from] IommufdError),
    /// The connection broke or carried an unframeable message.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The client's VERSION could not be accepted.
    #[error("version negotiation: {0}")]
    Version(ProtoError),
}

impl SessionError {
    /// The errno of this error (what a refused client is told).
    pub fn errno(&self) -> Errno {
        match self {
            SessionError::Bind(e) => e.errno(),
            SessionError::Iommufd(e) => e.errno(),
            SessionError::Transport(e) => e.errno(),
            SessionError::Version(e) => e.errno(),
        }
    }
}
