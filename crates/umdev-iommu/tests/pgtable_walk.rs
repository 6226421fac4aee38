//! The hardware walk: faults at each level, permissions, input width,
//! reserved bits, Accessed / Dirty rules, and walks over a reader that is
//! not host memory.

use std::sync::Arc;

use umdev_iommu::memory::{HostMemory, PhysAddr};
use umdev_iommu::pgtable::pte::{
    DMA_FL_PTE_ACCESS, DMA_FL_PTE_DIRTY, DMA_FL_PTE_PRESENT, DMA_FL_PTE_RW, DMA_FL_PTE_US,
    DMA_PTE_LARGE_PAGE, DMA_PTE_WRITE, DMA_SL_PTE_ACCESS, DMA_SL_PTE_DIRTY, PTE_ADDR_MASK,
};
use umdev_iommu::pgtable::{
    Access, HostTableReader, PGSIZE_4K_2M_1G, PageTable, Prot, PtFormat, TableReader, Translation,
    WalkFault, walk,
};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::READ.union(Prot::WRITE);

fn table(format: PtFormat) -> (Arc<HostMemory>, PageTable) {
    let mem = HostMemory::new();
    let pt = PageTable::new(Arc::clone(&mem), format, PGSIZE_4K_2M_1G).unwrap();
    (mem, pt)
}

/// Address of the entry translating `iova` at `level`.
fn slot(mem: &HostMemory, pt: &PageTable, iova: u64, level: u8) -> PhysAddr {
    let mut table = pt.root();
    for l in (level + 1..=pt.format().levels()).rev() {
        let index = (iova >> (12 + 9 * (u32::from(l) - 1))) & 511;
        table = mem.read_u64(table + index * 8).unwrap() & PTE_ADDR_MASK;
    }
    table + ((iova >> (12 + 9 * (u32::from(level) - 1))) & 511) * 8
}

fn all_formats() -> [PtFormat; 5] {
    [
        PtFormat::FirstLevel { levels: 4 },
        PtFormat::FirstLevel { levels: 5 },
        PtFormat::SecondLevel { levels: 3 },
        PtFormat::SecondLevel { levels: 4 },
        PtFormat::SecondLevel { levels: 5 },
    ]
}

#[test]
fn not_present_at_each_level() {
    for format in all_formats() {
        let (_mem, pt) = table(format);
        let levels = format.levels();
        assert_eq!(
            pt.walk(0, Access::Read, false),
            Err(WalkFault::NotPresent { level: levels })
        );
        let iova = 0x1234_5000 & (format.map_limit() - 1);
        pt.map(iova, 0x9000_0000, K4, RW).unwrap();
        assert_eq!(
            pt.walk(iova, Access::Read, false).unwrap().phys,
            0x9000_0000
        );
        // Neighbours that share the path down to `level + 1` only.
        for level in 1..=levels {
            let other = iova ^ (1 << (12 + 9 * (u32::from(level) - 1)));
            assert_eq!(
                pt.walk(other, Access::Read, false),
                Err(WalkFault::NotPresent { level }),
                "{format:?} level {level}"
            );
            assert_eq!(pt.iova_to_phys(other), None);
        }
    }
}

#[test]
fn permission_faults_name_the_refusing_level() {
    for format in all_formats() {
        let (mem, pt) = table(format);
        pt.map(0x40_0000, 0x8000_0000, K4, Prot::READ).unwrap();
        assert_eq!(
            pt.walk(0x40_0000, Access::Write, true),
            Err(WalkFault::Permission { level: 1 })
        );
        let t = pt.walk(0x40_0000, Access::Read, true).unwrap();
        assert_eq!(t.prot, Prot::READ);

        // A writable leaf under a read-only table entry at level 2.
        pt.map(0x40_1000, 0x8000_1000, K4, RW).unwrap();
        let l2 = slot(&mem, &pt, 0x40_1000, 2);
        let entry = mem.read_u64(l2).unwrap();
        let write_bit = match format {
            PtFormat::FirstLevel { .. } => DMA_FL_PTE_RW,
            PtFormat::SecondLevel { .. } => DMA_PTE_WRITE,
        };
        mem.write_u64(l2, entry & !write_bit).unwrap();
        assert_eq!(
            pt.walk(0x40_1000, Access::Write, false),
            Err(WalkFault::Permission { level: 2 })
        );
        assert_eq!(pt.iova_to_phys(0x40_1000).unwrap().prot, Prot::READ);
    }
}

