//! Device, region and IRQ commands: GET_INFO, GET_REGION_INFO (with the
//! sparse-mmap capability and the fd of mmap-able memory),
//! GET_REGION_IO_FDS, GET_IRQ_INFO, SET_IRQS, REGION_READ / WRITE /
//! WRITE_MULTI. They go straight to the device's `VfioDeviceOps`.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use umdev_vfio::device::{
    EventFd, IrqData, RegionFlags, RegionInfo, SetIrqs, SparseMmapArea, VfioDeviceOps,
};
use zerocopy::IntoBytes;

use super::Session;
use super::conn::Reply;
use super::error::CmdError;
use crate::proto::{IrqSetData, flags, wire};

/// Where the mmap-able areas of a region live in one file: the fd to pass
/// and the file offset of region offset 0.
struct MmapFile {
    fd: OwnedFd,
    offset: u64,
}

/// The one file behind every mmap-able area of `info` and the region's
/// offset in it, if they share one file at one displacement (what a
/// single vfio-user fd can express); `None` otherwise.
fn mmap_file(ops: &dyn VfioDeviceOps, info: &RegionInfo) -> Option<MmapFile> {
    let whole = [SparseMmapArea {
        offset: 0,
        size: info.size,
    }];
    let areas = if info.sparse_mmap.is_empty() {
        &whole[..]
    } else {
        &info.sparse_mmap[..]
    };
    let mut found: Option<(Arc<umdev_iommu::memory::MemoryObject>, u64)> = None;
    for area in areas {
        let t = ops.region_mmap(info.index, area.offset).ok()?;
        let delta = t.offset.checked_sub(area.offset)?;
        if t.offset.checked_add(area.size)? > t.memory.size() {
            return None;
        }
        match &found {
            None => found = Some((t.memory, delta)),
            Some((m, d)) if Arc::ptr_eq(m, &t.memory) && *d == delta => {}
            Some(_) => return None,
        }
    }
    let (memory, offset) = found?;
    let fd = memory.file()?.try_clone().ok()?;
    Some(MmapFile {
        fd: fd.into(),
        offset,
    })
}

/// The sparse-mmap capability chain (one capability).
fn sparse_cap(areas: &[SparseMmapArea]) -> Vec<u8> {
    let mut out = wire::CapHeader {
        id: flags::CAP_SPARSE_MMAP,
        version: 1,
        next: 0,
    }
    .as_bytes()
    .to_vec();
    out.extend_from_slice(
        wire::SparseMmapHeader {
            nr_areas: areas.len() as u32,
            reserved: 0,
        }
        .as_bytes(),
    );
    for a in areas {
        let w = wire::SparseMmapArea {
            offset: a.offset,
            size: a.size,
        };
        out.extend_from_slice(w.as_bytes());
    }
    out
}

impl Session {
    pub(super) fn device_info(&self) -> Reply {
        let info = self.device.ops().info();
        let w = wire::DeviceInfo {
            argsz: size_of::<wire::DeviceInfo>() as u32,
            flags: info.flags.bits(),
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        };
        Reply::data(w.as_bytes().to_vec())
    }

    /// GET_REGION_INFO. A region whose mmap-able memory cannot be passed
    /// as one fd is reported without MMAP (the client then uses
    /// REGION_READ / WRITE). When `argsz` is too small for the capability
    /// chain, only the fixed part goes back, with `argsz` = the size needed,
    /// CAPS clear and no fd; the client asks again (libvfio-user's
    /// two-step).
    pub(super) fn region_info(&self, argsz: u32, index: u32) -> Result<Reply, CmdError> {
        let ops = self.device.ops().as_ref();
        let info = ops.region_info(index)?;
        let mut rflags = info.flags - RegionFlags::CAPS;
        let file = if rflags.contains(RegionFlags::MMAP) {
            mmap_file(ops, &info)
        } else {
            None
        };
        if file.is_none() {
            rflags -= RegionFlags::MMAP;
        }
        let caps = match &file {
            Some(_) if !info.sparse_mmap.is_empty() => sparse_cap(&info.sparse_mmap),
            _ => Vec::new(),
        };
        let fixed = size_of::<wire::RegionInfo>();
        let needed = (fixed + caps.len()) as u32;
        let mut w = wire::RegionInfo {
            argsz: needed,
            flags: rflags.bits(),
            index,
            cap_offset: 0,
            size: info.size,
            offset: file.as_ref().map_or(0, |f| f.offset),
        };
        if !caps.is_empty() && argsz < needed {
            return Ok(Reply::data(w.as_bytes().to_vec()));
        }
        if !caps.is_empty() {
            w.flags |= RegionFlags::CAPS.bits();
            w.cap_offset = fixed as u32;
        }
        let mut payload = w.as_bytes().to_vec();
        payload.extend(caps);
        Ok(Reply {
            payload,
            fds: file.map(|f| f.fd).into_iter().collect(),
        })
    }

