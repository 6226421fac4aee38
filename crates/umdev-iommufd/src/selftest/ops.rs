//! The `IOMMU_TEST_OP_*` checks and the mock driver's uAPI data formats
//! (drivers/iommu/iommufd/selftest.c, iommufd_test.h), as functions of a
//! context; the uAPI face decodes the user struct and calls these.

use rustix::io::Errno;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::iommu::ops::VtdS1Invalidate;
use umdev_iommu::memory::PhysAddr;
use umdev_iommu::pgtable::Access as DmaAccess;
use umdev_iommu::vtd::{FaultReason, FaultRecord};
use umdev_pci::Bdf;

use super::mock::{MOCK_IOTLB_PAGE, MOCK_NESTED_DOMAIN_IOTLB_NUM, MOCK_PAGE_SIZE, mock_of};
use crate::error::{IommufdError, Result};
use crate::hw_info::{HwInfoFlags, IommuHwInfo};
use crate::hwpt_alloc::HwptData;
use crate::ictx::Ictx;
use crate::io_pagetable::{IovaRange, ReservedOwner};

/// IOMMU_HW_INFO_TYPE_SELFTEST.
pub const IOMMU_HW_INFO_TYPE_SELFTEST: u32 = 0xfeed_beef;
/// IOMMU_HW_INFO_TYPE_DEFAULT.
const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
/// IOMMU_HWPT_DATA_SELFTEST.
pub const IOMMU_HWPT_DATA_SELFTEST: u32 = 0xdead;
/// IOMMU_HWPT_INVALIDATE_DATA_SELFTEST.
pub const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST: u32 = 0xdead_beef;
/// sizeof(struct iommu_hwpt_invalidate_selftest).
pub const INVALIDATE_SELFTEST_LEN: u32 = 8;
/// IOMMU_TEST_INVALIDATE_FLAG_ALL.
const IOMMU_TEST_INVALIDATE_FLAG_ALL: u32 = 1 << 0;
/// sizeof(struct iommu_test_hw_info).
const TEST_HW_INFO_LEN: usize = 8;

fn invalid(what: &'static str) -> IommufdError {
    IommufdError::Invalid { what }
}

/// The mock driver domain behind HWPT `hwpt_id` (`get_md_pagetable`).
fn md_domain(ictx: &Ictx, hwpt_id: u32) -> Result<std::sync::Arc<umdev_iommu::iommu::Domain>> {
    let domain = ictx.hwpt_domain(hwpt_id)?;
    if domain
        .ops()
        .as_any()
        .downcast_ref::<super::MockDomain>()
        .is_none()
    {
        return Err(invalid("not a mock domain"));
    }
    Ok(domain)
}

/// IOMMU_TEST_OP_ADD_RESERVED (`iommufd_test_add_reserved`).
pub fn add_reserved(ictx: &Ictx, ioas_id: u32, start: u64, length: u64) -> Result<()> {
    if length == 0 {
        return Err(invalid("zero length"));
    }
    let last = start
        .checked_add(length - 1)
        .ok_or(IommufdError::Overflow {
            what: "start + length",
        })?;
    ictx.ioas(ioas_id)?
        .iopt()
        .reserve(IovaRange::new(start, last), ReservedOwner::Explicit)
        .map_err(IommufdError::iopt("add reserved"))
}

/// IOMMU_TEST_OP_MD_CHECK_MAP (`iommufd_test_md_check_pa`): every
/// MOCK_PAGE_SIZE step of `[iova, iova + length)` translates to the host
/// address `user_phys(offset)` gives for the user VA at the same offset.
pub fn md_check_pa(
    ictx: &Ictx,
    hwpt_id: u32,
    iova: u64,
    length: u64,
    uptr: u64,
    mut user_phys: impl FnMut(u64) -> Result<PhysAddr>,
) -> Result<()> {
    if !iova.is_multiple_of(MOCK_PAGE_SIZE)
        || !length.is_multiple_of(MOCK_PAGE_SIZE)
        || !uptr.is_multiple_of(MOCK_PAGE_SIZE)
        || uptr.checked_add(length).is_none()
    {
        return Err(invalid("check_map alignment"));
    }
    let domain = md_domain(ictx, hwpt_id)?;
    let mut off = 0;
    while off < length {
        let phys = user_phys(off)?;
        if domain.iova_to_phys(iova + off) != Some(phys) {
            return Err(invalid("check_map: pfn differs"));
        }
        off += MOCK_PAGE_SIZE;
    }
    Ok(())
}

