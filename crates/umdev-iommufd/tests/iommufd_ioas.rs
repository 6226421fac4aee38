//! Ports of FIXTURE(iommufd_ioas) from tools/testing/selftests/iommu/iommufd.c
//! (kernel-semantics §3.3). Every test runs all four variants: no_domain,
//! mock_domain (one mock device plus a PASID-capable one on the same auto
//! HWPT), two_mock_domain (two mock devices, which share the auto HWPT as
//! in Linux), mock_domain_limit (in Linux a small temporary-memory batch
//! limit, which has no counterpart here: a one-device variant).

mod common;

use std::sync::Arc;

use common::*;
use rustix::io::Errno;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::iommu::ops::VtdS1Invalidate;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::vtd::S1Flags;
use umdev_iommufd::hw_info::{
    HwInfoFlags, HwInfoVtd, IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HW_INFO_TYPE_INTEL_VTD,
};
use umdev_iommufd::io_pagetable::{IovaRange, ReservedOwner};
use umdev_iommufd::{HwptAllocFlags, HwptData, HwptInvalidateData, Ictx, MapFlags};

const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const FIXED: MapFlags = RW.union(MapFlags::FIXED_IOVA);
const P: u64 = PAGE_SIZE;

#[derive(Clone, Copy, Debug)]
struct Variant {
    mock_domains: usize,
    pasid_capable: bool,
}

const VARIANTS: [Variant; 4] = [
    // no_domain
    Variant {
        mock_domains: 0,
        pasid_capable: false,
    },
    // mock_domain
    Variant {
        mock_domains: 1,
        pasid_capable: true,
    },
    // two_mock_domain
    Variant {
        mock_domains: 2,
        pasid_capable: false,
    },
    // mock_domain_limit
    Variant {
        mock_domains: 1,
        pasid_capable: false,
    },
];

struct Fixture {
    env: Env,
    ictx: Arc<Ictx>,
    variant: Variant,
    ioas: u32,
    /// The last mock device of the setup (the selftest's stdev/hwpt/device).
    stdev: Option<MockDev>,
    /// The PASID-capable device of the mock_domain variant.
    pasid_dev: Option<MockDev>,
    devices: Vec<MockDev>,
    base_iova: u64,
    buffer: Arc<MemoryObject>,
}

impl Fixture {
    fn new(variant: Variant) -> Self {
        let env = Env::new();
        let ictx = env.ictx();
        let ioas = ictx.ioas_alloc().unwrap();
        let mut devices = Vec::new();
        for _ in 0..variant.mock_domains {
            devices.push(env.mock_domain(&ictx, ioas).unwrap());
        }
        let stdev = devices.last().copied();
        let pasid_dev = variant
            .pasid_capable
            .then(|| env.mock_domain_flags(&ictx, ioas, PASID).unwrap());
        devices.extend(pasid_dev);
        let buffer = env.buffer(BUFFER_SIZE);
        Self {
            base_iova: if stdev.is_some() {
                MOCK_APERTURE_START
            } else {
                0
            },
            env,
            ictx,
            variant,
            ioas,
            stdev,
            pasid_dev,
            devices,
            buffer,
        }
    }

    fn device_id(&self) -> u32 {
        self.stdev.map_or(0, |d| d.dev_id)
    }

    fn hwpt_id(&self) -> u32 {
        self.stdev.map_or(0, |d| d.hwpt_id)
    }

    fn map_fixed(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        errno(
            self.ictx
                .ioas_map(self.ioas, FIXED, &self.buffer, 0, length, iova),
        )
    }

    fn map(&self, length: u64) -> Result<u64, Errno> {
        errno(
            self.ictx
                .ioas_map(self.ioas, RW, &self.buffer, 0, length, 0),
        )
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        errno(self.ictx.ioas_unmap(self.ioas, iova, length))
    }

    fn add_reserved(&self, start: u64, length: u64) -> Result<(), Errno> {
        let ioas = self.ictx.ioas(self.ioas).unwrap();
        ioas.iopt().reserve(
            IovaRange::new(start, start + (length - 1)),
            ReservedOwner::Explicit,
        )
    }

    fn teardown(self) {
        let bdfs: Vec<_> = self.devices.iter().map(|d| d.bdf).collect();
        teardown(&self.env, &self.ictx, &bdfs);
        check_refs(&self.ictx, self.buffer.base(), BUFFER_SIZE, 0);
    }
}

fn variants(f: impl Fn(&Fixture)) {
    for v in VARIANTS {
        let fx = Fixture::new(v);
        f(&fx);
        fx.teardown();
    }
}

fn s1_data() -> HwptData {
    HwptData::VtdS1(VtdS1Config {
        flags: S1Flags::default(),
        pgtbl_addr: 0x10_0000,
        addr_width: 48,
    })
}

fn invalidate(ictx: &Ictx, hwpt: u32, data: HwptInvalidateData<'_>) -> (u32, Result<(), Errno>) {
    let r = ictx.hwpt_invalidate(hwpt, data);
    (r.entry_num, errno(r.result))
}

fn vtd(entries: &[VtdS1Invalidate]) -> HwptInvalidateData<'_> {
    HwptInvalidateData::VtdS1(entries)
}

