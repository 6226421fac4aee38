//! IOMMU_VFIO_IOAS (vfio_compat.c `iommufd_vfio_ioas`): which IOAS the
//! VFIO type1 compatibility container uses.

use rustix::io::Errno;
use umdev_iommufd::VfioIoasOp;

use crate::ioctl::{Ucmd, errno};
use crate::uapi::{IOMMU_VFIO_IOAS_CLEAR, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET, IommuVfioIoas};

/// IOMMU_VFIO_IOAS: EOPNOTSUPP for a non-zero `__reserved` or an unknown
/// op; GET writes the id back (ENODEV when there is none), SET needs an
/// IOAS (ENOENT).
pub fn vfio_ioas(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuVfioIoas = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let op = match c.op {
        IOMMU_VFIO_IOAS_GET => VfioIoasOp::Get,
        IOMMU_VFIO_IOAS_SET => VfioIoasOp::Set(c.ioas_id),
        IOMMU_VFIO_IOAS_CLEAR => VfioIoasOp::Clear,
        _ => return Err(Errno::OPNOTSUPP),
    };
    let id = ucmd.file.ictx.vfio_ioas(op).map_err(errno)?;
    if op == VfioIoasOp::Get {
        c.ioas_id = id;
        ucmd.respond(&c)?;
    }
    Ok(0)
}
