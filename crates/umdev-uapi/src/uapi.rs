//! include/uapi/linux/iommufd.h: the ioctl numbers and argument structs,
//! byte for byte (`repr(C)`, `__aligned_u64` is `u64`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// IOMMUFD_TYPE (`';'`).
pub const IOMMUFD_TYPE: u32 = b';' as u32;
/// IOMMUFD_CMD_BASE.
pub const IOMMUFD_CMD_BASE: u32 = 0x80;

/// `_IO(IOMMUFD_TYPE, nr)`.
pub const fn iommufd_io(nr: u32) -> u32 {
    (IOMMUFD_TYPE << 8) | nr
}

/// `_IOC_NR(cmd)`.
pub const fn ioc_nr(cmd: u32) -> u32 {
    cmd & 0xff
}

/// `_IOC_TYPE(cmd)`.
pub const fn ioc_type(cmd: u32) -> u32 {
    (cmd >> 8) & 0xff
}

macro_rules! uapi_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
        #[repr(C)]
        #[allow(missing_docs)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
    };
}

uapi_struct!(
    /// struct iommu_destroy.
    IommuDestroy { size: u32, id: u32 }
);
uapi_struct!(
    /// struct iommu_ioas_alloc.
    IommuIoasAlloc { size: u32, flags: u32, out_ioas_id: u32 }
);
uapi_struct!(
    /// struct iommu_iova_range.
    IommuIovaRange { start: u64, last: u64 }
);
uapi_struct!(
    /// struct iommu_ioas_iova_ranges.
    IommuIoasIovaRanges {
        size: u32, ioas_id: u32, num_iovas: u32, reserved: u32,
        allowed_iovas: u64, out_iova_alignment: u64,
    }
);
uapi_struct!(
    /// struct iommu_ioas_allow_iovas.
    IommuIoasAllowIovas { size: u32, ioas_id: u32, num_iovas: u32, reserved: u32, allowed_iovas: u64 }
);
uapi_struct!(
    /// struct iommu_ioas_map.
    IommuIoasMap {
        size: u32, flags: u32, ioas_id: u32, reserved: u32,
        user_va: u64, length: u64, iova: u64,
    }
);
uapi_struct!(
    /// struct iommu_ioas_copy.
    IommuIoasCopy {
        size: u32, flags: u32, dst_ioas_id: u32, src_ioas_id: u32,
        length: u64, dst_iova: u64, src_iova: u64,
    }
);
uapi_struct!(
    /// struct iommu_ioas_unmap.
    IommuIoasUnmap { size: u32, ioas_id: u32, iova: u64, length: u64 }
);
uapi_struct!(
    /// struct iommu_option.
    IommuOption { size: u32, option_id: u32, op: u16, reserved: u16, object_id: u32, val64: u64 }
);
uapi_struct!(
    /// struct iommu_vfio_ioas.
    IommuVfioIoas { size: u32, ioas_id: u32, op: u16, reserved: u16 }
);
uapi_struct!(
    /// struct iommu_hwpt_alloc.
    IommuHwptAlloc {
        size: u32, flags: u32, dev_id: u32, pt_id: u32, out_hwpt_id: u32, reserved: u32,
        data_type: u32, data_len: u32, data_uptr: u64, fault_id: u32, reserved2: u32,
    }
);
uapi_struct!(
    /// struct iommu_hw_info.
    IommuHwInfo {
        size: u32, flags: u32, dev_id: u32, data_len: u32, data_uptr: u64,
        /// `out_data_type`, or (later kernels, `IOMMU_HW_INFO_FLAG_INPUT_TYPE`)
        /// `in_data_type` in the same word.
        out_data_type: u32, out_max_pasid_log2: u8, reserved: [u8; 3], out_capabilities: u64,
    }
);
uapi_struct!(
    /// struct iommu_hwpt_set_dirty_tracking.
    IommuHwptSetDirtyTracking { size: u32, flags: u32, hwpt_id: u32, reserved: u32 }
);
uapi_struct!(
    /// struct iommu_hwpt_get_dirty_bitmap.
    IommuHwptGetDirtyBitmap {
        size: u32, hwpt_id: u32, flags: u32, reserved: u32,
        iova: u64, length: u64, page_size: u64, data: u64,
    }
);
uapi_struct!(
    /// struct iommu_hwpt_invalidate.
    IommuHwptInvalidate {
        size: u32, hwpt_id: u32, data_uptr: u64, data_type: u32, entry_len: u32,
        entry_num: u32, reserved: u32,
    }
);
uapi_struct!(
    /// struct iommu_fault_alloc.
    IommuFaultAlloc { size: u32, flags: u32, out_fault_id: u32, out_fault_fd: u32 }
);
uapi_struct!(
    /// struct iommu_hwpt_pgfault (what a fault fd's read returns).
    IommuHwptPgfault {
        flags: u32, dev_id: u32, pasid: u32, grpid: u32, perm: u32, reserved: u32,
        addr: u64, length: u32, cookie: u32,
    }
);
uapi_struct!(
    /// struct iommu_hwpt_page_response (what a fault fd's write takes).
    IommuHwptPageResponse { cookie: u32, code: u32 }
);

/// IOMMU_OPTION_RLIMIT_MODE.
pub const IOMMU_OPTION_RLIMIT_MODE: u32 = 0;
/// IOMMU_OPTION_HUGE_PAGES.
pub const IOMMU_OPTION_HUGE_PAGES: u32 = 1;
/// IOMMU_OPTION_OP_SET.
pub const IOMMU_OPTION_OP_SET: u16 = 0;
/// IOMMU_OPTION_OP_GET.
pub const IOMMU_OPTION_OP_GET: u16 = 1;
/// IOMMU_VFIO_IOAS_GET.
pub const IOMMU_VFIO_IOAS_GET: u16 = 0;
/// IOMMU_VFIO_IOAS_SET.
pub const IOMMU_VFIO_IOAS_SET: u16 = 1;
/// IOMMU_VFIO_IOAS_CLEAR.
pub const IOMMU_VFIO_IOAS_CLEAR: u16 = 2;
/// IOMMU_HWPT_DATA_NONE.
pub const IOMMU_HWPT_DATA_NONE: u32 = 0;
/// IOMMUFD_PAGE_RESP_SUCCESS.
pub const IOMMUFD_PAGE_RESP_SUCCESS: u32 = 0;
/// IOMMUFD_PAGE_RESP_INVALID.
pub const IOMMUFD_PAGE_RESP_INVALID: u32 = 1;
