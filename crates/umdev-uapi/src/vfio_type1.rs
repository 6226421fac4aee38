//! The VFIO type1 container ioctls on a `/dev/iommu` fd
//! (drivers/iommu/iommufd/vfio_compat.c `iommufd_vfio_ioctl`): what
//! `iommufd_fops_ioctl` passes on for a number outside the iommufd table,
//! so that a VFIO program can use `/dev/iommu` as its container. Each
//! struct is copied `minsz` bytes (`offsetofend` of its last mandatory
//! field), as the kernel does; unknown numbers are ENOTTY.

use rustix::io::Errno;
use umdev_iommufd::vfio_compat::{VfioDmaMap, VfioDmaMapFlags, VfioDmaUnmap, VfioDmaUnmapFlags};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioctl::{IommufdFile, errno};
use crate::user::Peer;

/// VFIO_TYPE (`';'`, as IOMMUFD_TYPE) and VFIO_BASE (include/uapi/linux/vfio.h).
const VFIO_BASE: u32 = 100;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`.
const fn vfio_io(n: u32) -> u32 {
    crate::uapi::iommufd_io(VFIO_BASE + n)
}

/// VFIO_GET_API_VERSION.
pub const VFIO_GET_API_VERSION: u32 = vfio_io(0);
/// VFIO_CHECK_EXTENSION.
pub const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
/// VFIO_SET_IOMMU.
pub const VFIO_SET_IOMMU: u32 = vfio_io(2);
/// VFIO_IOMMU_GET_INFO.
pub const VFIO_IOMMU_GET_INFO: u32 = vfio_io(12);
/// VFIO_IOMMU_MAP_DMA.
pub const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
/// VFIO_IOMMU_UNMAP_DMA.
pub const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);

/// Bytes of a GET_INFO reply this layer builds at most: the header and
/// both capabilities fit many times over; a larger `argsz` is honoured
/// as if it were this (nothing is written past what the caps need).
const MAX_INFO: usize = 64 * 1024;

/// struct vfio_iommu_type1_dma_map.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

/// struct vfio_iommu_type1_dma_unmap (without its flexible `data`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

fn read<T: FromBytes + IntoBytes>(peer: Peer, arg: u64) -> Result<T, Errno> {
    let mut v = T::new_zeroed();
    peer.read(arg, v.as_mut_bytes()).map_err(|e| e.errno())?;
    Ok(v)
}

/// `iommufd_vfio_ioctl`; `None` for a number it does not know.
pub fn ioctl(file: &IommufdFile, peer: Peer, cmd: u32, arg: u64) -> Option<Result<i64, Errno>> {
    let ictx = &file.ictx;
    Some(match cmd {
        VFIO_GET_API_VERSION => Ok(i64::from(ictx.vfio_get_api_version())),
        VFIO_SET_IOMMU => ictx.vfio_set_iommu(arg).map(|()| 0).map_err(errno),
        VFIO_CHECK_EXTENSION => ictx.vfio_check_extension(arg).map(i64::from).map_err(errno),
        VFIO_IOMMU_GET_INFO => get_info(file, peer, arg),
        VFIO_IOMMU_MAP_DMA => map_dma(file, peer, arg),
        VFIO_IOMMU_UNMAP_DMA => unmap_dma(file, peer, arg),
        _ => return None,
    })
}

fn map_dma(file: &IommufdFile, peer: Peer, arg: u64) -> Result<i64, Errno> {
    let m: DmaMap = read(peer, arg)?;
    let map = VfioDmaMap {
        argsz: m.argsz,
        flags: VfioDmaMapFlags::from_bits_retain(m.flags),
        vaddr: m.vaddr,
        iova: m.iova,
        size: m.size,
    };
    file.ictx
        .vfio_map_dma_with(&map, || {
            file.memory.resolve(peer, m.vaddr, m.size).map_err(|e| {
                umdev_iommufd::IommufdError::Errno {
                    what: "VFIO_IOMMU_MAP_DMA vaddr",
                    errno: e.errno(),
                }
            })
        })
        .map(|()| 0)
        .map_err(errno)
}

fn unmap_dma(file: &IommufdFile, peer: Peer, arg: u64) -> Result<i64, Errno> {
    let u: DmaUnmap = read(peer, arg)?;
    let mut unmap = VfioDmaUnmap {
        argsz: u.argsz,
        flags: VfioDmaUnmapFlags::from_bits_retain(u.flags),
        iova: u.iova,
        size: u.size,
    };
    let ret = file.ictx.vfio_unmap_dma(&mut unmap);
    // The unmapped size goes back whatever the result, once the
    // arguments were accepted (the kernel's `unmap.size = unmapped`).
    if !matches!(&ret, Err(e) if e.errno() == Errno::INVAL || e.errno() == Errno::NODEV) {
        let out = DmaUnmap {
            size: unmap.size,
            ..u
        };
        peer.write(arg, out.as_bytes()).map_err(|e| e.errno())?;
    }
    ret.map(|()| 0).map_err(errno)
}

fn get_info(file: &IommufdFile, peer: Peer, arg: u64) -> Result<i64, Errno> {
    const MINSZ: usize = 16;
    let mut head = [0u8; MINSZ];
    peer.read(arg, &mut head).map_err(|e| e.errno())?;
    let argsz = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if argsz < MINSZ {
        return Err(Errno::INVAL);
    }
    let len = argsz.min(MAX_INFO);
    let mut buf = vec![0u8; len];
    peer.read(arg, &mut buf).map_err(|e| e.errno())?;
    buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
    file.ictx.vfio_iommu_get_info(&mut buf).map_err(errno)?;
    peer.write(arg, &buf).map_err(|e| e.errno())?;
    Ok(0)
}
