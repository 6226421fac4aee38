//! sdma operations through the real IOMMU: a consumer's paging domain is
//! attached to the engine function at a PASID, a work queue carries that
//! PASID, descriptors come from a ring in the consumer's memory, and each
//! test checks the bytes in memory, the completion record and the
//! interrupt count.

use umdev_devices::sdma::Descriptor;
use umdev_devices::sdma::regs::*;
use umdev_iommu::pgtable::Prot;
use umdev_testkit::sdma::*;

const REGION: u64 = 0x10_0000;
const REGION_LEN: u64 = 0x1_0000;
const RING: u64 = REGION;
const SLOTS: u32 = 64;
const DATA: u64 = REGION + 0x2000;
const END: u64 = REGION + REGION_LEN;
const UNMAPPED: u64 = 0xdead_0000;
const VECTOR: u32 = 0x41;

fn cr(i: u64) -> u64 {
    REGION + 0x1000 + 32 * i
}

/// A rig with queue 0 handed to one consumer, interrupts on IMS entry 3.
fn setup() -> (Rig, Consumer) {
    let rig = Rig::new();
    let consumer = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &consumer, 3, VECTOR);
    start(rig.wq(0), RING, SLOTS);
    (rig, consumer)
}

/// Posts one descriptor with a record at `cr(0)` and an interrupt, and
/// returns the record.
fn run(rig: &Rig, consumer: &Consumer, desc: Descriptor) -> Cr {
    post(rig.wq(0), consumer, &[desc.with_completion(cr(0), true)]);
    Cr::at(consumer, cr(0))
}

#[test]
fn memmove_copies_and_completes_with_interrupt() {
    let (rig, c) = setup();
    let src = noise(1, 3000);
    c.write(DATA + 3, &src);
    let dst = DATA + 0x4000 + 5;
    let before = c.read(dst - 1, 3002);
    let r = run(&rig, &c, Descriptor::memmove(DATA + 3, dst, 3000));
    assert_eq!(
        r,
        Cr {
            status: SUCCESS,
            result: 0,
            fault_info: 0,
            bytes: 3000,
            fault_addr: 0,
            value: 0
        }
    );
    assert_eq!(c.read(dst, 3000), src);
    assert_eq!(c.read(dst - 1, 1), before[..1], "byte before untouched");
    assert_eq!(
        c.read(dst + 3000, 1),
        before[3001..],
        "byte after untouched"
    );
    assert_eq!(rig.irq.count(VECTOR), 1);
    assert_eq!(read32(rig.wq(0), WQ_HEAD), 1);
}

#[test]
fn overlapping_memmove_runs_descending_like_memmove() {
    let (rig, c) = setup();
    let data = noise(2, 5000);
    c.write(DATA, &data);
    // Destination above an overlapping source: must not smear.
    let r = run(&rig, &c, Descriptor::memmove(DATA, DATA + 100, 4900));
    assert_eq!((r.status, r.result, r.bytes), (SUCCESS, 1, 4900));
    assert_eq!(c.read(DATA + 100, 4900), data[..4900]);
    // Destination below: ascending.
    c.write(DATA, &data);
    let r = run(&rig, &c, Descriptor::memmove(DATA + 100, DATA, 4900));
    assert_eq!((r.status, r.result, r.bytes), (SUCCESS, 0, 4900));
    assert_eq!(c.read(DATA, 4900), data[100..]);
}

#[test]
fn memmove_crosses_memory_objects_in_both_directions() {
    let rig = Rig::new();
    // Three 4 KiB objects mapped in descending IOVA order: every page
    // boundary of the range is a physical discontinuity.
    let base = 0x50_0000;
    let pages: Vec<_> = (0..3).rev().map(|i| (base + i * 0x1000, 0x1000)).collect();
    let mut c = rig.consumer(&[(REGION, REGION_LEN)]);
    for &(iova, len) in &pages {
        rig.map(&mut c, iova, len, Prot::READ | Prot::WRITE);
    }
    rig.assign(0, &c, 3, VECTOR);
    start(rig.wq(0), RING, SLOTS);
    let data = noise(8, 0x3000);
    for (src, dst, len) in [
        (0x100, 0x1100, 0x1e00),
        (0x1100, 0x100, 0x1e00),
        (0x10, 0x2000, 0xff0),
    ] {
        c.write(base, &data);
        let r = run(&rig, &c, Descriptor::memmove(base + src, base + dst, len));
        assert_eq!((r.status, r.bytes), (SUCCESS, len), "{src:#x} -> {dst:#x}");
        let mut want = data.clone();
        want.copy_within(src as usize..(src + u64::from(len)) as usize, dst as usize);
        assert_eq!(c.read(base, 0x3000), want, "{src:#x} -> {dst:#x}");
    }
}

