//! The sdma register page, the host-only configuration, the error
//! register and the interrupt message store.

use rustix::io::Errno;
use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{Descriptor, ImsEntry, ImsMessage, Opcode, SdmaConfig, SdmaError};
use umdev_testkit::sdma::*;

const REGION: u64 = 0x10_0000;
const REGION_LEN: u64 = 0x1_0000;
const RING: u64 = REGION;
const DATA: u64 = REGION + 0x2000;
const CR: u64 = REGION + 0x1000;
const UNMAPPED: u64 = 0xdead_0000;

fn errno(r: Result<(), SdmaError>) -> Errno {
    r.unwrap_err().errno()
}

#[test]
fn the_consumer_cannot_change_its_pasid() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    let b = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 1);
    let q = rig.wq(0);
    assert_eq!(read32(q, WQ_PASID), PASID_VALID | a.pasid);
    // Disabled or enabled, 4- or 8-byte writes: the PASID stays the host's.
    write32(q, WQ_PASID, PASID_VALID | b.pasid);
    write64(q, WQ_RING_SIZE, u64::from(PASID_VALID | b.pasid) << 32 | 16);
    assert_eq!(read32(q, WQ_RING_SIZE), 16);
    start(q, RING, 16);
    write32(q, WQ_PASID, b.pasid);
    write32(q, WQ_PASID, 0);
    assert_eq!(read32(q, WQ_PASID), PASID_VALID | a.pasid);
    assert_eq!(q.pasid(), Some(a.pasid));
    // DMA lands in a's space even when the descriptor names b's PASID.
    a.write(DATA, &[0xaa; 32]);
    b.write(DATA, &[0xbb; 32]);
    let d = Descriptor {
        pasid: b.pasid,
        ..Descriptor::memmove(DATA, DATA + 32, 32).with_completion(CR, false)
    };
    post(q, &a, &[d]);
    assert_eq!(Cr::at(&a, CR).status, SUCCESS);
    assert_eq!(a.read(DATA + 32, 32), [0xaa; 32]);
    assert_eq!(b.read(DATA + 32, 32), [0; 32]);
    assert_eq!(b.read(CR, 32), [0; 32]);
}

#[test]
fn host_configuration_is_refused_while_enabled_and_checked() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 1);
    let q = rig.wq(0);
    assert_eq!(errno(q.set_pasid(Some(0))), Errno::INVAL, "IOMMU_NO_PASID");
    assert_eq!(errno(q.set_pasid(Some(1 << 20))), Errno::INVAL);
    assert_eq!(
        errno(q.set_ims_entry(Some(64))),
        Errno::INVAL,
        "past the store"
    );
    start(q, RING, 8);
    assert_eq!(errno(q.set_pasid(Some(a.pasid + 1))), Errno::PERM);
    assert_eq!(errno(q.set_pasid(None)), Errno::PERM);
    assert_eq!(errno(q.set_ims_entry(Some(1))), Errno::PERM);
    assert_eq!((q.pasid(), q.ims_entry()), (Some(a.pasid), Some(0)));
    write32(q, WQ_CTRL, 0);
    assert!(!q.is_enabled());
    q.set_ims_entry(Some(1)).unwrap();
    assert_eq!(read32(q, WQ_INT_CTRL) >> 16, 1);
    q.set_ims_entry(None).unwrap();
    assert_eq!(read32(q, WQ_INT_CTRL) >> 16, INT_NO_ENTRY);
}

