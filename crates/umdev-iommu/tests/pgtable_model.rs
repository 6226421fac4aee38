//! Property test: random map / unmap / translate / DMA-write / dirty
//! harvest sequences on real-format tables against a `BTreeMap` of leaves.
//!
//! The model is the specification in a few lines: map picks page sizes as
//! iommu_pgsize does and fails EEXIST if any new leaf overlaps an existing
//! one; unmap removes every leaf the range touches; a translation is the
//! leaf containing the address.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rustix::io::Errno;
use umdev_iommu::memory::HostMemory;
use umdev_iommu::pgtable::{Access, PageTable, Prot, PtFormat, Translation, WalkFault};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

const CASES: u32 = 256;
const MIN_OPS: usize = 160;
const MAX_OPS: usize = 200;
// At least 10,000 operations per run (each also probes translations).
const _: () = assert!(CASES as usize * MIN_OPS >= 10_000);

#[derive(Clone, Copy, Debug)]
struct Leaf {
    size: u64,
    phys: u64,
    prot: Prot,
    dirty: bool,
}

struct Model {
    format: PtFormat,
    pgsizes: u64,
    leaves: BTreeMap<u64, Leaf>,
}

impl Model {
    fn first_level(&self) -> bool {
        matches!(self.format, PtFormat::FirstLevel { .. })
    }

    /// Lower canonical half for the first level, the full width for the
    /// second.
    fn limit(&self) -> u64 {
        let width = self.format.address_width();
        if self.first_level() {
            1 << (width - 1)
        } else {
            1 << width
        }
    }

    fn translatable(&self, iova: u64) -> bool {
        let width = self.format.address_width();
        if self.first_level() {
            let top = iova >> (width - 1);
            top == 0 || top == (1 << (65 - width)) - 1
        } else {
            iova >> width == 0
        }
    }

    /// iommu_pgsize: the largest allowed size fitting alignment and length.
    fn plan(
        &self,
        mut iova: u64,
        mut phys: u64,
        len: u64,
        budget: usize,
    ) -> Option<Vec<(u64, u64, u64)>> {
        let end = iova + len;
        let mut out = Vec::new();
        while iova < end {
            let size = [G1, M2, K4]
                .into_iter()
                .find(|&s| {
                    self.pgsizes & s != 0 && s <= end - iova && (iova | phys).is_multiple_of(s)
                })
                .unwrap();
            out.push((iova, phys, size));
            if out.len() > budget {
                return None;
            }
            iova += size;
            phys += size;
        }
        Some(out)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.leaves
            .range(..end)
            .next_back()
            .is_some_and(|(&base, leaf)| base + leaf.size > start)
    }

