//! The uAPI vocabulary of VFIO devices (include/uapi/linux/vfio.h) as Rust
//! types, and the errors of the device layer.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;

use super::EventFd;

/// vfio-pci region indexes (`VFIO_PCI_*_REGION_INDEX`).
pub mod region {
    /// BAR0 … BAR5 are indexes 0 … 5.
    pub const BAR0: u32 = 0;
    /// BAR5.
    pub const BAR5: u32 = 5;
    /// The expansion ROM.
    pub const ROM: u32 = 6;
    /// PCI config space.
    pub const CONFIG: u32 = 7;
    /// Legacy VGA ranges.
    pub const VGA: u32 = 8;
    /// `VFIO_PCI_NUM_REGIONS`.
    pub const NUM: u32 = 9;
}

/// vfio-pci IRQ indexes (`VFIO_PCI_*_IRQ_INDEX`).
pub mod irq {
    /// INTx.
    pub const INTX: u32 = 0;
    /// MSI.
    pub const MSI: u32 = 1;
    /// MSI-X.
    pub const MSIX: u32 = 2;
    /// AER error notification.
    pub const ERR: u32 = 3;
    /// Device release request.
    pub const REQ: u32 = 4;
    /// `VFIO_PCI_NUM_IRQS`.
    pub const NUM: u32 = 5;
}

bitflags::bitflags! {
    /// `VFIO_DEVICE_FLAGS_*`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceFlags: u32 {
        /// VFIO_DEVICE_FLAGS_RESET: the device supports reset.
        const RESET = 1 << 0;
        /// VFIO_DEVICE_FLAGS_PCI.
        const PCI = 1 << 1;
    }
}

/// struct vfio_device_info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Flags.
    pub flags: DeviceFlags,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of IRQ indexes.
    pub num_irqs: u32,
}

bitflags::bitflags! {
    /// `VFIO_REGION_INFO_FLAG_*`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RegionFlags: u32 {
        /// Readable.
        const READ = 1 << 0;
        /// Writable.
        const WRITE = 1 << 1;
        /// mmap-able (all of it, or the sparse areas).
        const MMAP = 1 << 2;
        /// Has a capability chain (here: the sparse-mmap areas).
        const CAPS = 1 << 3;
    }
}

/// One area of VFIO_REGION_INFO_CAP_SPARSE_MMAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseMmapArea {
    /// Offset inside the region.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// struct vfio_region_info plus its sparse-mmap capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region index.
    pub index: u32,
    /// Flags.
    pub flags: RegionFlags,
    /// Size in bytes (0: the region does not exist on this device).
    pub size: u64,
    /// The mmap-able areas, when only parts of the region are.
    pub sparse_mmap: Vec<SparseMmapArea>,
}

/// What backs an mmap-able area: a memory object and the offset in it.
#[derive(Clone, Debug)]
pub struct MmapTarget {
    /// The memory.
    pub memory: Arc<MemoryObject>,
    /// Offset of the requested region offset inside `memory`.
    pub offset: u64,
}

bitflags::bitflags! {
    /// `VFIO_IRQ_INFO_*`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IrqInfoFlags: u32 {
        /// Signalled through eventfds.
        const EVENTFD = 1 << 0;
        /// Can be masked.
        const MASKABLE = 1 << 1;
        /// Masked automatically when it fires (level INTx).
        const AUTOMASKED = 1 << 2;
        /// The number of vectors cannot be changed after enabling.
        const NORESIZE = 1 << 3;
    }
}

/// struct vfio_irq_info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqInfo {
    /// The IRQ index.
    pub index: u32,
    /// Flags.
    pub flags: IrqInfoFlags,
    /// Number of vectors (0: this index is not supported).
    pub count: u32,
}

/// `VFIO_IRQ_SET_DATA_*` with the data itself.
#[derive(Debug)]
pub enum IrqData {
    /// DATA_NONE: act on every vector of `[start, start + count)`.
    None,
    /// DATA_BOOL: act where true.
    Bool(Vec<bool>),
    /// DATA_EVENTFD: for TRIGGER, the eventfd per vector (`None` = -1, tear
    /// down); for UNMASK, a one-shot unmask eventfd.
    Eventfd(Vec<Option<EventFd>>),
}

/// `VFIO_IRQ_SET_ACTION_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqAction {
    /// ACTION_MASK.
    Mask,
    /// ACTION_UNMASK.
    Unmask,
    /// ACTION_TRIGGER.
    Trigger,
}

