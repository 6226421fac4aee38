//! IOMMU_FAULT_QUEUE_ALLOC and the fault fd (fault.c): `read` returns
//! whole `struct iommu_hwpt_pgfault` records, `write` takes
//! `struct iommu_hwpt_page_response`s.

use rustix::io::Errno;
use umdev_iommufd::{FaultFd, PageResponse, PageResponseCode};
use zerocopy::IntoBytes;

use crate::file::FileOps;
use crate::ioctl::{Ucmd, errno};
use crate::uapi::{
    IOMMUFD_PAGE_RESP_INVALID, IOMMUFD_PAGE_RESP_SUCCESS, IommuFaultAlloc, IommuHwptPageResponse,
    IommuHwptPgfault,
};
use crate::user::Peer;

/// sizeof(struct iommu_hwpt_pgfault).
const FAULT_SIZE: u64 = std::mem::size_of::<IommuHwptPgfault>() as u64;
/// sizeof(struct iommu_hwpt_page_response).
const RESPONSE_SIZE: u64 = std::mem::size_of::<IommuHwptPageResponse>() as u64;

/// IOMMU_FAULT_QUEUE_ALLOC (`iommufd_fault_alloc`): flags must be 0
/// (EOPNOTSUPP); the FAULT object's id is written back and its fd goes to
/// `out_fault_fd`.
pub fn fault_queue_alloc(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let mut c: IommuFaultAlloc = ucmd.get();
    if c.flags != 0 {
        return Err(Errno::OPNOTSUPP);
    }
    let fd = ucmd.file.ictx.fault_queue_alloc().map_err(errno)?;
    c.out_fault_id = fd.id();
    ucmd.respond(&c)?;
    let slot = ucmd.ubuffer + std::mem::offset_of!(IommuFaultAlloc, out_fault_fd) as u64;
    ucmd.return_file(Box::new(FaultFile { fd }), slot)?;
    Ok(0)
}

/// The fault fd (`iommufd_fault_fops`): holds the queue until released.
#[derive(Debug)]
pub struct FaultFile {
    fd: FaultFd,
}

/// The file offset a fault fd takes: none (ESPIPE for a `pread`, a
/// `pwrite`, or a count that is not whole records).
fn check_io(len: u64, offset: Option<u64>, record: u64) -> Result<(), Errno> {
    if offset.is_some_and(|o| o != 0) || !len.is_multiple_of(record) {
        return Err(Errno::SPIPE);
    }
    Ok(())
}

impl FileOps for FaultFile {
    /// `iommufd_fault_fops_read`: the groups that fit, EINVAL if the first
    /// pending one does not, 0 bytes when none is pending. The buffer is
    /// checked writable first so that a fault (EFAULT) consumes no group.
    fn read(&self, peer: Peer, buf: u64, len: u64, offset: Option<u64>) -> Result<i64, Errno> {
        check_io(len, offset, FAULT_SIZE)?;
        let pending = self.fd.pending() as u64;
        let fit = (len / FAULT_SIZE).min(pending);
        if pending > 0 && fit == 0 {
            return Err(Errno::INVAL);
        }
        peer.clear(buf, fit * FAULT_SIZE).map_err(|e| e.errno())?;
        let records: Vec<IommuHwptPgfault> = self
            .fd
            .read(fit as usize)
            .into_iter()
            .map(|f| IommuHwptPgfault {
                flags: f.flags.bits(),
                dev_id: f.dev_id,
                pasid: f.pasid,
                grpid: f.grpid,
                perm: f.perm.bits(),
                reserved: 0,
                addr: f.addr,
                length: f.length,
                cookie: f.cookie,
            })
            .collect();
        peer.write(buf, records.as_bytes()).map_err(|e| e.errno())?;
        Ok(records.as_bytes().len() as i64)
    }

    /// `iommufd_fault_fops_write`: responses in order until one fails
    /// (EFAULT, EINVAL for an unknown code or cookie); the bytes consumed,
    /// or the error if none was.
    fn write(&self, peer: Peer, buf: u64, len: u64, offset: Option<u64>) -> Result<i64, Errno> {
        check_io(len, offset, RESPONSE_SIZE)?;
        let mut responses = Vec::new();
        let read = peer.for_each_record(buf, len / RESPONSE_SIZE, |r: IommuHwptPageResponse| {
            let code = match r.code {
                IOMMUFD_PAGE_RESP_SUCCESS => PageResponseCode::Success,
                IOMMUFD_PAGE_RESP_INVALID => PageResponseCode::Invalid,
                _ => return Err(Errno::INVAL),
            };
            responses.push(PageResponse {
                cookie: r.cookie,
                code,
            });
            Ok(())
        });
        let done = if responses.is_empty() {
            0
        } else {
            self.fd.write(&responses).map_err(errno)?
        };
        match read {
            Err(e) if done == 0 => Err(e),
            _ => Ok((done as u64 * RESPONSE_SIZE) as i64),
        }
    }
}