    fn map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        if !(iova | phys | len).is_multiple_of(K4) {
            return Err(Errno::INVAL);
        }
        if len == 0 {
            return Ok(());
        }
        if iova.checked_add(len).is_none_or(|end| end > self.limit()) {
            return Err(Errno::FAULT);
        }
        if prot.is_empty() {
            return Err(Errno::INVAL);
        }
        if phys + len > 1 << 52 {
            return Err(Errno::INVAL);
        }
        let plan = self.plan(iova, phys, len, usize::MAX).unwrap();
        if plan.iter().any(|&(i, _, s)| self.overlaps(i, i + s)) {
            return Err(Errno::EXIST);
        }
        let prot = if self.first_level() {
            prot | Prot::READ
        } else {
            prot
        };
        for (i, p, size) in plan {
            // Linux presets Dirty on writable first-level leaves.
            let dirty = self.first_level() && prot.contains(Prot::WRITE);
            self.leaves.insert(
                i,
                Leaf {
                    size,
                    phys: p,
                    prot,
                    dirty,
                },
            );
        }
        Ok(())
    }

    /// Leaves touching `iova..iova + len` (clipped to the limit).
    fn touched(&self, iova: u64, len: u64) -> Vec<u64> {
        let end = iova.saturating_add(len).min(self.limit());
        if iova >= end {
            return Vec::new();
        }
        let first = self
            .leaves
            .range(..iova)
            .next_back()
            .filter(|(base, leaf)| *base + leaf.size > iova)
            .map(|(&base, _)| base);
        first
            .into_iter()
            .chain(self.leaves.range(iova..end).map(|(&base, _)| base))
            .collect()
    }

    fn unmap(&mut self, iova: u64, len: u64) -> u64 {
        if !(iova | len).is_multiple_of(K4) {
            return 0;
        }
        self.touched(iova, len)
            .into_iter()
            .map(|base| self.leaves.remove(&base).unwrap().size)
            .sum()
    }

    fn find(&self, iova: u64) -> Option<(u64, Leaf)> {
        let (&base, &leaf) = self.leaves.range(..=iova).next_back()?;
        (iova < base + leaf.size).then_some((base, leaf))
    }

    fn translate(&self, iova: u64) -> Option<Translation> {
        let (base, leaf) = self.find(iova)?;
        Some(Translation {
            phys: leaf.phys + (iova - base),
            page_size: leaf.size,
            prot: leaf.prot,
        })
    }

    /// The hardware walk, with dirty tracking on.
    fn walk(&mut self, iova: u64, access: Access) -> Result<Translation, WalkFault> {
        if !self.translatable(iova) {
            return Err(WalkFault::OutOfAperture);
        }
        let Some((base, leaf)) = self.find(iova) else {
            // The level is checked by the bit-level tests.
            return Err(WalkFault::NotPresent { level: 0 });
        };
        if !leaf.prot.contains(access.needs()) {
            let level = (leaf.size.trailing_zeros() - 12) as u8 / 9 + 1;
            return Err(WalkFault::Permission { level });
        }
        if access == Access::Write {
            self.leaves.get_mut(&base).unwrap().dirty = true;
        }
        Ok(self.translate(iova).unwrap())
    }

    fn harvest(&mut self, iova: u64, len: u64, clear: bool) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for base in self.touched(iova, len) {
            let leaf = self.leaves.get_mut(&base).unwrap();
            if leaf.dirty {
                out.push((base, leaf.size));
                leaf.dirty = !clear;
            }
        }
        out
    }

    fn mapped(&self) -> u64 {
        self.leaves.values().map(|l| l.size).sum()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        at: (usize, u64),
        len: u64,
        delta: u64,
        prot: u32,
    },
    Unmap {
        at: (usize, u64),
        len: u64,
    },
    Probe {
        at: (usize, u64),
    },
    Write {
        at: (usize, u64),
    },
    Harvest {
        at: (usize, u64),
        len: u64,
        clear: bool,
    },
}

/// Region bases: the bottom, the middle of the space, just below the
/// limit, and the upper canonical half.
fn region(model: &Model, r: usize) -> u64 {
    let limit = model.limit();
    [0, limit / 2, limit - 4 * G1, 0xffff_ff80_0000_0000][r]
}

/// (region, offset): offsets land on and around 1G / 2M / 4K boundaries.
fn at() -> impl Strategy<Value = (usize, u64)> {
    let region = prop_oneof![8 => Just(0usize), 3 => Just(1), 3 => Just(2), 1 => Just(3)];
    let gib = 0..4u64;
    let mib = prop_oneof![3 => Just(0u64), 2 => 1..4u64, 1 => 510..512u64];
    let page = prop_oneof![4 => Just(0u64), 2 => 1..6u64, 1 => 509..512u64];
    let odd = prop_oneof![40 => Just(0u64), 1 => Just(0x800)];
    (region, gib, mib, page, odd).prop_map(|(r, g, m, p, o)| (r, g * G1 + m * M2 + p * K4 + o))
}

fn len() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => (1..=6u64).prop_map(|n| n * K4),
        6 => (1..=3u64).prop_map(|n| n * M2),
        2 => Just(M2 - K4),
        2 => Just(M2 + K4),
        3 => Just(G1),
        2 => Just(G1 + M2 + K4),
        2 => Just(2 * G1),
        1 => Just(0),
        1 => Just(0x800),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let delta = prop_oneof![12 => Just(0u64), 3 => Just(K4), 2 => Just(M2), 2 => Just(G1), 1 => Just(1 << 52)];
    let prot = prop_oneof![1 => Just(0u32), 6 => Just(1), 3 => Just(2), 12 => Just(3)];
    prop_oneof![
        9 => (at(), len(), delta, prot).prop_map(|(at, len, delta, prot)| Op::Map { at, len, delta, prot }),
        5 => (at(), len()).prop_map(|(at, len)| Op::Unmap { at, len }),
        5 => at().prop_map(|at| Op::Probe { at }),
        2 => at().prop_map(|at| Op::Write { at }),
        1 => (at(), len(), any::<bool>()).prop_map(|(at, len, clear)| Op::Harvest { at, len, clear }),
    ]
}