/// Raw `VFIO_IRQ_SET_*` flag bits.
pub mod irq_set_flags {
    /// VFIO_IRQ_SET_DATA_NONE.
    pub const DATA_NONE: u32 = 1 << 0;
    /// VFIO_IRQ_SET_DATA_BOOL.
    pub const DATA_BOOL: u32 = 1 << 1;
    /// VFIO_IRQ_SET_DATA_EVENTFD.
    pub const DATA_EVENTFD: u32 = 1 << 2;
    /// VFIO_IRQ_SET_ACTION_MASK.
    pub const ACTION_MASK: u32 = 1 << 3;
    /// VFIO_IRQ_SET_ACTION_UNMASK.
    pub const ACTION_UNMASK: u32 = 1 << 4;
    /// VFIO_IRQ_SET_ACTION_TRIGGER.
    pub const ACTION_TRIGGER: u32 = 1 << 5;
    /// VFIO_IRQ_SET_DATA_TYPE_MASK.
    pub const DATA_TYPE_MASK: u32 = DATA_NONE | DATA_BOOL | DATA_EVENTFD;
    /// VFIO_IRQ_SET_ACTION_TYPE_MASK.
    pub const ACTION_TYPE_MASK: u32 = ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER;
}

/// A validated VFIO_DEVICE_SET_IRQS request.
#[derive(Debug)]
pub struct SetIrqs {
    /// IRQ index.
    pub index: u32,
    /// What to do.
    pub action: IrqAction,
    /// First vector.
    pub start: u32,
    /// Number of vectors (0 with DATA_NONE + TRIGGER: disable the index).
    pub count: u32,
    /// The data.
    pub data: IrqData,
}

impl SetIrqs {
    /// vfio_main.c `vfio_set_irqs_validate_and_prepare` + the vfio-pci
    /// dispatch: EINVAL for an index past `num_irqs`, unknown flag bits,
    /// a data type that is not exactly one of NONE/BOOL/EVENTFD, a range
    /// past the index's vector count, or data of the wrong length; ENOTTY
    /// for an action that is not exactly one of MASK/UNMASK/TRIGGER.
    pub fn validate(
        num_irqs: u32,
        irq: &IrqInfo,
        flags: u32,
        start: u32,
        count: u32,
        data: IrqData,
    ) -> Result<Self, VfioError> {
        use irq_set_flags::*;
        let invalid = |what| Err(VfioError::InvalidIrqSet { what });
        if irq.index >= num_irqs
            || count >= u32::MAX - start
            || flags & !(DATA_TYPE_MASK | ACTION_TYPE_MASK) != 0
        {
            return invalid("index, range or flags");
        }
        let data_ok = match (flags & DATA_TYPE_MASK, &data) {
            (DATA_NONE, IrqData::None) => true,
            (DATA_BOOL, IrqData::Bool(v)) => v.len() == count as usize,
            (DATA_EVENTFD, IrqData::Eventfd(v)) => v.len() == count as usize,
            _ => false,
        };
        if !data_ok {
            return invalid("data type or length");
        }
        let action = match flags & ACTION_TYPE_MASK {
            ACTION_MASK => IrqAction::Mask,
            ACTION_UNMASK => IrqAction::Unmask,
            ACTION_TRIGGER => IrqAction::Trigger,
            _ => return Err(VfioError::UnsupportedIrqAction { index: irq.index }),
        };
        // Disabling an index (count 0, DATA_NONE, TRIGGER) needs no range.
        let disable = count == 0 && action == IrqAction::Trigger && matches!(data, IrqData::None);
        if !disable && (start >= irq.count || start + count > irq.count) {
            return invalid("vector range");
        }
        Ok(Self {
            index: irq.index,
            action,
            start,
            count,
            data,
        })
    }
}