/// IOMMU_TEST_OP_MD_CHECK_IOTLB.
pub fn md_check_iotlb(ictx: &Ictx, hwpt_id: u32, iotlb_id: u32, iotlb: u32) -> Result<()> {
    let domain = md_domain(ictx, hwpt_id)?;
    let mock = mock_of(domain.ops());
    if !mock.is_nested() {
        return Err(invalid("not a nested mock domain"));
    }
    if iotlb_id as usize >= MOCK_NESTED_DOMAIN_IOTLB_NUM || mock.iotlb(iotlb_id as usize) != iotlb {
        return Err(invalid("iotlb differs"));
    }
    Ok(())
}

/// IOMMU_TEST_OP_DIRTY (`iommufd_test_dirty`): marks dirty each mapped
/// `page_size` unit whose bit is set in `bitmap`; returns how many.
pub fn dirty(
    ictx: &Ictx,
    hwpt_id: u32,
    iova: u64,
    length: u64,
    page_size: u64,
    bitmap: &[u8],
) -> Result<u64> {
    let domain = md_domain(ictx, hwpt_id)?;
    let mock = mock_of(domain.ops());
    if !mock.dirty_capable() {
        return Err(invalid("domain without dirty tracking"));
    }
    let mut count = 0;
    for i in 0..length / page_size {
        if bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 && mock.set_dirty(iova + i * page_size) {
            count += 1;
        }
    }
    Ok(count)
}

/// The DIRTY op's argument checks, before the user bitmap is read:
/// returns the bitmap's length in bytes.
pub fn dirty_bitmap_len(iova: u64, length: u64, page_size: u64, uptr: u64) -> Result<usize> {
    if page_size == 0
        || length == 0
        || !iova.is_multiple_of(page_size)
        || !length.is_multiple_of(page_size)
        || uptr == 0
    {
        return Err(invalid("dirty arguments"));
    }
    let max = length / page_size;
    // SZ_16M * BITS_PER_BYTE.
    if max > (16 << 20) * 8 {
        return Err(IommufdError::Overflow {
            what: "dirty bitmap",
        });
    }
    Ok(max.div_ceil(8) as usize)
}

/// IOMMU_GET_HW_INFO for a mock device (`mock_domain_hw_info`): type
/// SELFTEST, struct iommu_test_hw_info { flags 0, test_reg }. The type the
/// caller asks for with INPUT_TYPE must be DEFAULT or SELFTEST
/// (EOPNOTSUPP). `data` is the user buffer: filled, the rest zeroed.
pub fn hw_info(
    ictx: &Ictx,
    dev_id: u32,
    flags: HwInfoFlags,
    in_data_type: u32,
    data: &mut [u8],
) -> Result<IommuHwInfo> {
    let core = ictx.get_hw_info(dev_id, flags - HwInfoFlags::INPUT_TYPE, 0, &mut [])?;
    if flags.contains(HwInfoFlags::INPUT_TYPE)
        && in_data_type != IOMMU_HW_INFO_TYPE_DEFAULT
        && in_data_type != IOMMU_HW_INFO_TYPE_SELFTEST
    {
        return Err(IommufdError::Unsupported {
            what: "hw info data type",
        });
    }
    let mut info = [0u8; TEST_HW_INFO_LEN];
    info[4..8].copy_from_slice(&(super::IOMMU_HW_INFO_SELFTEST_REGVAL as u32).to_le_bytes());
    let copy = info.len().min(data.len());
    data[..copy].copy_from_slice(&info[..copy]);
    data[copy..].fill(0);
    Ok(IommuHwInfo {
        out_data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
        data_len: TEST_HW_INFO_LEN as u32,
        vtd: None,
        ..core
    })
}