#[test]
fn second_level_write_only_refuses_reads() {
    let (_mem, pt) = table(PtFormat::SecondLevel { levels: 4 });
    pt.map(0, 0x1000_0000, K4, Prot::WRITE).unwrap();
    assert_eq!(
        pt.walk(0, Access::Read, false),
        Err(WalkFault::Permission { level: 1 })
    );
    assert_eq!(pt.walk(0, Access::Write, false).unwrap().prot, Prot::WRITE);
}

#[test]
fn first_level_needs_user_access_everywhere() {
    let format = PtFormat::FirstLevel { levels: 4 };
    let (mem, pt) = table(format);
    pt.map(G1, 0x8000_0000, K4, RW).unwrap();
    let l3 = slot(&mem, &pt, G1, 3);
    let entry = mem.read_u64(l3).unwrap();
    mem.write_u64(l3, entry & !DMA_FL_PTE_US).unwrap();
    assert_eq!(
        pt.walk(G1, Access::Read, false),
        Err(WalkFault::Permission { level: 3 })
    );
}

#[test]
fn input_width_and_canonical_addresses() {
    let (_mem, fl4) = table(PtFormat::FirstLevel { levels: 4 });
    // Non-canonical for 48 bits.
    for iova in [1 << 47, 0x0001_0000_0000_0000, 0xfff0_0000_0000_0000] {
        assert_eq!(
            fl4.walk(iova, Access::Read, false),
            Err(WalkFault::OutOfAperture)
        );
    }
    // Canonical upper half: walked (root slot 256), nothing there.
    assert_eq!(
        fl4.walk(0xffff_8000_0000_0000, Access::Read, false),
        Err(WalkFault::NotPresent { level: 4 })
    );
    let (_mem, fl5) = table(PtFormat::FirstLevel { levels: 5 });
    assert_eq!(
        fl5.walk(1 << 56, Access::Read, false),
        Err(WalkFault::OutOfAperture)
    );
    assert_eq!(
        fl5.walk(1 << 47, Access::Read, false),
        Err(WalkFault::NotPresent { level: 5 })
    );
    for (levels, width) in [(3u8, 39u32), (4, 48), (5, 57)] {
        let (_mem, sl) = table(PtFormat::SecondLevel { levels });
        assert_eq!(
            sl.walk(1 << width, Access::Read, false),
            Err(WalkFault::OutOfAperture)
        );
        assert_eq!(
            sl.walk((1 << width) - K4, Access::Read, false),
            Err(WalkFault::NotPresent { level: levels })
        );
    }
}

#[test]
fn reserved_bits_fault() {
    for format in [
        PtFormat::FirstLevel { levels: 4 },
        PtFormat::SecondLevel { levels: 4 },
    ] {
        let (mem, pt) = table(format);
        pt.map(0, 0x4000_0000, M2, RW).unwrap();
        // A superpage whose address has bits below 2 MiB set.
        let l2 = slot(&mem, &pt, 0, 2);
        let leaf = mem.read_u64(l2).unwrap();
        mem.write_u64(l2, leaf | 0x2000).unwrap();
        assert_eq!(
            pt.walk(0, Access::Read, false),
            Err(WalkFault::Reserved { level: 2 })
        );
        mem.write_u64(l2, leaf).unwrap();
        assert!(pt.walk(0, Access::Read, false).is_ok());
        // PS in a level-4 entry.
        let l4 = slot(&mem, &pt, 0, 4);
        let entry = mem.read_u64(l4).unwrap();
        mem.write_u64(l4, entry | DMA_PTE_LARGE_PAGE).unwrap();
        assert_eq!(
            pt.walk(0, Access::Read, false),
            Err(WalkFault::Reserved { level: 4 })
        );
    }
}

