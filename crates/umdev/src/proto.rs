//! The control protocol (docs/control.md): one JSON object per line in
//! each direction over the daemon's UNIX socket. Every request and reply
//! carries `"version"`; a request names its operation in `"op"`; a reply
//! has `"ok"` and either `"result"` or `"error"` (errno + message).

use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (a request is small; this bounds
/// what a misbehaving client can make it buffer).
pub const MAX_LINE: usize = 64 * 1024;

/// A request: the protocol version and the operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version of the client.
    pub version: u32,
    /// The operation and its arguments.
    #[serde(flatten)]
    pub op: Op,
}

/// The operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// The daemon's version, root and pid.
    Hello,
    /// Parents, types with available instances, mdevs, served devices.
    List,
    /// Create an mdev of `type` on `parent` (a new random UUID if none).
    Create {
        /// Parent device name (`0000:01:00.0`, `mtty`).
        parent: String,
        /// Type directory name (`mtty-1`).
        #[serde(rename = "type")]
        mdev_type: String,
        /// UUID of the new mdev.
        #[serde(default)]
        uuid: Option<String>,
    },
    /// Remove an mdev.
    Remove {
        /// Its UUID.
        uuid: String,
    },
    /// IOMMU groups with their domains, owners and PASIDs.
    Groups,
    /// PCI tree, IOMMU groups, domains, PASIDs, mdevs, consumers.
    Topology,
    /// Per-device DMA bytes, IOTLB hit ratio and faults.
    Stats,
    /// The fault logs.
    Faults,
    /// Bind a PCI function to a driver (`drivers/<driver>/bind`).
    Bind {
        /// Driver name.
        driver: String,
        /// Function address.
        bdf: String,
    },
    /// Unbind a PCI function from its driver (`drivers/<driver>/unbind`;
    /// the current driver if none is named).
    Unbind {
        /// Function address.
        bdf: String,
        /// Driver it must be bound to.
        #[serde(default)]
        driver: Option<String>,
    },
    /// Set (or, with an empty value, clear) `driver_override`.
    DriverOverride {
        /// Function address.
        bdf: String,
        /// New value.
        value: String,
    },
    /// `drivers/<driver>/new_id`.
    NewId {
        /// Driver name.
        driver: String,
        /// `"vvvv dddd [ssvv ssdd cccc mmmm data]"`.
        id: String,
    },
    /// `drivers/<driver>/remove_id`.
    RemoveId {
        /// Driver name.
        driver: String,
        /// `"vvvv dddd [ssvv ssdd cccc mmmm]"`.
        id: String,
    },
    /// `sriov_numvfs` of a PF.
    SriovNumvfs {
        /// The PF.
        bdf: String,
        /// VFs to enable (0 disables).
        num_vfs: u16,
    },
}

/// A failed request: the Linux errno of the failure and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errno (positive), as the same operation through sysfs fails.
    pub errno: i32,
    /// Its symbolic name (`EEXIST`), or `E<n>` for one without a name here.
    pub name: String,
    /// What went wrong.
    pub message: String,
}

impl ErrorBody {
    /// An error with `errno` and `message`.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Self {
            errno: errno.raw_os_error(),
            name: errno_name(errno),
            message: message.into(),
        }
    }
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version of the daemon.
    pub version: u32,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result of a successful request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The failure of a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: Value) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(error: ErrorBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            ok: false,
            result: None,
            error: Some(error),
        }
    }
}

/// The symbolic name of the errnos the model returns.
pub fn errno_name(errno: Errno) -> String {
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::IO, "EIO"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::RANGE, "ERANGE"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::PROTO, "EPROTO"),
        (Errno::PROTONOSUPPORT, "EPROTONOSUPPORT"),
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::USERS, "EUSERS"),
        (Errno::ADDRINUSE, "EADDRINUSE"),
        (Errno::DEADLK, "EDEADLK"),
        (Errno::MSGSIZE, "EMSGSIZE"),
    ];
    NAMES
        .iter()
        .find(|(e, _)| *e == errno)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("E{}", errno.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_flat_objects_tagged_by_op() {
        let req = Request {
            version: 1,
            op: Op::Create {
                parent: "mtty".into(),
                mdev_type: "mtty-1".into(),
                uuid: None,
            },
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"op":"create","parent":"mtty","type":"mtty-1","uuid":null}"#
        );
        let back: Request =
            serde_json::from_str(r#"{"version":1,"op":"create","parent":"mtty","type":"mtty-1"}"#)
                .unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn unknown_fields_and_ops_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"version":1,"op":"explode"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"version":1,"op":"remove","uuid":"x","y":1}"#)
                .is_err()
        );
    }

    #[test]
    fn errors_carry_errno_and_name() {
        let body = ErrorBody::new(Errno::USERS, "no instance left");
        assert_eq!((body.errno, body.name.as_str()), (87, "EUSERS"));
        assert_eq!(errno_name(Errno::from_raw_os_error(200)), "E200");
    }
}
