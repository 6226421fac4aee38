//! Strict invalidation under concurrency: once unmap returns, no DMA can
//! use the old translation, neither through a stale IOTLB entry nor by
//! finishing a copy it translated before the unmap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::iommu::PagingFlags;
use umdev_iommu::pgtable::Prot;
use umdev_testkit::vtd::{attached_paging, bdf, config, driver};

const PAGE: u64 = 0x1000;

/// One thread DMAs in a loop while the main thread maps and unmaps a
/// fresh IOVA per round. The DMA thread reads the round state *before*
/// each DMA; a DMA that began after the unmap of its IOVA returned (odd
/// state) must fault. A stale IOTLB entry would let it succeed.
#[test]
fn no_dma_through_an_unmapped_iova_after_unmap_returns() {
    const ROUNDS: u64 = 400;
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 6, 0);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let page = mem.alloc_anonymous(PAGE).unwrap();
    page.write(0, &[0x5a; 64]).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    let iova = |round: u64| 0x100_0000 + round * PAGE;

    // state = 2 * round (mapped) or 2 * round + 1 (unmap returned).
    let state = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let dma = {
        let (state, seen, stop) = (state.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut violations, mut ok) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let s = state.load(Ordering::SeqCst);
                let mut buf = [0u8; 64];
                let result = port.read(None, iova(s / 2), &mut buf);
                match result {
                    Ok(()) if s % 2 == 1 => violations += 1,
                    Ok(()) => {
                        assert_eq!(buf, [0x5a; 64]);
                        ok += 1;
                    }
                    Err(_) => {}
                }
                seen.store(s, Ordering::SeqCst);
            }
            (violations, ok)
        })
    };
    let wait_seen = |s: u64| {
        while seen.load(Ordering::SeqCst) < s {
            std::thread::yield_now();
        }
    };
    for round in 1..=ROUNDS {
        domain
            .map(iova(round), page.base(), PAGE, Prot::READ | Prot::WRITE)
            .unwrap();
        state.store(2 * round, Ordering::SeqCst);
        // Let the DMA thread fill the IOTLB with this round's mapping.
        wait_seen(2 * round);
        assert_eq!(domain.unmap(iova(round), PAGE), PAGE);
        state.store(2 * round + 1, Ordering::SeqCst);
        wait_seen(2 * round + 1);
    }
    stop.store(true, Ordering::SeqCst);
    let (violations, ok) = dma.join().unwrap();
    assert_eq!(violations, 0, "DMA succeeded through an unmapped IOVA");
    assert!(ok > 0);
    let stats = driver.units()[0].stats();
    assert!(stats.iotlb_hits > 0, "the IOTLB was in use: {stats:?}");
}

/// A 1 MiB DMA write is translated first and copied after, so unmaps land
/// in the middle of copies. After unmap returns the main thread zeroes the
/// memory directly; if unmap did not wait for the in-flight copy, the rest
/// of that copy lands afterwards and leaves non-zero bytes.
#[test]
fn unmap_waits_for_copies_in_flight() {
    const ROUNDS: usize = 60;
    const LEN: u64 = 1 << 20;
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 7, 0);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let target = mem.alloc_anonymous(LEN).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    let iova = 0x4000_0000;
    let zeros = vec![0u8; LEN as usize];

    for _ in 0..ROUNDS {
        domain
            .map(iova, target.base(), LEN, Prot::READ | Prot::WRITE)
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let dma = {
            let (port, stop, writes) = (port.clone(), stop.clone(), writes.clone());
            std::thread::spawn(move || {
                let data = vec![0xabu8; LEN as usize];
                while !stop.load(Ordering::SeqCst) {
                    if port.write(None, iova, &data).is_ok() {
                        writes.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        while writes.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(domain.unmap(iova, LEN), LEN);
        target.write(0, &zeros).unwrap();
        stop.store(true, Ordering::SeqCst);
        dma.join().unwrap();
        let mut after = vec![0u8; LEN as usize];
        target.read(0, &mut after).unwrap();
        let stray = after.iter().filter(|&&b| b != 0).count();
        assert_eq!(stray, 0, "{stray} bytes written after unmap returned");
    }
    assert!(driver.units()[0].stats().drains > 0);
}

/// A scatter-gather mapping holds off an unmap of its range until it is
/// dropped.
#[test]
fn sg_mapping_holds_off_unmap() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 8, 0);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let target = mem.alloc_anonymous(4 * PAGE).unwrap();
    domain
        .map(0x10_0000, target.base(), 4 * PAGE, Prot::READ | Prot::WRITE)
        .unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    let sg = port
        .translate_sg(
            None,
            0x10_0000 + 0x800,
            3 * PAGE,
            umdev_iommu::pgtable::Access::Write,
        )
        .unwrap();
    assert_eq!(sg.len(), 3 * PAGE);
    assert_eq!(sg.segments()[0].phys, target.base() + 0x800);
    let unmapped = Arc::new(AtomicBool::new(false));
    let unmapper = {
        let (domain, unmapped) = (Arc::clone(&domain), unmapped.clone());
        std::thread::spawn(move || {
            let bytes = domain.unmap(0x10_0000, 4 * PAGE);
            unmapped.store(true, Ordering::SeqCst);
            bytes
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Still ours: the unmap is waiting.
    let done_early = unmapped.load(Ordering::SeqCst);
    sg.memory()
        .write(sg.segments()[0].phys, b"still mapped")
        .unwrap();
    drop(sg);
    assert_eq!(unmapper.join().unwrap(), 4 * PAGE);
    assert!(!done_early, "unmap returned while a mapping was held");
}
