//! The choke point: every incoming command is checked here (type, sizes,
//! argsz, flags, counts, fd counts) and turned into a typed [`Request`]
//! before any handler sees it.

use std::os::fd::OwnedFd;

use zerocopy::FromBytes;

use super::caps::ClientCaps;
use super::error::ProtoError;
use super::wire::{self, Header};
use super::{Command, Limits, PAGE_SIZE, flags};

/// One message as read from the socket: header, payload and the fds that
/// came with it (see [`crate::transport`]).
#[derive(Debug)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The `msg_size - 16` bytes after it.
    pub payload: Vec<u8>,
    /// fds received with the header.
    pub fds: Vec<OwnedFd>,
    /// More fds were sent than the receive buffer took (MSG_CTRUNC); the
    /// kernel closed the rest.
    pub fds_truncated: bool,
}

/// The data of a SET_IRQS.
#[derive(Debug)]
pub enum IrqSetData {
    /// DATA_NONE.
    None,
    /// DATA_BOOL: one flag per vector.
    Bool(Vec<bool>),
    /// DATA_EVENTFD: one eventfd per vector, or none at all (de-assign).
    Eventfds(Vec<OwnedFd>),
}

/// A validated command.
#[derive(Debug)]
pub enum Request {
    /// VERSION.
    Version {
        /// Client major.
        major: u16,
        /// Client minor.
        minor: u16,
        /// What it offered.
        caps: ClientCaps,
    },
    /// DMA_MAP: page-aligned, non-empty, not wrapping.
    DmaMap {
        /// READ / WRITE.
        flags: u32,
        /// Offset into `fd`.
        offset: u64,
        /// IOVA.
        addr: u64,
        /// Size.
        size: u64,
        /// The memory, or `None` for message-based DMA.
        fd: Option<OwnedFd>,
    },
    /// DMA_UNMAP.
    DmaUnmap {
        /// Largest reply payload.
        argsz: u32,
        /// GET_DIRTY_BITMAP / ALL.
        flags: u32,
        /// IOVA (0 with ALL).
        addr: u64,
        /// Size (0 with ALL).
        size: u64,
        /// The bitmap wanted, with GET_DIRTY_BITMAP.
        bitmap: Option<wire::DirtyBitmap>,
    },
    /// DEVICE_GET_INFO.
    DeviceGetInfo,
    /// DEVICE_GET_REGION_INFO.
    GetRegionInfo {
        /// Largest reply payload (at least 32).
        argsz: u32,
        /// Region index.
        index: u32,
    },
    /// DEVICE_GET_REGION_IO_FDS.
    GetRegionIoFds {
        /// Region index.
        index: u32,
    },
    /// DEVICE_GET_IRQ_INFO.
    GetIrqInfo {
        /// IRQ index.
        index: u32,
    },
    /// DEVICE_SET_IRQS (the vfio flag rules are checked by the device
    /// layer's `SetIrqs::validate`).
    SetIrqs {
        /// DATA_* | ACTION_*.
        flags: u32,
        /// IRQ index.
        index: u32,
        /// First vector.
        start: u32,
        /// Vectors.
        count: u32,
        /// The data.
        data: IrqSetData,
    },
    /// REGION_READ of at most `max_data_xfer_size` bytes.
    RegionRead {
        /// Region index.
        region: u32,
        /// Offset.
        offset: u64,
        /// Bytes.
        count: u32,
    },
    /// REGION_WRITE.
    RegionWrite {
        /// Region index.
        region: u32,
        /// Offset.
        offset: u64,
        /// The data.
        data: Vec<u8>,
    },
    /// DEVICE_RESET.
    DeviceReset,
    /// REGION_WRITE_MULTI (each entry 1..=8 bytes).
    RegionWriteMulti {
        /// The writes, in order.
        writes: Vec<wire::WriteMultiEntry>,
    },
    /// DEVICE_FEATURE.
    DeviceFeature {
        /// Largest reply payload.
        argsz: u32,
        /// Feature | GET | SET | PROBE.
        flags: u32,
        /// The feature data.
        data: Vec<u8>,
    },
}