    /// GET_REGION_IO_FDS: no device of the model has ioeventfd-backed
    /// areas, so EINVAL for a bad index, EOPNOTSUPP otherwise.
    pub(super) fn region_io_fds(&self, index: u32) -> Result<Reply, CmdError> {
        self.device.ops().region_info(index)?;
        Err(CmdError::NoIoFds { index })
    }

    pub(super) fn irq_info(&self, index: u32) -> Result<Reply, CmdError> {
        let info = self.device.ops().irq_info(index)?;
        let w = wire::IrqInfo {
            argsz: size_of::<wire::IrqInfo>() as u32,
            flags: info.flags.bits(),
            index: info.index,
            count: info.count,
        };
        Ok(Reply::data(w.as_bytes().to_vec()))
    }

    /// SET_IRQS through the device layer's validation
    /// (`vfio_set_irqs_validate_and_prepare`). DATA_EVENTFD without fds
    /// de-assigns every vector of the range.
    pub(super) fn set_irqs(
        &self,
        flags: u32,
        index: u32,
        start: u32,
        count: u32,
        data: IrqSetData,
    ) -> Result<Reply, CmdError> {
        let ops = self.device.ops();
        let info = ops.irq_info(index)?;
        let data = match data {
            IrqSetData::None => IrqData::None,
            IrqSetData::Bool(v) => IrqData::Bool(v),
            // Never more slots than the index has vectors: a count past
            // them fails validation (EINVAL) instead of allocating it.
            IrqSetData::Eventfds(fds) if fds.is_empty() => {
                IrqData::Eventfd((0..count.min(info.count)).map(|_| None).collect())
            }
            IrqSetData::Eventfds(fds) => IrqData::Eventfd(
                fds.into_iter()
                    .map(|fd| Some(EventFd::from_fd(fd)))
                    .collect(),
            ),
        };
        let req = SetIrqs::validate(ops.info().num_irqs, &info, flags, start, count, data)?;
        ops.set_irqs(req)?;
        Ok(Reply::empty())
    }

    pub(super) fn region_read(
        &self,
        region: u32,
        offset: u64,
        count: u32,
    ) -> Result<Reply, CmdError> {
        let head = size_of::<wire::RegionAccess>();
        let mut payload = vec![0u8; head + count as usize];
        let n = self
            .device
            .ops()
            .region_read(region, offset, &mut payload[head..])?;
        payload.truncate(head + n);
        let w = wire::RegionAccess {
            offset,
            region,
            count: n as u32,
        };
        payload[..head].copy_from_slice(w.as_bytes());
        Ok(Reply::data(payload))
    }

    pub(super) fn region_write(
        &self,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<Reply, CmdError> {
        let n = self.device.ops().region_write(region, offset, data)?;
        let w = wire::RegionAccess {
            offset,
            region,
            count: n as u32,
        };
        Ok(Reply::data(w.as_bytes().to_vec()))
    }

    /// REGION_WRITE_MULTI: the writes in order; the first failure stops
    /// the batch and is the reply.
    pub(super) fn region_write_multi(
        &self,
        writes: &[wire::WriteMultiEntry],
    ) -> Result<Reply, CmdError> {
        let ops = self.device.ops();
        for w in writes {
            let data = w.data;
            ops.region_write(w.region, w.offset, &data[..w.count as usize])?;
        }
        Ok(Reply::data((writes.len() as u64).as_bytes().to_vec()))
    }
}
