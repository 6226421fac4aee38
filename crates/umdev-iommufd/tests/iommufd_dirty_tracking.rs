//! Ports of FIXTURE(iommufd_dirty_tracking) from
//! tools/testing/selftests/iommu/iommufd.c (kernel-semantics §3.5).
//! Variants domain_dirty8k … domain_dirty128M_huge: the buffer size, and
//! whether huge pages stay enabled (otherwise HUGE_PAGES = 0, so the mock
//! domain holds 2 KiB IOPTEs; with them it holds 1 MiB IOPTEs, the
//! selftest's MOCK_IOMMUPT_HUGE format, and one dirty bit covers 512
//! bitmap bits).

mod common;

use std::sync::Arc;

use common::*;
use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;
use umdev_iommufd::hw_info::{HwCapabilities, HwInfoFlags};
use umdev_iommufd::{
    DirtyRange, DirtyTrackingFlags, GetDirtyBitmapFlags, HwptAllocFlags, HwptData, Ictx, MapFlags,
};

const FIXED: MapFlags = MapFlags::READABLE
    .union(MapFlags::WRITEABLE)
    .union(MapFlags::FIXED_IOVA);
const DIRTY: HwptAllocFlags = HwptAllocFlags::DIRTY_TRACKING;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

#[derive(Clone, Copy, Debug)]
struct Variant {
    buffer_size: u64,
    hugepages: bool,
}

const VARIANTS: [Variant; 9] = [
    // domain_dirty8k: half of a u8 index bitmap
    Variant {
        buffer_size: 8 * KIB,
        hugepages: false,
    },
    // domain_dirty16k: one u8 index bitmap
    Variant {
        buffer_size: 16 * KIB,
        hugepages: false,
    },
    // domain_dirty64k: one u32 index bitmap
    Variant {
        buffer_size: 64 * KIB,
        hugepages: false,
    },
    // domain_dirty128k: one u64 index bitmap
    Variant {
        buffer_size: 128 * KIB,
        hugepages: false,
    },
    // domain_dirty320k: two u64 index and trailing end bitmap
    Variant {
        buffer_size: 320 * KIB,
        hugepages: false,
    },
    // domain_dirty64M: 4K bitmap (64M IOVA range)
    Variant {
        buffer_size: 64 * MIB,
        hugepages: false,
    },
    // domain_dirty64M_huge
    Variant {
        buffer_size: 64 * MIB,
        hugepages: true,
    },
    // domain_dirty128M: 8K bitmap (128M IOVA range)
    Variant {
        buffer_size: 128 * MIB,
        hugepages: false,
    },
    // domain_dirty128M_huge
    Variant {
        buffer_size: 128 * MIB,
        hugepages: true,
    },
];

struct Fixture {
    env: Env,
    ictx: Arc<Ictx>,
    variant: Variant,
    ioas: u32,
    stdev: MockDev,
    buffer: Arc<MemoryObject>,
    /// Bytes per bitmap bit (MOCK_PAGE_SIZE).
    page_size: u64,
    /// Bits of the bitmap.
    bitmap_bits: u64,
    others: Vec<MockDev>,
}

impl Fixture {
    fn new(variant: Variant) -> Self {
        let env = Env::new();
        let ictx = env.ictx();
        let size = variant
            .buffer_size
            .max(if variant.hugepages { HUGEPAGE_SIZE } else { 0 });
        let buffer = env.mem.alloc_anonymous(size).unwrap();
        let ioas = ictx.ioas_alloc().unwrap();
        // The page size fed into the IOMMU page tables must match what the
        // dirty logic expects.
        if !variant.hugepages {
            assert_eq!(errno(ictx.option_huge_pages(ioas, Some(0))), Ok(0));
        }
        let stdev = env.mock_domain(&ictx, ioas).unwrap();
        Self {
            env,
            ictx,
            variant,
            ioas,
            stdev,
            buffer,
            page_size: MOCK_PAGE_SIZE,
            bitmap_bits: variant.buffer_size / MOCK_PAGE_SIZE,
            others: Vec::new(),
        }
    }

    fn set_tracking(&self, hwpt: u32, enable: bool) {
        let flags = if enable {
            DirtyTrackingFlags::ENABLE
        } else {
            DirtyTrackingFlags::empty()
        };
        self.ictx.hwpt_set_dirty_tracking(hwpt, flags).unwrap();
    }

    fn teardown(self) {
        let mut bdfs = vec![self.stdev.bdf];
        bdfs.extend(self.others.iter().map(|d| d.bdf));
        teardown(&self.env, &self.ictx, &bdfs);
    }
}