/// The VT-d entry the mock reads as selftest IOTLB id `id`.
fn inv(id: u64, flags: u32) -> VtdS1Invalidate {
    VtdS1Invalidate {
        addr: id * MOCK_IOTLB_PAGE,
        npages: 1,
        flags,
    }
}

#[test]
fn ioas_auto_destroy() {
    variants(|_| {});
}

#[test]
fn ioas_destroy() {
    variants(|f| {
        if f.stdev.is_some() {
            // IOAS cannot be freed while a device has a HWPT using it.
            assert_eq!(errno(f.ictx.destroy(f.ioas)), Err(Errno::BUSY));
        } else {
            f.ictx.destroy(f.ioas).unwrap();
            assert_eq!(errno(f.ictx.destroy(f.ioas)), Err(Errno::NOENT));
        }
    });
}

#[test]
fn alloc_hwpt_nested() {
    variants(|f| {
        let ictx = &f.ictx;
        let none = HwptAllocFlags::empty();
        let Some(stdev) = f.stdev else {
            let dev = f.device_id();
            assert_eq!(
                errno(ictx.hwpt_alloc(dev, f.ioas, none, HwptData::None)),
                Err(Errno::NOENT)
            );
            assert_eq!(
                errno(ictx.hwpt_alloc(dev, 0, none, s1_data())),
                Err(Errno::NOENT)
            );
            assert_eq!(errno(ictx.device_replace(dev, 0, 0)), Err(Errno::NOENT));
            return;
        };
        let dev = stdev.dev_id;
        // Negative tests.
        assert_eq!(
            errno(ictx.hwpt_alloc(f.ioas, dev, none, HwptData::None)),
            Err(Errno::NOENT)
        );
        assert_eq!(
            errno(ictx.hwpt_alloc(dev, dev, none, HwptData::None)),
            Err(Errno::INVAL)
        );
        assert_eq!(
            errno(ictx.hwpt_alloc(
                dev,
                f.ioas,
                HwptAllocFlags::NEST_PARENT | HwptAllocFlags::FAULT_ID_VALID,
                HwptData::None
            )),
            Err(Errno::OPNOTSUPP)
        );
        let parent = ictx
            .hwpt_alloc(dev, f.ioas, HwptAllocFlags::NEST_PARENT, HwptData::None)
            .unwrap();
        let parent_not_work = ictx.hwpt_alloc(dev, f.ioas, none, HwptData::None).unwrap();

        // Negative nested tests. DATA_NONE with a length (EINVAL), a short
        // data_len (EINVAL) and a NULL data pointer (EFAULT) are ABI-only;
        // typed, no data is EOPNOTSUPP and a config the driver rejects is
        // EINVAL.
        let nested = |flags, data| errno(ictx.hwpt_alloc(dev, parent, flags, data));
        assert_eq!(nested(none, HwptData::None), Err(Errno::OPNOTSUPP));
        assert_eq!(
            nested(none, HwptData::Unknown(0xdead)),
            Err(Errno::OPNOTSUPP)
        );
        let bad_width = HwptData::VtdS1(VtdS1Config {
            flags: S1Flags::default(),
            pgtbl_addr: 0x10_0000,
            addr_width: 39,
        });
        assert_eq!(nested(none, bad_width), Err(Errno::INVAL));
        assert_eq!(
            nested(HwptAllocFlags::NEST_PARENT, s1_data()),
            Err(Errno::OPNOTSUPP)
        );
        assert_eq!(
            errno(ictx.hwpt_alloc(dev, parent_not_work, none, s1_data())),
            Err(Errno::INVAL)
        );

        // Two nested HWPTs sharing one parent, and an IOPF-capable one.
        let fault = ictx.fault_queue_alloc().unwrap();
        let nested0 = ictx.hwpt_alloc(dev, parent, none, s1_data()).unwrap();
        let nested1 = ictx.hwpt_alloc(dev, parent, none, s1_data()).unwrap();
        assert_eq!(
            errno(ictx.hwpt_alloc_fault(
                dev,
                parent,
                HwptAllocFlags::FAULT_ID_VALID,
                s1_data(),
                u32::MAX
            )),
            Err(Errno::NOENT)
        );
        let iopf_hwpt = ictx
            .hwpt_alloc_fault(
                dev,
                parent,
                HwptAllocFlags::FAULT_ID_VALID,
                s1_data(),
                fault.id(),
            )
            .unwrap();
        hwpt_check_iotlb_all(ictx, nested0, IOMMU_TEST_IOTLB_DEFAULT);
        hwpt_check_iotlb_all(ictx, nested1, IOMMU_TEST_IOTLB_DEFAULT);

        // A nested HWPT on top of a nested HWPT.
        assert_eq!(
            errno(ictx.hwpt_alloc(dev, nested0, none, s1_data())),
            Err(Errno::INVAL)
        );
        // The parent cannot be freed now.
        assert_eq!(errno(ictx.destroy(parent)), Err(Errno::BUSY));

        // hwpt_invalidate does not take a parent HWPT.
        assert_eq!(
            invalidate(ictx, parent, vtd(&[inv(0, 0)])),
            (0, Err(Errno::INVAL))
        );
        // Probing the data type with an empty array.
        assert_eq!(invalidate(ictx, nested0, vtd(&[])), (0, Ok(())));
        // An invalid data type. (entry_len ±1, a NULL array and entry_len 0
        // are ABI-only.)
        assert_eq!(
            invalidate(ictx, nested0, HwptInvalidateData::Unknown(0xdeadbeef)),
            (0, Err(Errno::INVAL))
        );
        // An invalid flag.
        assert_eq!(
            invalidate(ictx, nested0, vtd(&[inv(0, 0xffff_ffff)])),
            (0, Err(Errno::OPNOTSUPP))
        );
        // An invalid IOTLB id.
        let max = MOCK_NESTED_DOMAIN_IOTLB_NUM as u64;
        assert_eq!(
            invalidate(ictx, nested0, vtd(&[inv(max, 0)])),
            (0, Err(Errno::INVAL))
        );
        hwpt_check_iotlb_all(ictx, nested0, IOMMU_TEST_IOTLB_DEFAULT);
        // The first entry works, the second has bad flags.
        assert_eq!(
            invalidate(ictx, nested0, vtd(&[inv(0, 0), inv(1, 0xffff_ffff)])),
            (1, Err(Errno::OPNOTSUPP))
        );
        hwpt_check_iotlb(ictx, nested0, 0, 0);
        for id in 1..4 {
            hwpt_check_iotlb(ictx, nested0, id, IOMMU_TEST_IOTLB_DEFAULT);
        }
        // The first entry works, the second has a bad id.
        assert_eq!(
            invalidate(ictx, nested0, vtd(&[inv(0, 0), inv(max, 0)])),
            (1, Err(Errno::INVAL))
        );
        hwpt_check_iotlb(ictx, nested0, 0, 0);
        for id in 1..4 {
            hwpt_check_iotlb(ictx, nested0, id, IOMMU_TEST_IOTLB_DEFAULT);
        }
        // Entry 1, then entries 2 and 3.
        assert_eq!(invalidate(ictx, nested0, vtd(&[inv(1, 0)])), (1, Ok(())));
        hwpt_check_iotlb(ictx, nested0, 1, 0);
        hwpt_check_iotlb(ictx, nested0, 2, IOMMU_TEST_IOTLB_DEFAULT);
        assert_eq!(
            invalidate(ictx, nested0, vtd(&[inv(2, 0), inv(3, 0)])),
            (2, Ok(()))
        );
        hwpt_check_iotlb_all(ictx, nested0, 0);
        // Everything of nested1 (IOMMU_TEST_INVALIDATE_FLAG_ALL).
        let all = VtdS1Invalidate {
            addr: 0,
            npages: u64::MAX,
            flags: 0,
        };
        assert_eq!(invalidate(ictx, nested1, vtd(&[all])), (1, Ok(())));
        hwpt_check_iotlb_all(ictx, nested1, 0);

        // Attach the device to nested0, which is then busy.
        ictx.device_replace(dev, 0, nested0).unwrap();
        assert_eq!(errno(ictx.destroy(nested0)), Err(Errno::BUSY));
        let domain = |id| ictx.hwpt_domain(id).unwrap().id();
        assert_eq!(
            f.env.iommu.device_domain(stdev.bdf, None).unwrap().id(),
            domain(nested0)
        );
        // Switch to nested1.
        ictx.device_replace(dev, 0, nested1).unwrap();
        assert_eq!(errno(ictx.destroy(nested1)), Err(Errno::BUSY));
        ictx.destroy(nested0).unwrap();
        // Switch to the IOPF HWPT and take a fault.
        ictx.device_replace(dev, 0, iopf_hwpt).unwrap();
        assert_eq!(errno(ictx.destroy(iopf_hwpt)), Err(Errno::BUSY));
        trigger_iopf(&f.env, &fault, &stdev, None);
        // Back to the parent.
        ictx.device_replace(dev, 0, parent).unwrap();
        ictx.destroy(nested1).unwrap();
        ictx.destroy(iopf_hwpt).unwrap();
        // Back to the IOAS.
        ictx.device_replace(dev, 0, f.ioas).unwrap();
        ictx.destroy(parent).unwrap();
        ictx.destroy(parent_not_work).unwrap();
        assert_eq!(errno(ictx.destroy(fault.id())), Err(Errno::BUSY));
        let fault_id = fault.id();
        drop(fault);
        ictx.destroy(fault_id).unwrap();
    });
}