fn format() -> impl Strategy<Value = PtFormat> {
    prop_oneof![
        Just(PtFormat::FirstLevel { levels: 4 }),
        Just(PtFormat::FirstLevel { levels: 5 }),
        Just(PtFormat::SecondLevel { levels: 3 }),
        Just(PtFormat::SecondLevel { levels: 4 }),
        Just(PtFormat::SecondLevel { levels: 5 }),
    ]
}

fn pgsizes() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(K4), 1 => Just(K4 | M2), 4 => Just(K4 | M2 | G1)]
}

/// NotPresent levels are the bit-level tests' business.
fn same_walk(got: Result<Translation, WalkFault>, want: Result<Translation, WalkFault>) -> bool {
    match (got, want) {
        (Err(WalkFault::NotPresent { .. }), Err(WalkFault::NotPresent { .. })) => true,
        (got, want) => got == want,
    }
}

fn probe(pt: &PageTable, model: &mut Model, iova: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        pt.iova_to_phys(iova),
        model.translate(iova),
        "translate {:#x}",
        iova
    );
    let got = pt.walk(iova, Access::Read, true);
    let want = model.walk(iova, Access::Read);
    prop_assert!(
        same_walk(got, want),
        "read walk {:#x}: {:?} vs {:?}",
        iova,
        got,
        want
    );
    Ok(())
}

fn run(format: PtFormat, pgsizes: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let pt = PageTable::new(HostMemory::new(), format, pgsizes).unwrap();
    let mut model = Model {
        format,
        pgsizes,
        leaves: BTreeMap::new(),
    };
    for op in ops {
        match *op {
            Op::Map {
                at,
                len,
                delta,
                prot,
            } => {
                let iova = region(&model, at.0) + at.1;
                let phys = (iova & ((1 << 46) - 1)) + delta;
                // Keep debug runs quick: no more than 4096 new leaves.
                let cheap = iova
                    .checked_add(len)
                    .is_some_and(|end| end <= model.limit())
                    && model
                        .plan(iova & !0xfff, phys & !0xfff, len & !0xfff, 4096)
                        .is_some();
                let len = if cheap { len } else { 16 * K4 };
                let prot = Prot::from_bits_truncate(prot);
                let got = pt.map(iova, phys, len, prot).map_err(|e| e.errno());
                prop_assert_eq!(
                    got,
                    model.map(iova, phys, len, prot),
                    "map {:#x}+{:#x}",
                    iova,
                    len
                );
                for probe_at in [iova, iova + len.max(K4) - K4, iova + len] {
                    probe(&pt, &mut model, probe_at)?;
                }
            }
            Op::Unmap { at, len } => {
                let iova = region(&model, at.0) + at.1;
                prop_assert_eq!(
                    pt.unmap(iova, len),
                    model.unmap(iova, len),
                    "unmap {:#x}+{:#x}",
                    iova,
                    len
                );
                for probe_at in [iova, iova + len] {
                    probe(&pt, &mut model, probe_at)?;
                }
            }
            Op::Probe { at } => {
                let iova = region(&model, at.0) + at.1;
                probe(&pt, &mut model, iova)?;
            }
            Op::Write { at } => {
                let iova = region(&model, at.0) + at.1;
                let got = pt.walk(iova, Access::Write, true);
                let want = model.walk(iova, Access::Write);
                prop_assert!(
                    same_walk(got, want),
                    "write walk {:#x}: {:?} vs {:?}",
                    iova,
                    got,
                    want
                );
            }
            Op::Harvest { at, len, clear } => {
                let iova = region(&model, at.0) + at.1;
                let mut got = Vec::new();
                pt.read_and_clear_dirty(iova, len, clear, &mut |i, s| got.push((i, s)));
                prop_assert_eq!(
                    got,
                    model.harvest(iova, len, clear),
                    "harvest {:#x}+{:#x}",
                    iova,
                    len
                );
            }
        }
        prop_assert_eq!(pt.mapped_bytes(), model.mapped());
    }
    let everything = model.limit();
    prop_assert_eq!(pt.unmap(0, everything), model.mapped());
    prop_assert_eq!(pt.table_pages(), 1);
    prop_assert_eq!(pt.mapped_bytes(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn page_table_matches_model(
        format in format(),
        pgsizes in pgsizes(),
        ops in prop::collection::vec(op(), MIN_OPS..=MAX_OPS),
    ) {
        run(format, pgsizes, &ops)?;
    }
}