#[test]
fn fill_writes_the_pattern_from_the_destination() {
    let (rig, c) = setup();
    let pattern = 0x0123_4567_89ab_cdefu64;
    c.write(DATA, &[0x5a; 1100]);
    let r = run(&rig, &c, Descriptor::fill(DATA + 5, pattern, 1003));
    assert_eq!((r.status, r.bytes), (SUCCESS, 1003));
    let p = pattern.to_le_bytes();
    let want: Vec<u8> = (0..1003).map(|i| p[i % 8]).collect();
    assert_eq!(c.read(DATA + 5, 1003), want);
    assert_eq!(c.read(DATA + 4, 1), [0x5a]);
    assert_eq!(c.read(DATA + 1008, 1), [0x5a]);
    assert_eq!(rig.irq.count(VECTOR), 1);
}

#[test]
fn compare_reports_equality_or_the_first_difference() {
    let (rig, c) = setup();
    let data = noise(3, 6000);
    c.write(DATA, &data);
    c.write(DATA + 0x2000, &data);
    let r = run(&rig, &c, Descriptor::compare(DATA, DATA + 0x2000, 6000));
    assert_eq!((r.status, r.result, r.bytes), (SUCCESS, 0, 6000));
    c.write(DATA + 0x2000 + 4777, &[data[4777] ^ 0x10]);
    let r = run(&rig, &c, Descriptor::compare(DATA, DATA + 0x2000, 6000));
    assert_eq!(
        (r.status, r.result, r.bytes, r.value),
        (SUCCESS, 1, 4777, 4777)
    );
    assert_eq!(rig.irq.count(VECTOR), 2);
}

#[test]
fn compare_pattern_reports_equality_or_the_first_difference() {
    let (rig, c) = setup();
    let pattern = 0x1122_3344_5566_7788u64;
    let p = pattern.to_le_bytes();
    let bytes: Vec<u8> = (0..999).map(|i| p[i % 8]).collect();
    c.write(DATA + 1, &bytes);
    let r = run(
        &rig,
        &c,
        Descriptor::compare_pattern(DATA + 1, pattern, 999),
    );
    assert_eq!((r.status, r.result, r.bytes), (SUCCESS, 0, 999));
    c.write(DATA + 1 + 998, &[0]);
    let r = run(
        &rig,
        &c,
        Descriptor::compare_pattern(DATA + 1, pattern, 999),
    );
    assert_eq!(
        (r.status, r.result, r.bytes, r.value),
        (SUCCESS, 1, 998, 998)
    );
}

#[test]
fn crc32c_matches_the_reference_and_chains_through_the_seed() {
    let (rig, c) = setup();
    c.write(DATA, b"123456789");
    let r = run(&rig, &c, Descriptor::crc32c(DATA, 9, 0));
    assert_eq!((r.status, r.bytes, r.value), (SUCCESS, 9, 0xE306_9283));
    let data = noise(4, 20_000);
    c.write(DATA, &data);
    for (len, seed) in [(20_000, 0), (1, 0), (8191, 0xdead_beef), (0, 0x1234_5678)] {
        let r = run(&rig, &c, Descriptor::crc32c(DATA, len, seed));
        let want = crc32c_ref(seed, &data[..len as usize]);
        assert_eq!((r.status, r.value), (SUCCESS, u64::from(want)), "len {len}");
    }
    let first = run(&rig, &c, Descriptor::crc32c(DATA, 7000, 0)).value as u32;
    let rest = run(&rig, &c, Descriptor::crc32c(DATA + 7000, 13_000, first)).value;
    assert_eq!(rest, u64::from(crc32c_ref(0, &data)));
}

