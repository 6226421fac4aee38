//! The decoder against hand-made messages and arbitrary bytes.

use std::os::fd::OwnedFd;

use proptest::prelude::*;
use zerocopy::IntoBytes;

use super::wire::{self, Header};
use super::*;

fn msg(cmd: Command, payload: &[u8], fds: Vec<OwnedFd>) -> Message {
    Message {
        header: Header {
            msg_id: 1,
            cmd: cmd.0,
            msg_size: (16 + payload.len()) as u32,
            flags: flags::TYPE_COMMAND,
            error_no: 0,
        },
        payload: payload.to_vec(),
        fds,
        fds_truncated: false,
    }
}

fn fd() -> OwnedFd {
    rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
}

fn dec(m: Message) -> Result<Request, ProtoError> {
    decode(m, &Limits::DEFAULT)
}

fn map(argsz: u32, f: u32, addr: u64, size: u64) -> Vec<u8> {
    wire::DmaMap {
        argsz,
        flags: f,
        offset: 0,
        addr,
        size,
    }
    .as_bytes()
    .to_vec()
}

#[test]
fn dma_map_checks_argsz_flags_alignment_and_fds() {
    let ok = map(32, 3, 0x1000, 0x2000);
    assert!(matches!(
        dec(msg(Command::DMA_MAP, &ok, vec![fd()])),
        Ok(Request::DmaMap { fd: Some(_), .. })
    ));
    assert!(matches!(
        dec(msg(Command::DMA_MAP, &ok, vec![])),
        Ok(Request::DmaMap { fd: None, .. })
    ));
    let bad = [
        (map(31, 3, 0x1000, 0x2000), "argsz"),
        (map(32, 0, 0x1000, 0x2000), "no permission"),
        (map(32, 4, 0x1000, 0x2000), "unknown flag"),
        (map(32, 3, 0x1001, 0x2000), "unaligned"),
        (map(32, 3, 0x1000, 0), "empty"),
        (map(32, 3, u64::MAX - 0xfff, 0x2000), "wraps"),
        (ok[..31].to_vec(), "truncated"),
    ];
    for (p, what) in bad {
        let e = dec(msg(Command::DMA_MAP, &p, vec![])).unwrap_err();
        assert_eq!(e.errno(), rustix::io::Errno::INVAL, "{what}");
    }
    let e = dec(msg(Command::DMA_MAP, &ok, vec![fd(), fd()])).unwrap_err();
    assert!(matches!(e, ProtoError::BadFds { got: 2, .. }));
}

#[test]
fn unmap_all_and_dirty_bitmap_shapes() {
    let unmap = |f: u32, addr: u64, size: u64| {
        wire::DmaUnmap {
            argsz: 24,
            flags: f,
            addr,
            size,
        }
        .as_bytes()
        .to_vec()
    };
    assert!(dec(msg(Command::DMA_UNMAP, &unmap(2, 0, 0), vec![])).is_ok());
    assert!(dec(msg(Command::DMA_UNMAP, &unmap(2, 0x1000, 0), vec![])).is_err());
    assert!(dec(msg(Command::DMA_UNMAP, &unmap(3, 0, 0), vec![])).is_err());
    assert!(dec(msg(Command::DMA_UNMAP, &unmap(8, 0x1000, 0x1000), vec![])).is_err());
    // A stray fd (SPDK) is accepted and closed.
    assert!(
        dec(msg(
            Command::DMA_UNMAP,
            &unmap(0, 0x1000, 0x1000),
            vec![fd()]
        ))
        .is_ok()
    );
    // GET_DIRTY_BITMAP needs the bitmap header and room for the bits.
    let mut p = unmap(1, 0x1000, 0x1000);
    assert!(dec(msg(Command::DMA_UNMAP, &p, vec![])).is_err());
    p.extend_from_slice(
        wire::DirtyBitmap {
            pgsize: 4096,
            size: 8,
        }
        .as_bytes(),
    );
    assert!(matches!(
        dec(msg(Command::DMA_UNMAP, &p, vec![])).unwrap_err(),
        ProtoError::BadArgsz { .. }
    ));
    p[..4].copy_from_slice(&48u32.to_le_bytes());
    assert!(matches!(
        dec(msg(Command::DMA_UNMAP, &p, vec![])),
        Ok(Request::DmaUnmap {
            bitmap: Some(_),
            ..
        })
    ));
}

#[test]
fn region_access_counts_match_payloads() {
    let head = |region: u32, count: u32| {
        wire::RegionAccess {
            offset: 0,
            region,
            count,
        }
        .as_bytes()
        .to_vec()
    };
    let mut w = head(0, 4);
    w.extend_from_slice(&[1, 2, 3, 4]);
    assert!(dec(msg(Command::REGION_WRITE, &w, vec![])).is_ok());
    w.push(5);
    assert!(dec(msg(Command::REGION_WRITE, &w, vec![])).is_err());
    let big = Limits::DEFAULT.max_data_xfer_size + 1;
    assert!(matches!(
        dec(msg(Command::REGION_READ, &head(0, big), vec![])).unwrap_err(),
        ProtoError::TooLarge { .. }
    ));
    assert!(dec(msg(Command::REGION_READ, &head(0, 8)[..15], vec![])).is_err());
}

