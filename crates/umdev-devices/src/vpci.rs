//! What every emulated PCI device exposed through VFIO reports the way
//! vfio-pci does (drivers/vfio/pci/vfio_pci_core.c): device info, region
//! info from a region's size, and IRQ info from the vectors per index.
//! Shared by the mtty and sdma mdevs.

use umdev_vfio::device::{
    DeviceFlags, DeviceInfo, IrqInfo, IrqInfoFlags, RegionFlags, RegionInfo, VfioError, irq, region,
};

/// VFIO_DEVICE_GET_INFO of a PCI device with reset: every vfio-pci region
/// and IRQ index.
pub(crate) fn device_info() -> DeviceInfo {
    DeviceInfo {
        flags: DeviceFlags::PCI | DeviceFlags::RESET,
        num_regions: region::NUM,
        num_irqs: irq::NUM,
    }
}

/// VFIO_DEVICE_GET_REGION_INFO of region `index` whose size is `size`
/// (0: absent, no READ/WRITE flags, as vfio-pci reports a missing BAR).
/// EINVAL past `VFIO_PCI_NUM_REGIONS`.
pub(crate) fn region_info(index: u32, size: u64) -> Result<RegionInfo, VfioError> {
    if index >= region::NUM {
        return Err(VfioError::NoRegion { index });
    }
    let flags = if size == 0 {
        RegionFlags::empty()
    } else {
        RegionFlags::READ | RegionFlags::WRITE
    };
    Ok(RegionInfo {
        index,
        flags,
        size,
        sparse_mmap: Vec::new(),
    })
}

/// VFIO_DEVICE_GET_IRQ_INFO with `counts[index]` vectors
/// (`vfio_pci_ioctl_get_irq_info`): EVENTFD always; INTx MASKABLE and
/// AUTOMASKED; every other index NORESIZE (no dynamic MSI-X). EINVAL past
/// `VFIO_PCI_NUM_IRQS`.
pub(crate) fn irq_info(
    counts: &[u32; irq::NUM as usize],
    index: u32,
) -> Result<IrqInfo, VfioError> {
    let count = *counts
        .get(index as usize)
        .ok_or(VfioError::NoIrq { index })?;
    let flags = IrqInfoFlags::EVENTFD
        | if index == irq::INTX {
            IrqInfoFlags::MASKABLE | IrqInfoFlags::AUTOMASKED
        } else {
            IrqInfoFlags::NORESIZE
        };
    Ok(IrqInfo {
        index,
        flags,
        count,
    })
}