fn variants(f: impl Fn(&mut Fixture)) {
    for v in VARIANTS {
        let mut fx = Fixture::new(v);
        f(&mut fx);
        fx.teardown();
    }
}

fn test_bit(bitmap: &[u8], bit: u64) -> bool {
    bitmap[(bit / 8) as usize] & (1 << (bit % 8)) != 0
}

/// _test_mock_dirty_bitmaps: mark the first bit of every pair of IOPTEs
/// dirty (IOMMU_TEST_OP_DIRTY), read the bitmap (all bits of each dirty
/// IOPTE set, none else), then read again (cleared, unless NO_CLEAR).
fn test_mock_dirty_bitmaps(
    f: &Fixture,
    hwpt: u32,
    pte_page_size: u64,
    bitmap: &mut [u8],
    flags: GetDirtyBitmapFlags,
) {
    let (length, iova, page_size, nbits) = (
        f.variant.buffer_size,
        MOCK_APERTURE_START,
        f.page_size,
        f.bitmap_bits,
    );
    let npte = pte_page_size / page_size;
    let pteset = 2 * npte;
    let nr = (nbits / pteset).max(1);
    let nbytes = nbits.div_ceil(8) as usize;
    let bitmap = &mut bitmap[..nbytes];

    bitmap.fill(0);
    for i in (0..nbits).step_by(pteset as usize) {
        bitmap[(i / 8) as usize] |= 1 << (i % 8);
    }
    assert_eq!(
        mock_domain_set_dirty(&f.ictx, hwpt, length, iova, page_size, bitmap),
        nr
    );

    let range = DirtyRange {
        iova,
        length,
        page_size,
    };
    bitmap.fill(0);
    f.ictx
        .hwpt_get_dirty_bitmap_into(hwpt, flags, range, bitmap)
        .unwrap();
    for i in (0..nbits).step_by(pteset as usize) {
        for j in 0..pteset.min(nbits - i) {
            assert_eq!(test_bit(bitmap, i + j), j < npte, "bit {}", i + j);
        }
    }

    bitmap.fill(0);
    f.ictx
        .hwpt_get_dirty_bitmap_into(hwpt, flags, range, bitmap)
        .unwrap();
    let no_clear = flags.contains(GetDirtyBitmapFlags::NO_CLEAR);
    for i in (0..nbits).step_by(pteset as usize) {
        for j in 0..pteset.min(nbits - i) {
            assert_eq!(
                test_bit(bitmap, i + j),
                j < npte && no_clear,
                "bit {}",
                i + j
            );
        }
    }
}

#[test]
fn enforce_dirty() {
    variants(|f| {
        // The regular case.
        let hwpt = f
            .ictx
            .hwpt_alloc(f.stdev.dev_id, f.ioas, DIRTY, HwptData::None)
            .unwrap();
        let dev = f.env.mock_domain(&f.ictx, hwpt).unwrap();
        assert_eq!(
            errno(f.env.mock_domain_flags(&f.ictx, hwpt, NO_DIRTY)),
            Err(Errno::INVAL)
        );
        f.ictx.device_unbind(dev.dev_id).unwrap();
        f.ictx.destroy(hwpt).unwrap();
        // An IOMMU device without dirty tracking.
        let ioas = f.ictx.ioas_alloc().unwrap();
        let dev = f.env.mock_domain_flags(&f.ictx, ioas, NO_DIRTY).unwrap();
        assert_eq!(
            errno(f.ictx.hwpt_alloc(dev.dev_id, ioas, DIRTY, HwptData::None)),
            Err(Errno::OPNOTSUPP)
        );
        f.ictx.device_unbind(dev.dev_id).unwrap();
        f.others.push(dev);
    });
}

#[test]
fn set_dirty_tracking() {
    variants(|f| {
        let hwpt = f
            .ictx
            .hwpt_alloc(f.stdev.dev_id, f.ioas, DIRTY, HwptData::None)
            .unwrap();
        let dev = f.env.mock_domain(&f.ictx, hwpt).unwrap();
        f.set_tracking(hwpt, true);
        f.set_tracking(hwpt, false);
        f.ictx.device_unbind(dev.dev_id).unwrap();
        f.ictx.destroy(hwpt).unwrap();
    });
}

