//! IOMMU_HWPT_ALLOC (hw_pagetable.c `iommufd_hwpt_alloc`): a paging HWPT
//! on an IOAS or a nested HWPT on a nest-parent paging HWPT, optionally
//! delivering its I/O page faults to a FAULT queue.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::{PagingFlags, VtdS1Config};

use crate::error::{IommufdError, Result};
use crate::private::{Device, Fault, HwptNested, HwptPaging, Ictx, Ioas, Object};

bitflags::bitflags! {
    /// enum iommufd_hwpt_alloc_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HwptAllocFlags: u32 {
        /// IOMMU_HWPT_ALLOC_NEST_PARENT.
        const NEST_PARENT = 1 << 0;
        /// IOMMU_HWPT_ALLOC_DIRTY_TRACKING.
        const DIRTY_TRACKING = 1 << 1;
        /// IOMMU_HWPT_FAULT_ID_VALID.
        const FAULT_ID_VALID = 1 << 2;
        /// IOMMU_HWPT_ALLOC_PASID.
        const PASID = 1 << 3;
    }
}

/// User data of IOMMU_HWPT_ALLOC (`data_type` + the struct it names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwptData {
    /// IOMMU_HWPT_DATA_NONE (`data_len` 0).
    None,
    /// IOMMU_HWPT_DATA_VTD_S1.
    VtdS1(VtdS1Config),
    /// Any other `data_type` value: EOPNOTSUPP.
    Unknown(u32),
}

/// Flags a nested HWPT takes (`iommufd_hwpt_nested_alloc`).
const NESTED_FLAGS: HwptAllocFlags = HwptAllocFlags::FAULT_ID_VALID.union(HwptAllocFlags::PASID);

impl Ictx {
    /// IOMMU_HWPT_ALLOC without a fault queue; see
    /// [`Ictx::hwpt_alloc_fault`].
    pub fn hwpt_alloc(
        &self,
        dev_id: u32,
        pt_id: u32,
        flags: HwptAllocFlags,
        data: HwptData,
    ) -> Result<u32> {
        self.hwpt_alloc_fault(dev_id, pt_id, flags, data, 0)
    }

    /// IOMMU_HWPT_ALLOC: a paging HWPT on an IOAS, or a nested HWPT on a
    /// paging parent; with FAULT_ID_VALID its I/O page faults go to the
    /// FAULT object `fault_id`. Errnos in hw_pagetable.c's order: ENOENT
    /// bad device; EINVAL for a `pt_id` that is missing or of another kind;
    /// then per kind (paging: EOPNOTSUPP for unknown flags, DIRTY_TRACKING
    /// on a device without it, FAULT_ID_VALID with NEST_PARENT, or user
    /// data; nested: EOPNOTSUPP for flags other than FAULT_ID_VALID|PASID
    /// or no data, EINVAL for a parent that is not a manual NEST_PARENT,
    /// EOPNOTSUPP for an unknown data type, then the driver's); last
    /// ENOENT for a `fault_id` that is not a FAULT.
    pub fn hwpt_alloc_fault(
        &self,
        dev_id: u32,
        pt_id: u32,
        flags: HwptAllocFlags,
        data: HwptData,
        fault_id: u32,
    ) -> Result<u32> {
        let dev = self.get_device(dev_id)?;
        let pt = self
            .table
            .lock()
            .get(pt_id)
            .map_err(|_| IommufdError::WrongType {
                id: pt_id,
                wanted: "an IOAS or paging HWPT",
                errno: Errno::INVAL,
            })?;
        // The queue is looked up only after the HWPT is allocated, so its
        // ENOENT comes last; the HWPT is then destroyed again.
        let fault = flags
            .contains(HwptAllocFlags::FAULT_ID_VALID)
            .then(|| self.get_fault(fault_id));
        let queue = fault.as_ref().and_then(|f| f.as_ref().ok());
        let obj = match pt {
            Object::Ioas(ioas) => {
                Object::HwptPaging(self.alloc_paging(&dev, &ioas, flags, data, queue)?)
            }
            Object::HwptPaging(parent) => {
                Object::HwptNested(self.alloc_nested(&dev, &parent, flags, data, queue)?)
            }
            _ => {
                return Err(IommufdError::WrongType {
                    id: pt_id,
                    wanted: "an IOAS or paging HWPT",
                    errno: Errno::INVAL,
                });
            }
        };
        if let Some(Err(e)) = fault {
            Self::teardown(obj);
            return Err(e);
        }
        let inserted = self.table.lock().insert(obj.clone());
        inserted.inspect_err(|_| Self::teardown(obj))
    }

    /// `iommufd_hwpt_paging_alloc` for HWPT_ALLOC (not automatic).
    fn alloc_paging(
        &self,
        dev: &Device,
        ioas: &Arc<Ioas>,
        flags: HwptAllocFlags,
        data: HwptData,
        fault: Option<&Arc<Fault>>,
    ) -> Result<Arc<HwptPaging>> {
        if !HwptAllocFlags::all().contains(flags) {
            return Err(IommufdError::Unsupported {
                what: "HWPT alloc flags",
            });
        }
        let dirty_capable = self
            .iommu
            .device_caps(dev.bdf())
            .is_some_and(|c| c.dirty_tracking);
        if flags.contains(HwptAllocFlags::DIRTY_TRACKING) && !dirty_capable {
            return Err(IommufdError::Unsupported {
                what: "dirty tracking on this device",
            });
        }
        if flags.contains(HwptAllocFlags::FAULT_ID_VALID | HwptAllocFlags::NEST_PARENT) {
            return Err(IommufdError::Unsupported {
                what: "I/O page faults on a nest parent",
            });
        }
        if data != HwptData::None {
            return Err(IommufdError::Unsupported {
                what: "user data for a paging HWPT",
            });
        }
        let pflags = PagingFlags {
            nest_parent: flags.contains(HwptAllocFlags::NEST_PARENT),
            dirty_tracking: flags.contains(HwptAllocFlags::DIRTY_TRACKING),
            pasid: flags.contains(HwptAllocFlags::PASID),
        };
        HwptPaging::alloc_iopf(&self.iommu, dev.bdf(), ioas, pflags, false, fault)
    }

    /// `iommufd_hwpt_nested_alloc`.
    fn alloc_nested(
        &self,
        dev: &Device,
        parent: &Arc<HwptPaging>,
        flags: HwptAllocFlags,
        data: HwptData,
        fault: Option<&Arc<Fault>>,
    ) -> Result<Arc<HwptNested>> {
        if !NESTED_FLAGS.contains(flags) {
            return Err(IommufdError::Unsupported {
                what: "flags for a nested HWPT",
            });
        }
        if data == HwptData::None {
            return Err(IommufdError::Unsupported {
                what: "a nested HWPT without user data",
            });
        }
        if parent.auto_domain() || !parent.nest_parent() {
            return Err(IommufdError::Invalid {
                what: "nested parent must be a manual NEST_PARENT HWPT",
            });
        }
        let HwptData::VtdS1(config) = data else {
            return Err(IommufdError::Unsupported { what: "data_type" });
        };
        HwptNested::alloc(
            &self.iommu,
            dev.bdf(),
            parent,
            config,
            flags.contains(HwptAllocFlags::PASID),
            fault,
        )
    }
}
