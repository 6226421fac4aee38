//! Fault log bound and counters, per-domain handler delivery, FPD, and
//! the IOTLB / PASID-cache hit and miss counters.

use std::sync::Arc;

use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::iommu::{IommuOps, PagingFlags};
use umdev_iommu::pgtable::{Access, Prot};
use umdev_iommu::vtd::{FaultReason, PasidEntry, UnitStats};
use umdev_testkit::vtd::{Recorder, attached_paging, bdf, config, driver, unit};

#[test]
fn fault_log_is_bounded_and_counted() {
    let mut cfg = config("dmar0", &[0]);
    cfg.fault_log_size = 4;
    let (_mem, driver) = driver(vec![cfg]);
    let dev = bdf(0, 1, 0);
    attached_paging(&driver, dev, PagingFlags::default());
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    for page in 0..10u64 {
        let err = port.read(None, page << 12, &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.record().requester, dev);
        assert_eq!(err.record().access, Access::Read);
        assert_eq!(err.record().pasid, None);
    }
    let log = driver.units()[0].fault_log();
    let kept: Vec<u64> = log.records().iter().map(|r| r.addr).collect();
    assert_eq!(kept, [6 << 12, 7 << 12, 8 << 12, 9 << 12], "oldest dropped");
    assert_eq!((log.total(), log.dropped()), (10, 6));
    let stats = driver.units()[0].stats();
    assert_eq!((stats.faults, stats.faults_dropped), (10, 6));
    assert_eq!(log.take().len(), 4);
    assert!(log.is_empty());
}

#[test]
fn faults_go_to_the_handler_of_the_faulting_domain() {
    let (_mem, driver) = driver(vec![config("dmar0", &[0])]);
    let (a_dev, b_dev, blocked_dev) = (bdf(0, 1, 0), bdf(0, 2, 0), bdf(0, 3, 0));
    let a = attached_paging(&driver, a_dev, PagingFlags::default());
    let b = attached_paging(&driver, b_dev, PagingFlags::default());
    driver.probe_device(blocked_dev).unwrap();
    let (ha, hb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    a.set_fault_handler(Some(ha.clone()));
    b.set_fault_handler(Some(hb.clone()));

    let unit = &driver.units()[0];
    let a_did = driver.iommus()[0]
        .pasid_entry(a_dev, 0)
        .map(|e| e.did())
        .unwrap();
    let err = DmaPort::for_requester(driver.units(), a_dev)
        .unwrap()
        .write(None, 0x5000, b"x")
        .unwrap_err();
    assert_eq!(err.record().did, Some(a_did));
    assert_eq!(err.record().access, Access::Write);
    assert_eq!(ha.take(), vec![*err.record()]);
    assert!(hb.take().is_empty());

    // A blocked device has no domain: logged, nobody told.
    let err = DmaPort::for_requester(driver.units(), blocked_dev)
        .unwrap()
        .read(None, 0, &mut [0u8; 1])
        .unwrap_err();
    assert_eq!(err.record().reason, FaultReason::PasidNotPresent);
    assert_eq!(err.record().did, None);
    assert!(ha.take().is_empty() && hb.take().is_empty());

    // Removing the handler stops delivery.
    a.set_fault_handler(None);
    let _ = unit.translate(a_dev, None, 0x9000, Access::Read);
    assert!(ha.take().is_empty());
    assert_eq!(unit.fault_log().total(), 3);
}

#[test]
fn fpd_suppresses_recording() {
    let (mem, iommu) = unit(config("dmar0", &[0]));
    let dev = bdf(0, 1, 0);
    iommu.setup_context(dev, 0).unwrap();
    // A second-level entry over an empty table page.
    let table = mem.alloc_anonymous(0x1000).unwrap();
    let did = iommu.alloc_domain_id().unwrap();
    iommu
        .set_pasid_entry(
            dev,
            0,
            PasidEntry::SecondLevel {
                did,
                root: table.base(),
                levels: 4,
                dirty_tracking: false,
            },
        )
        .unwrap();
    // Set FPD (bit 1) in the entry in memory before any DMA cached it.
    let entry = iommu.pasid_entry_addr(dev, 0).unwrap();
    let word = mem.read_u64(entry).unwrap();
    mem.write_u64(entry, word | 2).unwrap();
    let err = iommu
        .unit()
        .translate(dev, None, 0x1000, Access::Read)
        .unwrap_err();
    assert_eq!(err.reason, FaultReason::SecondLevelNotPresent { level: 4 });
    assert!(iommu.unit().fault_log().is_empty());
    assert_eq!(iommu.unit().stats().faults_suppressed, 1);
}

fn delta(before: UnitStats, after: UnitStats) -> [u64; 6] {
    [
        after.iotlb_hits - before.iotlb_hits,
        after.iotlb_misses - before.iotlb_misses,
        after.pasid_cache_hits - before.pasid_cache_hits,
        after.pasid_cache_misses - before.pasid_cache_misses,
        after.dma_read_bytes - before.dma_read_bytes,
        after.dma_write_bytes - before.dma_write_bytes,
    ]
}

#[test]
fn hit_and_miss_counters_move_as_expected() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 1, 0);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let target = mem.alloc_anonymous(0x4000).unwrap();
    domain
        .map(0x10_0000, target.base(), 0x4000, Prot::READ | Prot::WRITE)
        .unwrap();
    let unit = &driver.units()[0];
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();

    let s0 = unit.stats();
    port.read(None, 0x10_0000, &mut [0u8; 16]).unwrap();
    let s1 = unit.stats();
    assert_eq!(delta(s0, s1), [0, 1, 0, 1, 16, 0], "cold: both caches miss");
    port.read(None, 0x10_0010, &mut [0u8; 16]).unwrap();
    let s2 = unit.stats();
    assert_eq!(delta(s1, s2), [1, 0, 1, 0, 16, 0], "warm: both hit");
    // Two pages: one hit, one miss. A write through an entry a read
    // filled walks again (to set Dirty).
    port.write(None, 0x10_0ff8, &[1u8; 16]).unwrap();
    let s3 = unit.stats();
    assert_eq!(delta(s2, s3), [0, 2, 1, 0, 0, 16]);
    port.write(None, 0x10_0ff8, &[1u8; 16]).unwrap();
    let s4 = unit.stats();
    assert_eq!(delta(s3, s4), [2, 0, 1, 0, 0, 16]);
    // Unmap flushes: the next access misses (and faults).
    domain.unmap(0x10_0000, 0x4000);
    assert!(port.read(None, 0x10_0000, &mut [0u8; 1]).is_err());
    let s5 = unit.stats();
    assert_eq!(delta(s4, s5), [0, 1, 1, 0, 0, 0]);
    assert!(s5.iotlb_invalidations > s4.iotlb_invalidations);
    assert!(s5.drains > s4.drains);
}