/// `bits` of each entry from the root down to `leaf_level`.
fn path_bits(mem: &HostMemory, pt: &PageTable, iova: u64, leaf_level: u8, bits: u64) -> Vec<u64> {
    (leaf_level..=pt.format().levels())
        .rev()
        .map(|level| mem.read_u64(slot(mem, pt, iova, level)).unwrap() & bits)
        .collect()
}

#[test]
fn first_level_sets_accessed_and_dirty() {
    let (mem, pt) = table(PtFormat::FirstLevel { levels: 4 });
    let iova = 0x7654_3000;
    pt.map(iova, 0x1_0000_0000, K4, RW).unwrap();
    // Linux presets A everywhere and D on the writable leaf.
    let ad = DMA_FL_PTE_ACCESS | DMA_FL_PTE_DIRTY;
    assert_eq!(path_bits(&mem, &pt, iova, 1, ad), [0x20, 0x20, 0x20, ad]);
    // Clear them as a guest's own tables might have them.
    for level in 1..=4 {
        let at = slot(&mem, &pt, iova, level);
        let entry = mem.read_u64(at).unwrap();
        mem.write_u64(at, entry & !ad).unwrap();
    }
    pt.walk(iova, Access::Read, false).unwrap();
    assert_eq!(path_bits(&mem, &pt, iova, 1, ad), [0x20, 0x20, 0x20, 0x20]);
    pt.walk(iova, Access::Write, false).unwrap();
    assert_eq!(path_bits(&mem, &pt, iova, 1, ad), [0x20, 0x20, 0x20, ad]);
}

#[test]
fn failed_walks_set_nothing() {
    let (mem, pt) = table(PtFormat::FirstLevel { levels: 4 });
    pt.map(0, 0x1_0000_0000, K4, Prot::READ).unwrap();
    let leaf = slot(&mem, &pt, 0, 1);
    let entry = mem.read_u64(leaf).unwrap();
    mem.write_u64(leaf, entry & !DMA_FL_PTE_ACCESS).unwrap();
    assert_eq!(
        pt.walk(0, Access::Write, false),
        Err(WalkFault::Permission { level: 1 })
    );
    assert_eq!(mem.read_u64(leaf).unwrap(), entry & !DMA_FL_PTE_ACCESS);
}

#[test]
fn second_level_sets_accessed_and_dirty_only_with_ssade() {
    let (mem, pt) = table(PtFormat::SecondLevel { levels: 4 });
    let ad = DMA_SL_PTE_ACCESS | DMA_SL_PTE_DIRTY;
    let (a, d) = (DMA_SL_PTE_ACCESS, DMA_SL_PTE_DIRTY);
    pt.map(M2, 0x2_0000_0000, M2, RW).unwrap();
    assert_eq!(path_bits(&mem, &pt, M2, 2, ad), [0, 0, 0]);
    pt.walk(M2, Access::Write, false).unwrap();
    pt.walk(M2, Access::Read, false).unwrap();
    assert_eq!(path_bits(&mem, &pt, M2, 2, ad), [0, 0, 0]);
    pt.walk(M2 + 0x1000, Access::Read, true).unwrap();
    assert_eq!(path_bits(&mem, &pt, M2, 2, ad), [a, a, a]);
    pt.walk(M2 + 0x3000, Access::Write, true).unwrap();
    assert_eq!(path_bits(&mem, &pt, M2, 2, ad), [a, a, a | d]);
}

#[test]
fn walk_reports_the_offset_inside_superpages() {
    let (_mem, pt) = table(PtFormat::SecondLevel { levels: 4 });
    pt.map(3 * G1, 5 * G1, G1, Prot::READ).unwrap();
    assert_eq!(
        pt.walk(3 * G1 + 0x1234_5678, Access::Read, false),
        Ok(Translation {
            phys: 5 * G1 + 0x1234_5678,
            page_size: G1,
            prot: Prot::READ
        })
    );
}

