//! IOMMU_OPTION (main.c `iommufd_option`, ioas.c
//! `iommufd_option_rlimit_mode` / `iommufd_ioas_option`): GET or SET of
//! one option; `val64` is written back either way.

use rustix::io::Errno;

use crate::ioctl::{Ucmd, errno};
use crate::uapi::{
    IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE,
    IommuOption,
};

/// IOMMU_OPTION: EOPNOTSUPP for a non-zero `__reserved`, an unknown
/// option or op; RLIMIT_MODE is global (`object_id` 0), HUGE_PAGES names
/// an IOAS (ENOENT before the op is looked at, as `iommufd_ioas_option`).
pub fn option(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let c: IommuOption = ucmd.get();
    if c.reserved != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let ictx = &ucmd.file.ictx;
    let set = match c.op {
        IOMMU_OPTION_OP_SET => Ok(Some(c.val64)),
        IOMMU_OPTION_OP_GET => Ok(None),
        _ => Err(Errno::OPNOTSUPP),
    };
    let val64 = match c.option_id {
        IOMMU_OPTION_RLIMIT_MODE => ictx.option_rlimit_mode(c.object_id, set?),
        IOMMU_OPTION_HUGE_PAGES => {
            ictx.ioas(c.object_id).map_err(errno)?;
            ictx.option_huge_pages(c.object_id, set?)
        }
        _ => return Err(Errno::OPNOTSUPP),
    }
    .map_err(errno)?;
    // Only val64 goes back (`copy_to_user(&ubuffer->val64, ...)`).
    ucmd.peer
        .write(ucmd.ubuffer + 16, &val64.to_le_bytes())
        .map_err(|_| Errno::FAULT)?;
    Ok(0)
}