#[test]
fn noop_completes() {
    let (rig, c) = setup();
    let r = run(&rig, &c, Descriptor::noop());
    assert_eq!((r.status, r.bytes), (SUCCESS, 0));
    assert_eq!(rig.irq.count(VECTOR), 1);
}

#[test]
fn several_descriptors_in_one_doorbell_wrap_the_ring() {
    let rig = Rig::new();
    let c = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &c, 0, VECTOR);
    start(rig.wq(0), RING, 4);
    let q = rig.wq(0);
    for round in 0..3u64 {
        let descs: Vec<_> = (0..3u64)
            .map(|i| {
                Descriptor::fill(DATA + 64 * i, round * 10 + i, 64).with_completion(cr(i), i == 2)
            })
            .collect();
        post(q, &c, &descs);
        for i in 0..3u64 {
            assert_eq!(Cr::at(&c, cr(i)).status, SUCCESS);
            assert_eq!(c.read(DATA + 64 * i, 8), (round * 10 + i).to_le_bytes());
        }
        assert_eq!(read32(q, WQ_HEAD), read32(q, WQ_TAIL));
    }
    assert_eq!(read32(q, WQ_HEAD), 9 % 4);
    assert_eq!(rig.irq.count(VECTOR), 3, "one per descriptor with RCI");
}

#[test]
fn bad_opcode_flags_and_size_have_their_statuses() {
    let (rig, c) = setup();
    let bad_op = Descriptor {
        opcode: 0x7e,
        ..Descriptor::noop()
    };
    assert_eq!(run(&rig, &c, bad_op).status, 0x10);
    let desc = Descriptor::noop().with_completion(cr(0), false);
    let bad_flags = Descriptor {
        flags: desc.flags | 1 << 12,
        ..desc
    };
    post(rig.wq(0), &c, &[bad_flags]);
    assert_eq!(Cr::at(&c, cr(0)).status, 0x11);
    let max = read32(rig.wq(0), WQ_MAX_XFER);
    c.write(DATA, &[7; 16]);
    let r = run(&rig, &c, Descriptor::fill(DATA, 0, max + 1));
    assert_eq!((r.status, r.bytes), (0x13, 0));
    assert_eq!(c.read(DATA, 16), [7; 16], "nothing written");
}

#[test]
fn unmapped_source_is_a_page_fault_at_that_address() {
    let (rig, c) = setup();
    c.write(DATA, &[9; 64]);
    let r = run(&rig, &c, Descriptor::memmove(UNMAPPED + 0x10, DATA, 64));
    assert_eq!(
        r,
        Cr {
            status: PAGE_FAULT,
            result: 0,
            fault_info: 0,
            bytes: 0,
            fault_addr: UNMAPPED + 0x10,
            value: 0
        }
    );
    assert_eq!(c.read(DATA, 64), [9; 64]);
    assert_eq!(rig.irq.count(VECTOR), 1, "the record is still announced");
    let logged = rig.sys.vtd.unit_for(pf()).unwrap().fault_log().records();
    assert!(
        logged
            .iter()
            .any(|f| f.addr == UNMAPPED + 0x10 && f.pasid == Some(c.pasid)),
        "the IOMMU logged the fault with the queue's PASID: {logged:?}"
    );
}

#[test]
fn a_destination_crossing_into_unmapped_space_stops_at_the_boundary() {
    let (rig, c) = setup();
    let src = noise(5, 300);
    c.write(DATA, &src);
    let r = run(&rig, &c, Descriptor::memmove(DATA, END - 100, 300));
    assert_eq!(
        (r.status, r.fault_info, r.bytes, r.fault_addr),
        (PAGE_FAULT, 1, 100, END)
    );
    assert_eq!(c.read(END - 100, 100), src[..100], "the prefix was copied");

    let r = run(&rig, &c, Descriptor::fill(END - 0x1800, 0xabab, 0x2000));
    assert_eq!(
        (r.status, r.fault_info, r.bytes, r.fault_addr),
        (PAGE_FAULT, 1, 0x1800, END)
    );
    assert_eq!(c.read(END - 8, 8), 0xababu64.to_le_bytes());
}