/// Errors of the VFIO device layer.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    /// No such region: EINVAL.
    #[error("no region {index}")]
    NoRegion {
        /// The region index.
        index: u32,
    },
    /// Access outside the region: EINVAL.
    #[error("region {index}: access {offset:#x}+{len:#x} out of range")]
    OutOfRange {
        /// The region index.
        index: u32,
        /// Offset of the access.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// The region is not readable or writable that way: EINVAL.
    #[error("region {index}: not {what}")]
    NotAllowed {
        /// The region index.
        index: u32,
        /// "readable" or "writable".
        what: &'static str,
    },
    /// No mmap-able area at the offset: EINVAL.
    #[error("region {index}: not mappable there")]
    NotMappable {
        /// The region index.
        index: u32,
    },
    /// No such IRQ index: EINVAL.
    #[error("no IRQ index {index}")]
    NoIrq {
        /// The IRQ index.
        index: u32,
    },
    /// A malformed SET_IRQS: EINVAL.
    #[error("invalid SET_IRQS: {what}")]
    InvalidIrqSet {
        /// What is wrong.
        what: &'static str,
    },
    /// An action this index does not support: ENOTTY.
    #[error("IRQ index {index}: action not supported")]
    UnsupportedIrqAction {
        /// The IRQ index.
        index: u32,
    },
    /// The device cannot be reset: ENOTTY.
    #[error("device does not support reset")]
    NoReset,
    /// Any other errno from a device model or a lower layer.
    #[error("{what}: {errno}")]
    Errno {
        /// What failed.
        what: &'static str,
        /// Linux's errno.
        errno: Errno,
    },
}

impl VfioError {
    /// The Linux errno for this error.
    pub fn errno(&self) -> Errno {
        match self {
            VfioError::NoRegion { .. }
            | VfioError::OutOfRange { .. }
            | VfioError::NotAllowed { .. }
            | VfioError::NotMappable { .. }
            | VfioError::NoIrq { .. }
            | VfioError::InvalidIrqSet { .. } => Errno::INVAL,
            VfioError::UnsupportedIrqAction { .. } | VfioError::NoReset => Errno::NOTTY,
            VfioError::Errno { errno, .. } => *errno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::irq_set_flags::*;
    use super::*;

    const MSIX: IrqInfo = IrqInfo {
        index: irq::MSIX,
        flags: IrqInfoFlags::EVENTFD.union(IrqInfoFlags::NORESIZE),
        count: 4,
    };

    fn errno(r: Result<SetIrqs, VfioError>) -> Errno {
        r.unwrap_err().errno()
    }

    #[test]
    fn set_irqs_validation_follows_vfio_set_irqs_validate_and_prepare() {
        let trig = DATA_EVENTFD | ACTION_TRIGGER;
        let ok =
            SetIrqs::validate(5, &MSIX, trig, 1, 2, IrqData::Eventfd(vec![None, None])).unwrap();
        assert_eq!((ok.action, ok.start, ok.count), (IrqAction::Trigger, 1, 2));
        // Past the index's vectors, unknown bits, wrong data, two data types.
        assert_eq!(
            errno(SetIrqs::validate(
                5,
                &MSIX,
                trig,
                3,
                2,
                IrqData::Eventfd(vec![None, None])
            )),
            Errno::INVAL
        );
        assert_eq!(
            errno(SetIrqs::validate(
                5,
                &MSIX,
                trig | 1 << 6,
                0,
                1,
                IrqData::Eventfd(vec![None])
            )),
            Errno::INVAL
        );
        assert_eq!(
            errno(SetIrqs::validate(
                5,
                &MSIX,
                trig,
                0,
                2,
                IrqData::Eventfd(vec![None])
            )),
            Errno::INVAL
        );
        assert_eq!(
            errno(SetIrqs::validate(
                5,
                &MSIX,
                DATA_NONE | DATA_BOOL | ACTION_MASK,
                0,
                1,
                IrqData::None
            )),
            Errno::INVAL
        );
        assert_eq!(
            errno(SetIrqs::validate(
                2,
                &MSIX,
                trig,
                0,
                1,
                IrqData::Eventfd(vec![None])
            )),
            Errno::INVAL
        );
        // Two actions, or none: ENOTTY from the dispatch.
        assert_eq!(
            errno(SetIrqs::validate(
                5,
                &MSIX,
                DATA_NONE | ACTION_MASK | ACTION_UNMASK,
                0,
                1,
                IrqData::None
            )),
            Errno::NOTTY
        );
        assert_eq!(
            errno(SetIrqs::validate(5, &MSIX, DATA_NONE, 0, 1, IrqData::None)),
            Errno::NOTTY
        );
        // count 0 + DATA_NONE + TRIGGER disables the index, whatever start.
        let off =
            SetIrqs::validate(5, &MSIX, DATA_NONE | ACTION_TRIGGER, 0, 0, IrqData::None).unwrap();
        assert_eq!(off.count, 0);
    }

    #[test]
    fn eventfd_counts_signals() {
        let fd = EventFd::new().unwrap();
        assert_eq!(fd.take(), 0);
        fd.signal();
        fd.try_clone().unwrap().signal();
        assert_eq!(fd.take(), 2);
        assert_eq!(fd.take(), 0);
    }
}
