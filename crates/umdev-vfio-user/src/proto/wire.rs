//! The fixed parts of every vfio-user message as packed, host-endian
//! `zerocopy` structs (QEMU docs/interop/vfio-user.rst; the `vfio_*` ones
//! are include/uapi/linux/vfio.h layouts).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The 16-byte header every message starts with.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed)]
pub struct Header {
    /// Chosen by the sender, echoed in the reply (may be reused).
    pub msg_id: u16,
    /// The command code ([`super::Command`]).
    pub cmd: u16,
    /// Size of the whole message, header included.
    pub msg_size: u32,
    /// Type (bits 0-3), NO_REPLY, ERROR ([`super::flags`]).
    pub flags: u32,
    /// errno of an error reply.
    pub error_no: u32,
}

/// VERSION payload (followed by optional NUL-terminated JSON).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

/// DMA_MAP payload.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaMap {
    /// Size of this payload (32).
    pub argsz: u32,
    /// READ / WRITE ([`super::flags::DMA_MAP_READ`]).
    pub flags: u32,
    /// Offset into the passed fd.
    pub offset: u64,
    /// IOVA of the mapping.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// DMA_UNMAP payload (and its reply).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaUnmap {
    /// Request: the largest reply payload the client takes.
    pub argsz: u32,
    /// GET_DIRTY_BITMAP / ALL.
    pub flags: u32,
    /// IOVA of the mapping.
    pub addr: u64,
    /// Its size.
    pub size: u64,
}

/// The bitmap header following [`DmaUnmap`] with GET_DIRTY_BITMAP
/// (`struct vfio_bitmap` without the user pointer).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DirtyBitmap {
    /// Bytes tracked per bit.
    pub pgsize: u64,
    /// Size of the bitmap in bytes.
    pub size: u64,
}

/// DEVICE_GET_INFO payload (`struct vfio_device_info`, v0 part).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DeviceInfo {
    /// Request: largest reply; reply: 16.
    pub argsz: u32,
    /// RESET / PCI.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of IRQ indexes.
    pub num_irqs: u32,
}

/// DEVICE_GET_REGION_INFO payload (`struct vfio_region_info`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct RegionInfo {
    /// Request: largest reply; reply: size needed (with caps).
    pub argsz: u32,
    /// READ / WRITE / MMAP / CAPS.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Region size.
    pub size: u64,
    /// Offset into the reply's fd where the region is mmap-able.
    pub offset: u64,
}

/// `struct vfio_info_cap_header`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct CapHeader {
    /// Capability id.
    pub id: u16,
    /// Its version.
    pub version: u16,
    /// Offset of the next capability (0: last).
    pub next: u32,
}

/// `struct vfio_region_info_cap_sparse_mmap` after its header.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct SparseMmapHeader {
    /// Number of areas that follow.
    pub nr_areas: u32,
    /// Reserved.
    pub reserved: u32,
}

/// `struct vfio_region_sparse_mmap_area`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct SparseMmapArea {
    /// Offset inside the region.
    pub offset: u64,
    /// Size.
    pub size: u64,
}

/// DEVICE_GET_REGION_IO_FDS request.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct RegionIoFds {
    /// Largest reply.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Number of sub-regions.
    pub count: u32,
}

/// DEVICE_GET_IRQ_INFO payload (`struct vfio_irq_info`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct IrqInfo {
    /// Request: largest reply; reply: 16.
    pub argsz: u32,
    /// EVENTFD / MASKABLE / AUTOMASKED / NORESIZE.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// Number of vectors.
    pub count: u32,
}

/// DEVICE_SET_IRQS payload (`struct vfio_irq_set` without data).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct IrqSet {
    /// Size of this payload with its data.
    pub argsz: u32,
    /// DATA_* | ACTION_*.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Number of vectors.
    pub count: u32,
}

/// REGION_READ / REGION_WRITE payload (before the data).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct RegionAccess {
    /// Offset inside the region.
    pub offset: u64,
    /// Region index.
    pub region: u32,
    /// Bytes.
    pub count: u32,
}

/// DMA_READ / DMA_WRITE payload (before the data).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaAccess {
    /// IOVA.
    pub addr: u64,
    /// Bytes.
    pub count: u64,
}

/// One entry of REGION_WRITE_MULTI.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct WriteMultiEntry {
    /// Offset inside the region.
    pub offset: u64,
    /// Region index.
    pub region: u32,
    /// Bytes of `data` used (1..=8).
    pub count: u32,
    /// The data.
    pub data: [u8; 8],
}

/// DEVICE_FEATURE payload (before the feature data).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DeviceFeature {
    /// Request: largest reply.
    pub argsz: u32,
    /// Feature (bits 0-15) | GET | SET | PROBE.
    pub flags: u32,
}

/// `struct vfio_device_feature_dma_logging_control` before its ranges.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaLoggingControl {
    /// Tracking granule.
    pub page_size: u64,
    /// Number of ranges that follow (0: everything).
    pub num_ranges: u32,
    /// Reserved.
    pub reserved: u32,
}

/// `struct vfio_device_feature_dma_logging_range`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaLoggingRange {
    /// First IOVA.
    pub iova: u64,
    /// Length.
    pub length: u64,
}

/// `struct vfio_device_feature_dma_logging_report` without the user
/// pointer; the bitmap follows in the reply.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DmaLoggingReport {
    /// First IOVA.
    pub iova: u64,
    /// Length.
    pub length: u64,
    /// Bytes per bit.
    pub page_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_spec() {
        assert_eq!(size_of::<Header>(), 16);
        assert_eq!(size_of::<DmaMap>(), 32);
        assert_eq!(size_of::<DmaUnmap>(), 24);
        assert_eq!(size_of::<DeviceInfo>(), 16);
        assert_eq!(size_of::<RegionInfo>(), 32);
        assert_eq!(size_of::<IrqSet>(), 20);
        assert_eq!(size_of::<RegionAccess>(), 16);
        assert_eq!(size_of::<DmaAccess>(), 16);
        assert_eq!(size_of::<WriteMultiEntry>(), 24);
        assert_eq!(size_of::<DmaLoggingReport>(), 24);
    }
}