#[test]
fn hwpt_attach() {
    variants(|f| {
        // A device attached directly to a HWPT.
        if f.stdev.is_some() {
            let d = f.env.mock_domain(&f.ictx, f.hwpt_id()).unwrap();
            assert_eq!(d.hwpt_id, f.hwpt_id());
            f.ictx.device_unbind(d.dev_id).unwrap();
        } else {
            assert_eq!(
                errno(f.env.mock_domain(&f.ictx, f.hwpt_id())),
                Err(Errno::NOENT)
            );
        }
    });
}

#[test]
fn ioas_area_destroy() {
    variants(|f| {
        // Adding an area does not change the ability to destroy.
        f.map_fixed(f.base_iova, P).unwrap();
        if f.stdev.is_some() {
            assert_eq!(errno(f.ictx.destroy(f.ioas)), Err(Errno::BUSY));
        } else {
            f.ictx.destroy(f.ioas).unwrap();
        }
    });
}

#[test]
fn ioas_area_auto_destroy() {
    variants(|f| {
        // Many areas are freed when the context closes (teardown checks).
        for i in 0..10 {
            f.map_fixed(f.base_iova + i * P, P).unwrap();
        }
        check_refs(
            &f.ictx,
            f.buffer.base(),
            P,
            if f.stdev.is_some() { 10 } else { 0 },
        );
    });
}

