//! DEVICE_FEATURE, of which DMA logging is implemented: the device is moved
//! to a dirty-tracking HWPT on the session's IOAS (iommufd
//! IOMMU_HWPT_ALLOC_DIRTY_TRACKING + SET_DIRTY_TRACKING), and reports and
//! dirty-bitmap unmaps read the IOMMU's dirty bits
//! (IOMMU_HWPT_GET_DIRTY_BITMAP). Only devices that are iommufd DEVICEs
//! (translated by the IOMMU) can log; emulated ones get ENOTTY. Tracking
//! covers the whole IOAS whatever ranges START names.

use umdev_iommufd::{
    DirtyRange, DirtyTrackingFlags, GetDirtyBitmapFlags, HwptAllocFlags, HwptData,
};
use umdev_vfio::registration::Isolation;
use zerocopy::{FromBytes, IntoBytes};

use super::Session;
use super::conn::Reply;
use super::error::CmdError;
use crate::proto::{Command, PAGE_SIZE, ProtoError, flags, wire};

/// Dirty tracking in progress.
#[derive(Debug)]
pub(super) struct DirtyLog {
    /// The dirty-tracking HWPT the device is attached to.
    hwpt: u32,
}

const GET_SET: u32 = flags::FEATURE_GET | flags::FEATURE_SET;

/// A malformed feature payload.
fn bad_length(len: usize, expected: usize) -> CmdError {
    ProtoError::BadLength {
        cmd: Command::DEVICE_FEATURE,
        len,
        expected,
    }
    .into()
}

impl Session {
    fn can_log(&self) -> bool {
        !matches!(self.device.isolation(), Isolation::Emulated)
    }

    /// DEVICE_FEATURE (vfio_ioctl_device_feature + vfio_check_feature):
    /// ENOTTY for a feature this device lacks; EINVAL for an operation the
    /// feature does not take; PROBE answers without acting. SET replies
    /// echo the request.
    pub(super) fn device_feature(
        &mut self,
        argsz: u32,
        fflags: u32,
        data: &[u8],
    ) -> Result<Reply, CmdError> {
        let feature = fflags & flags::FEATURE_MASK;
        let supported = match feature {
            flags::FEATURE_DMA_LOGGING_START | flags::FEATURE_DMA_LOGGING_STOP
                if self.can_log() =>
            {
                flags::FEATURE_SET
            }
            flags::FEATURE_DMA_LOGGING_REPORT if self.can_log() => flags::FEATURE_GET,
            _ => {
                return Err(CmdError::NotSupported {
                    what: "device feature",
                });
            }
        };
        if fflags & GET_SET & !supported != 0 {
            return Err(ProtoError::BadFlags {
                cmd: Command::DEVICE_FEATURE,
                flags: fflags,
            }
            .into());
        }
        let mut echo = wire::DeviceFeature {
            argsz,
            flags: fflags,
        }
        .as_bytes()
        .to_vec();
        if fflags & flags::FEATURE_PROBE != 0 {
            return Ok(Reply::data(echo));
        }
        match feature {
            flags::FEATURE_DMA_LOGGING_START => {
                let (ctl, rest) = wire::DmaLoggingControl::read_from_prefix(data)
                    .map_err(|_| bad_length(data.len(), size_of::<wire::DmaLoggingControl>()))?;
                let ranges = ctl.num_ranges as usize * size_of::<wire::DmaLoggingRange>();
                if rest.len() != ranges {
                    return Err(bad_length(data.len(), data.len() - rest.len() + ranges));
                }
                let page_size = ctl.page_size;
                if !page_size.is_power_of_two() || page_size < PAGE_SIZE {
                    return Err(ProtoError::BadRange {
                        cmd: Command::DEVICE_FEATURE,
                        addr: 0,
                        size: page_size,
                    }
                    .into());
                }
                self.start_logging()?;
            }
            flags::FEATURE_DMA_LOGGING_STOP => self.stop_logging(),
            _ => {
                let report = wire::DmaLoggingReport::read_from_bytes(data)
                    .map_err(|_| bad_length(data.len(), size_of::<wire::DmaLoggingReport>()))?;
                let room = u64::from(argsz).saturating_sub((echo.len() + data.len()) as u64);
                let bits = self.dirty_bitmap(report.iova, report.length, report.page_size, room)?;
                let needed = (echo.len() + data.len() + bits.len()) as u32;
                echo[..4].copy_from_slice(&needed.to_ne_bytes());
                echo.extend_from_slice(data);
                echo.extend(bits);
                return Ok(Reply::data(echo));
            }
        }
        echo.extend_from_slice(data);
        Ok(Reply::data(echo))
    }