#[test]
fn pasid_set_dirty_tracking() {
    variants(|f| {
        let pasid = 100;
        // The regular case.
        let flags = HwptAllocFlags::PASID | DIRTY;
        let hwpt = f
            .ictx
            .hwpt_alloc(f.stdev.dev_id, f.ioas, flags, HwptData::None)
            .unwrap();
        let dev = f.env.mock_domain_flags(&f.ictx, hwpt, PASID).unwrap();
        f.ictx.device_attach(dev.dev_id, pasid, hwpt).unwrap();
        f.set_tracking(hwpt, true);
        f.set_tracking(hwpt, false);
        f.ictx.device_detach(dev.dev_id, pasid).unwrap();
        f.ictx.device_unbind(dev.dev_id).unwrap();
        // An IOMMU device without dirty tracking.
        let no_dirty_pasid = MockDeviceFlags {
            no_dirty: true,
            pasid: true,
            ..MockDeviceFlags::default()
        };
        let ioas = f.ictx.ioas_alloc().unwrap();
        let dev2 = f
            .env
            .mock_domain_flags(&f.ictx, ioas, no_dirty_pasid)
            .unwrap();
        assert_eq!(
            errno(f.ictx.device_attach(dev2.dev_id, pasid, hwpt)),
            Err(Errno::INVAL)
        );
        f.ictx.device_unbind(dev2.dev_id).unwrap();
        f.ictx.destroy(hwpt).unwrap();
        f.others.extend([dev, dev2]);
    });
}

#[test]
fn device_dirty_capability() {
    variants(|f| {
        let hwpt = f
            .ictx
            .hwpt_alloc(
                f.stdev.dev_id,
                f.ioas,
                HwptAllocFlags::empty(),
                HwptData::None,
            )
            .unwrap();
        let dev = f.env.mock_domain(&f.ictx, hwpt).unwrap();
        let info = f
            .ictx
            .get_hw_info(f.stdev.dev_id, HwInfoFlags::empty(), 0, &mut [])
            .unwrap();
        assert!(
            info.out_capabilities
                .contains(HwCapabilities::DIRTY_TRACKING)
        );
        f.ictx.device_unbind(dev.dev_id).unwrap();
        f.ictx.destroy(hwpt).unwrap();
        // And a device without it does not report it.
        let nd = f.env.mock_domain_flags(&f.ictx, f.ioas, NO_DIRTY).unwrap();
        let info = f
            .ictx
            .get_hw_info(nd.dev_id, HwInfoFlags::empty(), 0, &mut [])
            .unwrap();
        assert!(
            !info
                .out_capabilities
                .contains(HwCapabilities::DIRTY_TRACKING)
        );
        f.others.push(nd);
    });
}

fn get_dirty_bitmap_variant(f: &Fixture, flags: GetDirtyBitmapFlags) {
    let pte_page_size = if f.variant.hugepages {
        MOCK_HUGE_PAGE_SIZE
    } else {
        MOCK_PAGE_SIZE
    };
    errno(f.ictx.ioas_map(
        f.ioas,
        FIXED,
        &f.buffer,
        0,
        f.variant.buffer_size,
        MOCK_APERTURE_START,
    ))
    .unwrap();
    let hwpt = f
        .ictx
        .hwpt_alloc(f.stdev.dev_id, f.ioas, DIRTY, HwptData::None)
        .unwrap();
    let domain = hwpt_mock(&f.ictx, hwpt);
    let mock = mock_of(domain.ops());
    assert_eq!(mock.pte_size(MOCK_APERTURE_START), Some(pte_page_size));
    f.set_tracking(hwpt, true);
    // A bitmap with room for the unaligned cases.
    let mut bitmap = vec![0u8; f.bitmap_bits.div_ceil(8) as usize + 2 * PAGE_SIZE as usize];
    test_mock_dirty_bitmaps(f, hwpt, pte_page_size, &mut bitmap, flags);
    // A PAGE_SIZE-unaligned bitmap.
    test_mock_dirty_bitmaps(
        f,
        hwpt,
        pte_page_size,
        &mut bitmap[MOCK_PAGE_SIZE as usize..],
        flags,
    );
    // A u64-unaligned bitmap.
    test_mock_dirty_bitmaps(f, hwpt, pte_page_size, &mut bitmap[0xff1..], flags);
    f.ictx.destroy(hwpt).unwrap();
}

#[test]
fn get_dirty_bitmap() {
    variants(|f| get_dirty_bitmap_variant(f, GetDirtyBitmapFlags::empty()));
}

#[test]
fn get_dirty_bitmap_no_clear() {
    variants(|f| get_dirty_bitmap_variant(f, GetDirtyBitmapFlags::NO_CLEAR));
}

