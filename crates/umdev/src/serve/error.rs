//! Why a control request failed, with the errno the same operation gets
//! through sysfs.

use rustix::io::Errno;
use umdev_pci::PciError;
use umdev_vfio::mdev::MdevError;

use super::state::StateError;
use crate::proto::{ErrorBody, PROTOCOL_VERSION};

/// A failed control request.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The line is not a request of this protocol.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The client speaks a version this daemon does not.
    #[error("protocol version {got} is not supported (this daemon speaks {PROTOCOL_VERSION})")]
    Version {
        /// The request's version.
        got: u64,
    },
    /// A PCI address that does not parse.
    #[error("`{text}` is not a PCI address")]
    BadAddress {
        /// The text.
        text: String,
    },
    /// No registered mdev parent of that name.
    #[error("no mdev parent `{name}`")]
    NoParent {
        /// The name.
        name: String,
    },
    /// No mdev of that UUID.
    #[error("no mdev {uuid}")]
    NoMdev {
        /// The UUID.
        uuid: String,
    },
    /// `unbind` of an unbound function.
    #[error("{bdf} has no driver")]
    NotBound {
        /// The function.
        bdf: String,
    },
    /// The mdev core refused.
    #[error(transparent)]
    Mdev(#[from] MdevError),
    /// The PCI core refused.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The daemon failed to build its reply.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
    /// The change was made but could not be saved.
    #[error("the change was made but the state could not be saved: {0}")]
    Persist(#[from] StateError),
}

impl OpError {
    /// The errno: the model's for model refusals; for names that resolve
    /// to nothing, what the sysfs path would give.
    pub fn errno(&self) -> Errno {
        match self {
            OpError::Malformed { .. } => Errno::INVAL,
            OpError::Version { .. } => Errno::PROTONOSUPPORT,
            // drivers/base/bus.c bind_store: a name that finds no device.
            OpError::BadAddress { .. } => Errno::NODEV,
            // No /sys/class/mdev_bus/<name> or /sys/bus/mdev/devices/<uuid>.
            OpError::NoParent { .. } | OpError::NoMdev { .. } => Errno::NOENT,
            // drivers/base/bus.c unbind_store: not bound to that driver.
            OpError::NotBound { .. } => Errno::NODEV,
            OpError::Mdev(e) => e.errno(),
            OpError::Pci(e) => e.errno(),
            OpError::Internal { .. } => Errno::IO,
            OpError::Persist(e) => e.errno(),
        }
    }

    /// The wire form.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.errno(), self.to_string())
    }
}
