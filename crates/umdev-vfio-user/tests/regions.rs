//! GET_REGION_INFO of mmap-able regions: a device whose BAR0 has two
//! sparse mmap-able areas and whose BAR1 is mmap-able whole, both backed by
//! one memfd. The third-party client gets the two-step reply (fixed part
//! with the size needed, then the sparse capability and the fd) and
//! reaches the device's memory through the fd at the advertised offsets.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use umdev_iommu::memory::{HostMemory, MemoryObject};
use umdev_testkit::vfio_user::*;
use umdev_vfio::device::*;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio_user::proto::{Command, wire};
use vfio_user::Client;
use zerocopy::{FromBytes, IntoBytes};

/// BAR0: 16 KiB, areas [0x1000, 0x2000) and [0x3000, 0x4000) mmap-able,
/// at memfd offset 0x2000 + region offset. BAR1: 8 KiB at memfd 0x6000.
struct MappedBars {
    mem: Arc<MemoryObject>,
}

const BAR0_AT: u64 = 0x2000;
const BAR1_AT: u64 = 0x6000;

impl VfioDeviceOps for MappedBars {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            flags: DeviceFlags::PCI | DeviceFlags::RESET,
            num_regions: region::NUM,
            num_irqs: irq::NUM,
        }
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        let rw = RegionFlags::READ | RegionFlags::WRITE;
        let (flags, size, sparse_mmap) = match index {
            0 => (
                rw | RegionFlags::MMAP,
                0x4000,
                vec![
                    SparseMmapArea {
                        offset: 0x1000,
                        size: 0x1000,
                    },
                    SparseMmapArea {
                        offset: 0x3000,
                        size: 0x1000,
                    },
                ],
            ),
            1 => (rw | RegionFlags::MMAP, 0x2000, Vec::new()),
            region::CONFIG => (rw, 256, Vec::new()),
            i if i < region::NUM => (RegionFlags::empty(), 0, Vec::new()),
            _ => return Err(VfioError::NoRegion { index }),
        };
        Ok(RegionInfo {
            index,
            flags,
            size,
            sparse_mmap,
        })
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, VfioError> {
        let t = self.region_mmap(index, offset)?;
        t.memory
            .read(t.offset, buf)
            .map_err(|_| VfioError::OutOfRange {
                index,
                offset,
                len: buf.len() as u64,
            })?;
        Ok(buf.len())
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<usize, VfioError> {
        let _ = (index, offset);
        Ok(data.len())
    }

    fn region_mmap(&self, index: u32, offset: u64) -> Result<MmapTarget, VfioError> {
        let base = match index {
            0 => BAR0_AT,
            1 => BAR1_AT,
            _ => return Err(VfioError::NotMappable { index }),
        };
        Ok(MmapTarget {
            memory: Arc::clone(&self.mem),
            offset: base + offset,
        })
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        if index >= irq::NUM {
            return Err(VfioError::NoIrq { index });
        }
        Ok(IrqInfo {
            index,
            flags: IrqInfoFlags::EVENTFD,
            count: 0,
        })
    }

    fn set_irqs(&self, _req: SetIrqs) -> Result<(), VfioError> {
        Ok(())
    }

    fn reset(&self) -> Result<(), VfioError> {
        Ok(())
    }
}

fn device(host_mem: &HostMemory) -> (Arc<MemoryObject>, Arc<VfioDevice>) {
    let mem = host_mem.alloc_memfd("bars", 0x8000).unwrap();
    let ops = Arc::new(MappedBars {
        mem: Arc::clone(&mem),
    });
    (mem, VfioDevice::new_emulated(ops).unwrap())
}