#[test]
fn enable_checks_the_configuration() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    let q = rig.wq(0);
    write64(q, WQ_RING_BASE, RING);
    write32(q, WQ_RING_SIZE, 8);
    write32(q, WQ_CTRL, CTRL_ENABLE);
    assert!(!q.is_enabled(), "no PASID yet");
    assert_eq!(read64(q, WQ_ERROR) & 0xff, 5);
    assert_eq!(read32(q, WQ_STATUS), STATUS_ERROR);
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    assert_eq!(read32(q, WQ_STATUS), 0);

    q.set_pasid(Some(a.pasid)).unwrap();
    for (base, size) in [
        (RING + 8, 8),
        (RING, 1),
        (RING, MAX_RING_SIZE + 1),
        (u64::MAX - 63, 8),
    ] {
        write64(q, WQ_RING_BASE, base);
        write32(q, WQ_RING_SIZE, size);
        write32(q, WQ_CTRL, CTRL_ENABLE);
        assert!(!q.is_enabled(), "base {base:#x} size {size}");
        assert_eq!(read64(q, WQ_ERROR) & 0xff, 6);
        assert_eq!(read64(q, WQ_ERROR_ADDR), base);
        write32(q, WQ_ERROR, ERROR_VALID as u32);
    }
    write64(q, WQ_RING_BASE, RING);
    write32(q, WQ_RING_SIZE, 8);
    write32(q, WQ_CTRL, CTRL_ENABLE);
    assert_eq!(read32(q, WQ_CTRL), CTRL_ENABLE);
    assert_eq!(read32(q, WQ_STATUS), STATUS_ENABLED);
    assert_eq!(read64(q, WQ_ERROR), 0);
}

#[test]
fn ring_registers_are_frozen_while_enabled_and_enable_rewinds() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 1);
    let q = rig.wq(0);
    start(q, RING, 8);
    post(q, &a, &[Descriptor::noop(), Descriptor::noop()]);
    assert_eq!((read32(q, WQ_HEAD), read32(q, WQ_TAIL)), (2, 2));
    write64(q, WQ_RING_BASE, RING + 0x1000);
    write32(q, WQ_RING_SIZE, 32);
    assert_eq!(
        (read64(q, WQ_RING_BASE), read32(q, WQ_RING_SIZE)),
        (RING, 8)
    );
    write32(q, WQ_CTRL, 0);
    assert_eq!((read32(q, WQ_HEAD), read32(q, WQ_TAIL)), (2, 2), "kept");
    write64(q, WQ_RING_BASE, RING + 0x1000);
    assert_eq!(read64(q, WQ_RING_BASE), RING + 0x1000);
    write32(q, WQ_CTRL, CTRL_ENABLE);
    assert_eq!((read32(q, WQ_HEAD), read32(q, WQ_TAIL)), (0, 0));
}

#[test]
fn doorbell_errors_are_latched() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 7);
    let q = rig.wq(0);
    write32(q, WQ_INT_CTRL, INT_ENABLE);
    write32(q, WQ_TAIL, 1);
    assert_eq!(
        read64(q, WQ_ERROR),
        ERROR_VALID | 8,
        "doorbell while disabled"
    );
    assert_eq!(read64(q, WQ_ERROR_ADDR), 1);
    assert_eq!(rig.irq.count(7), 1, "a latched error raises the interrupt");
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    start(q, RING, 8);
    write32(q, WQ_TAIL, 8);
    assert_eq!(read64(q, WQ_ERROR), ERROR_VALID | 7, "TAIL past the ring");
    assert_eq!(read32(q, WQ_TAIL), 0, "ignored");
    // A second error only sets OVERFLOW; the first stays.
    write32(q, WQ_TAIL, 9);
    assert_eq!(read64(q, WQ_ERROR), ERROR_VALID | ERROR_OVERFLOW | 7);
    assert_eq!(read64(q, WQ_ERROR_ADDR), 8);
    assert_eq!(rig.irq.count(7), 2, "the overflow is not news");
    // RW1C: writing anything without VALID changes nothing.
    write32(q, WQ_ERROR, 0xff);
    assert_ne!(read64(q, WQ_ERROR), 0);
    write64(q, WQ_ERROR, ERROR_VALID);
    assert_eq!((read64(q, WQ_ERROR), read64(q, WQ_ERROR_ADDR)), (0, 0));
}

