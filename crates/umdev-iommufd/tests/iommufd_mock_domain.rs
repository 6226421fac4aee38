//! Ports of FIXTURE(iommufd_mock_domain) from
//! tools/testing/selftests/iommu/iommufd.c (kernel-semantics §3.4).
//! Variants: one_domain, two_domains, one_domain_hugepage,
//! two_domains_hugepage, one_domain_file, one_domain_file_hugepage. As in
//! Linux, the second mock device of two_domains joins the first one's
//! auto HWPT (any auto domain that accepts a device is reused). "Hugepage"
//! buffers are 2 × 2 MiB and physically contiguous, so the mock domain
//! holds them in 1 MiB IOPTEs; "file" buffers are memfds.

mod common;

use std::sync::Arc;

use common::*;
use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;
use umdev_iommufd::{HwptAllocFlags, HwptData, Ictx, MapFlags};

const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const P: u64 = PAGE_SIZE;

#[derive(Clone, Copy, Debug)]
struct Variant {
    mock_domains: usize,
    hugepages: bool,
    file: bool,
}

const VARIANTS: [Variant; 6] = [
    // one_domain
    Variant {
        mock_domains: 1,
        hugepages: false,
        file: false,
    },
    // two_domains
    Variant {
        mock_domains: 2,
        hugepages: false,
        file: false,
    },
    // one_domain_hugepage
    Variant {
        mock_domains: 1,
        hugepages: true,
        file: false,
    },
    // two_domains_hugepage
    Variant {
        mock_domains: 2,
        hugepages: true,
        file: false,
    },
    // one_domain_file
    Variant {
        mock_domains: 1,
        hugepages: false,
        file: true,
    },
    // one_domain_file_hugepage
    Variant {
        mock_domains: 1,
        hugepages: true,
        file: true,
    },
];

struct Fixture {
    env: Env,
    ictx: Arc<Ictx>,
    variant: Variant,
    ioas: u32,
    devs: Vec<MockDev>,
    /// hwpt_ids[1]: the second device's HWPT, or 0.
    hwpt_id1: u32,
    mmap_buf_size: u64,
}

impl Fixture {
    fn new(variant: Variant) -> Self {
        let env = Env::new();
        let ictx = env.ictx();
        let ioas = ictx.ioas_alloc().unwrap();
        let devs: Vec<MockDev> = (0..variant.mock_domains)
            .map(|_| env.mock_domain(&ictx, ioas).unwrap())
            .collect();
        let hwpt_id1 = devs.get(1).map_or(0, |d| d.hwpt_id);
        Self {
            env,
            ictx,
            variant,
            ioas,
            devs,
            hwpt_id1,
            mmap_buf_size: if variant.hugepages {
                2 * HUGEPAGE_SIZE
            } else {
                8 * P
            },
        }
    }

    fn hwpt_id(&self) -> u32 {
        self.devs[0].hwpt_id
    }

    /// The variant's kind of buffer.
    fn buffer(&self, size: u64) -> Arc<MemoryObject> {
        if self.variant.file {
            self.env.memfd(size)
        } else {
            self.env.buffer(size)
        }
    }

    fn map(&self, mem: &Arc<MemoryObject>, offset: u64, length: u64) -> Result<u64, Errno> {
        errno(self.ictx.ioas_map(self.ioas, RW, mem, offset, length, 0))
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        errno(self.ictx.ioas_unmap(self.ioas, iova, length))
    }

    /// check_mock_iova: the pages made it to the domain(s).
    fn check_mock_iova(&self, phys: u64, iova: u64, length: u64) {
        check_mock_iova(&self.ictx, self.hwpt_id(), iova, phys, length);
        if self.hwpt_id1 != 0 {
            check_mock_iova(&self.ictx, self.hwpt_id1, iova, phys, length);
        }
    }