#[test]
fn get_hw_info() {
    variants(|f| {
        let info = |dev, flags, ty, buf: &mut [u8]| errno(f.ictx.get_hw_info(dev, flags, ty, buf));
        let none = HwInfoFlags::empty();
        let Some(stdev) = f.stdev else {
            let mut exact = [0u8; HwInfoVtd::SIZE];
            let mut larger = [0u8; HwInfoVtd::SIZE + 8];
            assert_eq!(
                info(0, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut exact),
                Err(Errno::NOENT)
            );
            assert_eq!(
                info(0, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut larger),
                Err(Errno::NOENT)
            );
            return;
        };
        let dev = stdev.dev_id;
        let expect_cap = IOMMU_HW_INFO_SELFTEST_REGVAL.to_le_bytes();
        // A zero-size buffer.
        let out = info(dev, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut []).unwrap();
        assert_eq!(out.out_data_type, IOMMU_HW_INFO_TYPE_INTEL_VTD);
        assert_eq!(out.data_len as usize, HwInfoVtd::SIZE);
        assert_eq!(out.vtd.unwrap().cap_reg, IOMMU_HW_INFO_SELFTEST_REGVAL);
        // The exact size.
        let mut exact = [0xaau8; HwInfoVtd::SIZE];
        info(dev, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut exact).unwrap();
        assert_eq!(exact[0..4], [0; 4]);
        assert_eq!(exact[8..16], expect_cap);
        // A wrong requested type, then the driver's own.
        let input = HwInfoFlags::INPUT_TYPE;
        assert_eq!(
            info(dev, input, IOMMU_HW_INFO_TYPE_INTEL_VTD + 1, &mut exact),
            Err(Errno::OPNOTSUPP)
        );
        let out = info(dev, input, IOMMU_HW_INFO_TYPE_INTEL_VTD, &mut exact).unwrap();
        assert_eq!(out.out_data_type, IOMMU_HW_INFO_TYPE_INTEL_VTD);
        // Without INPUT_TYPE the requested type is ignored (DEFAULT).
        info(dev, none, IOMMU_HW_INFO_TYPE_INTEL_VTD + 1, &mut exact).unwrap();
        // Unknown flags.
        assert_eq!(
            info(dev, HwInfoFlags::from_bits_retain(1 << 5), 0, &mut exact),
            Err(Errno::OPNOTSUPP)
        );
        // A larger buffer has its tail zeroed.
        let mut larger = [0xaau8; HwInfoVtd::SIZE + 8];
        let out = info(dev, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut larger).unwrap();
        assert_eq!(out.data_len as usize, HwInfoVtd::SIZE);
        assert_eq!(larger[8..16], expect_cap);
        assert_eq!(larger[HwInfoVtd::SIZE..], [0; 8]);
        // A smaller buffer (through `flags`) gets what fits, nothing more.
        let mut small = [0xaau8; HwInfoVtd::SIZE];
        let out = info(dev, none, IOMMU_HW_INFO_TYPE_DEFAULT, &mut small[..4]).unwrap();
        assert_eq!(out.data_len as usize, HwInfoVtd::SIZE);
        assert_eq!(small[..4], [0; 4]);
        assert_eq!(small[4..], [0xaa; HwInfoVtd::SIZE - 4]);
        // PASID width.
        assert_eq!(info(dev, none, 0, &mut []).unwrap().out_max_pasid_log2, 0);
        if let Some(pasid_dev) = f.pasid_dev {
            let out = info(pasid_dev.dev_id, none, 0, &mut []).unwrap();
            assert_eq!(out.out_max_pasid_log2, MOCK_PASID_WIDTH);
        }
    });
}

#[test]
fn area() {
    variants(|f| {
        // Unmap fails if nothing is mapped.
        for i in 0..10 {
            assert_eq!(f.unmap(i * P, P), Err(Errno::NOENT));
        }
        // Unmap works.
        for i in 0..10 {
            f.map_fixed(f.base_iova + i * P, P).unwrap();
        }
        for i in 0..10 {
            assert_eq!(f.unmap(f.base_iova + i * P, P), Ok(P));
        }
        // Split fails.
        f.map_fixed(f.base_iova + 16 * P, 2 * P).unwrap();
        assert_eq!(f.unmap(f.base_iova + 16 * P, P), Err(Errno::NOENT));
        assert_eq!(f.unmap(f.base_iova + 17 * P, P), Err(Errno::NOENT));
        // Over map fails.
        for (page, pages) in [(16, 2), (16, 1), (17, 1), (15, 2), (15, 3)] {
            assert_eq!(
                f.map_fixed(f.base_iova + page * P, pages * P),
                Err(Errno::EXIST)
            );
        }
        // Unmap all works, also on an empty IOAS.
        assert_eq!(f.unmap(0, u64::MAX), Ok(2 * P));
        assert_eq!(f.unmap(0, u64::MAX), Ok(0));
    });
}

