//! IOMMU_TEST_CMD (drivers/iommu/iommufd/selftest.c `iommufd_test`) over
//! the library's selftest mock: decodes `struct iommu_test_cmd`
//! (iommufd_test.h) and calls [`umdev_iommufd::selftest`]. Unknown ops
//! answer EOPNOTSUPP, as the kernel does.
//!
//! - this module: the mock devices and domains (MOCK_DOMAIN(_FLAGS),
//!   MOCK_DOMAIN_REPLACE, ADD_RESERVED, MD_CHECK_*, DIRTY, TRIGGER_IOPF,
//!   SET_TEMP_MEMORY_LIMIT);
//! - [`access`]: the access fds (CREATE_ACCESS, ACCESS_PAGES, ACCESS_RW,
//!   DESTROY_ACCESS_PAGES, ACCESS_REPLACE_IOAS).

pub mod access;

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::memory::PAGE_SIZE;
use umdev_iommufd::Ictx;
use umdev_iommufd::selftest::{MockBus, MockDev, MockDeviceFlags, ops};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioctl::{Ucmd, errno};
use access::AccessTable;

/// sizeof(struct iommu_test_cmd).
pub const TEST_CMD_SIZE: usize = 72;
/// offsetofend(struct iommu_test_cmd, last).
pub const TEST_CMD_MIN_SIZE: usize = 68;
/// Offset of the op union.
const PAYLOAD: usize = 16;

/// IOMMU_TEST_OP_ADD_RESERVED.
pub const IOMMU_TEST_OP_ADD_RESERVED: u32 = 1;
/// IOMMU_TEST_OP_MOCK_DOMAIN.
pub const IOMMU_TEST_OP_MOCK_DOMAIN: u32 = 2;
/// IOMMU_TEST_OP_MD_CHECK_MAP.
pub const IOMMU_TEST_OP_MD_CHECK_MAP: u32 = 3;
/// IOMMU_TEST_OP_MD_CHECK_REFS.
pub const IOMMU_TEST_OP_MD_CHECK_REFS: u32 = 4;
/// IOMMU_TEST_OP_CREATE_ACCESS.
pub const IOMMU_TEST_OP_CREATE_ACCESS: u32 = 5;
/// IOMMU_TEST_OP_DESTROY_ACCESS_PAGES.
pub const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: u32 = 6;
/// IOMMU_TEST_OP_ACCESS_PAGES.
pub const IOMMU_TEST_OP_ACCESS_PAGES: u32 = 7;
/// IOMMU_TEST_OP_ACCESS_RW.
pub const IOMMU_TEST_OP_ACCESS_RW: u32 = 8;
/// IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT.
pub const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: u32 = 9;
/// IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE.
pub const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: u32 = 10;
/// IOMMU_TEST_OP_ACCESS_REPLACE_IOAS.
pub const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: u32 = 11;
/// IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS.
pub const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: u32 = 12;
/// IOMMU_TEST_OP_DIRTY.
pub const IOMMU_TEST_OP_DIRTY: u32 = 13;
/// IOMMU_TEST_OP_MD_CHECK_IOTLB.
pub const IOMMU_TEST_OP_MD_CHECK_IOTLB: u32 = 14;
/// IOMMU_TEST_OP_TRIGGER_IOPF.
pub const IOMMU_TEST_OP_TRIGGER_IOPF: u32 = 15;

/// IOMMU_PGFAULT_PERM_WRITE (the `perm` of TRIGGER_IOPF).
const IOMMU_PGFAULT_PERM_WRITE: u32 = 1 << 1;
/// The least SET_TEMP_MEMORY_LIMIT takes: `sizeof(unsigned long) +
/// sizeof(u32)` ("protect _batch_init()").
const TEMP_MEMORY_LIMIT_MIN: u32 = 12;
/// Bytes of a DIRTY bitmap handled per step.
const DIRTY_WINDOW: u64 = 4096;

/// The header of struct iommu_test_cmd.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct TestHdr {
    size: u32,
    op: u32,
    id: u32,
    reserved: u32,
}

/// `add_reserved` / `check_map` / `check_refs` / `access_rw`: up to three
/// u64 (`check_refs.refs` is a u32 in the third) then a u32
/// (`access_rw.flags`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct U64s {
    a: u64,
    b: u64,
    c: u64,
    d: u32,
    pad: u32,
}

/// The union's u32 views (`mock_domain_flags`, `mock_domain_replace`,
/// `create_access`, `destroy_access_pages`, `memory_limit`,
/// `access_replace_ioas`, `check_iotlb`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct U32s {
    w: [u32; 4],
}

/// `dirty` { flags, iova, length, page_size, uptr, out_nr_dirty }.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Dirty {
    flags: u32,
    pad: u32,
    iova: u64,
    length: u64,
    page_size: u64,
    uptr: u64,
    out_nr_dirty: u64,
}