/// Reads a fixed struct from the start of `payload`, or BadLength.
fn fixed<T: FromBytes>(cmd: Command, payload: &[u8]) -> Result<T, ProtoError> {
    T::read_from_prefix(payload)
        .map(|(v, _)| v)
        .map_err(|_| ProtoError::BadLength {
            cmd,
            len: payload.len(),
            expected: size_of::<T>(),
        })
}

/// Exactly `expected` payload bytes, or BadLength.
fn exact_len(cmd: Command, payload: &[u8], expected: usize) -> Result<(), ProtoError> {
    if payload.len() == expected {
        Ok(())
    } else {
        Err(ProtoError::BadLength {
            cmd,
            len: payload.len(),
            expected,
        })
    }
}

/// argsz (the largest reply payload) must cover the fixed reply.
fn reply_argsz(cmd: Command, argsz: u32, needed: usize) -> Result<(), ProtoError> {
    if (argsz as usize) < needed {
        return Err(ProtoError::BadArgsz { cmd, argsz });
    }
    Ok(())
}

/// Decodes and validates one incoming message. Replies are not commands
/// (the session routes them before calling this): a non-command type is
/// [`ProtoError::BadType`]. Stray fds on a command that takes none are
/// closed and otherwise ignored (SPDK's client sends one with DMA_UNMAP).
pub fn decode(msg: Message, limits: &Limits) -> Result<Request, ProtoError> {
    let Message {
        header,
        payload,
        mut fds,
        fds_truncated,
    } = msg;
    let cmd = Command(header.cmd);
    let ty = header.flags & flags::TYPE_MASK;
    if ty != flags::TYPE_COMMAND {
        return Err(ProtoError::BadType(ty));
    }
    if fds_truncated {
        return Err(ProtoError::FdsTruncated(limits.max_msg_fds));
    }
    let p = payload.as_slice();
    match cmd {
        Command::VERSION => {
            let v: wire::Version = fixed(cmd, p)?;
            let caps = ClientCaps::parse(&p[size_of::<wire::Version>()..])?;
            Ok(Request::Version {
                major: v.major,
                minor: v.minor,
                caps,
            })
        }
        Command::DMA_MAP => {
            let m: wire::DmaMap = fixed(cmd, p)?;
            exact_len(cmd, p, size_of::<wire::DmaMap>())?;
            if m.argsz as usize != size_of::<wire::DmaMap>() {
                return Err(ProtoError::BadArgsz {
                    cmd,
                    argsz: m.argsz,
                });
            }
            let rw = flags::DMA_MAP_READ | flags::DMA_MAP_WRITE;
            if m.flags & !rw != 0 || m.flags & rw == 0 {
                return Err(ProtoError::BadFlags {
                    cmd,
                    flags: m.flags,
                });
            }
            let aligned = [m.addr, m.size, m.offset]
                .iter()
                .all(|v| v.is_multiple_of(PAGE_SIZE));
            let bad_range = ProtoError::BadRange {
                cmd,
                addr: m.addr,
                size: m.size,
            };
            if !aligned || m.size == 0 || m.addr.checked_add(m.size).is_none() {
                return Err(bad_range);
            }
            if m.offset.checked_add(m.size).is_none() {
                return Err(bad_range);
            }
            if fds.len() > 1 {
                return Err(ProtoError::BadFds {
                    cmd,
                    got: fds.len(),
                });
            }
            Ok(Request::DmaMap {
                flags: m.flags,
                offset: m.offset,
                addr: m.addr,
                size: m.size,
                fd: fds.pop(),
            })
        }
        Command::DMA_UNMAP => {
            let u: wire::DmaUnmap = fixed(cmd, p)?;
            let known = flags::DMA_UNMAP_GET_DIRTY_BITMAP | flags::DMA_UNMAP_ALL;
            let bad_flags = ProtoError::BadFlags {
                cmd,
                flags: u.flags,
            };
            if u.flags & !known != 0 || u.flags == known {
                return Err(bad_flags);
            }
            let base = size_of::<wire::DmaUnmap>();
            let bitmap = if u.flags & flags::DMA_UNMAP_GET_DIRTY_BITMAP != 0 {
                exact_len(cmd, p, base + size_of::<wire::DirtyBitmap>())?;
                let b: wire::DirtyBitmap = fixed(cmd, &p[base..])?;
                let needed = (base + size_of::<wire::DirtyBitmap>()) as u64 + b.size;
                if u64::from(u.argsz) < needed {
                    return Err(ProtoError::BadArgsz {
                        cmd,
                        argsz: u.argsz,
                    });
                }
                Some(b)
            } else {
                exact_len(cmd, p, base)?;
                reply_argsz(cmd, u.argsz, base)?;
                None
            };
            if u.flags & flags::DMA_UNMAP_ALL != 0 {
                if u.addr != 0 || u.size != 0 {
                    return Err(bad_flags);
                }
            } else if u.size == 0 || u.addr.checked_add(u.size).is_none() {
                return Err(ProtoError::BadRange {
                    cmd,
                    addr: u.addr,
                    size: u.size,
                });
            }
            Ok(Request::DmaUnmap {
                argsz: u.argsz,
                flags: u.flags,
                addr: u.addr,
                size: u.size,
                bitmap,
            })
        }
        Command::DEVICE_GET_INFO => {
            let i: wire::DeviceInfo = fixed(cmd, p)?;
            // The Rust client sends argsz 32 (header included): tolerate
            // any argsz that covers the reply.
            reply_argsz(cmd, i.argsz, size_of::<wire::DeviceInfo>())?;
            Ok(Request::DeviceGetInfo)
        }
        Command::DEVICE_GET_REGION_INFO => {
            let r: wire::RegionInfo = fixed(cmd, p)?;
            reply_argsz(cmd, r.argsz, size_of::<wire::RegionInfo>())?;
            Ok(Request::GetRegionInfo {
                argsz: r.argsz,
                index: r.index,
            })
        }
        Command::DEVICE_GET_REGION_IO_FDS => {
            let r: wire::RegionIoFds = fixed(cmd, p)?;
            reply_argsz(cmd, r.argsz, size_of::<wire::RegionIoFds>())?;
            if r.flags != 0 {
                return Err(ProtoError::BadFlags {
                    cmd,
                    flags: r.flags,
                });
            }
            Ok(Request::GetRegionIoFds { index: r.index })
        }
        Command::DEVICE_GET_IRQ_INFO => {
            let i: wire::IrqInfo = fixed(cmd, p)?;
            reply_argsz(cmd, i.argsz, size_of::<wire::IrqInfo>())?;
            Ok(Request::GetIrqInfo { index: i.index })
        }
        Command::DEVICE_SET_IRQS => decode_set_irqs(cmd, p, fds),
        Command::REGION_READ => {
            let a: wire::RegionAccess = fixed(cmd, p)?;
            exact_len(cmd, p, size_of::<wire::RegionAccess>())?;
            xfer_limit(cmd, a.count, limits)?;
            Ok(Request::RegionRead {
                region: a.region,
                offset: a.offset,
                count: a.count,
            })
        }
        Command::REGION_WRITE => {
            let a: wire::RegionAccess = fixed(cmd, p)?;
            xfer_limit(cmd, a.count, limits)?;
            let head = size_of::<wire::RegionAccess>();
            exact_len(cmd, p, head + a.count as usize)?;
            Ok(Request::RegionWrite {
                region: a.region,
                offset: a.offset,
                data: p[head..].to_vec(),
            })
        }
        Command::DEVICE_RESET => Ok(Request::DeviceReset),
        Command::REGION_WRITE_MULTI => {
            let n: u64 = fixed(cmd, p)?;
            if n == 0 || n > u64::from(limits.max_write_multi) {
                return Err(ProtoError::TooLarge {
                    cmd,
                    what: "wr_cnt",
                    value: n,
                    limit: u64::from(limits.max_write_multi),
                });
            }
            let entry = size_of::<wire::WriteMultiEntry>();
            exact_len(cmd, p, 8 + n as usize * entry)?;
            let writes: Vec<wire::WriteMultiEntry> = p[8..]
                .chunks_exact(entry)
                .map(|c| wire::WriteMultiEntry::read_from_bytes(c).expect("entry-sized chunk"))
                .collect();
            if let Some(w) = writes.iter().find(|w| w.count == 0 || w.count > 8) {
                return Err(ProtoError::TooLarge {
                    cmd,
                    what: "entry count",
                    value: u64::from(w.count),
                    limit: 8,
                });
            }
            Ok(Request::RegionWriteMulti { writes })
        }
        Command::DEVICE_FEATURE => {
            let f: wire::DeviceFeature = fixed(cmd, p)?;
            reply_argsz(cmd, f.argsz, size_of::<wire::DeviceFeature>())?;
            let ops = flags::FEATURE_GET | flags::FEATURE_SET | flags::FEATURE_PROBE;
            let known = flags::FEATURE_MASK | ops;
            // vfio_ioctl_device_feature: unknown bits, or GET and SET
            // together without PROBE, are EINVAL.
            let get_set = flags::FEATURE_GET | flags::FEATURE_SET;
            if f.flags & !known != 0
                || (f.flags & get_set == get_set && f.flags & flags::FEATURE_PROBE == 0)
            {
                return Err(ProtoError::BadFlags {
                    cmd,
                    flags: f.flags,
                });
            }
            Ok(Request::DeviceFeature {
                argsz: f.argsz,
                flags: f.flags,
                data: p[size_of::<wire::DeviceFeature>()..].to_vec(),
            })
        }
        other => Err(ProtoError::Unsupported(other)),
    }
}

