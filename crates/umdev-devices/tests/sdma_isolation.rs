//! PASID isolation between work queues: two consumers, each with its own
//! paging domain attached to the engine at its own PASID, run random
//! descriptors on two queues at once. Both map the same main IOVA range
//! (different memory, several memory objects each, so operands cross
//! physically discontiguous pieces) and each maps an extra range the
//! other does not. After every batch, each consumer's memory, completion
//! records and interrupt count must equal a byte-level reference model of
//! that consumer alone: nothing it posts can read or write the other's
//! memory, and the other's ranges fault for it.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{Descriptor, Opcode, SdmaConfig};
use umdev_testkit::sdma::*;

const MAIN: u64 = 0x10_0000;
const MAIN_LEN: u64 = 0x1_0000;
const RING: u64 = MAIN;
const SLOTS: u32 = 64;
const CRS: u64 = MAIN + 0x1000;
const DATA: u64 = MAIN + 0x2000;
const EXTRA: [u64; 2] = [0x30_0000, 0x20_0000];
const EXTRA_LEN: u64 = 0x2000;
const WILD: u64 = 0xdead_0000;
const MAX_XFER: u32 = 0x1800;
const VECTORS: [u32; 2] = [10, 11];

/// One consumer's memory as the model sees it.
#[derive(Clone)]
struct Model {
    regions: Vec<(u64, Vec<u8>)>,
}

/// A fault in the model: (bytes done, address, write).
type Fault = (u64, u64, bool);

impl Model {
    /// Contiguous accessible bytes from `iova`, at most `len`.
    fn prefix(&self, iova: u64, len: u64) -> u64 {
        self.regions
            .iter()
            .find(|(base, m)| iova >= *base && iova < base + m.len() as u64)
            .map_or(0, |(base, m)| len.min(base + m.len() as u64 - iova))
    }

    fn slice(&mut self, iova: u64, len: u64) -> &mut [u8] {
        if len == 0 {
            return &mut [];
        }
        let (base, m) = self
            .regions
            .iter_mut()
            .find(|(base, m)| iova >= *base && iova + len <= *base + m.len() as u64)
            .unwrap();
        let at = (iova - *base) as usize;
        &mut m[at..at + len as usize]
    }

    fn read(&mut self, iova: u64, len: u64) -> Vec<u8> {
        self.slice(iova, len).to_vec()
    }

    fn write(&mut self, iova: u64, data: &[u8]) {
        self.slice(iova, data.len() as u64).copy_from_slice(data);
    }