#[test]
fn completion_record_problems_set_the_queue_error() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 7);
    let q = rig.wq(0);
    start(q, RING, 8);
    a.write(DATA, &[5; 8]);
    // Unmapped record: the operation still happened.
    post(
        q,
        &a,
        &[Descriptor::memmove(DATA, DATA + 8, 8).with_completion(UNMAPPED, false)],
    );
    assert_eq!(a.read(DATA + 8, 8), [5; 8]);
    assert_eq!(read64(q, WQ_ERROR), ERROR_VALID | 2);
    assert_eq!(
        read64(q, WQ_ERROR_ADDR),
        UNMAPPED + 1,
        "the first byte written"
    );
    assert_eq!(rig.irq.count(7), 1, "errors are announced without RCI");
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    // Misaligned record: nothing written there; slot index in bits 63:32.
    post(q, &a, &[Descriptor::noop().with_completion(CR + 8, true)]);
    assert_eq!(read64(q, WQ_ERROR), 1 << 32 | ERROR_VALID | 3);
    assert_eq!(read64(q, WQ_ERROR_ADDR), CR + 8);
    assert_eq!(a.read(CR, 64), [0; 64]);
    assert_eq!(rig.irq.count(7), 2, "one interrupt for RCI and error");
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    // A failure without a record is reported here with its status.
    post(q, &a, &[Descriptor::fill(UNMAPPED, 0, 8)]);
    assert_eq!(
        read64(q, WQ_ERROR),
        2 << 32 | ERROR_VALID | u64::from(PAGE_FAULT) << 8 | 4
    );
    assert_eq!(read64(q, WQ_ERROR_ADDR), UNMAPPED);
    // A success without a record is silent.
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    post(q, &a, &[Descriptor::noop()]);
    assert_eq!(read64(q, WQ_ERROR), 0);
}

#[test]
fn a_descriptor_fetch_fault_stalls_until_the_next_doorbell() {
    let rig = Rig::new();
    let mut a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 7);
    let q = rig.wq(0);
    let ring = 0x80_0000;
    start(q, ring, 8);
    write32(q, WQ_TAIL, 1);
    assert_eq!(read64(q, WQ_ERROR), ERROR_VALID | 1);
    assert_eq!(read64(q, WQ_ERROR_ADDR), ring);
    assert_eq!(read32(q, WQ_HEAD), 0);
    // The consumer maps its ring, posts and rings again: it goes on.
    rig.map(&mut a, ring, 0x1000, umdev_iommu::pgtable::Prot::READ);
    a.write(
        ring,
        &Descriptor::fill(DATA, 0x77, 8)
            .with_completion(CR, false)
            .encode(),
    );
    write32(q, WQ_ERROR, ERROR_VALID as u32);
    write32(q, WQ_TAIL, 1);
    assert_eq!(read32(q, WQ_HEAD), 1);
    assert_eq!(Cr::at(&a, CR).status, SUCCESS);
    assert_eq!(a.read(DATA, 8), 0x77u64.to_le_bytes());
    assert_eq!(read64(q, WQ_ERROR), 0);
}

#[test]
fn register_accesses_are_checked_and_reserved_space_reads_zero() {
    let rig = Rig::with_config(SdmaConfig {
        max_xfer_size: 1 << 20,
        ..SdmaConfig::default()
    });
    let q = rig.wq(0);
    let mut two = [0u8; 2];
    assert_eq!(errno(q.mmio_read(0, &mut two)), Errno::INVAL);
    let mut four = [0u8; 4];
    assert_eq!(errno(q.mmio_read(2, &mut four)), Errno::INVAL);
    assert_eq!(errno(q.mmio_read(WQ_PAGE_SIZE, &mut four)), Errno::INVAL);
    let mut eight = [0u8; 8];
    assert_eq!(errno(q.mmio_read(4, &mut eight)), Errno::INVAL);
    assert_eq!(errno(q.mmio_write(WQ_PAGE_SIZE - 4, &[0; 8])), Errno::INVAL);
    assert_eq!(errno(q.mmio_write(u64::MAX - 3, &[0; 4])), Errno::INVAL);
    assert_eq!(read32(q, 0x2c), 0);
    assert_eq!(read64(q, 0x800), 0);
    write32(q, 0x800, 0xffff_ffff);
    assert_eq!(read32(q, 0x800), 0);
    let opcap = Opcode::ALL.iter().fold(0u32, |b, op| b | 1 << (*op as u8));
    assert_eq!(read32(q, WQ_OPCAP), opcap);
    assert_eq!(opcap, 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 16);
    assert_eq!(read32(q, WQ_MAX_XFER), 1 << 20);
    write32(q, WQ_OPCAP, 0);
    write32(q, WQ_HEAD, 5);
    assert_eq!((read32(q, WQ_OPCAP), read32(q, WQ_HEAD)), (opcap, 0));
}