#[test]
fn set_irqs_fd_counts() {
    use umdev_vfio::device::irq_set_flags::*;
    let set = |f: u32, count: u32, extra: &[u8]| {
        let mut p = wire::IrqSet {
            argsz: 20 + extra.len() as u32,
            flags: f,
            index: 2,
            start: 0,
            count,
        }
        .as_bytes()
        .to_vec();
        p.extend_from_slice(extra);
        p
    };
    let trig = DATA_EVENTFD | ACTION_TRIGGER;
    assert!(
        dec(msg(
            Command::DEVICE_SET_IRQS,
            &set(trig, 2, &[]),
            vec![fd(), fd()]
        ))
        .is_ok()
    );
    assert!(dec(msg(Command::DEVICE_SET_IRQS, &set(trig, 2, &[]), vec![])).is_ok());
    assert!(
        dec(msg(
            Command::DEVICE_SET_IRQS,
            &set(trig, 2, &[]),
            vec![fd()]
        ))
        .is_err()
    );
    let none = DATA_NONE | ACTION_TRIGGER;
    assert!(
        dec(msg(
            Command::DEVICE_SET_IRQS,
            &set(none, 0, &[]),
            vec![fd()]
        ))
        .is_err()
    );
    let bools = DATA_BOOL | ACTION_MASK;
    assert!(matches!(
        dec(msg(
            Command::DEVICE_SET_IRQS,
            &set(bools, 2, &[1, 0]),
            vec![]
        )),
        Ok(Request::SetIrqs {
            data: IrqSetData::Bool(_),
            ..
        })
    ));
    let mut wrong_argsz = set(bools, 2, &[1, 0]);
    wrong_argsz[0] = 21;
    assert!(dec(msg(Command::DEVICE_SET_IRQS, &wrong_argsz, vec![])).is_err());
}

#[test]
fn unknown_commands_replies_and_truncated_fds_are_refused() {
    for cmd in [0, 11, 12, 14, 17, 18, 19, 0xffff] {
        assert_eq!(
            dec(msg(Command(cmd), &[], vec![])).unwrap_err(),
            ProtoError::Unsupported(Command(cmd))
        );
    }
    let mut m = msg(Command::DEVICE_RESET, &[], vec![]);
    m.header.flags = flags::TYPE_REPLY;
    assert!(matches!(dec(m).unwrap_err(), ProtoError::BadType(1)));
    let mut m = msg(Command::DEVICE_RESET, &[], vec![]);
    m.fds_truncated = true;
    assert!(matches!(dec(m).unwrap_err(), ProtoError::FdsTruncated(16)));
    // GET_INFO with the Rust client's argsz 32 is fine, 15 is not.
    let info = |argsz: u32| {
        wire::DeviceInfo {
            argsz,
            ..Default::default()
        }
        .as_bytes()
        .to_vec()
    };
    assert!(dec(msg(Command::DEVICE_GET_INFO, &info(32), vec![])).is_ok());
    assert!(dec(msg(Command::DEVICE_GET_INFO, &info(15), vec![])).is_err());
}

proptest! {
    /// Arbitrary commands never panic the decoder, and what it accepts
    /// satisfies the invariants the handlers rely on.
    #[test]
    fn arbitrary_messages_decode_or_fail_cleanly(
        cmd in 0u16..20,
        hflags in prop_oneof![Just(0u32), Just(0x10), any::<u32>()],
        payload in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut m = msg(Command(cmd), &payload, vec![]);
        m.header.flags = hflags;
        match decode(m, &Limits::DEFAULT) {
            Ok(Request::DmaMap { addr, size, .. }) => {
                prop_assert!(addr % PAGE_SIZE == 0 && size % PAGE_SIZE == 0 && size > 0);
                prop_assert!(addr.checked_add(size).is_some());
            }
            Ok(Request::RegionWrite { data, .. }) => {
                prop_assert!(data.len() <= Limits::DEFAULT.max_data_xfer_size as usize);
            }
            Ok(Request::RegionRead { count, .. }) => {
                prop_assert!(count <= Limits::DEFAULT.max_data_xfer_size);
            }
            Ok(Request::RegionWriteMulti { writes }) => {
                let ok = writes.iter().all(|w| {
                    let n = w.count;
                    (1..=8).contains(&n)
                });
                prop_assert!(ok);
            }
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.errno(), rustix::io::Errno::INVAL),
        }
    }
}
