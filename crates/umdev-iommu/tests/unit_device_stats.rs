//! Per-requester counters: DMA bytes, IOTLB hits and misses and faults
//! are charged to the requester (and PASID) that issued them, and only
//! to it.

use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::iommu::{IommuOps, PagingFlags};
use umdev_iommu::pgtable::Prot;
use umdev_iommu::vtd::DeviceStats;
use umdev_testkit::vtd::{attached_paging, bdf, config, driver};

fn of(stats: &[DeviceStats], requester: umdev_pci::Bdf) -> DeviceStats {
    *stats
        .iter()
        .find(|s| s.requester == requester && s.pasid.is_none())
        .unwrap_or_else(|| panic!("no counters for {requester}"))
}

#[test]
fn dma_and_faults_are_charged_to_their_requester() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let (a, b) = (bdf(0, 1, 0), bdf(0, 2, 0));
    let domain = attached_paging(&driver, a, PagingFlags::default());
    attached_paging(&driver, b, PagingFlags::default());
    let target = mem.alloc_anonymous(0x2000).unwrap();
    domain
        .map(0x10_0000, target.base(), 0x2000, Prot::READ | Prot::WRITE)
        .unwrap();
    let unit = &driver.units()[0];
    assert!(unit.device_stats().is_empty());

    let port_a = DmaPort::for_requester(driver.units(), a).unwrap();
    port_a.read(None, 0x10_0000, &mut [0u8; 64]).unwrap();
    port_a.read(None, 0x10_0040, &mut [0u8; 64]).unwrap();
    port_a.write(None, 0x10_1000, &[7u8; 32]).unwrap();
    // b has nothing mapped: its DMA faults and moves no byte.
    let port_b = DmaPort::for_requester(driver.units(), b).unwrap();
    assert!(port_b.read(None, 0x10_0000, &mut [0u8; 8]).is_err());
    assert!(port_b.write(None, 0x10_0000, &[0u8; 8]).is_err());

    let stats = unit.device_stats();
    let sa = of(&stats, a);
    assert_eq!((sa.dma_read_bytes, sa.dma_write_bytes), (128, 32));
    assert_eq!((sa.iotlb_hits, sa.iotlb_misses), (1, 2));
    assert_eq!(sa.faults, 0);
    assert_eq!(sa.iotlb_hit_ratio(), Some(1.0 / 3.0));
    let sb = of(&stats, b);
    assert_eq!((sb.dma_read_bytes, sb.dma_write_bytes), (0, 0));
    assert_eq!(sb.faults, 2);
    // A scatter-gather mapping counts the bytes it maps for the device.
    let sg = port_a
        .translate_sg(None, 0x10_0000, 0x1800, umdev_iommu::pgtable::Access::Write)
        .unwrap();
    assert_eq!(sg.len(), 0x1800);
    drop(sg);
    let stats = unit.device_stats();
    let sa = of(&stats, a);
    assert_eq!((sa.dma_read_bytes, sa.dma_write_bytes), (128, 32 + 0x1800));
    // The unit totals are the sum over requesters.
    let total = unit.stats();
    assert_eq!(total.dma_read_bytes, sa.dma_read_bytes + sb.dma_read_bytes);
    assert_eq!(total.faults, sa.faults + sb.faults);
}

#[test]
fn pasid_tagged_requests_are_counted_apart() {
    let (_mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 3, 0);
    driver.probe_device(dev).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    // Nothing is attached at PASID 5 (nor at the RID): both fault.
    assert!(port.read(Some(5), 0x1000, &mut [0u8; 4]).is_err());
    assert!(port.read(None, 0x1000, &mut [0u8; 4]).is_err());
    assert!(port.read(Some(5), 0x2000, &mut [0u8; 4]).is_err());
    let stats = driver.units()[0].device_stats();
    let keys: Vec<_> = stats.iter().map(|s| (s.pasid, s.faults)).collect();
    assert_eq!(keys, [(None, 1), (Some(5), 2)]);
}
