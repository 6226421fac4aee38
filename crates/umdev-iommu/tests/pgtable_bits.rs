//! The exact entry bits a 4K, 2M and 1G mapping leave in the exact table
//! slots, read back raw from host memory, for both formats.

use std::sync::Arc;

use umdev_iommu::memory::{HostMemory, PhysAddr};
use umdev_iommu::pgtable::pte::PTE_ADDR_MASK;
use umdev_iommu::pgtable::{PGSIZE_4K_2M_1G, PageTable, Prot, PtFormat};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

/// First level: table entries P|R/W|U/S|A; leaves add D when writable.
const FL_TABLE: u64 = 0x27;
const FL_LEAF_RW: u64 = 0x67;
const FL_LEAF_RO: u64 = 0x25;
/// Second level: table entries R|W; leaves R and/or W.
const SL_TABLE: u64 = 0x3;
const PS: u64 = 0x80;

fn entry(mem: &HostMemory, table: PhysAddr, index: u64) -> u64 {
    mem.read_u64(table + index * 8).unwrap()
}

/// Follows `iova` from the root, checking that table entries carry
/// `table_bits` and, if `sole`, that each table uses only the slot `iova`
/// indexes. Returns the entry found at `leaf_level`.
fn leaf_slot(
    pt: &PageTable,
    mem: &HostMemory,
    iova: u64,
    leaf_level: u8,
    table_bits: u64,
    sole: bool,
) -> u64 {
    let mut table = pt.root();
    let mut level = pt.format().levels();
    loop {
        let index = (iova >> (12 + 9 * (u32::from(level) - 1))) & 511;
        for other in (0..512).filter(|&i| sole && i != index) {
            assert_eq!(
                entry(mem, table, other),
                0,
                "level {level} slot {other} must be empty"
            );
        }
        let e = entry(mem, table, index);
        if level == leaf_level {
            return e;
        }
        assert_eq!(
            e & !PTE_ADDR_MASK,
            table_bits,
            "level {level} table entry bits"
        );
        let next = e & PTE_ADDR_MASK;
        assert_ne!(next, 0);
        assert_ne!(next, table);
        table = next;
        level -= 1;
    }
}

struct Case {
    format: PtFormat,
    iova: u64,
    phys: PhysAddr,
    size: u64,
    prot: Prot,
    table_bits: u64,
    leaf: u64,
}

fn check(case: Case) {
    let mem = HostMemory::new();
    let pt = PageTable::new(Arc::clone(&mem), case.format, PGSIZE_4K_2M_1G).unwrap();
    pt.map(case.iova, case.phys, case.size, case.prot).unwrap();
    let leaf_level = match case.size {
        K4 => 1,
        M2 => 2,
        _ => 3,
    };
    let got = leaf_slot(&pt, &mem, case.iova, leaf_level, case.table_bits, true);
    assert_eq!(
        got, case.leaf,
        "{:?} leaf for {:#x} bytes",
        case.format, case.size
    );
    // One table per level above the leaf.
    assert_eq!(
        pt.table_pages(),
        usize::from(case.format.levels() - leaf_level + 1)
    );
    assert_eq!(pt.unmap(case.iova, case.size), case.size);
    assert_eq!(pt.table_pages(), 1);
    for i in 0..512 {
        assert_eq!(entry(&mem, pt.root(), i), 0);
    }
}

#[test]
fn first_level_4k_2m_1g_leaves() {
    for levels in [4, 5] {
        let format = PtFormat::FirstLevel { levels };
        // Bits above 39 exercise the upper indices of 4- and 5-level roots.
        let high = if levels == 5 {
            0x00ab_0000_0000_0000
        } else {
            0x0000_5a00_0000_0000
        };
        let phys = 0x000a_bcde_4000_0000;
        for (size, prot, bits) in [
            (K4, Prot::READ | Prot::WRITE, FL_LEAF_RW),
            (K4, Prot::READ, FL_LEAF_RO),
            (M2, Prot::READ | Prot::WRITE, FL_LEAF_RW | PS),
            (G1, Prot::READ, FL_LEAF_RO | PS),
            (G1, Prot::READ | Prot::WRITE, FL_LEAF_RW | PS),
        ] {
            let iova = high | (3 * G1) | (5 * M2 % G1) | (7 * K4 % M2);
            let iova = iova & !(size - 1);
            let phys = phys + size;
            check(Case {
                format,
                iova,
                phys,
                size,
                prot,
                table_bits: FL_TABLE,
                leaf: phys | bits,
            });
        }
    }
}