/// Tables at "guest-physical" addresses: the reader adds a fixed offset to
/// reach host memory, as a nested walk goes through the second level.
struct OffsetReader<'a> {
    host: HostTableReader<'a>,
    offset: u64,
    reads: std::cell::Cell<usize>,
}

impl TableReader for OffsetReader<'_> {
    fn read_entry(&self, table: PhysAddr, index: usize) -> Result<u64, WalkFault> {
        self.reads.set(self.reads.get() + 1);
        if table < 0x1000 {
            return Err(WalkFault::TableRead { addr: table });
        }
        self.host.read_entry(table + self.offset, index)
    }

    fn set_entry_bits(&self, table: PhysAddr, index: usize, bits: u64) {
        self.host.set_entry_bits(table + self.offset, index, bits);
    }
}

#[test]
fn walk_uses_only_the_reader() {
    let mem = HostMemory::new();
    let guest = mem.alloc_anonymous(16 * K4).unwrap();
    let offset = guest.base() - 0x10_0000;
    // Guest tables at GPA 0x10_0000 (root) .. 0x10_3000, built by hand.
    let (root, l3, l2, l1) = (0x10_0000u64, 0x10_1000u64, 0x10_2000u64, 0x10_3000u64);
    let table = DMA_FL_PTE_PRESENT | DMA_FL_PTE_RW | DMA_FL_PTE_US;
    let iova: u64 = 0x0000_7f12_3456_7000;
    let idx = |level: u32| (iova >> (12 + 9 * (level - 1))) & 511;
    mem.write_u64(root + offset + idx(4) * 8, l3 | table)
        .unwrap();
    mem.write_u64(l3 + offset + idx(3) * 8, l2 | table).unwrap();
    mem.write_u64(l2 + offset + idx(2) * 8, l1 | table).unwrap();
    mem.write_u64(l1 + offset + idx(1) * 8, 0xabc_d000 | table)
        .unwrap();
    let reader = OffsetReader {
        host: HostTableReader::new(&mem),
        offset,
        reads: std::cell::Cell::new(0),
    };
    let format = PtFormat::FirstLevel { levels: 4 };
    let t = walk(&reader, format, root, iova | 0x123, Access::Write, false).unwrap();
    assert_eq!(t.phys, 0xabc_d123);
    assert_eq!(t.prot, RW);
    assert_eq!(reader.reads.get(), 4);
    // Accessed everywhere and Dirty on the leaf, through the reader.
    let leaf = mem.read_u64(l1 + offset + idx(1) * 8).unwrap();
    assert_eq!(leaf & (DMA_FL_PTE_ACCESS | DMA_FL_PTE_DIRTY), 0x60);
    assert_ne!(
        mem.read_u64(root + offset + idx(4) * 8).unwrap() & DMA_FL_PTE_ACCESS,
        0
    );
    // A table address the reader cannot reach is a TableRead fault.
    mem.write_u64(l2 + offset + idx(2) * 8, table).unwrap();
    assert_eq!(
        walk(&reader, format, root, iova, Access::Read, false),
        Err(WalkFault::TableRead { addr: 0 })
    );
    // Unbacked host memory likewise.
    assert_eq!(
        walk(
            &HostTableReader::new(&mem),
            format,
            0x2000,
            iova,
            Access::Read,
            false
        ),
        Err(WalkFault::TableRead { addr: 0x2000 })
    );
    // Hardware A/D updates leave a cleared entry clear.
    let at = l1 + offset + idx(1) * 8;
    mem.write_u64(at, 0).unwrap();
    reader.set_entry_bits(l1, idx(1) as usize, DMA_FL_PTE_ACCESS);
    assert_eq!(mem.read_u64(at).unwrap(), 0);
}
