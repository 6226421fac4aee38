//! Why a command was refused before dispatch.

use rustix::io::Errno;

use super::Command;

/// A command that failed validation. Every variant is answered with an
/// error reply carrying [`ProtoError::errno`]; the stream stays in sync
/// because the whole message has been read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    /// The payload is shorter than the command's fixed part, or its
    /// length disagrees with the counts inside it: EINVAL.
    #[error("{cmd}: payload of {len} bytes, expected {expected}")]
    BadLength {
        /// The command.
        cmd: Command,
        /// Payload bytes received.
        len: usize,
        /// What the command needs.
        expected: usize,
    },
    /// `argsz` is too small for the reply or does not match the request:
    /// EINVAL.
    #[error("{cmd}: argsz {argsz} invalid")]
    BadArgsz {
        /// The command.
        cmd: Command,
        /// The argsz received.
        argsz: u32,
    },
    /// Unknown or inconsistent flag bits: EINVAL.
    #[error("{cmd}: flags {flags:#x} invalid")]
    BadFlags {
        /// The command.
        cmd: Command,
        /// The flags received.
        flags: u32,
    },
    /// The wrong number of fds for this command: EINVAL.
    #[error("{cmd}: {got} fds not accepted")]
    BadFds {
        /// The command.
        cmd: Command,
        /// fds received.
        got: usize,
    },
    /// A count beyond what this server advertised: EINVAL.
    #[error("{cmd}: {what} {value} exceeds the limit {limit}")]
    TooLarge {
        /// The command.
        cmd: Command,
        /// Which count.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// An address range that wraps or is not page-aligned: EINVAL.
    #[error("{cmd}: range {addr:#x}+{size:#x} invalid")]
    BadRange {
        /// The command.
        cmd: Command,
        /// Start.
        addr: u64,
        /// Size.
        size: u64,
    },
    /// A command this server does not implement or that only a server
    /// sends (DMA_READ/WRITE, migration, DIRTY_PAGES, unknown codes):
    /// EINVAL, as libvfio-user answers a bad command.
    #[error("{0} not supported")]
    Unsupported(Command),
    /// A message that is not a command (a reply nobody waits for, an
    /// unknown type): EINVAL.
    #[error("message type {0:#x} not accepted here")]
    BadType(u32),
    /// A VERSION this server cannot speak (other major, bad JSON):
    /// EINVAL, after which the session ends.
    #[error("VERSION: bad {what}")]
    BadVersion {
        /// What is wrong.
        what: &'static str,
    },
    /// More fds arrived than this server takes per message (MSG_CTRUNC):
    /// EINVAL.
    #[error("too many fds (more than {0})")]
    FdsTruncated(u32),
}

impl ProtoError {
    /// The errno of the error reply.
    pub fn errno(&self) -> Errno {
        // libvfio-user answers malformed and unknown commands with EINVAL
        // (lib/libvfio-user.c handle_request / validate_header).
        Errno::INVAL
    }
}