#[test]
fn first_level_write_only_is_read_write() {
    // x86 paging cannot express write-only: P makes every entry readable.
    check(Case {
        format: PtFormat::FirstLevel { levels: 4 },
        iova: 0x1000,
        phys: 0x2000,
        size: K4,
        prot: Prot::WRITE,
        table_bits: FL_TABLE,
        leaf: 0x2000 | FL_LEAF_RW,
    });
}

#[test]
fn second_level_4k_2m_1g_leaves() {
    for levels in [3, 4, 5] {
        let format = PtFormat::SecondLevel { levels };
        let high = match levels {
            3 => 0x0000_0055_0000_0000,
            4 => 0x0000_a500_0000_0000,
            _ => 0x01a5_0000_0000_0000,
        };
        for (size, prot, bits) in [
            (K4, Prot::READ | Prot::WRITE, 0x3),
            (K4, Prot::READ, 0x1),
            (K4, Prot::WRITE, 0x2),
            (M2, Prot::READ | Prot::WRITE, 0x3 | PS),
            (M2, Prot::READ, 0x1 | PS),
            (G1, Prot::READ | Prot::WRITE, 0x3 | PS),
        ] {
            let iova = (high | (3 * G1) | (5 * M2) | (7 * K4)) & !(size - 1);
            let phys = 0x0007_0000_0000_0000 + 9 * size;
            check(Case {
                format,
                iova,
                phys,
                size,
                prot,
                table_bits: SL_TABLE,
                leaf: phys | bits,
            });
        }
    }
}

#[test]
fn page_size_follows_alignment_length_and_bitmap() {
    let mem = HostMemory::new();
    let format = PtFormat::SecondLevel { levels: 4 };
    let pt = PageTable::new(Arc::clone(&mem), format, PGSIZE_4K_2M_1G).unwrap();
    // 2M + 4K at a 2M-aligned IOVA and phys: one 2M leaf, then one 4K leaf.
    pt.map(4 * M2, 8 * M2, M2 + K4, Prot::READ).unwrap();
    assert_eq!(pt.iova_to_phys(4 * M2).unwrap().page_size, M2);
    assert_eq!(pt.iova_to_phys(5 * M2).unwrap().page_size, K4);
    // Phys only 4K-aligned relative to the IOVA: 4K leaves all the way.
    pt.map(G1, G1 + K4, M2, Prot::READ).unwrap();
    assert_eq!(pt.iova_to_phys(G1).unwrap().page_size, K4);
    assert_eq!(pt.iova_to_phys(G1 + M2 - K4).unwrap().phys, G1 + M2);

    // Without 2M in the bitmap an aligned 2M range is 512 leaves.
    let small = PageTable::new(Arc::clone(&mem), format, K4).unwrap();
    small.map(0, 0, M2, Prot::READ).unwrap();
    assert_eq!(small.iova_to_phys(M2 - K4).unwrap().page_size, K4);
    for iova in [0, K4, M2 - K4] {
        assert_eq!(
            leaf_slot(&small, &mem, iova, 1, SL_TABLE, false),
            iova | 0x1
        );
    }
}

#[test]
fn bad_formats_and_bitmaps_are_einval() {
    use rustix::io::Errno;
    let mem = HostMemory::new();
    for format in [
        PtFormat::FirstLevel { levels: 3 },
        PtFormat::FirstLevel { levels: 6 },
        PtFormat::SecondLevel { levels: 2 },
    ] {
        let err = PageTable::new(Arc::clone(&mem), format, K4).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL);
    }
    let format = PtFormat::SecondLevel { levels: 4 };
    for bitmap in [0, M2, K4 | (8 << 10), K4 | (512 << 30)] {
        let err = PageTable::new(Arc::clone(&mem), format, bitmap).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL, "bitmap {bitmap:#x}");
    }
}
