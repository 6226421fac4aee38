//! The iommufd ioctls, one module per object as drivers/iommu/iommufd
//! has them: decode the struct, check `__reserved` and flags as the
//! kernel does, call the context, write the outputs back.
//!
//! - [`ioas`]: IOAS_ALLOC / ALLOW_IOVAS / COPY / IOVA_RANGES / MAP /
//!   UNMAP (ioas.c); [`option`]: IOMMU_OPTION (main.c, ioas.c);
//! - [`vfio_compat`]: IOMMU_VFIO_IOAS (vfio_compat.c);
//! - [`hwpt`]: HWPT_ALLOC / SET_DIRTY_TRACKING / GET_DIRTY_BITMAP /
//!   INVALIDATE (hw_pagetable.c);
//! - [`device`]: GET_HW_INFO (device.c); [`fault`]: FAULT_QUEUE_ALLOC and
//!   the fault fd (fault.c).

pub mod device;
pub mod fault;
pub mod hwpt;
pub mod ioas;
pub mod option;
pub mod vfio_compat;

use rustix::io::Errno;

use crate::ioctl::{Ucmd, errno};
use crate::uapi::IommuDestroy;

/// IOMMU_DESTROY (main.c `iommufd_destroy`); a mock device's id destroys
/// the mock device (`iommufd_selftest_destroy`).
pub fn destroy(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let c: IommuDestroy = ucmd.get();
    let file = ucmd.file;
    if let Some(st) = &file.selftest
        && st.destroy(&file.ictx, c.id)
    {
        return Ok(0);
    }
    file.ictx.destroy(c.id).map_err(errno)?;
    Ok(0)
}
