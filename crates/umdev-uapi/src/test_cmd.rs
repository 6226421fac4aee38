//! IOMMU_TEST_CMD (drivers/iommu/iommufd/selftest.c `iommufd_test`) over
//! the library's selftest mock: decodes `struct iommu_test_cmd` and calls
//! [`umdev_iommufd::selftest`]. Ops not wired yet answer EOPNOTSUPP, as
//! the kernel does for unknown ops.

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommufd::Ictx;
use umdev_iommufd::selftest::{MockBus, MockDev, MockDeviceFlags, ops};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioctl::{Ucmd, errno};

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
/// IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS.
pub const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: u32 = 12;

/// The header of struct iommu_test_cmd.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct TestHdr {
    size: u32,
    op: u32,
    id: u32,
    reserved: u32,
}

/// `add_reserved` / `check_map` (the first three u64 of the union).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct ThreeU64 {
    a: u64,
    b: u64,
    c: u64,
}

/// `mock_domain_flags` { out_stdev_id, out_hwpt_id, out_idev_id, dev_flags }.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct MockDomain {
    out_stdev_id: u32,
    out_hwpt_id: u32,
    out_idev_id: u32,
    dev_flags: u32,
}

/// The selftest state of one open file: the shared mock bus and the mock
/// devices this file created (the kernel's selftest objects).
pub struct Selftest {
    bus: Arc<MockBus>,
    devices: Mutex<Vec<MockDev>>,
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
        }
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

/// `iommufd_test`.
pub fn execute(ucmd: &mut Ucmd<'_>) -> Result<i64, Errno> {
    let hdr: TestHdr = ucmd.get();
    let file = ucmd.file;
    let st = file.selftest.as_ref().ok_or(Errno::NOTTY)?;
    let payload = &ucmd.cmd[PAYLOAD..];
    match hdr.op {
        IOMMU_TEST_OP_ADD_RESERVED => {
            let p = ThreeU64::read_from_prefix(payload).expect("union fits").0;
            ops::add_reserved(&file.ictx, hdr.id, p.a, p.b).map_err(errno)?;
            Ok(0)
        }
        IOMMU_TEST_OP_MOCK_DOMAIN | IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS => {
            let mut p = MockDomain::read_from_prefix(payload).expect("union fits").0;
            let raw = if hdr.op == IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS {
                p.dev_flags
            } else {
                0
            };
            let flags = MockDeviceFlags::from_uapi(raw).map_err(errno)?;
            let dev = st
                .bus
                .mock_domain(&file.ictx, hdr.id, flags)
                .map_err(errno)?;
            p.out_stdev_id = dev.dev_id;
            p.out_hwpt_id = dev.hwpt_id;
            p.out_idev_id = dev.dev_id;
            let mut out = ucmd.cmd.clone();
            out[PAYLOAD..PAYLOAD + 16].copy_from_slice(p.as_bytes());
            if let Err(e) = ucmd.respond(&out[..]) {
                st.bus.destroy(&file.ictx, &dev);
                return Err(e);
            }
            st.devices.lock().push(dev);
            Ok(0)
        }
        IOMMU_TEST_OP_MD_CHECK_MAP => {
            let p = ThreeU64::read_from_prefix(payload).expect("union fits").0;
            ops::md_check_pa(&file.ictx, hdr.id, p.a, p.b, p.c, |off| {
                file.memory
                    .phys_of(ucmd.peer, p.c + off)
                    .ok()
                    .flatten()
                    .ok_or(umdev_iommufd::IommufdError::Invalid {
                        what: "check_map: user page not mapped",
                    })
            })
            .map_err(errno)?;
            Ok(0)
        }
        _ => Err(ops::UNKNOWN_OP),
    }
}