#[test]
fn unmap_fully_contained_areas() {
    variants(|f| {
        // Give no_domain some space to rewind base_iova.
        let base = f.base_iova + 4 * P;
        for i in 0..4 {
            f.map_fixed(base + i * 16 * P, 8 * P).unwrap();
        }
        // Unmapping a range that is not fully contained does not work.
        assert_eq!(f.unmap(base - 4 * P, 8 * P), Err(Errno::NOENT));
        assert_eq!(
            f.unmap(base + 3 * 16 * P + 8 * P - 4 * P, 8 * P),
            Err(Errno::NOENT)
        );
        // Unmapping fully contained areas works.
        assert_eq!(
            f.unmap(base - 4 * P, 3 * 16 * P + 8 * P + 4 * P),
            Ok(32 * P)
        );
    });
}

#[test]
fn area_auto_iova() {
    variants(|f| {
        // Simple 4k pages.
        let iovas: Vec<u64> = (0..10).map(|_| f.map(P).unwrap()).collect();
        for iova in iovas {
            assert_eq!(f.unmap(iova, P), Ok(P));
        }
        // IOVAs are naturally aligned.
        let lowest = |len: u64| 1u64 << len.trailing_zeros();
        let maps: Vec<(u64, u64)> = (1..=10)
            .map(|i| {
                let iova = f.map(i * P).unwrap();
                assert_eq!(iova % lowest(i * P), 0);
                (iova, i * P)
            })
            .collect();
        for (iova, len) in maps {
            assert_eq!(f.unmap(iova, len), Ok(len));
        }
        // They avoid a reserved region.
        let (rstart, rlen) = (4 * P, 100 * P);
        f.add_reserved(rstart, rlen).unwrap();
        let maps: Vec<(u64, u64)> = (1..=10)
            .map(|i| {
                let iova = f.map(i * P).unwrap();
                assert_eq!(iova % lowest(i * P), 0);
                assert!(!(iova > rstart && iova < rstart + rlen), "{iova:#x}");
                (iova, i * P)
            })
            .collect();
        for (iova, len) in maps {
            assert_eq!(f.unmap(iova, len), Ok(len));
        }
        // An allowed region intersecting a reserved one.
        assert_eq!(
            errno(
                f.ictx
                    .ioas_allow_iovas(f.ioas, &[IovaRange::new(P, 600 * P)])
            ),
            Err(Errno::ADDRINUSE)
        );
        // Allocate from an allowed region.
        let allowed = if f.stdev.is_some() {
            IovaRange::new(MOCK_APERTURE_START + P, MOCK_APERTURE_START + 600 * P - 1)
        } else {
            IovaRange::new(200 * P, 600 * P - 1)
        };
        f.ictx.ioas_allow_iovas(f.ioas, &[allowed]).unwrap();
        let maps: Vec<(u64, u64)> = (1..=10)
            .map(|i| {
                let len = i * P;
                let iova = f.map(len).unwrap();
                assert_eq!(iova % lowest(len), 0);
                assert!(
                    iova >= allowed.start && iova + len <= allowed.last + 1,
                    "{iova:#x}"
                );
                (iova, len)
            })
            .collect();
        for (iova, len) in maps {
            assert_eq!(f.unmap(iova, len), Ok(len));
        }
    });
}

/// https://lore.kernel.org/r/685af644.a00a0220.2e5631.0094.GAE@google.com
#[test]
fn reserved_overflow() {
    variants(|f| {
        f.add_reserved(6, 0xffff_ffff_ffff_8001).unwrap();
        assert_eq!(f.map(0x5000), Err(Errno::NOSPC));
    });
}

#[test]
fn area_allowed() {
    variants(|f| {
        let allowed = IovaRange::new(f.base_iova, f.base_iova + 600 * P);
        // A reservation intersecting an allowed range.
        f.ictx.ioas_allow_iovas(f.ioas, &[allowed]).unwrap();
        assert_eq!(f.add_reserved(allowed.start + P, P), Err(Errno::ADDRINUSE));
        f.ictx.ioas_allow_iovas(f.ioas, &[]).unwrap();
        // An allowed range intersecting a reservation.
        f.add_reserved(allowed.start + P, P).unwrap();
        assert_eq!(
            errno(f.ictx.ioas_allow_iovas(f.ioas, &[allowed])),
            Err(Errno::ADDRINUSE)
        );
    });
}

