//! VFIO fixtures: a consumer's IOAS with a mapped window, and what a VFIO
//! consumer does to a device: 4-byte region accesses and an MSI-X eventfd
//! set with SET_IRQS.

use std::sync::Arc;

use umdev_iommu::memory::MemoryObject;
use umdev_iommu::system::System;
use umdev_iommufd::{Ictx, MapFlags};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{EventFd, IrqData, SetIrqs, VfioDeviceOps, irq};

/// Writes a dword of region `index` at `at`.
pub fn w32(ops: &dyn VfioDeviceOps, index: u32, at: u64, v: u32) {
    assert_eq!(ops.region_write(index, at, &v.to_le_bytes()).unwrap(), 4);
}

/// Reads a dword of region `index` at `at`.
pub fn r32(ops: &dyn VfioDeviceOps, index: u32, at: u64) -> u32 {
    let mut b = [0; 4];
    assert_eq!(ops.region_read(index, at, &mut b).unwrap(), 4);
    u32::from_le_bytes(b)
}

/// Enables MSI-X with one eventfd on vector 0 and returns it.
pub fn msix_eventfd(ops: &dyn VfioDeviceOps) -> EventFd {
    let fd = EventFd::new().unwrap();
    let data = IrqData::Eventfd(vec![Some(fd.try_clone().unwrap())]);
    let info = ops.irq_info(irq::MSIX).unwrap();
    let flags = DATA_EVENTFD | ACTION_TRIGGER;
    let req = SetIrqs::validate(ops.info().num_irqs, &info, flags, 0, 1, data).unwrap();
    ops.set_irqs(req).unwrap();
    fd
}

/// Where [`Rig`] maps its window.
pub const IOVA: u64 = 0x10_0000;
/// The size of [`Rig`]'s window.
pub const WINDOW: u64 = 64 << 10;

/// A consumer's iommufd context on the default platform with an IOAS and
/// `WINDOW` bytes of fresh memory mapped at `IOVA` in it.
pub struct Rig {
    /// The platform.
    pub sys: System,
    /// The consumer's iommufd context.
    pub ictx: Arc<Ictx>,
    /// The IOAS.
    pub ioas: u32,
    /// The memory behind the window.
    pub mem: Arc<MemoryObject>,
}

crate::default_is_new!(Rig);

impl Rig {
    /// The default platform, the IOAS and its window.
    pub fn new() -> Self {
        let sys = System::default_platform().unwrap();
        let ictx = Ictx::new(sys.iommu.clone());
        let ioas = ictx.ioas_alloc().unwrap();
        let mem = sys.vtd.memory().alloc_anonymous(WINDOW).unwrap();
        let flags = MapFlags::READABLE | MapFlags::WRITEABLE | MapFlags::FIXED_IOVA;
        ictx.ioas_map(ioas, flags, &mem, 0, WINDOW, IOVA).unwrap();
        Rig {
            sys,
            ictx,
            ioas,
            mem,
        }
    }
}