#[test]
fn a_crc_that_faults_reports_the_prefix_crc_and_can_resume() {
    let (rig, mut c) = setup();
    let data = noise(6, 0x1800);
    c.write(END - 0x1000, &data[..0x1000]);
    let r = run(&rig, &c, Descriptor::crc32c(END - 0x1000, 0x1800, 0x55));
    assert_eq!(
        (r.status, r.fault_info, r.bytes, r.fault_addr),
        (PAGE_FAULT, 0, 0x1000, END)
    );
    assert_eq!(r.value, u64::from(crc32c_ref(0x55, &data[..0x1000])));
    // Map the missing page and resume from where it stopped.
    rig.map(&mut c, END, 0x1000, Prot::READ | Prot::WRITE);
    c.write(END, &data[0x1000..]);
    let rest = run(&rig, &c, Descriptor::crc32c(END, 0x800, r.value as u32));
    assert_eq!(
        (rest.status, rest.value),
        (SUCCESS, u64::from(crc32c_ref(0x55, &data)))
    );
}

#[test]
fn compare_finds_a_difference_before_a_fault() {
    let (rig, c) = setup();
    let data = noise(7, 0x800);
    c.write(END - 0x800, &data);
    c.write(DATA, &data);
    let r = run(&rig, &c, Descriptor::compare(DATA, END - 0x800, 0x1000));
    assert_eq!(
        (r.status, r.bytes, r.fault_addr, r.fault_info),
        (PAGE_FAULT, 0x800, END, 0)
    );
    c.write(DATA + 0x10, &[!data[0x10]]);
    let r = run(&rig, &c, Descriptor::compare(DATA, END - 0x800, 0x1000));
    assert_eq!((r.status, r.result, r.bytes), (SUCCESS, 1, 0x10));
}

#[test]
fn a_read_only_destination_faults_on_write() {
    let rig = Rig::new();
    let mut c = rig.consumer(&[(REGION, REGION_LEN)]);
    let ro = 0x40_0000;
    rig.map(&mut c, ro, 0x1000, Prot::READ);
    rig.assign(0, &c, 0, VECTOR);
    start(rig.wq(0), RING, SLOTS);
    c.write(ro, &[1; 32]);
    // Reading it is fine.
    let r = run(&rig, &c, Descriptor::memmove(ro, DATA, 32));
    assert_eq!(r.status, SUCCESS);
    let r = run(&rig, &c, Descriptor::memmove(DATA + 64, ro + 8, 32));
    assert_eq!(
        (r.status, r.fault_info, r.bytes, r.fault_addr),
        (PAGE_FAULT, 1, 0, ro + 8)
    );
    assert_eq!(c.read(ro, 32), [1; 32]);
}

#[test]
fn the_queue_and_the_others_keep_going_after_a_fault() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    let b = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 1);
    rig.assign(1, &b, 1, 2);
    start(rig.wq(0), RING, SLOTS);
    start(rig.wq(1), RING, SLOTS);
    a.write(DATA, &[3; 16]);
    post(
        rig.wq(0),
        &a,
        &[
            Descriptor::memmove(UNMAPPED, DATA, 16).with_completion(cr(0), true),
            Descriptor::memmove(DATA, DATA + 16, 16).with_completion(cr(1), true),
        ],
    );
    assert_eq!(Cr::at(&a, cr(0)).status, PAGE_FAULT);
    assert_eq!(Cr::at(&a, cr(1)).status, SUCCESS);
    assert_eq!(a.read(DATA + 16, 16), [3; 16]);
    b.write(DATA, &[4; 16]);
    post(
        rig.wq(1),
        &b,
        &[Descriptor::memmove(DATA, DATA + 16, 16).with_completion(cr(0), true)],
    );
    assert_eq!(Cr::at(&b, cr(0)).status, SUCCESS);
    assert_eq!(b.read(DATA + 16, 16), [4; 16]);
    assert_eq!((rig.irq.count(1), rig.irq.count(2)), (2, 1));
    assert_eq!(
        read64(rig.wq(0), WQ_ERROR),
        0,
        "a reported fault is no queue error"
    );
}