    /// What the engine must do for `d`: memory effects applied, the
    /// record returned.
    fn run(&mut self, d: &Descriptor) -> Cr {
        let ok = |bytes: u64| Cr {
            status: SUCCESS,
            result: 0,
            fault_info: 0,
            bytes: bytes as u32,
            fault_addr: 0,
            value: 0,
        };
        let pf = |(bytes, addr, write): Fault| Cr {
            status: PAGE_FAULT,
            fault_info: u8::from(write),
            fault_addr: addr,
            ..ok(bytes)
        };
        let status = |s: u8| Cr { status: s, ..ok(0) };
        let Some(op) = Opcode::from_raw(d.opcode) else {
            return status(0x10);
        };
        if d.flags().is_none() {
            return status(0x11);
        }
        if d.xfer_size > MAX_XFER {
            return status(0x13);
        }
        let len = u64::from(d.xfer_size);
        let pat = |p: u64, n: u64| -> Vec<u8> {
            let b = p.to_le_bytes();
            (0..n).map(|i| b[(i % 8) as usize]).collect()
        };
        let diff = |x: &[u8], y: &[u8]| x.iter().zip(y).position(|(a, b)| a != b);
        let mismatch = |k: usize| Cr {
            result: 1,
            value: k as u64,
            ..ok(k as u64)
        };
        match op {
            Opcode::Noop => ok(0),
            Opcode::Memmove => {
                let (src, dst) = (d.src, d.dst);
                if src < dst && dst < src + len {
                    let (a, b) = (self.prefix(src, len), self.prefix(dst, len));
                    let r = if a < len {
                        pf((0, src + a, false))
                    } else if b < len {
                        pf((0, dst + b, true))
                    } else {
                        let bytes = self.read(src, len);
                        self.write(dst, &bytes);
                        ok(len)
                    };
                    return Cr { result: 1, ..r };
                }
                let a = self.prefix(src, len);
                let b = self.prefix(dst, a);
                let bytes = self.read(src, b);
                self.write(dst, &bytes);
                if b < a {
                    pf((b, dst + b, true))
                } else if a < len {
                    pf((a, src + a, false))
                } else {
                    ok(len)
                }
            }
            Opcode::Fill => {
                let b = self.prefix(d.dst, len);
                self.write(d.dst, &pat(d.src, b));
                if b < len {
                    pf((b, d.dst + b, true))
                } else {
                    ok(len)
                }
            }
            Opcode::Compare => {
                let a = self.prefix(d.src, len);
                let b = self.prefix(d.dst, a);
                let (x, y) = (self.read(d.src, b), self.read(d.dst, b));
                match diff(&x, &y) {
                    Some(k) => mismatch(k),
                    None if b < a => pf((b, d.dst + b, false)),
                    None if a < len => pf((a, d.src + a, false)),
                    None => ok(len),
                }
            }
            Opcode::ComparePattern => {
                let a = self.prefix(d.src, len);
                let x = self.read(d.src, a);
                match diff(&x, &pat(d.dst, a)) {
                    Some(k) => mismatch(k),
                    None if a < len => pf((a, d.src + a, false)),
                    None => ok(len),
                }
            }
            Opcode::Crc32c => {
                let a = self.prefix(d.src, len);
                let x = self.read(d.src, a);
                let r = if a < len {
                    pf((a, d.src + a, false))
                } else {
                    ok(len)
                };
                Cr {
                    value: u64::from(crc32c_ref(d.crc_seed, &x)),
                    ..r
                }
            }
        }
    }
}

fn encode(r: &Cr) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = r.status;
    b[1] = r.result;
    b[2] = r.fault_info;
    b[4..8].copy_from_slice(&r.bytes.to_le_bytes());
    b[8..16].copy_from_slice(&r.fault_addr.to_le_bytes());
    b[16..24].copy_from_slice(&r.value.to_le_bytes());
    b
}

/// A random descriptor before it is placed: (kind, area1, off1, area2,
/// off2, len, pattern, seed, pasid field, interrupt).
type RawOp = (u8, u8, u16, u8, u16, u32, u64, u32, u32, bool);

/// Places `op` for consumer `me`; `prev` is the first operand for area 4
/// ("near the first operand", for overlapping moves).
fn place(me: usize, area: u8, off: u16, prev: u64) -> u64 {
    let off = u64::from(off);
    match area {
        0 => DATA + off % (MAIN + MAIN_LEN - DATA + 0x800),
        1 => EXTRA[me] + off % (EXTRA_LEN + 0x400),
        2 => EXTRA[1 - me] + off % EXTRA_LEN,
        3 => WILD + off,
        _ => (prev + off % 0x400).saturating_sub(0x200),
    }
}

fn descriptor(me: usize, slot: u64, op: &RawOp) -> Descriptor {
    let &(kind, area1, off1, area2, off2, len, pattern, seed, pasid, irq) = op;
    let a = place(me, area1, off1, 0);
    let b = place(me, area2, off2, a);
    let d = match kind % 10 {
        0 => Descriptor::memmove(a, b, len),
        1 => Descriptor::fill(b, pattern, len),
        2 => Descriptor::compare(a, b, len),
        3 => Descriptor::compare_pattern(a, pattern, len),
        4 => Descriptor::crc32c(a, len, seed),
        5 => Descriptor::noop(),
        6 => Descriptor {
            opcode: 0x20 | (seed as u8 & 0x1f),
            ..Descriptor::noop()
        },
        7 => Descriptor::memmove(a, b, MAX_XFER + 1 + len),
        8 => Descriptor::memmove(a, a, len),
        _ => Descriptor::compare(a, a, len),
    };
    let d = Descriptor {
        pasid,
        ..d.with_completion(CRS + 32 * slot, irq)
    };
    if kind >= 240 {
        // Unknown flag bits.
        return Descriptor {
            flags: d.flags | 1 << 20,
            ..d
        };
    }
    d
}

