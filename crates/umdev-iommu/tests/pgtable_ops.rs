//! map errors and atomicity, unmap semantics, dirty harvesting, and walks
//! running while another thread maps and unmaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::io::Errno;
use umdev_iommu::memory::HostMemory;
use umdev_iommu::pgtable::pte::PTE_ADDR_MASK;
use umdev_iommu::pgtable::{Access, PGSIZE_4K_2M_1G, PageTable, Prot, PtFormat, WalkFault};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::READ.union(Prot::WRITE);

fn table(format: PtFormat) -> PageTable {
    PageTable::new(HostMemory::new(), format, PGSIZE_4K_2M_1G).unwrap()
}

fn errno(r: Result<(), umdev_iommu::pgtable::PgtableError>) -> Errno {
    r.unwrap_err().errno()
}

#[test]
fn map_errors_follow_linux() {
    let pt = table(PtFormat::SecondLevel { levels: 3 });
    assert_eq!(errno(pt.map(0x800, 0, K4, RW)), Errno::INVAL);
    assert_eq!(errno(pt.map(0, 0x800, K4, RW)), Errno::INVAL);
    assert_eq!(errno(pt.map(0, 0, 0x800, RW)), Errno::INVAL);
    assert_eq!(errno(pt.map(0, 0, K4, Prot::empty())), Errno::INVAL);
    assert_eq!(errno(pt.map(0, 1 << 52, K4, RW)), Errno::INVAL);
    // Width check comes before the permission check (intel_iommu_map).
    assert_eq!(errno(pt.map(1 << 39, 0, K4, Prot::empty())), Errno::FAULT);
    assert_eq!(errno(pt.map((1 << 39) - K4, 0, 2 * K4, RW)), Errno::FAULT);
    assert_eq!(errno(pt.map(!0xfff, 0, K4, RW)), Errno::FAULT);
    pt.map((1 << 39) - K4, 0, K4, RW).unwrap();
    // A zero length maps nothing (__iommu_map).
    pt.map(0, 0, 0, Prot::empty()).unwrap();
    // First level: only the lower canonical half is mappable.
    let fl = table(PtFormat::FirstLevel { levels: 4 });
    assert_eq!(errno(fl.map(1 << 47, 0, K4, RW)), Errno::FAULT);
    fl.map((1 << 47) - K4, 0, K4, RW).unwrap();
    assert_eq!(fl.mapped_bytes(), K4);
}

#[test]
fn overlapping_maps_are_eexist_and_change_nothing() {
    let pt = table(PtFormat::SecondLevel { levels: 4 });
    pt.map(G1 + 5 * K4, 0x7000_5000, K4, Prot::READ).unwrap();
    let pages = pt.table_pages();
    for (iova, len) in [
        (G1 + 5 * K4, K4),     // the same leaf
        (G1, 8 * K4),          // covers it with 4K pages
        (G1, M2),              // a 2M superpage over the table holding it
        (0, 2 * G1),           // a 1G superpage over it
        (G1 + 5 * K4, 2 * G1), // starts on it
    ] {
        let err = pt.map(iova, iova, len, RW).unwrap_err();
        assert_eq!(err.errno(), Errno::EXIST, "{iova:#x}+{len:#x}");
        assert_eq!(pt.table_pages(), pages, "{iova:#x}+{len:#x} left tables");
        assert_eq!(pt.mapped_bytes(), K4);
        assert_eq!(pt.iova_to_phys(G1), None);
        assert_eq!(pt.iova_to_phys(0), None);
    }
    let t = pt.iova_to_phys(G1 + 5 * K4).unwrap();
    assert_eq!((t.phys, t.prot), (0x7000_5000, Prot::READ));
    // Superpage leaf: a 4K map inside it is EEXIST too.
    pt.map(4 * G1, 4 * G1, G1, RW).unwrap();
    assert_eq!(errno(pt.map(4 * G1 + M2, 0, K4, RW)), Errno::EXIST);
    assert_eq!(pt.iova_to_phys(4 * G1).unwrap().page_size, G1);
    // Right next to it is fine.
    pt.map(5 * G1, 0, K4, RW).unwrap();
}