#[test]
fn sparse_areas_come_with_the_fd_of_their_memory() {
    let rig = Rig::new();
    let (mem, vfio) = device(&rig.ctx.memory);
    let (_server, path) = rig.serve("bars", vfio);
    let client = timed(move || Client::new(&path).unwrap());
    let bar0 = client.region(0).unwrap();
    assert_eq!(bar0.size, 0x4000);
    assert_ne!(bar0.flags & RegionFlags::MMAP.bits(), 0);
    let areas: Vec<(u64, u64)> = bar0
        .sparse_areas
        .iter()
        .map(|a| (a.offset, a.size))
        .collect();
    assert_eq!(areas, [(0x1000, 0x1000), (0x3000, 0x1000)]);
    let fo = bar0.file_offset.as_ref().expect("BAR0 comes with an fd");
    assert_eq!(fo.start(), BAR0_AT);
    // Through the fd at offset + area offset: the device's memory.
    fo.file()
        .write_all_at(b"area two", fo.start() + 0x3000)
        .unwrap();
    let mut b = [0u8; 8];
    mem.read(BAR0_AT + 0x3000, &mut b).unwrap();
    assert_eq!(&b, b"area two");
    // BAR1 is mmap-able whole: an fd, no capability.
    let bar1 = client.region(1).unwrap();
    assert!(bar1.sparse_areas.is_empty());
    assert_eq!(bar1.file_offset.as_ref().unwrap().start(), BAR1_AT);
    // Config space: no fd, no MMAP.
    let cfg = client.region(region::CONFIG).unwrap();
    assert!(cfg.file_offset.is_none());
    assert_eq!(cfg.flags & RegionFlags::MMAP.bits(), 0);
    timed(move || client.shutdown().unwrap());
}

#[test]
fn region_info_two_step_and_io_fds() {
    let rig = Rig::new();
    let (_mem, vfio) = device(&rig.ctx.memory);
    let (_server, path) = rig.serve("bars", vfio);
    let mut c = RawClient::connect(&path);
    let ask = |c: &mut RawClient, argsz: u32, index: u32| {
        let p = wire::RegionInfo {
            argsz,
            index,
            ..Default::default()
        };
        c.call(Command::DEVICE_GET_REGION_INFO.0, p.as_bytes(), &[])
    };
    // argsz 32: the fixed part, argsz = what is needed, CAPS clear, no fd.
    let m = ask(&mut c, 32, 0);
    let (info, rest) = wire::RegionInfo::read_from_prefix(&m.payload).unwrap();
    let needed = 32 + 8 + 8 + 2 * 16;
    assert_eq!(({ info.argsz }, rest.len(), m.fds.len()), (needed, 0, 0));
    assert_eq!(info.flags & RegionFlags::CAPS.bits(), 0);
    // Again with room: caps at 32, one sparse capability, one fd.
    let m = ask(&mut c, needed, 0);
    let (info, caps) = wire::RegionInfo::read_from_prefix(&m.payload).unwrap();
    assert_ne!(info.flags & RegionFlags::CAPS.bits(), 0);
    assert_eq!(({ info.cap_offset }, caps.len(), m.fds.len()), (32, 48, 1));
    let (hdr, caps) = wire::CapHeader::read_from_prefix(caps).unwrap();
    assert_eq!(({ hdr.id }, { hdr.version }, { hdr.next }), (1, 1, 0));
    let (sparse, _) = wire::SparseMmapHeader::read_from_prefix(caps).unwrap();
    assert_eq!({ sparse.nr_areas }, 2);
    // A region index past num_regions: EINVAL; IO_FDS: EOPNOTSUPP.
    let m = ask(&mut c, 32, 99);
    assert_eq!(
        RawClient::errno(&m),
        rustix::io::Errno::INVAL.raw_os_error() as u32
    );
    let io = wire::RegionIoFds {
        argsz: 16,
        flags: 0,
        index: 0,
        count: 0,
    };
    let m = c.call(Command::DEVICE_GET_REGION_IO_FDS.0, io.as_bytes(), &[]);
    let errno = RawClient::errno(&m);
    assert_eq!(errno, rustix::io::Errno::OPNOTSUPP.raw_os_error() as u32);
    // An emulated device cannot log DMA through the IOMMU: ENOTTY, as an
    // unsupported VFIO_DEVICE_FEATURE.
    let probe = wire::DeviceFeature {
        argsz: 8,
        flags: umdev_vfio_user::proto::flags::FEATURE_SET
            | umdev_vfio_user::proto::flags::FEATURE_PROBE
            | umdev_vfio_user::proto::flags::FEATURE_DMA_LOGGING_START,
    };
    let m = c.call(Command::DEVICE_FEATURE.0, probe.as_bytes(), &[]);
    let errno = RawClient::errno(&m);
    assert_eq!(errno, rustix::io::Errno::NOTTY.raw_os_error() as u32);
}
