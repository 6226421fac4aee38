//! The VFIO device abstraction (include/linux/vfio.h `struct
//! vfio_device_ops`, include/uapi/linux/vfio.h): what every face (the
//! vfio-user server, tests) sees of a device, whether it is a physical
//! function bound to vfio-pci, an emulated mdev or an IOMMU-backed mdev.

mod eventfd;
mod types;

use std::sync::Arc;

use umdev_iommufd::access::Access;

pub use eventfd::EventFd;
pub use types::*;

/// What a consumer's session gives the device when it opens
/// (`vfio_device_ops.open_device`).
#[derive(Clone, Default)]
pub struct OpenContext {
    /// For a device with vendor-defined isolation: the iommufd access
    /// through which it reaches the consumer's memory (pin / rw). `None`
    /// for devices translated by the IOMMU.
    pub access: Option<Arc<Access>>,
}

/// A VFIO device's operations. Regions and IRQ indexes follow the vfio-pci
/// layout (`VFIO_PCI_*_REGION_INDEX`, `VFIO_PCI_*_IRQ_INDEX`) for PCI
/// devices.
pub trait VfioDeviceOps: Send + Sync {
    /// VFIO_DEVICE_GET_INFO.
    fn info(&self) -> DeviceInfo;

    /// VFIO_DEVICE_GET_REGION_INFO: EINVAL for an index past
    /// `num_regions`.
    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError>;

    /// A read of a region (the vfio fd's `read` at the region's offset):
    /// returns the bytes read; EINVAL past the region.
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, VfioError>;

    /// A write of a region; returns the bytes written.
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<usize, VfioError>;

    /// The memory behind an mmap-able (sparse) area of a region, and the
    /// offset of `offset` inside it. EINVAL where the region has none.
    fn region_mmap(&self, index: u32, offset: u64) -> Result<MmapTarget, VfioError> {
        let _ = (index, offset);
        Err(VfioError::NotMappable { index })
    }

    /// VFIO_DEVICE_GET_IRQ_INFO: EINVAL for an index past `num_irqs`.
    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError>;

    /// VFIO_DEVICE_SET_IRQS, already validated against `irq_info` by
    /// [`SetIrqs::validate`].
    fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError>;

    /// VFIO_DEVICE_RESET: ENOTTY without `DeviceFlags::RESET`.
    fn reset(&self) -> Result<(), VfioError>;

    /// A consumer opened the device (first open of the fd).
    fn open_device(&self, ctx: &OpenContext) -> Result<(), VfioError> {
        let _ = ctx;
        Ok(())
    }

    /// The consumer closed it: every interrupt trigger is dropped and the
    /// device is quiesced.
    fn close_device(&self) {}

    /// Whether the device pins pages through its iommufd access (Linux:
    /// the driver has a `dma_unmap` op, so `needs_pin_pages`).
    fn pins_pages(&self) -> bool {
        false
    }

    /// User space is unmapping `[iova, iova + length)` from the IOAS the
    /// device's access is attached to: drop every pin in the range before
    /// returning (`vfio_device_ops.dma_unmap`). Emulated devices only.
    fn dma_unmap(&self, iova: u64, length: u64) {
        let _ = (iova, length);
    }
}