#[test]
fn unmap_removes_whole_leaves_and_skips_holes() {
    let pt = table(PtFormat::FirstLevel { levels: 4 });
    pt.map(0, 0, 4 * K4, RW).unwrap();
    pt.map(M2, M2, M2, RW).unwrap();
    pt.map(G1, G1, G1, RW).unwrap();
    assert_eq!(pt.mapped_bytes(), 4 * K4 + M2 + G1);
    // Unaligned requests unmap nothing (__iommu_unmap).
    assert_eq!(pt.unmap(0x800, K4), 0);
    assert_eq!(pt.unmap(0, 0x800), 0);
    // The middle of the 4K run: exactly two pages.
    assert_eq!(pt.unmap(K4, 2 * K4), 2 * K4);
    assert_eq!(pt.iova_to_phys(K4), None);
    assert!(pt.iova_to_phys(3 * K4).is_some());
    // One page inside the 2M superpage removes the whole superpage.
    assert_eq!(pt.unmap(M2 + 7 * K4, K4), M2);
    assert_eq!(pt.iova_to_phys(M2), None);
    // A range ending inside the 1G superpage removes it, holes uncounted.
    assert_eq!(pt.unmap(2 * K4, G1 + K4), K4 + G1);
    assert_eq!(pt.iova_to_phys(G1 + M2), None);
    assert_eq!(pt.mapped_bytes(), K4);
    assert_eq!(pt.unmap(0, 1 << 47), K4);
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(pt.unmap(0, 1 << 47), 0);
    // Beyond the input limit is clipped.
    assert_eq!(pt.unmap(1 << 47, G1), 0);
}

#[test]
fn unmap_frees_emptied_tables() {
    let pt = table(PtFormat::SecondLevel { levels: 5 });
    let far = 0x01ff_fff0_0000_0000;
    pt.map(far, 0, 3 * G1 + 2 * K4, RW).unwrap();
    // Levels 5..2 for the 4K leaves, plus the level-1 table; 1G leaves
    // sit in the level-3 table.
    let pages = pt.table_pages();
    assert_eq!(pages, 5);
    assert_eq!(pt.unmap(far + 3 * G1, K4), K4);
    assert_eq!(pt.table_pages(), 5);
    assert_eq!(pt.unmap(far + 3 * G1 + K4, K4), K4);
    assert_eq!(pt.table_pages(), 3);
    assert_eq!(pt.unmap(far, 3 * G1), 3 * G1);
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(pt.mapped_bytes(), 0);
}

/// The table page at `level` on the path of `iova` (level < top).
fn table_at(mem: &HostMemory, pt: &PageTable, iova: u64, level: u8) -> u64 {
    let mut table = pt.root();
    for l in (level + 1..=pt.format().levels()).rev() {
        let index = (iova >> (12 + 9 * (u32::from(l) - 1))) & 511;
        table = mem.read_u64(table + index * 8).unwrap() & PTE_ADDR_MASK;
    }
    table
}

#[test]
fn freed_tables_are_reused_only_at_their_level() {
    let mem = HostMemory::new();
    let pt = PageTable::new(
        Arc::clone(&mem),
        PtFormat::SecondLevel { levels: 4 },
        PGSIZE_4K_2M_1G,
    )
    .unwrap();
    // Two level-1 tables under one level-2 table; free the second.
    pt.map(0, 0, K4, RW).unwrap();
    pt.map(M2, 0, K4, RW).unwrap();
    let l1 = table_at(&mem, &pt, M2, 1);
    assert_eq!(pt.unmap(M2, K4), K4);
    // A 2M leaf in another gigabyte needs a new level-2 table: not the
    // freed level-1 page, which a stale walk might still read as level 1.
    pt.map(5 * G1, 0, M2, RW).unwrap();
    assert_ne!(table_at(&mem, &pt, 5 * G1, 2), l1);
    // The next level-1 table gets it back.
    pt.map(7 * G1, 0, K4, RW).unwrap();
    assert_eq!(table_at(&mem, &pt, 7 * G1, 1), l1);
}

