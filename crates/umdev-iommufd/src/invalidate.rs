//! IOMMU_HWPT_INVALIDATE (hw_pagetable.c `iommufd_hwpt_invalidate`): user
//! stage-1 cache invalidation on a nested HWPT, entry by entry through the
//! driver's `cache_invalidate_user`, reporting how many entries were
//! handled even on failure.

use rustix::io::Errno;
use umdev_iommu::iommu::ops::VtdS1Invalidate;

use crate::error::{IommufdError, Result};
use crate::private::{Ictx, Object};

/// IOMMU_HWPT_INVALIDATE_DATA_VTD_S1.
pub const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: u32 = 0;

/// The request array (`data_type` + entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwptInvalidateData<'a> {
    /// IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entries.
    VtdS1(&'a [VtdS1Invalidate]),
    /// Another `data_type`: the driver refuses it (EINVAL).
    Unknown(u32),
}

/// The result of IOMMU_HWPT_INVALIDATE: `entry_num` is always written
/// back, with the number of entries handled.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub struct HwptInvalidateResult {
    /// Entries handled, in order, before any failure.
    pub entry_num: u32,
    /// The ioctl's result.
    pub result: Result<()>,
}

impl Ictx {
    /// IOMMU_HWPT_INVALIDATE on `hwpt_id`: ENOENT for an unknown id,
    /// EINVAL for anything but a nested HWPT (a paging parent included),
    /// EOPNOTSUPP if the driver has no user cache invalidation, EINVAL for
    /// an unknown data type; then the driver's per-entry errors (VT-d:
    /// EOPNOTSUPP for unknown entry flags, EINVAL for a misaligned
    /// address). An empty array succeeds and probes the data type.
    pub fn hwpt_invalidate(
        &self,
        hwpt_id: u32,
        data: HwptInvalidateData<'_>,
    ) -> HwptInvalidateResult {
        let failed = |e| HwptInvalidateResult {
            entry_num: 0,
            result: Err(e),
        };
        let obj = match self.table.lock().get(hwpt_id) {
            Ok(obj) => obj,
            Err(e) => return failed(e),
        };
        let Object::HwptNested(nested) = obj else {
            return failed(IommufdError::WrongType {
                id: hwpt_id,
                wanted: "a nested HWPT or vIOMMU",
                errno: Errno::INVAL,
            });
        };
        let ops = nested.domain().ops();
        // An empty request tells a driver without the op apart.
        if let Err((_, errno)) = ops.cache_invalidate_user(&[]) {
            return failed(IommufdError::Errno {
                what: "cache_invalidate_user",
                errno,
            });
        }
        let HwptInvalidateData::VtdS1(entries) = data else {
            return failed(IommufdError::Invalid {
                what: "invalidation data type",
            });
        };
        match ops.cache_invalidate_user(entries) {
            Ok(()) => HwptInvalidateResult {
                entry_num: entries.len() as u32,
                result: Ok(()),
            },
            Err((done, errno)) => HwptInvalidateResult {
                entry_num: done as u32,
                result: Err(IommufdError::Errno {
                    what: "cache_invalidate_user",
                    errno,
                }),
            },
        }
    }
}
