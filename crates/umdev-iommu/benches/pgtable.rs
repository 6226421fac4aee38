//! Page-table benchmarks: map and unmap of 1 GiB in 4K and 2M pages, and
//! the hardware walk of a 4-level table.
//!
//! `cargo bench -p umdev-iommu --bench pgtable -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use umdev_iommu::memory::HostMemory;
use umdev_iommu::pgtable::{
    Access, HostTableReader, PGSIZE_4K_2M_1G, PageTable, Prot, PtFormat, walk,
};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::READ.union(Prot::WRITE);

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

fn map_unmap_1g(c: &mut Criterion) {
    let mem = HostMemory::new();
    let mut group = c.benchmark_group("pgtable_1g");
    group.sample_size(20);
    for (name, format, bitmap) in [
        ("sl4_4k", PtFormat::SecondLevel { levels: 4 }, K4),
        ("fl4_4k", PtFormat::FirstLevel { levels: 4 }, K4),
        ("sl4_2m", PtFormat::SecondLevel { levels: 4 }, K4 | M2),
        ("fl4_2m", PtFormat::FirstLevel { levels: 4 }, K4 | M2),
    ] {
        let pt = PageTable::new(Arc::clone(&mem), format, bitmap).unwrap();
        let map = || pt.map(G1, 4 * G1, G1, RW).unwrap();
        let unmap = || assert_eq!(pt.unmap(G1, G1), G1);
        group.bench_function(format!("map/{name}"), |b| {
            b.iter_custom(|iters| timed(iters, map, unmap));
        });
        // Mapped between iterations: each one times an unmap, then remaps.
        map();
        group.bench_function(format!("unmap/{name}"), |b| {
            b.iter_custom(|iters| timed(iters, unmap, map));
        });
        unmap();
        group.bench_function(format!("map_unmap/{name}"), |b| {
            b.iter(|| {
                map();
                unmap();
            });
        });
    }
    group.finish();
}

fn walk_4level(c: &mut Criterion) {
    let mem = HostMemory::new();
    let mut group = c.benchmark_group("pgtable_walk");
    for (name, format) in [
        ("sl4", PtFormat::SecondLevel { levels: 4 }),
        ("fl4", PtFormat::FirstLevel { levels: 4 }),
    ] {
        let pt = PageTable::new(Arc::clone(&mem), format, PGSIZE_4K_2M_1G).unwrap();
        pt.map(0x1234_5000, 0x8000_0000, K4, RW).unwrap();
        group.bench_function(format!("read_4k/{name}"), |b| {
            b.iter(|| {
                pt.walk(black_box(0x1234_5678), Access::Read, false)
                    .unwrap()
            });
        });
        group.bench_function(format!("write_4k_dirty/{name}"), |b| {
            b.iter(|| {
                pt.walk(black_box(0x1234_5678), Access::Write, true)
                    .unwrap()
            });
        });
        // What the unit's translation path does: the same walk, reading
        // host memory by address.
        let host = HostTableReader::new(&mem);
        group.bench_function(format!("host_reader_read_4k/{name}"), |b| {
            b.iter(|| {
                walk(
                    &host,
                    format,
                    pt.root(),
                    black_box(0x1234_5678),
                    Access::Read,
                    false,
                )
                .unwrap()
            });
        });
        group.bench_function(format!("iova_to_phys_4k/{name}"), |b| {
            b.iter(|| pt.iova_to_phys(black_box(0x1234_5678)).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, map_unmap_1g, walk_4level);
criterion_main!(benches);
