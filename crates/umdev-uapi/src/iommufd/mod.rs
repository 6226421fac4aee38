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
    // A close(2) of a served file (a fault fd, an access fd) returns in
    // the client before the daemon's end sees the hang-up and releases
    // it; the kernel's last fput releases before close returns. So an
    // object a just-closed file still holds is waited for, briefly, as
    // `iommufd_object_remove` waits for short-term users.
    for _ in 0..RELEASE_WAIT_TRIES {
        match file.ictx.destroy(c.id) {
            Err(e) if e.errno() == Errno::BUSY => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            r => return r.map(|()| 0).map_err(errno),
        }
    }
    file.ictx.destroy(c.id).map(|()| 0).map_err(errno)
}

/// How many 1 ms waits DESTROY gives a closing file's release.
const RELEASE_WAIT_TRIES: u32 = 50;