    fn teardown(self) {
        let bdfs: Vec<_> = self.devs.iter().map(|d| d.bdf).collect();
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

#[test]
fn basic() {
    variants(|f| {
        // A simple one page map. (The mmap variant's EFAULT cases need a
        // buffer unmapped behind the kernel's back; memory objects cannot
        // be partly unmapped, so they do not apply.)
        let buf = f.buffer(BUFFER_SIZE);
        let iova = f.map(&buf, 0, P).unwrap();
        f.check_mock_iova(buf.base(), iova, P);
        if f.variant.file {
            // MAP_FILE past the end of the file.
            let tmp = f.env.memfd(f.mmap_buf_size);
            assert_eq!(f.map(&tmp, 0, f.mmap_buf_size + 1), Err(Errno::INVAL));
        }
    });
}

#[test]
fn ro_unshare() {
    variants(|f| {
        let buf = f.env.memfd(P);
        let iova = errno(f.ictx.ioas_map(f.ioas, MapFlags::READABLE, &buf, 0, P, 0)).unwrap();
        f.check_mock_iova(buf.base(), iova, P);
        let domain = hwpt_mock(&f.ictx, f.hwpt_id());
        assert_eq!(mock_of(domain.ops()).pte_prot(iova), Some(Prot::READ));
        // A CPU write after mapping for read must not move the page.
        buf.write(0, &[1u8; P as usize]).unwrap();
        f.check_mock_iova(buf.base(), iova, P);
    });
}

#[test]
fn all_aligns() {
    variants(|f| {
        let buf_size = f.mmap_buf_size;
        let test_step = if f.variant.hugepages {
            buf_size / 16
        } else {
            MOCK_PAGE_SIZE
        };
        let buf = f.buffer(buf_size);
        check_refs(&f.ictx, buf.base(), buf_size, 0);
        // Every combination of page size and alignment within the buffer
        // (fewer for huge pages).
        let mut start = 0;
        while start < buf_size {
            let mut end = if f.variant.hugepages {
                buf_size
            } else {
                start + MOCK_PAGE_SIZE
            };
            while end < buf_size {
                let length = end - start;
                let iova = f.map(&buf, start, length).unwrap();
                f.check_mock_iova(buf.base() + start, iova, length);
                check_refs(
                    &f.ictx,
                    buf.base() + start / P * P,
                    end / P * P - start / P * P,
                    1,
                );
                assert_eq!(f.unmap(iova, length), Ok(length));
                end += MOCK_PAGE_SIZE;
            }
            start += test_step;
        }
        check_refs(&f.ictx, buf.base(), buf_size, 0);
    });
}

#[test]
fn all_aligns_copy() {
    variants(|f| {
        let buf_size = f.mmap_buf_size;
        let test_step = if f.variant.hugepages {
            buf_size / 16
        } else {
            MOCK_PAGE_SIZE
        };
        let buf = f.buffer(buf_size);
        check_refs(&f.ictx, buf.base(), buf_size, 0);
        let mut start = 0;
        while start < buf_size {
            let mut end = if f.variant.hugepages {
                buf_size
            } else {
                start + MOCK_PAGE_SIZE
            };
            while end < buf_size {
                let length = end - start;
                let iova = f.map(&buf, start, length).unwrap();
                // Add and destroy a mock device while the area exists.
                let old = f.hwpt_id1;
                let mock = f.env.mock_domain(&f.ictx, f.ioas).unwrap();
                f.hwpt_id1 = mock.hwpt_id;
                f.check_mock_iova(buf.base() + start, iova, length);
                let pinned = (start / P * P, end / P * P - start / P * P);
                check_refs(&f.ictx, buf.base() + pinned.0, pinned.1, 1);
                f.ictx.device_unbind(mock.dev_id).unwrap();
                f.hwpt_id1 = old;
                // The mock device joined the auto HWPT; a manual HWPT is a
                // real second domain, filled from the existing area with
                // the same pins.
                let manual = f
                    .ictx
                    .hwpt_alloc(
                        f.devs[0].dev_id,
                        f.ioas,
                        HwptAllocFlags::empty(),
                        HwptData::None,
                    )
                    .unwrap();
                check_mock_iova(&f.ictx, manual, iova, buf.base() + start, length);
                check_refs(&f.ictx, buf.base() + pinned.0, pinned.1, 1);
                f.ictx.destroy(manual).unwrap();
                assert_eq!(f.unmap(iova, length), Ok(length));
                end += MOCK_PAGE_SIZE;
            }
            start += test_step;
        }
        check_refs(&f.ictx, buf.base(), buf_size, 0);
    });
}

#[test]
fn user_copy() {
    variants(|f| {
        let buf = f.buffer(BUFFER_SIZE);
        let copy_flags = MapFlags::FIXED_IOVA | MapFlags::WRITEABLE;
        // Pin the pages in an IOAS with no domains, then copy to an IOAS
        // with domains.
        let ioas_id = f.ictx.ioas_alloc().unwrap();
        let src_iova = errno(f.ictx.ioas_map(ioas_id, RW, &buf, 0, BUFFER_SIZE, 0)).unwrap();
        let access = TestAccess::create(&f.ictx, ioas_id, true).unwrap();
        access.pin(src_iova, BUFFER_SIZE).unwrap();
        let copied = f.ictx.ioas_copy(
            f.ioas,
            ioas_id,
            copy_flags,
            BUFFER_SIZE,
            src_iova,
            MOCK_APERTURE_START,
        );
        assert_eq!(copied, Ok(MOCK_APERTURE_START));
        f.check_mock_iova(buf.base(), MOCK_APERTURE_START, BUFFER_SIZE);
        // The copy shares the pins.
        check_refs(&f.ictx, buf.base(), BUFFER_SIZE, 1);

        // Replace the access's IOAS with a new one.
        let new_ioas_id = f.ictx.ioas_alloc().unwrap();
        let src_iova = errno(f.ictx.ioas_map(new_ioas_id, RW, &buf, 0, BUFFER_SIZE, 0)).unwrap();
        access.replace_ioas(&f.ictx, new_ioas_id).unwrap();
        assert_eq!(access.pins(), 0, "the replace made the driver unpin");

        // Destroy the old IOAS and clean up the copied mapping.
        assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
        f.ictx.destroy(ioas_id).unwrap();

        // The same again with the new IOAS.
        let (id, _) = access.pin(src_iova, BUFFER_SIZE).unwrap();
        let copied = f.ictx.ioas_copy(
            f.ioas,
            new_ioas_id,
            copy_flags,
            BUFFER_SIZE,
            src_iova,
            MOCK_APERTURE_START,
        );
        assert_eq!(copied, Ok(MOCK_APERTURE_START));
        f.check_mock_iova(buf.base(), MOCK_APERTURE_START, BUFFER_SIZE);
        access.destroy_pages(id).unwrap();
        access.destroy(&f.ictx);
        f.ictx.destroy(new_ioas_id).unwrap();
    });
}

#[test]
fn replace() {
    variants(|f| {
        let dev0 = f.devs[0].dev_id;
        let ioas_id = f.ictx.ioas_alloc().unwrap();
        let new_hwpt = f.ictx.device_replace(dev0, 0, ioas_id).unwrap();
        assert_ne!(new_hwpt, f.hwpt_id());
        // Replacing the IOAS freed the prior auto HWPT when nothing else
        // used it.
        if f.variant.mock_domains == 1 {
            assert_eq!(
                errno(f.ictx.device_replace(dev0, 0, f.hwpt_id())),
                Err(Errno::NOENT)
            );
        }
        assert_eq!(f.ictx.device_replace(dev0, 0, ioas_id), Ok(new_hwpt));
        if f.variant.mock_domains >= 2 {
            f.ictx.device_replace(dev0, 0, f.hwpt_id1).unwrap();
            f.ictx.device_replace(dev0, 0, f.hwpt_id1).unwrap();
            f.ictx.device_replace(dev0, 0, f.hwpt_id()).unwrap();
            // The HWPT of ioas_id went with its last device.
            assert_eq!(
                errno(f.ictx.device_replace(dev0, 0, new_hwpt)),
                Err(Errno::NOENT)
            );
        }
        f.ictx.device_replace(dev0, 0, f.ioas).unwrap();
        f.ictx.destroy(ioas_id).unwrap();
    });
}

#[test]
fn alloc_hwpt() {
    variants(|f| {
        for i in 0..f.variant.mock_domains {
            let dev = f.devs[i].dev_id;
            let unknown = HwptAllocFlags::from_bits_retain(!HwptAllocFlags::NEST_PARENT.bits());
            assert_eq!(
                errno(f.ictx.hwpt_alloc(dev, f.ioas, unknown, HwptData::None)),
                Err(Errno::OPNOTSUPP)
            );
            let hwpt0 = f
                .ictx
                .hwpt_alloc(dev, f.ioas, HwptAllocFlags::empty(), HwptData::None)
                .unwrap();
            let hwpt1 = f
                .ictx
                .hwpt_alloc(dev, f.ioas, HwptAllocFlags::NEST_PARENT, HwptData::None)
                .unwrap();
            // A hw_pagetable rotation.
            f.ictx.device_replace(dev, 0, hwpt0).unwrap();
            assert_eq!(errno(f.ictx.destroy(hwpt0)), Err(Errno::BUSY));
            f.ictx.device_replace(dev, 0, hwpt1).unwrap();
            assert_eq!(errno(f.ictx.destroy(hwpt1)), Err(Errno::BUSY));
            f.ictx.device_replace(dev, 0, f.ioas).unwrap();
            f.ictx.destroy(hwpt1).unwrap();
            // A mock device created directly on a manual HWPT.
            let d = f.env.mock_domain(&f.ictx, hwpt0).unwrap();
            assert_eq!(d.hwpt_id, hwpt0);
            f.ictx.device_unbind(d.dev_id).unwrap();
            f.ictx.destroy(hwpt0).unwrap();
        }
    });
}