#[test]
fn copy_area() {
    variants(|f| {
        let flags = MapFlags::FIXED_IOVA | MapFlags::WRITEABLE;
        f.map_fixed(f.base_iova, P).unwrap();
        // Copy inside a single IOAS.
        let dst = f.base_iova + P;
        assert_eq!(
            f.ictx.ioas_copy(f.ioas, f.ioas, flags, P, f.base_iova, dst),
            Ok(dst)
        );
        // Copy between IOASes.
        let other = f.ictx.ioas_alloc().unwrap();
        assert_eq!(
            f.ictx.ioas_copy(other, f.ioas, flags, P, f.base_iova, 0),
            Ok(0)
        );
        let areas = f.ictx.ioas(other).unwrap().iopt().areas();
        assert_eq!(areas.len(), 1);
        assert_eq!(areas[0].phys, f.buffer.base());
    });
}

#[test]
fn iova_ranges() {
    variants(|f| {
        let mut ranges = [IovaRange::new(0, 0); 64];
        let aperture = IovaRange::new(MOCK_APERTURE_START, MOCK_APERTURE_LAST);
        // The ranges can be read.
        let (num, align) = f.ictx.ioas_iova_ranges_into(f.ioas, &mut ranges).unwrap();
        assert_eq!(num, 1);
        if f.stdev.is_none() {
            assert_eq!((ranges[0], align), (IovaRange::new(0, u64::MAX), 1));
        } else {
            assert_eq!((ranges[0], align), (aperture, MOCK_PAGE_SIZE));
        }
        // A buffer too small: EMSGSIZE with the count, nothing written.
        let mut ranges = [IovaRange::new(0, 0); 64];
        let e = f
            .ictx
            .ioas_iova_ranges_into(f.ioas, &mut ranges[..0])
            .unwrap_err();
        assert_eq!(e.errno(), Errno::MSGSIZE);
        assert_eq!(
            e,
            umdev_iommufd::IommufdError::TooSmall {
                what: "iova ranges",
                needed: 1
            }
        );
        assert_eq!(ranges[0], IovaRange::new(0, 0));
        // Two ranges.
        f.add_reserved(P, P).unwrap();
        let (num, _) = f.ictx.ioas_iova_ranges_into(f.ioas, &mut ranges).unwrap();
        if f.stdev.is_none() {
            assert_eq!(num, 2);
            assert_eq!(ranges[0], IovaRange::new(0, P - 1));
            assert_eq!(ranges[1], IovaRange::new(2 * P, u64::MAX));
        } else {
            assert_eq!(num, 1);
            assert_eq!(ranges[0], aperture);
        }
        // A buffer too small: the first entry is filled, the second untouched.
        let mut ranges = [IovaRange::new(0, 0); 64];
        let r = f.ictx.ioas_iova_ranges_into(f.ioas, &mut ranges[..1]);
        if f.stdev.is_none() {
            assert_eq!(r.unwrap_err().errno(), Errno::MSGSIZE);
            assert_eq!(ranges[0], IovaRange::new(0, P - 1));
        } else {
            assert_eq!(r.unwrap().0, 1);
            assert_eq!(ranges[0], aperture);
        }
        assert_eq!(ranges[1], IovaRange::new(0, 0));
    });
}

#[test]
fn access_domain_destory() {
    variants(|f| {
        let buf_size = 2 * HUGEPAGE_SIZE;
        let buf = f.env.buffer(buf_size);
        errno(
            f.ictx
                .ioas_map(f.ioas, FIXED, &buf, 0, buf_size, f.base_iova),
        )
        .unwrap();
        if let Some(stdev) = f.stdev {
            // The mock domain holds it in huge IOPTEs.
            let domain = hwpt_mock(&f.ictx, stdev.hwpt_id);
            assert_eq!(
                mock_of(domain.ops()).pte_size(f.base_iova + P),
                Some(MOCK_HUGE_PAGE_SIZE)
            );
        }
        let access = TestAccess::create(&f.ictx, f.ioas, true).unwrap();
        let (pages_id, pages) = access.pin(f.base_iova + P, P).unwrap();
        assert_eq!(pages, vec![buf.base() + P]);
        // A complicated unpin across a huge page boundary.
        if let Some(stdev) = f.stdev {
            f.ictx.device_unbind(stdev.dev_id).unwrap();
        }
        let domains_left = f.ictx.ioas(f.ioas).unwrap().iopt().domain_count();
        let held = u32::from(domains_left > 0);
        check_refs(&f.ictx, buf.base() + P, P, 1);
        check_refs(&f.ictx, buf.base() + 2 * P, buf_size - 2 * P, held);
        access.destroy_pages(pages_id).unwrap();
        check_refs(&f.ictx, buf.base() + P, P, held);
        access.destroy(&f.ictx);
    });
}

