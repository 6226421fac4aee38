//! sdma throughput through the IOMMU, against memcpy in the same run.
//!
//! Each consumer maps a 1 MiB source and a 1 MiB destination in 4 KiB
//! pages (every page is translated) plus its ring, and its queue runs
//! with a completion record per descriptor:
//!
//! - `memmove/1wq/{64K,1M}`: one descriptor per doorbell on one queue;
//! - `memmove/2wq/{64K,1M}`: the same on two queues (two consumers, two
//!   PASIDs) from two threads at once; bytes count both;
//! - `memcpy/{1,2}thread/{64K,1M}`: plain copies of the same sizes between
//!   two buffers, on one thread and on two at once: the baselines;
//! - `desc_rate/64B_x{1,32}`: 64-byte memmoves, one or 32 per doorbell.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umdev_devices::sdma::Descriptor;
use umdev_devices::sdma::regs::WQ_HEAD;
use umdev_iommu::pgtable::Prot;
use umdev_testkit::sdma::*;

const MAIN: u64 = 0x10_0000;
const SLOTS: u32 = 64;
const CR: u64 = MAIN + 0x1000;
const SRC: u64 = 0x4000_0000;
const DST: u64 = 0x4020_0000;
const MAX: u64 = 1 << 20;
const SIZES: [(&str, u64); 2] = [("64K", 64 << 10), ("1M", 1 << 20)];

/// Two queues, each handed to its own consumer.
fn rig() -> (Rig, Vec<Consumer>) {
    let rig = Rig::new();
    let consumers = (0..2)
        .map(|i| {
            let mut c = rig.consumer(&[(MAIN, 0x2000)]);
            rig.map(&mut c, SRC, MAX, Prot::READ | Prot::WRITE);
            rig.map(&mut c, DST, MAX, Prot::READ | Prot::WRITE);
            c.write(SRC, &noise(i, MAX as usize));
            rig.assign(i as usize, &c, i as usize, i as u32);
            start(rig.wq(i as usize), MAIN, SLOTS);
            c
        })
        .collect();
    (rig, consumers)
}

fn memmove(len: u64) -> Descriptor {
    Descriptor::memmove(SRC, DST, len as u32).with_completion(CR, false)
}

/// Runs `iters` copies of `len` on each of `threads` threads at once, each
/// with `copy(thread)`, and returns the wall time.
fn parallel(threads: usize, iters: u64, copy: impl Fn(usize) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let copy = &copy;
            s.spawn(move || {
                for _ in 0..iters {
                    copy(t);
                }
            });
        }
    });
    start.elapsed()
}

fn throughput(c: &mut Criterion) {
    let (rig, consumers) = rig();
    let mut bufs: Vec<(Vec<u8>, Vec<u8>)> = (0..2)
        .map(|i| (noise(i, MAX as usize), vec![0u8; MAX as usize]))
        .collect();
    let mut group = c.benchmark_group("sdma");
    for (name, len) in SIZES {
        group.throughput(Throughput::Bytes(len));
        group.bench_function(BenchmarkId::new("memmove/1wq", name), |b| {
            b.iter(|| post(rig.wq(0), &consumers[0], &[memmove(len)]))
        });
        group.bench_function(BenchmarkId::new("memcpy/1thread", name), |b| {
            let (src, dst) = &mut bufs[0];
            b.iter(|| dst[..len as usize].copy_from_slice(black_box(&src[..len as usize])))
        });
        group.throughput(Throughput::Bytes(2 * len));
        group.bench_function(BenchmarkId::new("memmove/2wq", name), |b| {
            b.iter_custom(|iters| {
                parallel(2, iters, |t| {
                    post(rig.wq(t), &consumers[t], &[memmove(len)])
                })
            })
        });
        group.bench_function(BenchmarkId::new("memcpy/2thread", name), |b| {
            let slots: Vec<_> = bufs.iter_mut().map(parking_lot::Mutex::new).collect();
            b.iter_custom(|iters| {
                parallel(2, iters, |t| {
                    let mut slot = slots[t].lock();
                    let (src, dst) = &mut **slot;
                    dst[..len as usize].copy_from_slice(black_box(&src[..len as usize]));
                })
            })
        });
    }
    group.finish();
    assert_eq!(Cr::at(&consumers[0], CR).status, SUCCESS);
    assert_eq!(consumers[1].read(DST, 64), consumers[1].read(SRC, 64));
}

fn descriptor_rate(c: &mut Criterion) {
    let (rig, consumers) = rig();
    let mut group = c.benchmark_group("sdma/desc_rate");
    for batch in [1usize, 32] {
        let descs: Vec<_> = (0..batch as u64)
            .map(|i| {
                Descriptor::memmove(SRC + 64 * i, DST + 64 * i, 64)
                    .with_completion(CR + 32 * i, false)
            })
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("64B_x{batch}"), |b| {
            b.iter(|| post(rig.wq(0), &consumers[0], &descs))
        });
    }
    group.finish();
    assert_eq!(
        read32(rig.wq(0), WQ_HEAD),
        read32(rig.wq(0), umdev_devices::sdma::regs::WQ_TAIL)
    );
}

criterion_group!(benches, throughput, descriptor_rate);
criterion_main!(benches);
