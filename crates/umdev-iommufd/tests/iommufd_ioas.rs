//! Ports of FIXTURE(iommufd_ioas) from tools/testing/selftests/iommu/iommufd.c
//! (kernel-semantics §3.3), variants no_domain / mock_domain.

mod common;

use std::sync::Arc;

use common::{Env, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE};
use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;
use umdev_iommufd::io_pagetable::IovaRange;
use umdev_iommufd::{Ictx, MapFlags};

const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const FIXED: MapFlags = RW.union(MapFlags::FIXED_IOVA);

/// The fixture: a context, an IOAS and, for the mock_domain variant, one
/// mock device attached to it.
struct Fixture {
    _env: Env,
    ictx: Arc<Ictx>,
    ioas: u32,
    base_iova: u64,
    buffer: Arc<MemoryObject>,
}

impl Fixture {
    fn new(domains: usize) -> Self {
        let env = Env::new();
        let ictx = Ictx::new(env.iommu.clone());
        let ioas = ictx.ioas_alloc().unwrap();
        for _ in 0..domains {
            env.mock_domain(&ictx, ioas).unwrap();
        }
        let buffer = env.buffer(64 * PAGE_SIZE);
        let base_iova = if domains > 0 { MOCK_APERTURE_START } else { 0 };
        Self {
            _env: env,
            ictx,
            ioas,
            base_iova,
            buffer,
        }
    }

    fn map_fixed(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        self.ictx
            .ioas_map(self.ioas, FIXED, &self.buffer, 0, length, iova)
            .map_err(|e| e.errno())
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        self.ictx.ioas_unmap(self.ioas, iova, length).map_err(|e| e.errno())
    }
}

fn variants(f: impl Fn(&Fixture)) {
    for domains in [0, 1, 2] {
        f(&Fixture::new(domains));
    }
}

#[test]
fn ioas_destroy() {
    let f = Fixture::new(0);
    f.ictx.destroy(f.ioas).unwrap();
    let f = Fixture::new(1);
    assert_eq!(f.ictx.destroy(f.ioas).unwrap_err().errno(), Errno::BUSY);
}

#[test]
fn area() {
    variants(|f| {
        for i in 0..10 {
            assert_eq!(f.unmap(f.base_iova + i * PAGE_SIZE, PAGE_SIZE), Err(Errno::NOENT));
        }
        for i in 0..10 {
            f.map_fixed(f.base_iova + i * PAGE_SIZE, PAGE_SIZE).unwrap();
        }
        for i in 0..10 {
            assert_eq!(f.unmap(f.base_iova + i * PAGE_SIZE, PAGE_SIZE), Ok(PAGE_SIZE));
        }
        // Partial unmap of either page of a two-page area.
        f.map_fixed(f.base_iova, 2 * PAGE_SIZE).unwrap();
        assert_eq!(f.unmap(f.base_iova, PAGE_SIZE), Err(Errno::NOENT));
        assert_eq!(f.unmap(f.base_iova + PAGE_SIZE, PAGE_SIZE), Err(Errno::NOENT));
        // Overlapping FIXED maps.
        let b = f.base_iova + 16 * PAGE_SIZE;
        f.map_fixed(b, 4 * PAGE_SIZE).unwrap();
        for (iova, len) in [
            (b, 4 * PAGE_SIZE),
            (b - PAGE_SIZE, 2 * PAGE_SIZE),
            (b + 3 * PAGE_SIZE, 2 * PAGE_SIZE),
            (b + PAGE_SIZE, PAGE_SIZE),
            (b - PAGE_SIZE, 6 * PAGE_SIZE),
        ] {
            assert_eq!(f.map_fixed(iova, len), Err(Errno::EXIST), "{iova:#x}+{len:#x}");
        }
        // Unmap all, twice.
        assert_eq!(f.unmap(0, u64::MAX), Ok(6 * PAGE_SIZE));
        assert_eq!(f.unmap(0, u64::MAX), Ok(0));
    });
}

