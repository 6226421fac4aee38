//! What a VFIO consumer does in the device tests: 4-byte region accesses
//! and an MSI-X eventfd set with SET_IRQS.

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