/// `trigger_iopf` { dev_id, pasid, grpid, perm, addr }.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct TriggerIopf {
    dev_id: u32,
    pasid: u32,
    grpid: u32,
    perm: u32,
    addr: u64,
}

/// The selftest state of one open file: the shared mock bus, the mock
/// devices this file created (the kernel's selftest objects) and its
/// access fds.
pub struct Selftest {
    bus: Arc<MockBus>,
    devices: Mutex<Vec<MockDev>>,
    accesses: Arc<AccessTable>,
}

impl std::fmt::Debug for Selftest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selftest")
            .field("devices", &self.devices.lock().len())
            .finish_non_exhaustive()
    }
}

impl Selftest {
    /// No mock device yet, on `bus`.
    pub fn new(bus: Arc<MockBus>) -> Self {
        Self {
            bus,
            devices: Mutex::new(Vec::new()),
            accesses: Arc::default(),
        }
    }

    /// The mock device whose DEVICE (and selftest object) id is `dev_id`.
    pub fn mock_dev(&self, dev_id: u32) -> Option<MockDev> {
        self.devices
            .lock()
            .iter()
            .find(|d| d.dev_id == dev_id)
            .copied()
    }

    /// IOMMU_DESTROY of a mock device (its id is the stdev id): true if
    /// `id` was one.
    pub fn destroy(&self, ictx: &Ictx, id: u32) -> bool {
        let mut devices = self.devices.lock();
        let Some(at) = devices.iter().position(|d| d.dev_id == id) else {
            return false;
        };
        let dev = devices.remove(at);
        self.bus.destroy(ictx, &dev);
        true
    }

    /// The file's release: mock devices go after the context closed.
    pub fn release(&self, ictx: &Ictx) {
        for dev in self.devices.lock().drain(..) {
            self.bus.destroy(ictx, &dev);
        }
    }
}

/// The union as `T`.
fn payload<T: FromBytes>(ucmd: &Ucmd<'_>) -> T {
    T::read_from_prefix(&ucmd.cmd[PAYLOAD..])
        .expect("the union fits")
        .0
}

/// `iommufd_ucmd_respond` of the whole struct with `bytes` stored at
/// offset `at` of the union.
fn respond_at(ucmd: &Ucmd<'_>, at: usize, bytes: &[u8]) -> Result<(), Errno> {
    let mut out = ucmd.cmd.clone();
    out[PAYLOAD + at..PAYLOAD + at + bytes.len()].copy_from_slice(bytes);
    ucmd.respond(&out[..])
}

/// `iommufd_test`.
pub fn execute(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let hdr: TestHdr = ucmd.get();
    let file = ucmd.file;
    let st = file.selftest.as_ref().ok_or(Errno::NOTTY)?;
    let ictx = &file.ictx;
    match hdr.op {
        IOMMU_TEST_OP_ADD_RESERVED => {
            let p: U64s = payload(ucmd);
            ops::add_reserved(ictx, hdr.id, p.a, p.b).map_err(errno)?;
        }
        IOMMU_TEST_OP_MOCK_DOMAIN | IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS => {
            mock_domain(ucmd, st, hdr)?;
        }
        IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE => {
            let p: U32s = payload(ucmd);
            // Only a selftest object (ENOENT otherwise) is replaced.
            st.mock_dev(hdr.id).ok_or(Errno::NOENT)?;
            let hwpt_id = ictx.device_replace(hdr.id, 0, p.w[0]).map_err(errno)?;
            respond_at(ucmd, 0, &hwpt_id.to_le_bytes())?;
        }
        IOMMU_TEST_OP_MD_CHECK_MAP => {
            let p: U64s = payload(ucmd);
            ops::md_check_pa(ictx, hdr.id, p.a, p.b, p.c, |off| {
                file.memory
                    .phys_of(ucmd.peer, p.c + off)
                    .ok()
                    .flatten()
                    .ok_or(umdev_iommufd::IommufdError::Invalid {
                        what: "check_map: user page not mapped",
                    })
            })
            .map_err(errno)?;
        }
        IOMMU_TEST_OP_MD_CHECK_REFS => {
            let p: U64s = payload(ucmd);
            // { length, uptr, refs }: refs is the third word.
            md_check_refs(ucmd, p.b, p.a, p.c as u32)?;
        }
        IOMMU_TEST_OP_MD_CHECK_IOTLB => {
            let p: U32s = payload(ucmd);
            ops::md_check_iotlb(ictx, hdr.id, p.w[0], p.w[1]).map_err(errno)?;
        }
        IOMMU_TEST_OP_CREATE_ACCESS => access::create_access(ucmd, st, hdr.id)?,
        IOMMU_TEST_OP_ACCESS_REPLACE_IOAS => access::replace_ioas(ucmd, st, hdr.id)?,
        IOMMU_TEST_OP_ACCESS_PAGES => access::access_pages(ucmd, st, hdr.id)?,
        IOMMU_TEST_OP_ACCESS_RW => access::access_rw(ucmd, st, hdr.id)?,
        IOMMU_TEST_OP_DESTROY_ACCESS_PAGES => access::destroy_pages(ucmd, st, hdr.id)?,
        IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT => {
            // The kernel's limit sizes pages.c's temporary batches; the
            // io_pagetable here pins without them, so only the check stays.
            let p: U32s = payload(ucmd);
            if p.w[0] < TEMP_MEMORY_LIMIT_MIN {
                return Err(Errno::INVAL);
            }
        }
        IOMMU_TEST_OP_DIRTY => dirty(ucmd, hdr.id)?,
        IOMMU_TEST_OP_TRIGGER_IOPF => {
            let p: TriggerIopf = payload(ucmd);
            let Some(dev) = st.mock_dev(p.dev_id) else {
                // `iommufd_get_device` (ENOENT), then "not a mock device".
                let is_device = ictx
                    .objects()
                    .iter()
                    .any(|&(id, kind)| id == p.dev_id && kind == "device");
                return Err(if is_device {
                    Errno::INVAL
                } else {
                    Errno::NOENT
                });
            };
            let write = p.perm & IOMMU_PGFAULT_PERM_WRITE != 0;
            ops::trigger_iopf(ictx, dev.bdf, p.pasid, write, p.addr).map_err(errno)?;
        }
        _ => return Err(ops::UNKNOWN_OP),
    }
    Ok(0)
}

/// IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS) (`iommufd_test_mock_domain`): a mock
/// device bound and attached to `hdr.id`; its ids are written back, or it
/// goes again.
fn mock_domain(ucmd: &Ucmd<'_>, st: &Selftest, hdr: TestHdr) -> Result<(), Errno> {
    let p: U32s = payload(ucmd);
    let raw = if hdr.op == IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS {
        p.w[3]
    } else {
        0
    };
    let ictx = &ucmd.file.ictx;
    let flags = MockDeviceFlags::from_uapi(raw).map_err(errno)?;
    let dev = st.bus.mock_domain(ictx, hdr.id, flags).map_err(errno)?;
    // { out_stdev_id, out_hwpt_id, out_idev_id }.
    let ids = [dev.dev_id, dev.hwpt_id, dev.dev_id];
    if let Err(e) = respond_at(ucmd, 0, ids.as_bytes()) {
        st.bus.destroy(ictx, &dev);
        return Err(e);
    }
    st.devices.lock().push(dev);
    Ok(())
}

/// IOMMU_TEST_OP_MD_CHECK_REFS (`iommufd_test_md_check_refs`): every
/// PAGE_SIZE page of `[uptr, uptr + length)` is pinned `refs` times
/// through this file's context (EIO otherwise); EINVAL unaligned or
/// wrapping, EFAULT for a page the caller has not mapped.
fn md_check_refs(ucmd: &Ucmd<'_>, uptr: u64, length: u64, refs: u32) -> Result<(), Errno> {
    if !length.is_multiple_of(PAGE_SIZE)
        || !uptr.is_multiple_of(PAGE_SIZE)
        || uptr.checked_add(length).is_none()
    {
        return Err(Errno::INVAL);
    }
    let file = ucmd.file;
    let account = file.ictx.account();
    let mut off = 0;
    while off < length {
        let phys = file
            .memory
            .phys_of(ucmd.peer, uptr + off)
            .map_err(|e| e.errno())?;
        if phys.map_or(0, |p| account.page_pins(p)) != refs {
            return Err(Errno::IO);
        }
        off += PAGE_SIZE;
    }
    Ok(())
}

/// IOMMU_TEST_OP_DIRTY (`iommufd_test_dirty`): marks dirty the mapped
/// pages whose bit is set in the user bitmap, [`DIRTY_WINDOW`] bytes of
/// it at a time; `out_nr_dirty` gets the count.
fn dirty(ucmd: &Ucmd<'_>, hwpt_id: u32) -> Result<(), Errno> {
    let p: Dirty = payload(ucmd);
    let ictx = &ucmd.file.ictx;
    let len = ops::dirty_bitmap_len(p.iova, p.length, p.page_size, p.uptr).map_err(errno)? as u64;
    let mut count = 0;
    let mut buf = vec![0u8; DIRTY_WINDOW as usize];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(DIRTY_WINDOW);
        let bytes = &mut buf[..n as usize];
        ucmd.peer
            .read(p.uptr.wrapping_add(off), bytes)
            .map_err(|e| e.errno())?;
        let start = off * 8 * p.page_size;
        let length = (n * 8).saturating_mul(p.page_size).min(p.length - start);
        count +=
            ops::dirty(ictx, hwpt_id, p.iova + start, length, p.page_size, bytes).map_err(errno)?;
        off += n;
    }
    respond_at(
        ucmd,
        std::mem::offset_of!(Dirty, out_nr_dirty),
        &count.to_le_bytes(),
    )
}
