//! IOAS benchmarks over the real system (default platform, VT-d model):
//! MAP and UNMAP of 1 GiB with 0, 1 and 2 attached domains in 4 KiB pages
//! (IOMMU_OPTION_HUGE_PAGES = 0) and with huge pages, COPY of 1 GiB, and
//! the attach / detach rate of a device whose auto HWPT is filled from the
//! mappings already present.
//!
//! `cargo bench -p umdev-iommufd --bench ioas -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::system::System;
use umdev_iommu::vtd::IOMMU_NO_PASID;
use umdev_iommufd::{HwptAllocFlags, HwptData, Ictx, MapFlags};
use umdev_pci::Bdf;

const G1: u64 = 1 << 30;
const M64: u64 = 64 << 20;
/// 1 GiB-aligned, so huge pages can map the whole object with 1 GiB leaves.
const IOVA: u64 = 1 << 32;
const FIXED: MapFlags = MapFlags::READABLE
    .union(MapFlags::WRITEABLE)
    .union(MapFlags::FIXED_IOVA);

/// Times `measure` over `iters` runs, running `reset` untimed after each.
fn timed(iters: u64, mut measure: impl FnMut(), mut reset: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        measure();
        total += start.elapsed();
        reset();
    }
    total
}

/// A context with two bound devices in separate groups and 1 GiB of
/// anonymous memory (MAP_NORESERVE: untouched pages cost nothing).
struct Setup {
    _sys: System,
    ictx: Arc<Ictx>,
    devs: [u32; 2],
    mem: Arc<MemoryObject>,
}

impl Setup {
    fn new() -> Self {
        let sys = System::default_platform().unwrap();
        let nvme: Bdf = "0000:05:00.0".parse().unwrap();
        let i40e: Bdf = "0000:07:00.0".parse().unwrap();
        sys.platform.unbind("nvme", nvme).unwrap();
        sys.platform.unbind("i40e", i40e).unwrap();
        let ictx = Ictx::new(sys.iommu.clone());
        let devs = [
            ictx.device_bind(nvme).unwrap(),
            ictx.device_bind(i40e).unwrap(),
        ];
        let mem = sys.vtd.memory().alloc_anonymous(G1).unwrap();
        Self {
            _sys: sys,
            ictx,
            devs,
            mem,
        }
    }

    /// A new IOAS (4 KiB pages only unless `huge`) with a manual HWPT per
    /// device in `devs`, each device attached to its own.
    fn ioas(&self, devs: &[u32], huge: bool) -> Ioas<'_> {
        let ictx = &self.ictx;
        let id = ictx.ioas_alloc().unwrap();
        ictx.option_huge_pages(id, Some(u64::from(huge))).unwrap();
        let hwpts = devs
            .iter()
            .map(|&dev| {
                let hwpt = ictx
                    .hwpt_alloc(dev, id, HwptAllocFlags::empty(), HwptData::None)
                    .unwrap();
                ictx.device_attach(dev, IOMMU_NO_PASID, hwpt).unwrap();
                (dev, hwpt)
            })
            .collect();
        Ioas {
            setup: self,
            id,
            hwpts,
        }
    }
}

/// An IOAS and its attached HWPTs, torn down on drop.
struct Ioas<'a> {
    setup: &'a Setup,
    id: u32,
    hwpts: Vec<(u32, u32)>,
}

impl Ioas<'_> {
    fn map(&self, length: u64) {
        let s = self.setup;
        let iova = s
            .ictx
            .ioas_map(self.id, FIXED, &s.mem, 0, length, IOVA)
            .unwrap();
        assert_eq!(iova, IOVA);
    }

    fn unmap(&self, length: u64) {
        let unmapped = self.setup.ictx.ioas_unmap(self.id, IOVA, length).unwrap();
        assert_eq!(unmapped, length);
    }
}

impl Drop for Ioas<'_> {
    fn drop(&mut self) {
        let ictx = &self.setup.ictx;
        for &(dev, hwpt) in &self.hwpts {
            ictx.device_detach(dev, IOMMU_NO_PASID).unwrap();
            ictx.destroy(hwpt).unwrap();
        }
        ictx.destroy(self.id).unwrap();
    }
}

fn page_mode(huge: bool) -> &'static str {
    if huge { "huge" } else { "4k" }
}

/// IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP of 1 GiB, timed separately.
fn map_unmap_1g(c: &mut Criterion) {
    let s = Setup::new();
    let mut group = c.benchmark_group("ioas_1g");
    group.sample_size(10);
    for (domains, huge) in [(0, true), (1, false), (2, false), (1, true), (2, true)] {
        let ioas = s.ioas(&s.devs[..domains], huge);
        let name = format!("{domains}dom_{}", page_mode(huge));
        let map = || ioas.map(G1);
        let unmap = || ioas.unmap(G1);
        group.bench_function(format!("map/{name}"), |b| {
            b.iter_custom(|iters| timed(iters, map, unmap));
        });
        // Mapped between iterations: each one times an unmap, then remaps.
        map();
        group.bench_function(format!("unmap/{name}"), |b| {
            b.iter_custom(|iters| timed(iters, unmap, map));
        });
        unmap();
    }
    group.finish();
}

/// IOMMU_IOAS_COPY of 1 GiB from an IOAS with one domain into an IOAS
/// with none or one (the copy's unmap is not timed).
fn copy_1g(c: &mut Criterion) {
    let s = Setup::new();
    let mut group = c.benchmark_group("ioas_copy_1g");
    group.sample_size(10);
    for (dst_domains, huge) in [(0, true), (1, false), (1, true)] {
        let src = s.ioas(&s.devs[..1], huge);
        let dst = s.ioas(&s.devs[1..1 + dst_domains], huge);
        src.map(G1);
        let copy = || {
            let iova = s
                .ictx
                .ioas_copy(dst.id, src.id, FIXED, G1, IOVA, IOVA)
                .unwrap();
            assert_eq!(iova, IOVA);
        };
        let name = format!("to_{dst_domains}dom_{}", page_mode(huge));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| timed(iters, copy, || dst.unmap(G1)));
        });
        src.unmap(G1);
    }
    group.finish();
}

/// Attach of a device to an IOAS id (a new auto HWPT, filled from the
/// areas present) followed by its detach (which destroys that HWPT).
fn attach_detach(c: &mut Criterion) {
    let s = Setup::new();
    let mut group = c.benchmark_group("attach_detach");
    let dev = s.devs[0];
    for (name, length, huge) in [
        ("empty", 0, true),
        ("64m_4k", M64, false),
        ("1g_4k", G1, false),
        ("1g_huge", G1, true),
    ] {
        let ioas = s.ioas(&[], huge);
        if length > 0 {
            ioas.map(length);
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                s.ictx.device_attach(dev, IOMMU_NO_PASID, ioas.id).unwrap();
                s.ictx.device_detach(dev, IOMMU_NO_PASID).unwrap();
            });
        });
        if length > 0 {
            ioas.unmap(length);
        }
    }
    group.finish();
}

criterion_group!(benches, map_unmap_1g, copy_1g, attach_detach);
criterion_main!(benches);
