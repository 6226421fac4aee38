//! From a validated [`Request`] to the handler that serves it.

use std::sync::Arc;

use zerocopy::IntoBytes;

use super::Session;
use super::conn::{Conn, Reply};
use super::error::CmdError;
use crate::proto::caps::server_json;
use crate::proto::{ProtoError, Request, VERSION_MAJOR, VERSION_MINOR, wire};

impl Session {
    /// Serves one command.
    pub(super) fn dispatch(&mut self, conn: &Arc<Conn>, req: Request) -> Result<Reply, CmdError> {
        match req {
            Request::Version { major, minor, caps } => {
                if major != VERSION_MAJOR {
                    return Err(ProtoError::BadVersion { what: "major" }.into());
                }
                self.caps = caps;
                // Minor: the client's or ours, whichever is lower (QEMU
                // takes only 0, the sample client up to 2).
                let v = wire::Version {
                    major: VERSION_MAJOR,
                    minor: minor.min(VERSION_MINOR),
                };
                let mut payload = v.as_bytes().to_vec();
                payload.extend(server_json(&self.limits, &caps));
                Ok(Reply::data(payload))
            }
            Request::DmaMap {
                flags,
                offset,
                addr,
                size,
                fd,
            } => self.dma_map(conn, flags, offset, addr, size, fd),
            Request::DmaUnmap {
                argsz,
                flags,
                addr,
                size,
                bitmap,
            } => self.dma_unmap(argsz, flags, addr, size, bitmap),
            Request::DeviceGetInfo => Ok(self.device_info()),
            Request::GetRegionInfo { argsz, index } => self.region_info(argsz, index),
            Request::GetRegionIoFds { index } => self.region_io_fds(index),
            Request::GetIrqInfo { index } => self.irq_info(index),
            Request::SetIrqs {
                flags,
                index,
                start,
                count,
                data,
            } => self.set_irqs(flags, index, start, count, data),
            Request::RegionRead {
                region,
                offset,
                count,
            } => self.region_read(region, offset, count),
            Request::RegionWrite {
                region,
                offset,
                data,
            } => self.region_write(region, offset, &data),
            Request::DeviceReset => {
                // Whatever the RESET flag said (the Rust client inverts it).
                self.device.ops().reset()?;
                Ok(Reply::empty())
            }
            Request::RegionWriteMulti { writes } => self.region_write_multi(&writes),
            Request::DeviceFeature { argsz, flags, data } => {
                self.device_feature(argsz, flags, &data)
            }
        }
    }
}