/// A REGION_READ/WRITE count within the advertised transfer size.
fn xfer_limit(cmd: Command, count: u32, limits: &Limits) -> Result<(), ProtoError> {
    if count > limits.max_data_xfer_size {
        return Err(ProtoError::TooLarge {
            cmd,
            what: "count",
            value: u64::from(count),
            limit: u64::from(limits.max_data_xfer_size),
        });
    }
    Ok(())
}

fn decode_set_irqs(cmd: Command, p: &[u8], fds: Vec<OwnedFd>) -> Result<Request, ProtoError> {
    use umdev_vfio::device::irq_set_flags::*;
    let s: wire::IrqSet = fixed(cmd, p)?;
    if s.argsz as usize != p.len() {
        return Err(ProtoError::BadArgsz {
            cmd,
            argsz: s.argsz,
        });
    }
    let head = size_of::<wire::IrqSet>();
    let data = &p[head..];
    let bad_fds = |got| ProtoError::BadFds { cmd, got };
    let data = match s.flags & DATA_TYPE_MASK {
        DATA_NONE | DATA_BOOL if !fds.is_empty() => return Err(bad_fds(fds.len())),
        DATA_NONE => {
            exact_len(cmd, p, head)?;
            IrqSetData::None
        }
        DATA_BOOL => {
            exact_len(cmd, p, head + s.count as usize)?;
            IrqSetData::Bool(data.iter().map(|&b| b != 0).collect())
        }
        DATA_EVENTFD => {
            exact_len(cmd, p, head)?;
            if !fds.is_empty() && fds.len() != s.count as usize {
                return Err(bad_fds(fds.len()));
            }
            IrqSetData::Eventfds(fds)
        }
        _ => {
            return Err(ProtoError::BadFlags {
                cmd,
                flags: s.flags,
            });
        }
    };
    Ok(Request::SetIrqs {
        flags: s.flags,
        index: s.index,
        start: s.start,
        count: s.count,
        data,
    })
}