    /// Moves the device onto a new dirty-tracking HWPT and enables
    /// tracking; reverts on failure. EBUSY if already logging.
    fn start_logging(&mut self) -> Result<(), CmdError> {
        if self.logging.is_some() {
            return Err(CmdError::LoggingActive);
        }
        let hwpt = self.ictx.hwpt_alloc(
            self.devid,
            self.ioas,
            HwptAllocFlags::DIRTY_TRACKING,
            HwptData::None,
        )?;
        let started = self
            .device
            .attach_ioas(hwpt)
            .map_err(|e| CmdError::Iommufd(registration_errno(e)))
            .and_then(|_| {
                Ok(self
                    .ictx
                    .hwpt_set_dirty_tracking(hwpt, DirtyTrackingFlags::ENABLE)?)
            });
        if let Err(e) = started {
            let _ = self.device.attach_ioas(self.ioas);
            let _ = self.ictx.destroy(hwpt);
            return Err(e);
        }
        self.logging = Some(DirtyLog { hwpt });
        Ok(())
    }

    /// Disables tracking and puts the device back on the IOAS (a no-op
    /// when not logging).
    pub(super) fn stop_logging(&mut self) {
        if let Some(log) = self.logging.take() {
            let _ = self
                .ictx
                .hwpt_set_dirty_tracking(log.hwpt, DirtyTrackingFlags::empty());
            let _ = self.device.attach_ioas(self.ioas);
            let _ = self.ictx.destroy(log.hwpt);
        }
    }

    /// The dirty bits of `[iova, iova + length)` at `page_size` granules,
    /// read and cleared, as bytes (u64 words, bit per page). EINVAL when
    /// not logging or when `max_bytes` is smaller than the bitmap; the
    /// range rules are iommufd's.
    pub(super) fn dirty_bitmap(
        &self,
        iova: u64,
        length: u64,
        page_size: u64,
        max_bytes: u64,
    ) -> Result<Vec<u8>, CmdError> {
        let log = self.logging.as_ref().ok_or(CmdError::NotLogging)?;
        let bad_range = || -> CmdError {
            ProtoError::BadRange {
                cmd: Command::DMA_UNMAP,
                addr: iova,
                size: length,
            }
            .into()
        };
        if !page_size.is_power_of_two() || page_size < PAGE_SIZE {
            return Err(bad_range());
        }
        // The bitmap goes back in one reply: bounded by what the client
        // has room for and by the transfer size.
        let words = (length / page_size).div_ceil(64);
        let limit = max_bytes.min(u64::from(self.limits.max_data_xfer_size));
        if words.saturating_mul(8) > limit {
            return Err(bad_range());
        }
        let range = DirtyRange {
            iova,
            length,
            page_size,
        };
        let bitmap =
            self.ictx
                .hwpt_get_dirty_bitmap(log.hwpt, GetDirtyBitmapFlags::empty(), range)?;
        Ok(bitmap.as_bytes().to_vec())
    }
}

/// The iommufd error inside a registration error (attach of a bound
/// device fails only in iommufd).
fn registration_errno(
    e: umdev_vfio::registration::RegistrationError,
) -> umdev_iommufd::IommufdError {
    match e {
        umdev_vfio::registration::RegistrationError::Iommufd(i) => i,
        other => umdev_iommufd::IommufdError::Errno {
            what: "attach",
            errno: other.errno(),
        },
    }
}