#[test]
fn unmap_fully_contained_areas() {
    variants(|f| {
        // Give no_domain some space to rewind base_iova.
        let base = f.base_iova + 4 * PAGE_SIZE;
        for i in 0..4 {
            f.map_fixed(base + i * 16 * PAGE_SIZE, 8 * PAGE_SIZE).unwrap();
        }
        // A range cutting the first or the last area.
        assert_eq!(f.unmap(base - 4 * PAGE_SIZE, 8 * PAGE_SIZE), Err(Errno::NOENT));
        assert_eq!(
            f.unmap(base + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE, 8 * PAGE_SIZE),
            Err(Errno::NOENT)
        );
        // A range covering all four, gaps included.
        assert_eq!(
            f.unmap(base - 4 * PAGE_SIZE, 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE),
            Ok(32 * PAGE_SIZE)
        );
    });
}

#[test]
fn area_auto_iova() {
    variants(|f| {
        let reserved = IovaRange::new(f.base_iova + 8 * PAGE_SIZE, f.base_iova + 16 * PAGE_SIZE - 1);
        // The selftest reserves with IOMMU_TEST_OP_ADD_RESERVED; the
        // explicit reservation owner is its equivalent here.
        let mut iovas = Vec::new();
        for i in 1..10u64 {
            let len = PAGE_SIZE * i;
            let iova = f.ictx.ioas_map(f.ioas, RW, &f.buffer, 0, len, 0).unwrap();
            assert_eq!(iova % (1 << len.trailing_zeros()), 0);
            assert!(iova >= f.base_iova.max(PAGE_SIZE));
            iovas.push((iova, len));
        }
        for (iova, len) in iovas {
            assert_eq!(f.unmap(iova, len), Ok(len));
        }
        f.ictx.ioas_allow_iovas(f.ioas, &[reserved]).unwrap();
        for i in 1..4u64 {
            let iova = f.ictx.ioas_map(f.ioas, RW, &f.buffer, 0, PAGE_SIZE * i, 0).unwrap();
            assert!(reserved.contains(&IovaRange::new(iova, iova + PAGE_SIZE * i - 1)));
        }
    });
}

#[test]
fn iova_ranges() {
    let f = Fixture::new(0);
    assert_eq!(f.ictx.ioas_iova_ranges(f.ioas).unwrap(), (vec![IovaRange::new(0, u64::MAX)], 1));
    let f = Fixture::new(1);
    assert_eq!(
        f.ictx.ioas_iova_ranges(f.ioas).unwrap(),
        (vec![IovaRange::new(MOCK_APERTURE_START, (1 << 31) - 1)], MOCK_PAGE_SIZE)
    );
}

#[test]
fn ioas_iova_alloc() {
    for domains in [0, 1] {
        let f = Fixture::new(domains);
        for length in 1..2 * PAGE_SIZE {
            let r = f.ictx.ioas_map(f.ioas, RW, &f.buffer, 0, length, 0);
            if domains > 0 && length % MOCK_PAGE_SIZE != 0 {
                assert_eq!(r.unwrap_err().errno(), Errno::INVAL, "length {length}");
            } else {
                let iova = r.unwrap();
                assert_eq!(f.unmap(iova, length), Ok(length));
            }
        }
    }
}

#[test]
fn copy_area() {
    let f = Fixture::new(1);
    f.map_fixed(f.base_iova, 4 * PAGE_SIZE).unwrap();
    let dst = f.base_iova + 16 * PAGE_SIZE;
    f.ictx.ioas_copy(f.ioas, f.ioas, FIXED, 4 * PAGE_SIZE, f.base_iova, dst).unwrap();
    let other = f.ictx.ioas_alloc().unwrap();
    let iova = f.ictx.ioas_copy(other, f.ioas, RW, 4 * PAGE_SIZE, f.base_iova, 0).unwrap();
    assert!(iova >= PAGE_SIZE);
    // A sub-range works; a range crossing into a hole does not.
    f.ictx.ioas_copy(other, f.ioas, RW, PAGE_SIZE, f.base_iova + PAGE_SIZE, 0).unwrap();
    assert_eq!(
        f.ictx.ioas_copy(other, f.ioas, RW, 5 * PAGE_SIZE, f.base_iova, 0).unwrap_err().errno(),
        Errno::NOENT
    );
}
