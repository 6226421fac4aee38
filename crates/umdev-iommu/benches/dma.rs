//! Translation and DMA through the software VT-d unit.
//!
//! - `translate/iotlb_hit`: one address, always cached;
//! - `translate/iotlb_miss`: 65536 distinct 4 KiB pages cycled through a
//!   4096-entry IOTLB, so every lookup walks the 5-level first-level table;
//! - `copy/{dma_read,dma_write,memcpy}/{4K,64K,1M}`: DMA through the IOMMU
//!   (4 KiB mappings, so every page is translated) against a plain copy of
//!   the same bytes between two buffers.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::intel::VtdIommu;
use umdev_iommu::iommu::{IommuOps, PagingFlags};
use umdev_iommu::memory::HostMemory;
use umdev_iommu::pgtable::{Access, Prot};
use umdev_pci::{Bdf, IommuUnitSpec};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const MISS_PAGES: u64 = 1 << 16;

fn setup() -> (Arc<HostMemory>, VtdIommu, Bdf) {
    let mem = HostMemory::new();
    let config = IommuUnitSpec {
        name: "dmar0".into(),
        segments: vec![0],
        address_widths: vec![48, 57],
        pasid_bits: 20,
        pgsize_bitmap: (1 << 12) | (1 << 21) | (1 << 30),
        nesting: true,
        dirty_tracking: true,
        supervisor_requests: true,
        extended_accessed: true,
        fault_log_size: 64,
    };
    let driver = VtdIommu::new(Arc::clone(&mem), vec![config], |_| 20).unwrap();
    let dev = Bdf::new(0, 1, 0, 0).unwrap();
    driver.probe_device(dev).unwrap();
    (mem, driver, dev)
}

fn translate(c: &mut Criterion) {
    let (mem, driver, dev) = setup();
    let domain = driver
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    driver.attach_dev(&domain, dev).unwrap();
    let object = mem.alloc_anonymous(MISS_PAGES << 12).unwrap();
    // IOVA 4K-offset from 2M alignment: 4 KiB leaves only.
    let base = 0x1000_1000;
    domain
        .map(base, object.base(), MISS_PAGES << 12, RW)
        .unwrap();
    let unit = Arc::clone(&driver.units()[0]);

    let mut group = c.benchmark_group("translate");
    group.bench_function("iotlb_hit", |b| {
        b.iter(|| unit.translate(dev, None, black_box(base + 0x123), Access::Read))
    });
    let mut page = 0u64;
    group.bench_function("iotlb_miss", |b| {
        b.iter(|| {
            page = (page + 1) % MISS_PAGES;
            unit.translate(dev, None, black_box(base + (page << 12)), Access::Read)
        })
    });
    group.finish();
}

fn copy(c: &mut Criterion) {
    let (mem, driver, dev) = setup();
    let domain = driver
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    driver.attach_dev(&domain, dev).unwrap();
    const MAX: usize = 1 << 20;
    let object = mem.alloc_anonymous(MAX as u64).unwrap();
    let iova = 0x1000_1000;
    domain.map(iova, object.base(), MAX as u64, RW).unwrap();
    object.write(0, &vec![0x5a; MAX]).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();

    let mut group = c.benchmark_group("copy");
    for (name, len) in [("4K", 4 << 10), ("64K", 64 << 10), ("1M", 1 << 20)] {
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = vec![0u8; len];
        group.bench_function(format!("dma_read/{name}"), |b| {
            b.iter(|| port.read(None, iova, black_box(&mut buf)).unwrap())
        });
        group.bench_function(format!("dma_write/{name}"), |b| {
            b.iter(|| port.write(None, iova, black_box(&buf)).unwrap())
        });
        let src = vec![0x5au8; len];
        group.bench_function(format!("memcpy/{name}"), |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = translate, copy
}
criterion_main!(benches);
