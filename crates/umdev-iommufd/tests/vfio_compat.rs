//! Ports of the VFIO compatibility tests of
//! tools/testing/selftests/iommu/iommufd.c: the compat ioctls of
//! FIXTURE(iommufd) (kernel-semantics §3.1) and FIXTURE(vfio_compat_mock_domain)
//! with its variants Ver1v2 and Ver1v0 (§3.6), plus a reference-model
//! property test of type1 v1 / v2 unmap.

mod common;

use std::sync::Arc;

use common::{Env, MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, PAGE_SIZE};
use rustix::io::Errno;
use umdev_iommu::memory::MemoryObject;
use umdev_iommufd::vfio_compat::{
    VFIO_API_VERSION, VFIO_DMA_CC_IOMMU, VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_PGSIZES,
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_NOIOMMU_IOMMU,
    VFIO_TYPE1_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_TYPE1V2_IOMMU, VFIO_UNMAP_ALL,
    VFIO_UPDATE_VADDR, VfioDmaMap, VfioDmaMapFlags, VfioDmaUnmap, VfioDmaUnmapFlags,
};
use umdev_iommufd::{Ictx, MapFlags, VfioIoasOp};

const RW: VfioDmaMapFlags = VfioDmaMapFlags::READ.union(VfioDmaMapFlags::WRITE);
/// The selftest's BUFFER_SIZE in pages.
const BUFFER_SIZE: u64 = 16 * PAGE_SIZE;
/// x86 hugetlb page size (the selftest's HUGEPAGE_SIZE).
const HUGEPAGE_SIZE: u64 = 2 << 20;
/// `sizeof(struct vfio_iommu_type1_info)`.
const INFO_SIZE: usize = 24;

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// A deterministic Fisher-Yates shuffle (the selftest uses rand()).
fn shuffle(v: &mut [u64], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// FIXTURE(iommufd): a bare context.
mod iommufd {
    use super::*;

    fn ictx() -> (Env, Arc<Ictx>) {
        let env = Env::new();
        let ictx = Ictx::new(env.iommu.clone());
        (env, ictx)
    }

    #[test]
    fn simple_ioctls() {
        let (_env, ictx) = ictx();
        assert_eq!(ictx.vfio_get_api_version(), VFIO_API_VERSION);
        assert_eq!(ictx.vfio_check_extension(VFIO_TYPE1V2_IOMMU).unwrap(), 1);
    }

    #[test]
    fn unmap_cmd() {
        let (_env, ictx) = ictx();
        let mut cmd = VfioDmaUnmap::new(VfioDmaUnmapFlags::empty(), MOCK_APERTURE_START, PAGE_SIZE);
        cmd.argsz = 1;
        assert_eq!(
            ictx.vfio_unmap_dma(&mut cmd).unwrap_err().errno(),
            Errno::INVAL
        );
        cmd.argsz = VfioDmaUnmap::MINSZ;
        cmd.flags = VfioDmaUnmapFlags::from_bits_retain(1 << 31);
        assert_eq!(
            ictx.vfio_unmap_dma(&mut cmd).unwrap_err().errno(),
            Errno::INVAL
        );
        cmd.flags = VfioDmaUnmapFlags::empty();
        assert_eq!(
            ictx.vfio_unmap_dma(&mut cmd).unwrap_err().errno(),
            Errno::NODEV
        );
    }

    #[test]
    fn map_cmd() {
        let (env, ictx) = ictx();
        let buffer = env.buffer(BUFFER_SIZE);
        let mut cmd = VfioDmaMap::new(
            VfioDmaMapFlags::empty(),
            buffer.base(),
            MOCK_APERTURE_START,
            PAGE_SIZE,
        );
        cmd.argsz = 1;
        assert_eq!(
            ictx.vfio_map_dma(&env.mem, &cmd).unwrap_err().errno(),
            Errno::INVAL
        );
        cmd.argsz = VfioDmaMap::MINSZ;
        cmd.flags = VfioDmaMapFlags::from_bits_retain(1 << 31);
        assert_eq!(
            ictx.vfio_map_dma(&env.mem, &cmd).unwrap_err().errno(),
            Errno::INVAL
        );
        // Requires a compat IOAS.
        cmd.flags = RW;
        assert_eq!(
            ictx.vfio_map_dma(&env.mem, &cmd).unwrap_err().errno(),
            Errno::NODEV
        );
    }

    #[test]
    fn info_cmd() {
        let (_env, ictx) = ictx();
        let mut buf = [0u8; INFO_SIZE];
        buf[0] = 1;
        assert_eq!(
            ictx.vfio_iommu_get_info(&mut buf).unwrap_err().errno(),
            Errno::INVAL
        );
        buf[0] = INFO_SIZE as u8;
        assert_eq!(
            ictx.vfio_iommu_get_info(&mut buf).unwrap_err().errno(),
            Errno::NODEV
        );
    }

    #[test]
    fn set_iommu_cmd() {
        let (_env, ictx) = ictx();
        // Requires a compat IOAS.
        assert_eq!(
            ictx.vfio_set_iommu(VFIO_TYPE1V2_IOMMU).unwrap_err().errno(),
            Errno::NODEV
        );
        assert_eq!(
            ictx.vfio_set_iommu(VFIO_TYPE1_IOMMU).unwrap_err().errno(),
            Errno::NODEV
        );
    }

    #[test]
    fn vfio_ioas() {
        let (_env, ictx) = ictx();
        assert_eq!(
            ictx.vfio_ioas(VfioIoasOp::Get).unwrap_err().errno(),
            Errno::NODEV
        );
        assert_eq!(
            ictx.vfio_ioas(VfioIoasOp::Set(0)).unwrap_err().errno(),
            Errno::NOENT
        );
        let ioas = ictx.ioas_alloc().unwrap();
        ictx.vfio_ioas(VfioIoasOp::Set(ioas)).unwrap();
        assert_eq!(ictx.vfio_ioas(VfioIoasOp::Get).unwrap(), ioas);
        ictx.vfio_ioas(VfioIoasOp::Clear).unwrap();
        assert_eq!(
            ictx.vfio_ioas(VfioIoasOp::Get).unwrap_err().errno(),
            Errno::NODEV
        );
    }

    // ---- beyond the selftest --------------------------------------------

    /// vfio_compat.c checks the type before looking for the IOAS.
    #[test]
    fn set_iommu_unknown_type_is_einval() {
        let (_env, ictx) = ictx();
        for t in [0, 2, VFIO_DMA_CC_IOMMU, VFIO_NOIOMMU_IOMMU, VFIO_UNMAP_ALL] {
            assert_eq!(
                ictx.vfio_set_iommu(t).unwrap_err().errno(),
                Errno::INVAL,
                "type {t}"
            );
        }
    }

    #[test]
    fn check_extension_table() {
        let (_env, ictx) = ictx();
        for (ext, want) in [
            (VFIO_TYPE1_IOMMU, 1),
            (VFIO_TYPE1V2_IOMMU, 1),
            (VFIO_UNMAP_ALL, 1),
            (VFIO_TYPE1_NESTING_IOMMU, 0),
            (VFIO_NOIOMMU_IOMMU, 0),
            (VFIO_UPDATE_VADDR, 0),
            (12345, 0),
        ] {
            assert_eq!(
                ictx.vfio_check_extension(ext).unwrap(),
                want,
                "extension {ext}"
            );
        }
        // DMA_CC_IOMMU asks the compat IOAS's domains.
        assert_eq!(
            ictx.vfio_check_extension(VFIO_DMA_CC_IOMMU)
                .unwrap_err()
                .errno(),
            Errno::NODEV
        );
        let ioas = ictx.ioas_alloc().unwrap();
        ictx.vfio_ioas(VfioIoasOp::Set(ioas)).unwrap();
        assert_eq!(ictx.vfio_check_extension(VFIO_DMA_CC_IOMMU).unwrap(), 1);
    }

    /// Destroying the compat IOAS clears it (main.c / ioas destroy).
    #[test]
    fn destroy_clears_compat_ioas() {
        let (_env, ictx) = ictx();
        let ioas = ictx.ioas_alloc().unwrap();
        ictx.vfio_ioas(VfioIoasOp::Set(ioas)).unwrap();
        ictx.destroy(ioas).unwrap();
        assert_eq!(
            ictx.vfio_set_iommu(VFIO_TYPE1V2_IOMMU).unwrap_err().errno(),
            Errno::NODEV
        );
    }
}

/// FIXTURE(vfio_compat_mock_domain): an IOAS with one mock domain, set as
/// the compat IOAS, then VFIO_SET_IOMMU(variant).
mod vfio_compat_mock_domain {
    use super::*;

    pub(super) struct Fixture {
        pub env: Env,
        pub ictx: Arc<Ictx>,
        pub ioas: u32,
        pub version: u64,
        pub bdf: umdev_pci::Bdf,
    }

    impl Fixture {
        pub fn new(version: u64) -> Self {
            let env = Env::new();
            let ictx = Ictx::new(env.iommu.clone());
            let ioas = ictx.ioas_alloc().unwrap();
            let md = env.mock_domain(&ictx, ioas).unwrap();
            ictx.vfio_ioas(VfioIoasOp::Set(ioas)).unwrap();
            ictx.vfio_set_iommu(version).unwrap();
            Self {
                env,
                ictx,
                ioas,
                version,
                bdf: md.bdf,
            }
        }

        pub fn v1(&self) -> bool {
            self.version == VFIO_TYPE1_IOMMU
        }

        pub fn map(
            &self,
            buffer: &MemoryObject,
            offset: u64,
            iova: u64,
            size: u64,
        ) -> Result<(), Errno> {
            let cmd = VfioDmaMap::new(RW, buffer.base() + offset, iova, size);
            self.ictx
                .vfio_map_dma(&self.env.mem, &cmd)
                .map_err(|e| e.errno())
        }

        pub fn unmap(&self, iova: u64, size: u64) -> Result<u64, Errno> {
            let mut cmd = VfioDmaUnmap::new(VfioDmaUnmapFlags::empty(), iova, size);
            self.ictx.vfio_unmap_dma(&mut cmd).map_err(|e| e.errno())?;
            Ok(cmd.size)
        }

        /// What the mock device's domain translates `iova` to.
        pub fn translate(&self, iova: u64) -> Option<u64> {
            self.env
                .iommu
                .device_domain(self.bdf, None)
                .unwrap()
                .iova_to_phys(iova)
        }

        /// teardown_iommufd: close, and nothing may be left.
        pub fn teardown(self) {
            self.ictx.close();
            assert!(self.ictx.objects().is_empty(), "{:?}", self.ictx.objects());
            assert_eq!(self.ictx.account().pinned(), 0);
        }
    }

    /// Runs `f` on both variants: Ver1v2, then Ver1v0.
    pub(super) fn variants(f: impl Fn(&Fixture)) {
        for version in [VFIO_TYPE1V2_IOMMU, VFIO_TYPE1_IOMMU] {
            let fx = Fixture::new(version);
            f(&fx);
            fx.teardown();
        }
    }

    #[test]
    fn simple_close() {
        variants(|_| {});
    }

    #[test]
    fn option_huge_pages() {
        variants(|f| {
            let v = f.ictx.option_huge_pages(f.ioas, None).unwrap();
            assert_eq!(v, if f.v1() { 0 } else { 1 }, "version {}", f.version);
        });
    }

    /// ioctl_check_buf: runs GET_INFO on `buf` whose argsz is in the first
    /// u32, after filling everything past argsz with 0xAA, and checks that
    /// nothing past argsz was written.
    fn ioctl_check_buf(f: &Fixture, buf: &mut [u8]) {
        let len = le32(buf, 0) as usize;
        buf[len..].fill(0xAA);
        f.ictx.vfio_iommu_get_info(buf).unwrap();
        assert!(
            buf[len..].iter().all(|&b| b == 0xAA),
            "wrote past argsz {len}"
        );
    }

    /// Resets the fixed struct to `{ .argsz = argsz }`.
    fn set_info(buf: &mut [u8], argsz: u32) {
        buf[..INFO_SIZE].fill(0);
        buf[..4].copy_from_slice(&argsz.to_le_bytes());
    }

    /// check_vfio_info_cap_chain; returns the capability ids seen.
    fn check_cap_chain(buf: &[u8]) -> Vec<u16> {
        let argsz = le32(buf, 0) as usize;
        let mut cap = le32(buf, 16) as usize;
        assert!(argsz >= cap + 8);
        let mut seen = Vec::new();
        loop {
            let next = le32(buf, cap + 4) as usize;
            let cap_size = if next != 0 { next - cap } else { argsz - cap };
            let id = le16(buf, cap);
            assert_eq!(le16(buf, cap + 2), 1, "cap {id} version");
            match id {
                VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE => {
                    assert_eq!(le32(buf, cap + 8), 1, "nr_iovas");
                    assert_eq!(le64(buf, cap + 16), MOCK_APERTURE_START);
                    assert_eq!(le64(buf, cap + 24), MOCK_APERTURE_LAST);
                }
                VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL => {
                    // sizeof(struct vfio_iommu_type1_info_dma_avail) is 12;
                    // caps sit at 8-byte aligned offsets, so it takes 16.
                    assert_eq!(cap_size, 16);
                    assert_eq!(le32(buf, cap + 8), u32::MAX, "avail");
                }
                other => panic!("unexpected capability {other}"),
            }
            seen.push(id);
            assert_eq!(cap % 8, 0, "capability at unaligned offset {cap}");
            if next == 0 {
                return seen;
            }
            assert!(argsz >= next + 8);
            assert!(next >= cap);
            cap = next;
        }
    }

    #[test]
    fn get_info() {
        variants(|f| {
            let mut buf = vec![0u8; BUFFER_SIZE as usize];
            let flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;

            // Pre-cap ABI.
            set_info(&mut buf, 16);
            ioctl_check_buf(f, &mut buf);
            assert_eq!(le32(&buf, 4), flags);
            // Every mock domain size folded into PAGE_SIZE, plus huge pages.
            assert_eq!(le64(&buf, 8), PAGE_SIZE | MOCK_HUGE_PAGE_SIZE);

            // Read the cap chain size.
            set_info(&mut buf, INFO_SIZE as u32);
            ioctl_check_buf(f, &mut buf);
            assert_ne!(le64(&buf, 8), 0);
            assert_eq!(le32(&buf, 4), flags);
            assert_eq!(le32(&buf, 16), 0, "cap_offset");
            let caplen = le32(&buf, 0) as usize;
            // info + DMA_AVAIL (16) + IOVA_RANGE with one range (32).
            assert_eq!(caplen, INFO_SIZE + 16 + 32);

            // Every argsz: never a corrupted chain, never a write past it.
            for i in INFO_SIZE..=caplen {
                set_info(&mut buf, i as u32);
                ioctl_check_buf(f, &mut buf);
                assert_eq!(le32(&buf, 4), flags);
                assert_eq!(
                    le32(&buf, 0) as usize,
                    caplen,
                    "argsz grows to the chain size"
                );
                if le32(&buf, 16) == 0 {
                    assert!(i < caplen, "argsz {i} fits the chain but got no cap_offset");
                    continue;
                }
                assert_eq!(le32(&buf, 16) as usize, INFO_SIZE);
                assert_eq!(
                    check_cap_chain(&buf),
                    vec![
                        VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                        VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
                    ]
                );
            }
        });
    }

    #[test]
    fn map() {
        variants(|f| {
            let buffer = f.env.buffer(BUFFER_SIZE);
            // Simple map/unmap.
            f.map(&buffer, 0, MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
            assert_eq!(
                f.translate(MOCK_APERTURE_START + 0x1234),
                Some(buffer.base() + 0x1234)
            );
            assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
            assert_eq!(f.translate(MOCK_APERTURE_START), None);
            // Unmap of empty is success.
            assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(0));

            // UNMAP_FLAG_ALL requires 0 iova/size.
            f.map(&buffer, 0, MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
            let mut all =
                VfioDmaUnmap::new(VfioDmaUnmapFlags::ALL, MOCK_APERTURE_START, BUFFER_SIZE);
            assert_eq!(
                f.ictx.vfio_unmap_dma(&mut all).unwrap_err().errno(),
                Errno::INVAL
            );
            all.iova = 0;
            all.size = 0;
            f.ictx.vfio_unmap_dma(&mut all).unwrap();
            assert_eq!(all.size, BUFFER_SIZE);

            // Small pages.
            let mut pages: Vec<u64> = (0..BUFFER_SIZE / PAGE_SIZE)
                .map(|i| {
                    let iova = MOCK_APERTURE_START + i * PAGE_SIZE;
                    f.map(&buffer, i * PAGE_SIZE, iova, PAGE_SIZE).unwrap();
                    iova
                })
                .collect();
            shuffle(&mut pages, 0x9e37_79b9_7f4a_7c15);
            for iova in pages {
                assert_eq!(f.unmap(iova, PAGE_SIZE), Ok(PAGE_SIZE), "{iova:#x}");
            }
        });
    }

    #[test]
    fn huge_map() {
        variants(|f| {
            let buf_size = HUGEPAGE_SIZE * 2;
            let buffer = f.env.buffer(buf_size);
            f.map(&buffer, 0, MOCK_APERTURE_START, buf_size).unwrap();
            let slice = buf_size / 16;
            let mut pages: Vec<u64> = (0..16).map(|i| MOCK_APERTURE_START + i * slice).collect();
            shuffle(&mut pages, 0x2545_f491_4f6c_dd1d);
            // type1 mode can cut up larger mappings, type1v2 always fails.
            for iova in pages {
                if f.v1() {
                    assert_eq!(f.unmap(iova, slice), Ok(slice), "{iova:#x}");
                    assert_eq!(f.translate(iova), None);
                } else {
                    assert_eq!(f.unmap(iova, slice), Err(Errno::NOENT), "{iova:#x}");
                    assert_eq!(
                        f.translate(iova),
                        Some(buffer.base() + (iova - MOCK_APERTURE_START))
                    );
                }
            }
        });
    }

    // ---- beyond the selftest --------------------------------------------

    #[test]
    fn unmap_size_checks() {
        variants(|f| {
            assert_eq!(f.unmap(MOCK_APERTURE_START, 0), Err(Errno::INVAL));
            assert_eq!(
                f.unmap(u64::MAX - PAGE_SIZE + 1, 2 * PAGE_SIZE),
                Err(Errno::OVERFLOW)
            );
        });
    }

    #[test]
    fn map_checks() {
        variants(|f| {
            let buffer = f.env.buffer(BUFFER_SIZE);
            // Not backed by host memory.
            let cmd = VfioDmaMap::new(RW, 0x1000, MOCK_APERTURE_START, PAGE_SIZE);
            assert_eq!(
                f.ictx.vfio_map_dma(&f.env.mem, &cmd).unwrap_err().errno(),
                Errno::FAULT
            );
            // Zero size, the VADDR flag of type1.
            assert_eq!(f.map(&buffer, 0, MOCK_APERTURE_START, 0), Err(Errno::INVAL));
            let vaddr = VfioDmaMap::new(
                RW | VfioDmaMapFlags::VADDR,
                buffer.base(),
                MOCK_APERTURE_START,
                PAGE_SIZE,
            );
            assert_eq!(
                f.ictx.vfio_map_dma(&f.env.mem, &vaddr).unwrap_err().errno(),
                Errno::INVAL
            );
            // Always FIXED: outside the aperture and over a mapping.
            assert_eq!(f.map(&buffer, 0, 0, PAGE_SIZE), Err(Errno::INVAL));
            f.map(&buffer, 0, MOCK_APERTURE_START, 2 * PAGE_SIZE)
                .unwrap();
            assert_eq!(
                f.map(&buffer, 0, MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE),
                Err(Errno::EXIST)
            );
        });
    }

    /// v1's SET_IOMMU fails once the IOAS has both domains and mappings
    /// (`iopt_disable_large_pages`).
    #[test]
    fn set_iommu_v1_with_mappings() {
        let f = Fixture::new(VFIO_TYPE1V2_IOMMU);
        let buffer = f.env.buffer(BUFFER_SIZE);
        f.map(&buffer, 0, MOCK_APERTURE_START, BUFFER_SIZE).unwrap();
        assert_eq!(
            f.ictx.vfio_set_iommu(VFIO_TYPE1_IOMMU).unwrap_err().errno(),
            Errno::INVAL
        );
        assert_eq!(f.ictx.option_huge_pages(f.ioas, None).unwrap(), 1);
        f.teardown();
    }

    /// GET_INFO with a buffer shorter than argsz faults before writing.
    #[test]
    fn get_info_short_buffer() {
        let f = Fixture::new(VFIO_TYPE1V2_IOMMU);
        let mut buf = vec![0u8; 40];
        set_info(&mut buf, 64);
        assert_eq!(
            f.ictx.vfio_iommu_get_info(&mut buf).unwrap_err().errno(),
            Errno::FAULT
        );
        assert_eq!(le32(&buf, 0), 64);
        assert_eq!(
            f.ictx
                .vfio_iommu_get_info(&mut buf[..8])
                .unwrap_err()
                .errno(),
            Errno::FAULT
        );
        f.teardown();
    }

    /// The compat ioctls and the iommufd ones share the IOAS.
    #[test]
    fn compat_and_ioas_map_share_the_ioas() {
        variants(|f| {
            let buffer = f.env.buffer(BUFFER_SIZE);
            let flags = MapFlags::READABLE | MapFlags::WRITEABLE | MapFlags::FIXED_IOVA;
            f.ictx
                .ioas_map(f.ioas, flags, &buffer, 0, PAGE_SIZE, MOCK_APERTURE_START)
                .unwrap();
            assert_eq!(
                f.map(&buffer, 0, MOCK_APERTURE_START, PAGE_SIZE),
                Err(Errno::EXIST)
            );
            assert_eq!(f.unmap(MOCK_APERTURE_START, PAGE_SIZE), Ok(PAGE_SIZE));
        });
    }
}

/// Type1 unmap against a reference model of the areas: v1 cuts at both
/// ends and unmaps everything inside, v2 unmaps whole areas in ascending
/// order and stops with ENOENT at the first one only partly inside.
mod unmap_model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::vfio_compat_mock_domain::Fixture;
    use super::*;

    const PAGES: u64 = 32;

    #[derive(Clone, Debug)]
    enum Op {
        Map(u64, u64),
        Unmap(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0..PAGES, 1..9u64).prop_map(|(map, first, n)| {
            let n = n.min(PAGES - first);
            if map {
                Op::Map(first, n)
            } else {
                Op::Unmap(first, n)
            }
        })
    }

    /// Areas as first page → one past the last page.
    #[derive(Default)]
    struct Model {
        areas: BTreeMap<u64, u64>,
    }

    impl Model {
        fn map(&mut self, first: u64, n: u64) -> Result<(), Errno> {
            if self.areas.iter().any(|(&s, &e)| s < first + n && first < e) {
                return Err(Errno::EXIST);
            }
            self.areas.insert(first, first + n);
            Ok(())
        }

        fn cut(&mut self, at: u64) {
            let hit = self
                .areas
                .iter()
                .map(|(&s, &e)| (s, e))
                .find(|&(s, e)| s < at && at < e);
            if let Some((s, e)) = hit {
                self.areas.insert(s, at);
                self.areas.insert(at, e);
            }
        }

        fn unmap(&mut self, first: u64, n: u64, v1: bool) -> Result<u64, Errno> {
            if v1 {
                self.cut(first + n);
                self.cut(first);
            }
            let hits: Vec<(u64, u64)> = self
                .areas
                .iter()
                .map(|(&s, &e)| (s, e))
                .filter(|&(s, e)| s < first + n && first < e)
                .collect();
            let mut pages = 0;
            for (s, e) in hits {
                if s < first || e > first + n {
                    return Err(Errno::NOENT);
                }
                self.areas.remove(&s);
                pages += e - s;
            }
            Ok(pages * PAGE_SIZE)
        }

        fn mapped(&self, page: u64) -> bool {
            self.areas.iter().any(|(&s, &e)| s <= page && page < e)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn type1_unmap_matches_model(v1 in any::<bool>(), ops in proptest::collection::vec(op(), 1..40)) {
            let f = Fixture::new(if v1 { VFIO_TYPE1_IOMMU } else { VFIO_TYPE1V2_IOMMU });
            let buffer = f.env.buffer(PAGES * PAGE_SIZE);
            let mut model = Model::default();
            for op in &ops {
                match *op {
                    Op::Map(first, n) => {
                        let got = f.map(&buffer, first * PAGE_SIZE, MOCK_APERTURE_START + first * PAGE_SIZE, n * PAGE_SIZE);
                        prop_assert_eq!(got, model.map(first, n), "{:?}", op);
                    }
                    Op::Unmap(first, n) => {
                        let got = f.unmap(MOCK_APERTURE_START + first * PAGE_SIZE, n * PAGE_SIZE);
                        prop_assert_eq!(got, model.unmap(first, n, v1), "{:?}", op);
                    }
                }
                for page in 0..PAGES {
                    let iova = MOCK_APERTURE_START + page * PAGE_SIZE;
                    let want = model.mapped(page).then_some(buffer.base() + page * PAGE_SIZE);
                    prop_assert_eq!(f.translate(iova), want, "page {} after {:?}", page, op);
                }
            }
            f.teardown();
        }
    }
}