/// HWPT_ALLOC data of type SELFTEST (struct iommu_hwpt_selftest
/// { iotlb }): the mock's nested domain, as the stage-1 config its core
/// takes. EINVAL when shorter than `iotlb`.
pub fn hwpt_data(data_type: u32, data: &[u8]) -> Result<HwptData> {
    if data_type != IOMMU_HWPT_DATA_SELFTEST {
        return Ok(HwptData::Unknown(data_type));
    }
    if data.len() < 4 {
        return Err(invalid("iommu_hwpt_selftest too short"));
    }
    Ok(HwptData::VtdS1(VtdS1Config {
        flags: Default::default(),
        pgtbl_addr: 0,
        addr_width: 48,
    }))
}

/// HWPT_INVALIDATE entries of type SELFTEST (struct
/// iommu_hwpt_invalidate_selftest { flags, iotlb_id }) as the mock's
/// per-4 KiB-page IOTLB entries: the valid prefix, and the error of the
/// first bad entry (EOPNOTSUPP unknown flags, EINVAL id > 3).
pub fn invalidate_entries(entries: &[u8]) -> (Vec<VtdS1Invalidate>, Option<IommufdError>) {
    let mut out = Vec::new();
    for e in entries.chunks_exact(INVALIDATE_SELFTEST_LEN as usize) {
        let flags = u32::from_le_bytes(e[0..4].try_into().expect("4 bytes"));
        let id = u32::from_le_bytes(e[4..8].try_into().expect("4 bytes"));
        if flags & !IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
            return (
                out,
                Some(IommufdError::Unsupported {
                    what: "selftest invalidation flags",
                }),
            );
        }
        if flags & IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
            out.push(VtdS1Invalidate {
                addr: 0,
                npages: u64::MAX,
                flags: 0,
            });
        } else if id as usize >= MOCK_NESTED_DOMAIN_IOTLB_NUM {
            return (out, Some(invalid("iotlb_id")));
        } else {
            out.push(VtdS1Invalidate {
                addr: u64::from(id) * MOCK_IOTLB_PAGE,
                npages: 1,
                flags: 0,
            });
        }
    }
    (out, None)
}

/// IOMMU_TEST_OP_TRIGGER_IOPF (`iommufd_test_trigger_iopf`): a page
/// request from mock device `bdf` for `addr`, reported to the domain that
/// translates its `pasid` (0 = none), else, as the mock has a user PASID
/// table, to its RID's domain (reported without a PASID then). EINVAL if
/// no domain handles faults.
pub fn trigger_iopf(ictx: &Ictx, bdf: Bdf, pasid: u32, write: bool, addr: u64) -> Result<()> {
    let iommu = ictx.iommu();
    let on_pasid = (pasid != 0)
        .then(|| iommu.device_domain(bdf, Some(pasid)))
        .flatten();
    let (domain, pasid) = match on_pasid {
        Some(d) => (d, Some(pasid)),
        None => (
            iommu
                .device_domain(bdf, None)
                .ok_or(invalid("mock device without a domain"))?,
            None,
        ),
    };
    let handler = domain
        .fault_handler()
        .ok_or(invalid("domain without a fault queue"))?;
    handler.report(&FaultRecord {
        requester: bdf,
        pasid,
        addr,
        access: if write {
            DmaAccess::Write
        } else {
            DmaAccess::Read
        },
        reason: FaultReason::FirstLevelNotPresent { level: 1 },
        did: None,
    });
    Ok(())
}

/// The errno of IOMMU_TEST_OP codes this driver does not know.
pub const UNKNOWN_OP: Errno = Errno::OPNOTSUPP;
