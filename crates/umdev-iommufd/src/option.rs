//! IOMMU_OPTION (ioas.c `iommufd_option`): the global accounting mode and
//! the per-IOAS huge-page switch. `set: Some(v)` is IOMMU_OPTION_OP_SET,
//! `None` is IOMMU_OPTION_OP_GET; both return `val64` after the call.

use rustix::io::Errno;

use crate::error::{IommufdError, Result};
use crate::io_pagetable::AccountMode;
use crate::private::Ictx;

impl Ictx {
    /// IOMMU_OPTION_RLIMIT_MODE (`iommufd_option_rlimit_mode`): 0 accounts
    /// pins to the user (the default), 1 to the process (mm), as VFIO
    /// does. Global: `object_id` must be 0 (EOPNOTSUPP); SET only while
    /// the context has no objects (EBUSY) and only 0 or 1 (EINVAL). The
    /// CAP_SYS_RESOURCE check (EPERM) belongs to the caller's privilege
    /// model; this layer has none.
    pub fn option_rlimit_mode(&self, object_id: u32, set: Option<u64>) -> Result<u64> {
        if object_id != 0 {
            return Err(IommufdError::Unsupported {
                what: "object_id for a global option",
            });
        }
        if let Some(val) = set {
            let table = self.table.lock();
            if !table.is_empty() {
                return Err(IommufdError::Errno {
                    what: "accounting mode with objects present",
                    errno: Errno::BUSY,
                });
            }
            let mode = match val {
                0 => AccountMode::User,
                1 => AccountMode::Mm,
                _ => {
                    return Err(IommufdError::Invalid {
                        what: "rlimit mode value",
                    });
                }
            };
            self.account.set_mode(mode);
        }
        Ok(u64::from(self.account.mode() == AccountMode::Mm))
    }

    /// IOMMU_OPTION_HUGE_PAGES (`iommufd_ioas_option_huge_pages`) on IOAS
    /// `ioas_id` (ENOENT otherwise, so 0 is ENOENT): SET 1 enables large
    /// IOMMU pages, SET 0 forces PAGE_SIZE pages and alignment (EINVAL
    /// while the IOAS has both domains and areas, EADDRINUSE if the areas
    /// are misaligned for it); other values EINVAL.
    pub fn option_huge_pages(&self, ioas_id: u32, set: Option<u64>) -> Result<u64> {
        let ioas = self.get_ioas(ioas_id)?;
        let mut iopt = ioas.iopt.lock();
        match set {
            None => {}
            Some(v @ (0 | 1)) => iopt
                .set_huge_pages(v == 1)
                .map_err(IommufdError::iopt("huge pages"))?,
            Some(_) => {
                return Err(IommufdError::Invalid {
                    what: "huge pages value",
                });
            }
        }
        Ok(u64::from(iopt.huge_pages()))
    }
}
