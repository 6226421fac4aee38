//! IOMMU_GET_HW_INFO (device.c `iommufd_get_hw_info`): the IOMMU's
//! description of a bound device, as the driver reports it (VT-d:
//! struct iommu_hw_info_vtd), plus its PASID width and capabilities.
//!
//! The driver's struct is copied into the caller's buffer (`data_uptr` /
//! `data_len`): `min(buffer, struct)` bytes, the rest of the buffer
//! zeroed, and `data_len` becomes the struct's size, which may exceed the
//! buffer (user space learns the kernel's size).

use umdev_iommu::iommu::ops::HwInfo;

use crate::error::{IommufdError, Result};
use crate::private::Ictx;

/// IOMMU_HW_INFO_TYPE_NONE: no driver data.
pub const IOMMU_HW_INFO_TYPE_NONE: u32 = 0;
/// IOMMU_HW_INFO_TYPE_DEFAULT: whatever the driver reports (same value as
/// NONE, used as the requested type).
pub const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
/// IOMMU_HW_INFO_TYPE_INTEL_VTD.
pub const IOMMU_HW_INFO_TYPE_INTEL_VTD: u32 = 1;

bitflags::bitflags! {
    /// enum iommufd_hw_info_flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HwInfoFlags: u32 {
        /// IOMMU_HW_INFO_FLAG_INPUT_TYPE: `in_data_type` is meaningful.
        const INPUT_TYPE = 1 << 0;
    }
}

bitflags::bitflags! {
    /// enum iommufd_hw_capabilities.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HwCapabilities: u64 {
        /// IOMMU_HW_CAP_DIRTY_TRACKING.
        const DIRTY_TRACKING = 1 << 0;
        /// IOMMU_HW_CAP_PCI_PASID_EXEC.
        const PCI_PASID_EXEC = 1 << 1;
        /// IOMMU_HW_CAP_PCI_PASID_PRIV.
        const PCI_PASID_PRIV = 1 << 2;
    }
}

/// struct iommu_hw_info_vtd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwInfoVtd {
    /// IOMMU_HW_INFO_VTD_ERRATA_* bits.
    pub flags: u32,
    /// CAP_REG.
    pub cap_reg: u64,
    /// ECAP_REG.
    pub ecap_reg: u64,
}

impl HwInfoVtd {
    /// sizeof(struct iommu_hw_info_vtd).
    pub const SIZE: usize = 24;

    /// The uAPI layout: flags, __reserved, cap_reg, ecap_reg, little-endian.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[0..4].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.cap_reg.to_le_bytes());
        out[16..24].copy_from_slice(&self.ecap_reg.to_le_bytes());
        out
    }
}

/// What IOMMU_GET_HW_INFO writes back (struct iommu_hw_info outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IommuHwInfo {
    /// `out_data_type`: INTEL_VTD, or NONE when the driver reports nothing.
    pub out_data_type: u32,
    /// `data_len` out: the size of the driver's struct.
    pub data_len: u32,
    /// The driver's struct, typed.
    pub vtd: Option<HwInfoVtd>,
    /// `out_max_pasid_log2`: ilog2 of the device's PASIDs, 0 without.
    pub out_max_pasid_log2: u8,
    /// `out_capabilities`.
    pub out_capabilities: HwCapabilities,
}

impl Ictx {
    /// IOMMU_GET_HW_INFO for bound device `dev_id`, copying the driver's
    /// struct into `data` (the user buffer, any length, 0 included).
    /// Without INPUT_TYPE the requested type is DEFAULT; the VT-d driver
    /// takes DEFAULT or INTEL_VTD, anything else is EOPNOTSUPP. Unknown
    /// flags: EOPNOTSUPP; a bad `dev_id`: ENOENT. The PCI PASID EXEC/PRIV
    /// capabilities are not reported (the platform has no PASID control
    /// register state for them).
    pub fn get_hw_info(
        &self,
        dev_id: u32,
        flags: HwInfoFlags,
        in_data_type: u32,
        data: &mut [u8],
    ) -> Result<IommuHwInfo> {
        if !HwInfoFlags::all().contains(flags) {
            return Err(IommufdError::Unsupported {
                what: "hw info flags",
            });
        }
        let requested = if flags.contains(HwInfoFlags::INPUT_TYPE) {
            in_data_type
        } else {
            IOMMU_HW_INFO_TYPE_DEFAULT
        };
        let dev = self.get_device(dev_id)?;
        let vtd = match self.iommu.ops().hw_info(dev.bdf()) {
            Some(HwInfo {
                cap_reg, ecap_reg, ..
            }) => {
                // intel_iommu_hw_info: only its own type or DEFAULT.
                if requested != IOMMU_HW_INFO_TYPE_DEFAULT
                    && requested != IOMMU_HW_INFO_TYPE_INTEL_VTD
                {
                    return Err(IommufdError::Unsupported {
                        what: "hw info data type",
                    });
                }
                Some(HwInfoVtd {
                    flags: 0,
                    cap_reg,
                    ecap_reg,
                })
            }
            None => None,
        };
        let bytes = vtd.map(|v| v.to_bytes());
        let src: &[u8] = bytes.as_ref().map_or(&[], |b| b.as_slice());
        let copy = src.len().min(data.len());
        data[..copy].copy_from_slice(&src[..copy]);
        data[copy..].fill(0);
        let caps = self.iommu.device_caps(dev.bdf());
        let mut out_capabilities = HwCapabilities::empty();
        if caps.is_some_and(|c| c.dirty_tracking) {
            out_capabilities |= HwCapabilities::DIRTY_TRACKING;
        }
        let out_max_pasid_log2 = caps
            .map(|c| c.max_pasids)
            .filter(|&n| n > 0)
            .map_or(0, |n| n.ilog2() as u8);
        Ok(IommuHwInfo {
            out_data_type: if vtd.is_some() {
                IOMMU_HW_INFO_TYPE_INTEL_VTD
            } else {
                IOMMU_HW_INFO_TYPE_NONE
            },
            data_len: src.len() as u32,
            vtd,
            out_max_pasid_log2,
            out_capabilities,
        })
    }
}