struct Side {
    consumer: Consumer,
    extra: u64,
}

#[test]
fn two_queues_on_two_pasids_cannot_reach_each_other() {
    let rig = Arc::new(Rig::with_config(SdmaConfig {
        max_xfer_size: MAX_XFER,
        ..SdmaConfig::default()
    }));
    let sides: Vec<Side> = (0..2)
        .map(|me| {
            // The main range is four memory objects mapped in descending
            // IOVA order, so IOVA-adjacent pieces are physically apart.
            let quarter = MAIN_LEN / 4;
            let mut regions: Vec<_> = (0..4)
                .rev()
                .map(|i| (MAIN + i * quarter, quarter))
                .collect();
            regions.push((EXTRA[me], EXTRA_LEN));
            let consumer = rig.consumer(&regions);
            rig.assign(me, &consumer, me, VECTORS[me]);
            Side {
                consumer,
                extra: EXTRA[me],
            }
        })
        .collect();
    assert_ne!(sides[0].consumer.pasid, sides[1].consumer.pasid);
    let op = (
        any::<u8>(),
        0u8..4,
        any::<u16>(),
        0u8..5,
        any::<u16>(),
        0u32..MAX_XFER,
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
    );
    let batches = prop::collection::vec(prop::collection::vec(op, 1..12), 1..4);
    let strategy = (any::<u64>(), batches.clone(), batches);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&strategy, |(seed, a_ops, b_ops)| {
            let plans = [a_ops, b_ops];
            // Fresh memory contents, rings rewound.
            let mut models = Vec::new();
            for (me, side) in sides.iter().enumerate() {
                let main = noise(seed ^ me as u64, MAIN_LEN as usize);
                let extra = noise(seed.rotate_left(7) ^ me as u64, EXTRA_LEN as usize);
                side.consumer.write(MAIN, &main);
                side.consumer.write(side.extra, &extra);
                models.push(Model {
                    regions: vec![(MAIN, main), (side.extra, extra)],
                });
                let q = rig.wq(me);
                q.reset();
                start(q, RING, SLOTS);
            }
            let before: Vec<u64> = VECTORS.iter().map(|&v| rig.irq.count(v)).collect();
            // Both queues at once, from two threads.
            let descs: Vec<Vec<Vec<Descriptor>>> = plans
                .iter()
                .enumerate()
                .map(|(me, batches)| {
                    let mut slot = 0;
                    batches
                        .iter()
                        .map(|ops| {
                            ops.iter()
                                .map(|op| {
                                    slot += 1;
                                    descriptor(me, slot - 1, op)
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
            std::thread::scope(|s| {
                for (me, batches) in descs.iter().enumerate() {
                    let (rig, side) = (&rig, &sides[me]);
                    s.spawn(move || {
                        for batch in batches {
                            post(rig.wq(me), &side.consumer, batch);
                        }
                    });
                }
            });
            for (me, side) in sides.iter().enumerate() {
                let model = &mut models[me];
                let mut irqs = 0;
                for (slot, d) in descs[me].iter().flatten().enumerate() {
                    model.write(RING + 64 * slot as u64, &d.encode());
                    let want = model.run(d);
                    let cr_addr = CRS + 32 * slot as u64;
                    model.write(cr_addr, &encode(&want));
                    let got = Cr::at(&side.consumer, cr_addr);
                    prop_assert_eq!(got, want, "consumer {} slot {}: {:?}", me, slot, d);
                    irqs += u64::from(d.flags & (1 << 4) != 0);
                }
                for (base, bytes) in &model.regions {
                    let got = side.consumer.read(*base, bytes.len());
                    let first = got.iter().zip(bytes).position(|(x, y)| x != y);
                    prop_assert!(
                        first.is_none(),
                        "consumer {} region {:#x}: byte {:?}",
                        me,
                        base,
                        first
                    );
                }
                let q = rig.wq(me);
                prop_assert_eq!(rig.irq.count(VECTORS[me]) - before[me], irqs);
                prop_assert_eq!(read64(q, WQ_ERROR), 0);
                prop_assert_eq!(read32(q, WQ_HEAD), read32(q, WQ_TAIL));
            }
            Ok(())
        })
        .unwrap();
}