#[test]
fn access_pin() {
    variants(|f| {
        let access = TestAccess::create(&f.ictx, f.ioas, true).unwrap();
        for npages in 1..BUFFER_SIZE / P {
            let length = npages * P;
            let expect: Vec<u64> = (0..npages).map(|i| f.buffer.base() + i * P).collect();
            // Single map/unmap.
            f.map_fixed(MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
            let (id, pages) = access.pin(MOCK_APERTURE_START, length).unwrap();
            assert_eq!(pages, expect);
            access.destroy_pages(id).unwrap();
            // Double user.
            let (id1, _) = access.pin(MOCK_APERTURE_START, length).unwrap();
            let (id2, _) = access.pin(MOCK_APERTURE_START, length).unwrap();
            access.destroy_pages(id2).unwrap();
            access.destroy_pages(id1).unwrap();
            // Add and remove a domain with a user.
            let (id, _) = access.pin(MOCK_APERTURE_START, length).unwrap();
            let mock = f.env.mock_domain(&f.ictx, f.ioas).unwrap();
            check_mock_iova(
                &f.ictx,
                mock.hwpt_id,
                MOCK_APERTURE_START,
                f.buffer.base(),
                BUFFER_SIZE,
            );
            f.ictx.device_unbind(mock.dev_id).unwrap();
            access.destroy_pages(id).unwrap();
            assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
        }
        access.destroy(&f.ictx);
    });
}

#[test]
fn access_pin_unmap() {
    variants(|f| {
        let access = TestAccess::create(&f.ictx, f.ioas, true).unwrap();
        f.map_fixed(MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
        let (id, _) = access.pin(MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
        check_refs(&f.ictx, f.buffer.base(), BUFFER_SIZE, 1);
        // Triggers the unmap op.
        assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
        assert!(access.unmap_calls() >= 1);
        // The driver dropped its pin in the callback.
        assert_eq!(access.destroy_pages(id), Err(Errno::NOENT));
        check_refs(&f.ictx, f.buffer.base(), BUFFER_SIZE, 0);
        access.destroy(&f.ictx);
    });
}

/// A deterministic stand-in for the selftest's rand().
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next();
        }
    }
}

fn check_access_rw(f: &Fixture, access: &TestAccess, iova: u64) {
    let mut rand = Rand(0x1234_5678_9abc_def1);
    let mut contents = vec![0u8; BUFFER_SIZE as usize];
    rand.fill(&mut contents);
    f.buffer.write(0, &contents).unwrap();
    let in_buffer = |at: u64, len: usize| {
        let mut b = vec![0u8; len];
        f.buffer.read(at - iova, &mut b).unwrap();
        b
    };
    for at in iova + P - 50..iova + P + 50 {
        for len in 1..64usize {
            let mut tmp = vec![0u8; len];
            access.rw(at, &mut tmp, false).unwrap();
            assert_eq!(tmp, in_buffer(at, len), "read {at:#x}+{len}");
            rand.fill(&mut tmp);
            access.rw(at, &mut tmp, true).unwrap();
            assert_eq!(tmp, in_buffer(at, len), "write {at:#x}+{len}");
        }
    }
    // Multi-page read.
    let mut all = vec![0u8; BUFFER_SIZE as usize];
    access.rw(iova, &mut all, false).unwrap();
    assert_eq!(all, in_buffer(iova, BUFFER_SIZE as usize));
}

#[test]
fn access_rw() {
    variants(|f| {
        let access = TestAccess::create(&f.ictx, f.ioas, false).unwrap();
        let iova = f.map(BUFFER_SIZE).unwrap();
        // One path: there is no separate slow path (MOCK_ACCESS_RW_SLOW_PATH).
        check_access_rw(f, &access, iova);
        assert_eq!(f.unmap(iova, BUFFER_SIZE), Ok(BUFFER_SIZE));
        access.destroy(&f.ictx);
    });
}

#[test]
fn access_rw_unaligned() {
    variants(|f| {
        let access = TestAccess::create(&f.ictx, f.ioas, false).unwrap();
        // Unaligned pages.
        let iova = f.base_iova + MOCK_PAGE_SIZE;
        f.map_fixed(iova, BUFFER_SIZE).unwrap();
        check_access_rw(f, &access, iova);
        assert_eq!(f.unmap(iova, BUFFER_SIZE), Ok(BUFFER_SIZE));
        access.destroy(&f.ictx);
    });
}

#[test]
fn ioas_option_huge_pages() {
    variants(|f| {
        let opt = |set| errno(f.ictx.option_huge_pages(f.ioas, set));
        assert_eq!(opt(None), Ok(1));
        assert_eq!(opt(Some(0)), Ok(0));
        assert_eq!(opt(None), Ok(0));
        assert_eq!(opt(Some(2)), Err(Errno::INVAL));
        assert_eq!(opt(Some(1)), Ok(1));
    });
}

#[test]
fn ioas_iova_alloc() {
    variants(|f| {
        for length in 1..2 * P {
            if f.variant.mock_domains > 0 && length % MOCK_PAGE_SIZE != 0 {
                assert_eq!(f.map(length), Err(Errno::INVAL), "length {length}");
            } else {
                let iova = f.map(length).unwrap();
                assert_eq!(f.unmap(iova, length), Ok(length));
            }
        }
    });
}