#[test]
fn dirty_harvest_reports_and_clears() {
    let pt = table(PtFormat::SecondLevel { levels: 4 });
    pt.map(0, 0, 8 * K4, RW).unwrap();
    pt.map(M2, M2, M2, RW).unwrap();
    pt.walk(K4, Access::Write, true).unwrap();
    pt.walk(5 * K4, Access::Write, true).unwrap();
    pt.walk(M2 + 0x5000, Access::Write, true).unwrap();
    pt.walk(2 * K4, Access::Read, true).unwrap();
    pt.walk(3 * K4, Access::Write, false).unwrap();
    let harvest = |iova, len, clear| {
        let mut seen = Vec::new();
        pt.read_and_clear_dirty(iova, len, clear, &mut |i, s| seen.push((i, s)));
        seen
    };
    // A range that starts inside the superpage still reports all of it.
    assert_eq!(harvest(4 * K4, M2, false), [(5 * K4, K4), (M2, M2)]);
    assert_eq!(harvest(0, 4 * M2, true), [(K4, K4), (5 * K4, K4), (M2, M2)]);
    assert_eq!(harvest(0, 4 * M2, true), []);
    pt.walk(K4, Access::Write, true).unwrap();
    assert_eq!(harvest(0, 2 * K4, true), [(K4, K4)]);
}

#[test]
fn walks_race_with_map_and_unmap() {
    let mem = HostMemory::new();
    let pt = Arc::new(
        PageTable::new(
            Arc::clone(&mem),
            PtFormat::FirstLevel { levels: 4 },
            PGSIZE_4K_2M_1G,
        )
        .unwrap(),
    );
    // A stable mapping the walker checks, next to churning ones.
    pt.map(0, 0x5000_0000, K4, Prot::READ).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let walks = Arc::new(AtomicU64::new(0));
    let walker = {
        let (pt, stop, walks) = (Arc::clone(&pt), Arc::clone(&stop), Arc::clone(&walks));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(pt.walk(0, Access::Read, false).unwrap().phys, 0x5000_0000);
                match pt.walk(G1 + 3 * K4, Access::Write, false) {
                    Ok(t) => assert_eq!(t.phys, 0x6000_3000),
                    Err(f) => assert!(matches!(f, WalkFault::NotPresent { .. })),
                }
                walks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while walks.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    // Churn until the walker has walked plenty during it.
    let before = walks.load(Ordering::Relaxed);
    let mut rounds = 0;
    while rounds < 300 || walks.load(Ordering::Relaxed) < before + 2000 {
        pt.map(G1, 0x6000_0000, 64 * K4, RW).unwrap();
        assert_eq!(pt.unmap(G1, 64 * K4), 64 * K4);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    walker.join().unwrap();
    assert_eq!(pt.table_pages(), 4);
}

#[test]
fn page_tables_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PageTable>();
}

#[test]
fn dropping_a_table_releases_its_pages() {
    let mem = HostMemory::new();
    let before = mem.placed_bytes();
    let pt = PageTable::new(
        Arc::clone(&mem),
        PtFormat::SecondLevel { levels: 4 },
        PGSIZE_4K_2M_1G,
    )
    .unwrap();
    pt.map(0, 0, 64 * M2, RW).unwrap();
    let root = pt.root();
    assert!(mem.placed_bytes() > before);
    drop(pt);
    assert_eq!(mem.placed_bytes(), before);
    assert!(mem.read_u64(root).is_err());
}
