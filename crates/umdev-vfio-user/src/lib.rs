//! umdev's vfio-user server: serves VFIO devices of the model to virtual
//! machine monitors over UNIX sockets (QEMU `vfio-user-pci`,
//! cloud-hypervisor `--user-device`, any vfio-user client).
//!
//! - [`proto`]: the wire format and the one validating decoder;
//! - [`transport`]: framing on the stream (one header per `recvmsg`);
//! - [`session`]: one client = one consumer of the device;
//! - [`Server`]: a listener per device, one client at a time.

pub mod proto;
mod server;
pub mod session;
pub mod transport;

pub use server::{ServeContext, Server, ServerError, ServerHandle, ServerStats};
pub use session::SessionStats;
