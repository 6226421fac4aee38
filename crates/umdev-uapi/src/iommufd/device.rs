//! IOMMU_GET_HW_INFO (device.c `iommufd_get_hw_info`).

use rustix::io::Errno;
use umdev_iommufd::HwInfoFlags;
use umdev_iommufd::selftest::ops;

use crate::ioctl::{Ucmd, errno};
use crate::uapi::IommuHwInfo;

/// The driver data asked for at most (every driver's struct is far
/// smaller); the rest of a longer user buffer is cleared.
const HW_INFO_MAX: usize = 4096;

/// IOMMU_GET_HW_INFO: EOPNOTSUPP for unknown flags or a non-zero
/// `__reserved`, ENOENT for a bad device; the driver's struct goes to
/// `data_uptr` (`min(data_len, its size)` bytes, the rest of the buffer
/// zeroed) and `data_len` becomes its size. A mock device answers as the
/// selftest driver (`mock_domain_hw_info`).
pub fn get_hw_info(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuHwInfo = ucmd.get();
    if c.reserved != [0; 3] {
        return Err(Errno::OPNOTSUPP);
    }
    let flags = HwInfoFlags::from_bits_retain(c.flags);
    let file = ucmd.file;
    let mut data = vec![0u8; (c.data_len as usize).min(HW_INFO_MAX)];
    // `in_data_type` shares the word of `out_data_type`.
    let in_type = c.out_data_type;
    let is_mock = file
        .selftest
        .as_ref()
        .is_some_and(|st| st.mock_dev(c.dev_id).is_some());
    let info = if is_mock {
        ops::hw_info(&file.ictx, c.dev_id, flags, in_type, &mut data)
    } else {
        file.ictx.get_hw_info(c.dev_id, flags, in_type, &mut data)
    }
    .map_err(errno)?;
    let peer = ucmd.peer;
    peer.write(c.data_uptr, &data).map_err(|e| e.errno())?;
    let rest = u64::from(c.data_len) - data.len() as u64;
    peer.clear(c.data_uptr.wrapping_add(data.len() as u64), rest)
        .map_err(|e| e.errno())?;
    c.data_len = info.data_len;
    c.out_data_type = info.out_data_type;
    c.out_max_pasid_log2 = info.out_max_pasid_log2;
    c.out_capabilities = info.out_capabilities.bits();
    ucmd.respond(&c)?;
    Ok(0)
}