#[test]
fn ioas_align_change() {
    variants(|f| {
        // The alignment cannot be upgraded with OPTION_HUGE_PAGES while a
        // domain and a map exist.
        if f.variant.mock_domains > 0 {
            return;
        }
        let map_at =
            |offset, iova| errno(f.ictx.ioas_map(f.ioas, FIXED, &f.buffer, offset, P, iova));
        // PAGE_SIZE alignment can be set when things are aligned.
        map_at(0, MOCK_APERTURE_START).unwrap();
        assert_eq!(errno(f.ictx.option_huge_pages(f.ioas, Some(0))), Ok(0));
        // Misalignment is rejected at map time.
        assert_eq!(
            map_at(MOCK_PAGE_SIZE, MOCK_APERTURE_START + P),
            Err(Errno::INVAL)
        );
        assert_eq!(errno(f.ictx.option_huge_pages(f.ioas, Some(0))), Ok(0));
        // Reduce alignment.
        assert_eq!(errno(f.ictx.option_huge_pages(f.ioas, Some(1))), Ok(1));
        // Misalignment is rejected when upgrading the alignment.
        map_at(MOCK_PAGE_SIZE, MOCK_APERTURE_START + P).unwrap();
        assert_eq!(
            errno(f.ictx.option_huge_pages(f.ioas, Some(0))),
            Err(Errno::ADDRINUSE)
        );
        assert_eq!(f.unmap(MOCK_APERTURE_START + P, P), Ok(P));
        assert_eq!(f.unmap(MOCK_APERTURE_START, P), Ok(P));
    });
}

#[test]
fn copy_sweep() {
    variants(|f| {
        let flags = MapFlags::FIXED_IOVA | MapFlags::WRITEABLE;
        let dst_ioas = f.ictx.ioas_alloc().unwrap();
        let last_iova = if f.variant.mock_domains > 0 {
            MOCK_APERTURE_START + BUFFER_SIZE - 1
        } else {
            MOCK_APERTURE_START + BUFFER_SIZE - 2
        };
        f.map_fixed(MOCK_APERTURE_START, last_iova - MOCK_APERTURE_START + 1)
            .unwrap();
        let mut iova = MOCK_APERTURE_START - P;
        while iova <= last_iova {
            let r = errno(f.ictx.ioas_copy(
                dst_ioas,
                f.ioas,
                flags,
                MOCK_PAGE_SIZE,
                iova,
                MOCK_APERTURE_START,
            ));
            if iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > last_iova {
                assert_eq!(r, Err(Errno::NOENT), "src {iova:#x}");
            } else {
                assert_eq!(r, Ok(MOCK_APERTURE_START), "src {iova:#x}");
                let dst_area = &f.ictx.ioas(dst_ioas).unwrap().iopt().areas()[0];
                assert_eq!(
                    dst_area.phys,
                    f.buffer.base() + (iova - MOCK_APERTURE_START)
                );
                assert_eq!(
                    errno(
                        f.ictx
                            .ioas_unmap(dst_ioas, MOCK_APERTURE_START, MOCK_PAGE_SIZE)
                    ),
                    Ok(MOCK_PAGE_SIZE)
                );
            }
            iova += 511;
        }
        f.ictx.destroy(dst_ioas).unwrap();
    });
}

/// The selftest maps a test dmabuf with IOMMU_IOAS_MAP_FILE; a memfd
/// memory object stands in for it (the range checks are MAP_FILE's).
#[test]
fn dmabuf_simple() {
    variants(|f| {
        let size = 4 * P;
        let file = f.env.memfd(size);
        let map_file = |start, len| errno(f.ictx.ioas_map(f.ioas, RW, &file, start, len, 0));
        assert_eq!(map_file(0, 0), Err(Errno::INVAL));
        assert_eq!(map_file(size, size), Err(Errno::INVAL));
        assert_eq!(map_file(0, size + 1), Err(Errno::INVAL));
        map_file(0, size).unwrap();
    });
}

/// Not a selftest: the locked-memory limit (RLIMIT_MEMLOCK) is enforced
/// when pages are pinned (domain fill, access pin), ENOMEM past it, and
/// nothing changes on failure.
#[test]
fn pin_limit_enforced() {
    variants(|f| {
        f.ictx.account().set_limit(8);
        let access = TestAccess::create(&f.ictx, f.ioas, true).unwrap();
        let r = f.map_fixed(MOCK_APERTURE_START, BUFFER_SIZE);
        if f.stdev.is_some() {
            // The domain fill pins all 16 pages.
            assert_eq!(r, Err(Errno::NOMEM));
            assert!(f.ictx.ioas(f.ioas).unwrap().iopt().is_empty());
            f.map_fixed(MOCK_APERTURE_START, 8 * P).unwrap();
            assert_eq!(f.ictx.account().pinned(), 8);
            assert_eq!(
                f.map_fixed(MOCK_APERTURE_START + 8 * P, P),
                Err(Errno::NOMEM)
            );
            // An access shares the domain's pins.
            let (id, _) = access.pin(MOCK_APERTURE_START, 8 * P).unwrap();
            assert_eq!(f.ictx.account().pinned(), 8);
            access.destroy_pages(id).unwrap();
        } else {
            // Without a domain nothing is pinned until an access asks.
            r.unwrap();
            assert_eq!(f.ictx.account().pinned(), 0);
            let (id, _) = access.pin(MOCK_APERTURE_START, 8 * P).unwrap();
            assert_eq!(
                access.pin(MOCK_APERTURE_START + 8 * P, P),
                Err(Errno::NOMEM)
            );
            assert_eq!(f.ictx.account().pinned(), 8);
            access.destroy_pages(id).unwrap();
            assert_eq!(f.ictx.account().pinned(), 0);
        }
        access.destroy(&f.ictx);
    });
}