#[test]
fn reset_clears_the_consumer_state_but_keeps_the_hosts() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(2, &a, 5, 1);
    let q = rig.wq(2);
    start(q, RING, 8);
    post(q, &a, &[Descriptor::noop()]);
    write32(q, WQ_TAIL, 100);
    assert_ne!(read64(q, WQ_ERROR), 0);
    q.reset();
    assert!(!q.is_enabled());
    for reg in [WQ_CTRL, WQ_STATUS, WQ_RING_SIZE, WQ_HEAD, WQ_TAIL] {
        assert_eq!(read32(q, reg), 0, "{reg:#x}");
    }
    assert_eq!((read64(q, WQ_RING_BASE), read64(q, WQ_ERROR)), (0, 0));
    assert_eq!(read32(q, WQ_INT_CTRL), 5 << 16, "interrupt off, entry kept");
    assert_eq!(read32(q, WQ_PASID), PASID_VALID | a.pasid);
    start(q, RING, 8);
    post(q, &a, &[Descriptor::noop().with_completion(CR, true)]);
    assert_eq!(Cr::at(&a, CR).status, SUCCESS);
}

#[test]
fn ims_entries_deliver_their_data_and_honour_the_mask() {
    let rig = Rig::new();
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 9, 0x33);
    let q = rig.wq(0);
    start(q, RING, 16);
    let ims = rig.sdma.ims();
    let rci = || post(q, &a, &[Descriptor::noop().with_completion(CR, true)]);
    rci();
    assert_eq!((rig.irq.count(0x33), rig.irq.total()), (1, 1));
    ims.mask(9).unwrap();
    rci();
    rci();
    assert_eq!(rig.irq.total(), 1, "masked");
    assert!(ims.entry(9).unwrap().pending);
    ims.set_message(
        9,
        ImsMessage {
            addr: 0xfee0_1000,
            data: 0x34,
        },
    )
    .unwrap();
    ims.unmask(9).unwrap();
    assert_eq!(
        (rig.irq.count(0x34), rig.irq.total()),
        (1, 2),
        "pending delivered once"
    );
    assert_eq!(
        ims.entry(9).unwrap(),
        ImsEntry {
            message: ImsMessage {
                addr: 0xfee0_1000,
                data: 0x34
            },
            masked: false,
            pending: false
        }
    );
    // Interrupts off in INT_CTRL: no delivery and nothing pending.
    write32(q, WQ_INT_CTRL, 0);
    rci();
    assert_eq!(rig.irq.total(), 2);
    assert!(!ims.entry(9).unwrap().pending);
    // A descriptor without RCI raises nothing.
    write32(q, WQ_INT_CTRL, INT_ENABLE);
    post(q, &a, &[Descriptor::noop().with_completion(CR, false)]);
    assert_eq!(rig.irq.total(), 2);
    ims.reset(9).unwrap();
    assert_eq!(ims.entry(9).unwrap(), ImsEntry::default());
    assert!(ims.entry(9).unwrap().masked);
    assert_eq!(ims.entry(64).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(errno(ims.unmask(64)), Errno::INVAL);
}

#[test]
fn engine_configuration_is_checked() {
    let bad = [
        SdmaConfig {
            wqs: 0,
            ..SdmaConfig::default()
        },
        SdmaConfig {
            wqs: 257,
            ..SdmaConfig::default()
        },
        SdmaConfig {
            ims_entries: 65536,
            ..SdmaConfig::default()
        },
        SdmaConfig {
            max_xfer_size: 0,
            ..SdmaConfig::default()
        },
    ];
    let rig = Rig::new();
    for config in bad {
        let dma = std::sync::Arc::new(rig.sys.dma_for(pf()).unwrap());
        let err = umdev_devices::sdma::Sdma::new(dma, rig.irq.clone(), config).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL, "{config:?}");
    }
    assert_eq!(rig.sdma.wqs().len(), 8);
    assert_eq!(rig.sdma.requester(), pf());
    assert!(rig.sdma.wq(8).is_none());
    assert_eq!(rig.sdma.ims().len(), 64);
}