/// Not a selftest: every errno of HWPT_SET_DIRTY_TRACKING and
/// HWPT_GET_DIRTY_BITMAP (kernel-semantics §1.1), in Linux's order.
#[test]
fn dirty_ioctl_errnos() {
    let mut f = Fixture::new(VARIANTS[3]);
    let len = f.variant.buffer_size;
    let range = |iova, length, page_size| DirtyRange {
        iova,
        length,
        page_size,
    };
    let get = |f: &Fixture, hwpt, flags, r, buf: &mut [u8]| {
        errno(f.ictx.hwpt_get_dirty_bitmap_into(hwpt, flags, r, buf))
    };
    let none = GetDirtyBitmapFlags::empty();
    let mut buf = vec![0u8; 64];
    errno(
        f.ictx
            .ioas_map(f.ioas, FIXED, &f.buffer, 0, len, MOCK_APERTURE_START),
    )
    .unwrap();
    let hwpt = f
        .ictx
        .hwpt_alloc(f.stdev.dev_id, f.ioas, DIRTY, HwptData::None)
        .unwrap();
    let ok = range(MOCK_APERTURE_START, len, MOCK_PAGE_SIZE);

    // SET_DIRTY_TRACKING.
    let set = |id, bits| {
        errno(
            f.ictx
                .hwpt_set_dirty_tracking(id, DirtyTrackingFlags::from_bits_retain(bits)),
        )
    };
    assert_eq!(set(hwpt, 2), Err(Errno::OPNOTSUPP));
    assert_eq!(set(f.ioas, 1), Err(Errno::NOENT));
    assert_eq!(set(f.stdev.hwpt_id, 1), Err(Errno::OPNOTSUPP));
    // GET_DIRTY_BITMAP before tracking is on: the driver refuses.
    assert_eq!(get(&f, hwpt, none, ok, &mut buf), Err(Errno::INVAL));
    f.set_tracking(hwpt, true);
    assert_eq!(get(&f, hwpt, none, ok, &mut buf), Ok(()));
    assert_eq!(
        get(
            &f,
            hwpt,
            GetDirtyBitmapFlags::from_bits_retain(2),
            ok,
            &mut buf
        ),
        Err(Errno::OPNOTSUPP)
    );
    assert_eq!(get(&f, f.ioas, none, ok, &mut buf), Err(Errno::NOENT));
    // Range checks (iommufd_check_iova_range): overflow, the IOAS alignment
    // (PAGE_SIZE with huge pages off), page_size 0 and its alignment.
    assert_eq!(
        get(
            &f,
            hwpt,
            none,
            range(u64::MAX - 0xfff, 0x2000, 0x1000),
            &mut buf
        ),
        Err(Errno::OVERFLOW)
    );
    assert_eq!(
        get(
            &f,
            hwpt,
            none,
            range(
                MOCK_APERTURE_START + MOCK_PAGE_SIZE,
                PAGE_SIZE,
                MOCK_PAGE_SIZE
            ),
            &mut buf
        ),
        Err(Errno::INVAL)
    );
    assert_eq!(
        get(&f, hwpt, none, range(MOCK_APERTURE_START, len, 0), &mut buf),
        Err(Errno::INVAL)
    );
    assert_eq!(
        get(
            &f,
            hwpt,
            none,
            range(
                MOCK_APERTURE_START + PAGE_SIZE,
                2 * PAGE_SIZE,
                2 * PAGE_SIZE
            ),
            &mut buf
        ),
        Err(Errno::INVAL)
    );
    // A HWPT without DIRTY_TRACKING.
    assert_eq!(
        get(&f, f.stdev.hwpt_id, none, ok, &mut buf),
        Err(Errno::OPNOTSUPP)
    );
    // A bitmap shorter than the bits.
    assert_eq!(get(&f, hwpt, none, ok, &mut buf[..1]), Err(Errno::FAULT));
    // A range not covered by contiguous areas; the areas before the gap
    // are read (and cleared).
    let mock_dom = hwpt_mock(&f.ictx, hwpt);
    assert!(mock_of(mock_dom.ops()).set_dirty(MOCK_APERTURE_START));
    buf.fill(0);
    assert_eq!(
        get(
            &f,
            hwpt,
            none,
            range(MOCK_APERTURE_START, len + PAGE_SIZE, MOCK_PAGE_SIZE),
            &mut buf
        ),
        Err(Errno::INVAL)
    );
    assert_eq!(buf[0], 1);
    // The Vec form: one u64 word per 64 bits, and the read above cleared.
    let words = f.ictx.hwpt_get_dirty_bitmap(hwpt, none, ok).unwrap();
    assert_eq!(words, vec![0u64; (f.bitmap_bits / 64) as usize]);
    assert!(mock_of(mock_dom.ops()).set_dirty(MOCK_APERTURE_START + 33 * MOCK_PAGE_SIZE));
    let words = f.ictx.hwpt_get_dirty_bitmap(hwpt, none, ok).unwrap();
    assert_eq!(words, vec![1 << 33]);
    f.ictx.destroy(hwpt).unwrap();
    f.others.clear();
    f.teardown();
}
