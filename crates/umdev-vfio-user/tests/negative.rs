//! Hostile and broken clients over a raw socket: truncated and oversized
//! headers, wrong argsz, unknown commands, fds on the wrong command, too
//! many fds, overlapping DMA maps, DMA outside any map (fd-backed and
//! message-based), region accesses out of bounds, pipelined requests with
//! reused ids. Each gets its error reply (the stream stays in sync) or a
//! clean disconnect; the server goes on serving the same device to the next
//! client and another device to its client; and memory outside the
//! client's maps is never touched.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use umdev_devices::dmatest::regs::*;
use umdev_devices::mtty::MTTY_VENDOR_ID;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::vfio_user::*;
use umdev_testkit::wait_for;
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{irq, region};
use umdev_vfio_user::proto::wire::{
    DeviceInfo, DmaMap, DmaUnmap, Header, IrqInfo, IrqSet, RegionAccess, RegionInfo, Version,
};
use umdev_vfio_user::proto::{Command, Limits, flags};
use umdev_vfio_user::transport::recv_message;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const EINVAL: u32 = Errno::INVAL.raw_os_error() as u32;
const EEXIST: u32 = Errno::EXIST.raw_os_error() as u32;
const ENOENT: u32 = Errno::NOENT.raw_os_error() as u32;
const EBUSY: u32 = Errno::BUSY.raw_os_error() as u32;

/// The transfer size this client offers: small, so message-based DMA is
/// split.
const CLIENT_XFER: u64 = 1024;

fn version_payload(major: u16, minor: u16, json: &str) -> Vec<u8> {
    let mut p = Version { major, minor }.as_bytes().to_vec();
    p.extend_from_slice(json.as_bytes());
    p.push(0);
    p
}

/// Connects and negotiates VERSION 0.0 like QEMU (with a small transfer
/// size).
/// An mtty mdev served on a socket, kept alive as long as the value.
struct ServedMtty {
    path: std::path::PathBuf,
    _server: umdev_vfio_user::ServerHandle,
    _mdev: std::sync::Arc<umdev_vfio::mdev::Mdev>,
    _rig: Rig,
}

impl ServedMtty {
    fn new() -> Self {
        let rig = Rig::new();
        let (mdev, tty) = rig.mtty();
        let (server, path) = rig.serve("mtty", tty);
        Self {
            path,
            _server: server,
            _mdev: mdev,
            _rig: rig,
        }
    }
}

fn connect(path: &Path) -> RawClient {
    let mut c = RawClient::connect(path);
    let json =
        format!(r#"{{"capabilities":{{"max_msg_fds":8,"max_data_xfer_size":{CLIENT_XFER}}}}}"#);
    let r = c.call(Command::VERSION.0, &version_payload(0, 0, &json), &[]);
    assert_eq!(RawClient::errno(&r), 0, "VERSION accepted");
    c
}

fn device_info(c: &mut RawClient) -> u32 {
    let req = DeviceInfo {
        argsz: size_of::<DeviceInfo>() as u32,
        ..DeviceInfo::new_zeroed()
    };
    let r = c.call(Command::DEVICE_GET_INFO.0, req.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&r), 0);
    DeviceInfo::read_from_bytes(&r.payload).unwrap().num_regions
}

fn region_read_payload(index: u32, offset: u64, count: u32) -> Vec<u8> {
    RegionAccess {
        offset,
        region: index,
        count,
    }
    .as_bytes()
    .to_vec()
}

fn region_write_payload(index: u32, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut p = region_read_payload(index, offset, data.len() as u32);
    p.extend_from_slice(data);
    p
}

/// REGION_READ of 4 bytes: the value, or the errno.
fn r32(c: &mut RawClient, index: u32, offset: u64) -> Result<u32, u32> {
    let r = c.call(
        Command::REGION_READ.0,
        &region_read_payload(index, offset, 4),
        &[],
    );
    match RawClient::errno(&r) {
        0 => Ok(u32::from_le_bytes(r.payload[16..20].try_into().unwrap())),
        e => Err(e),
    }
}

fn dma_map_payload(flags: u32, offset: u64, addr: u64, size: u64) -> Vec<u8> {
    DmaMap {
        argsz: size_of::<DmaMap>() as u32,
        flags,
        offset,
        addr,
        size,
    }
    .as_bytes()
    .to_vec()
}

const RW: u32 = flags::DMA_MAP_READ | flags::DMA_MAP_WRITE;

fn dma_map(c: &mut RawClient, addr: u64, size: u64, offset: u64, fd: Option<OwnedFd>) -> u32 {
    let fds: Vec<OwnedFd> = fd.into_iter().collect();
    let r = c.call(
        Command::DMA_MAP.0,
        &dma_map_payload(RW, offset, addr, size),
        &fds,
    );
    RawClient::errno(&r)
}

/// The server hangs up: the next read is the end of the stream (or a
/// reset), never a message.
fn expect_disconnect(c: &mut RawClient) {
    let limits = Limits {
        max_data_xfer_size: 64 << 20,
        ..Limits::DEFAULT
    };
    match recv_message(std::os::fd::AsFd::as_fd(&c.stream), &limits) {
        Ok(None) => {}
        Err(e) => assert_eq!(e.errno(), Errno::CONNRESET, "{e}"),
        Ok(Some(m)) => panic!("expected a disconnect, got {:?}", m.header),
    }
}

/// The device on `path` still serves a new client.
fn serves_again(path: &Path) {
    let mut c = connect(path);
    assert_eq!(device_info(&mut c), region::NUM);
}

fn fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| rustix::fs::memfd_create("neg", rustix::fs::MemfdFlags::CLOEXEC).unwrap())
        .collect()
}

/// Two connected sockets as fds: (kept end, end to send).
fn socket_pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (a.into(), b.into())
}

/// The sent end of a socket pair is closed everywhere (the server dropped its
/// copy): the kept end reports HUP.
fn all_writers_closed(read_end: &OwnedFd) -> bool {
    let mut pfd = [PollFd::new(read_end, PollFlags::IN)];
    let ten_s = Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    poll(&mut pfd, Some(&ten_s)).unwrap() == 1 && pfd[0].revents().contains(PollFlags::HUP)
}

#[test]
fn broken_framing_disconnects_and_the_server_goes_on() {
    let rig = Rig::new();
    let (_m1, tty) = rig.mtty();
    let (_server, path) = rig.serve("mtty", tty);
    let (_m2, nvme) = rig.pass_through();
    let (_server2, other) = rig.serve("nvme", nvme);
    let mut bystander = connect(&other);

    let header = |size: u32| {
        Header {
            msg_id: 1,
            cmd: Command::DEVICE_GET_INFO.0,
            msg_size: size,
            flags: flags::TYPE_COMMAND,
            error_no: 0,
        }
        .as_bytes()
        .to_vec()
    };
    // A header cut short, then the client hangs up.
    let mut c = connect(&path);
    c.stream.write_all(&header(32)[..9]).unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    expect_disconnect(&mut c);
    drop(c);
    serves_again(&path);
    // A payload cut short.
    let mut c = connect(&path);
    c.stream.write_all(&header(32)).unwrap();
    c.stream.write_all(&[0u8; 7]).unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    expect_disconnect(&mut c);
    drop(c);
    serves_again(&path);
    // msg_size below the header's own size, and far above the limit: the
    // stream cannot be trusted, the server hangs up without reading on.
    for size in [0, 15, Limits::DEFAULT.max_msg_size() + 1, u32::MAX] {
        let mut c = connect(&path);
        c.stream.write_all(&header(size)).unwrap();
        expect_disconnect(&mut c);
        drop(c);
        serves_again(&path);
    }
    // Before VERSION too.
    let mut c = RawClient::connect(&path);
    c.stream.write_all(&header(u32::MAX)).unwrap();
    expect_disconnect(&mut c);
    drop(c);
    // The other device's client never noticed.
    assert_eq!(device_info(&mut bystander), region::NUM);
    serves_again(&path);
}

#[test]
fn a_bad_version_is_answered_then_disconnected() {
    let rig = Rig::new();
    let (_m, tty) = rig.mtty();
    let (_server, path) = rig.serve("mtty", tty);
    for payload in [
        version_payload(1, 0, "{}"),
        version_payload(0, 0, "{not json"),
        version_payload(0, 0, r#"{"capabilities":{"max_data_xfer_size":0}}"#),
        vec![0u8; 3],
    ] {
        let mut c = RawClient::connect(&path);
        let r = c.call(Command::VERSION.0, &payload, &[]);
        let errno = RawClient::errno(&r);
        if payload.len() < 4 {
            // A short VERSION is a bad length, not fatal.
            assert_eq!(errno, EINVAL);
            continue;
        }
        assert_eq!(errno, EINVAL, "{payload:?}");
        expect_disconnect(&mut c);
        drop(c);
        serves_again(&path);
    }
    // No JSON at all (SPDK) and unknown keys are fine.
    let mut c = RawClient::connect(&path);
    let r = c.call(
        Command::VERSION.0,
        Version { major: 0, minor: 7 }.as_bytes(),
        &[],
    );
    assert_eq!(RawClient::errno(&r), 0);
    let v = Version::read_from_prefix(&r.payload).unwrap().0;
    assert_eq!((v.major, v.minor), (0, 2), "minor capped at the server's");
}

#[test]
fn wrong_argsz_and_lengths_are_einval_and_the_stream_stays_in_sync() {
    let served = ServedMtty::new();
    let mut c = connect(&served.path);

    let mut bad: Vec<(Command, Vec<u8>)> = Vec::new();
    // DMA_MAP: argsz is the request size, exactly 32.
    for argsz in [0, 31, 33, 48] {
        let m = DmaMap {
            argsz,
            flags: RW,
            offset: 0,
            addr: 0x10000,
            size: 0x1000,
        };
        bad.push((Command::DMA_MAP, m.as_bytes().to_vec()));
    }
    // DMA_MAP payload longer than the struct.
    let mut long = dma_map_payload(RW, 0, 0x10000, 0x1000);
    long.extend_from_slice(&[0; 8]);
    bad.push((Command::DMA_MAP, long));
    // argsz smaller than the fixed reply.
    bad.push((
        Command::DEVICE_GET_INFO,
        DeviceInfo {
            argsz: 15,
            ..DeviceInfo::new_zeroed()
        }
        .as_bytes()
        .to_vec(),
    ));
    bad.push((
        Command::DEVICE_GET_REGION_INFO,
        RegionInfo {
            argsz: 31,
            index: region::CONFIG,
            ..RegionInfo::new_zeroed()
        }
        .as_bytes()
        .to_vec(),
    ));
    bad.push((
        Command::DEVICE_GET_IRQ_INFO,
        IrqInfo {
            argsz: 4,
            index: irq::INTX,
            ..IrqInfo::new_zeroed()
        }
        .as_bytes()
        .to_vec(),
    ));
    bad.push((
        Command::DMA_UNMAP,
        DmaUnmap {
            argsz: 8,
            flags: 0,
            addr: 0x10000,
            size: 0x1000,
        }
        .as_bytes()
        .to_vec(),
    ));
    // SET_IRQS: argsz must equal the request size.
    for argsz in [0, 19, 21, 4096] {
        let s = IrqSet {
            argsz,
            flags: DATA_NONE | ACTION_TRIGGER,
            index: irq::INTX,
            start: 0,
            count: 0,
        };
        bad.push((Command::DEVICE_SET_IRQS, s.as_bytes().to_vec()));
    }
    // Fixed parts cut short.
    for cmd in [
        Command::DMA_MAP,
        Command::DMA_UNMAP,
        Command::DEVICE_GET_INFO,
        Command::DEVICE_GET_REGION_INFO,
        Command::DEVICE_GET_IRQ_INFO,
        Command::DEVICE_SET_IRQS,
        Command::REGION_READ,
        Command::REGION_WRITE,
        Command::REGION_WRITE_MULTI,
        Command::DEVICE_FEATURE,
    ] {
        bad.push((cmd, vec![0u8; 3]));
    }
    for (cmd, payload) in &bad {
        let r = c.call(cmd.0, payload, &[]);
        assert_eq!(RawClient::errno(&r), EINVAL, "{cmd} {payload:?}");
        assert_eq!(
            { r.header.msg_size },
            16,
            "an error reply is the header only"
        );
    }
    // Still in sync: a good command right after.
    assert_eq!(device_info(&mut c), region::NUM);
    // A generous argsz is fine (the Rust client sends 32 for GET_INFO).
    let r = c.call(
        Command::DEVICE_GET_INFO.0,
        DeviceInfo {
            argsz: 32,
            ..DeviceInfo::new_zeroed()
        }
        .as_bytes(),
        &[],
    );
    assert_eq!(RawClient::errno(&r), 0);
}

#[test]
fn unknown_and_server_only_commands_are_einval_with_their_payload_consumed() {
    let served = ServedMtty::new();
    let mut c = connect(&served.path);
    for cmd in [
        0,
        Command::DMA_READ.0,
        Command::DMA_WRITE.0,
        Command::DIRTY_PAGES.0,
        Command::MIG_DATA_READ.0,
        Command::MIG_DATA_WRITE.0,
        19,
        0x7fff,
        u16::MAX,
    ] {
        // A payload that would look like a command if it were not consumed.
        let junk = Header {
            msg_id: 0xdead,
            cmd: Command::DEVICE_RESET.0,
            msg_size: 16,
            flags: 0,
            error_no: 0,
        };
        let r = c.call(cmd, junk.as_bytes(), &[]);
        assert_eq!(RawClient::errno(&r), EINVAL, "command {cmd}");
    }
    // A reply nobody asked for and a message of an unknown type: the
    // first is dropped, the second refused; then in sync again.
    let id = c.send(Command::DEVICE_GET_INFO.0, flags::TYPE_REPLY, &[0; 16], &[]);
    let typed = c.send(Command::DEVICE_RESET.0, 0x7, &[], &[]);
    let r = c.recv();
    assert_eq!(({ r.header.msg_id }, RawClient::errno(&r)), (typed, EINVAL));
    assert_ne!(id, typed);
    assert_eq!(device_info(&mut c), region::NUM);
}

#[test]
fn fds_on_the_wrong_command_and_too_many_fds() {
    let served = ServedMtty::new();
    let mut c = connect(&served.path);
    let info = DeviceInfo {
        argsz: 16,
        ..DeviceInfo::new_zeroed()
    };

    // A stray fd on a command that takes none is closed and ignored (SPDK
    // sends one with DMA_UNMAP).
    let (read_end, write_end) = socket_pair();
    let r = c.call(Command::DEVICE_GET_INFO.0, info.as_bytes(), &[write_end]);
    assert_eq!(RawClient::errno(&r), 0);
    assert!(
        all_writers_closed(&read_end),
        "the server closed the stray fd"
    );

    // SET_IRQS without eventfd data takes no fds.
    let none = IrqSet {
        argsz: 20,
        flags: DATA_NONE | ACTION_TRIGGER,
        index: irq::INTX,
        start: 0,
        count: 0,
    };
    let r = c.call(Command::DEVICE_SET_IRQS.0, none.as_bytes(), &fds(1));
    assert_eq!(RawClient::errno(&r), EINVAL);
    // Eventfd data: as many fds as vectors.
    let two = IrqSet {
        argsz: 20,
        flags: DATA_EVENTFD | ACTION_TRIGGER,
        index: irq::INTX,
        start: 0,
        count: 1,
    };
    let r = c.call(Command::DEVICE_SET_IRQS.0, two.as_bytes(), &fds(2));
    assert_eq!(RawClient::errno(&r), EINVAL);
    // Vectors past the index's count, with or without fds, and unknown
    // flag bits: EINVAL (vfio_set_irqs_validate_and_prepare).
    for (flags, count, nfds) in [
        (DATA_EVENTFD | ACTION_TRIGGER, 2, 0),
        (DATA_EVENTFD | ACTION_TRIGGER, 2, 2),
        // A de-assign of 4 G vectors: refused, not allocated (found by
        // the session fuzz target as an out-of-memory).
        (DATA_EVENTFD | ACTION_TRIGGER, 0xffff_fff0, 0),
        (DATA_NONE | ACTION_TRIGGER | 0x40, 1, 0),
    ] {
        let s = IrqSet {
            argsz: 20,
            flags,
            index: irq::INTX,
            start: 0,
            count,
        };
        let r = c.call(Command::DEVICE_SET_IRQS.0, s.as_bytes(), &fds(nfds));
        assert_eq!(
            RawClient::errno(&r),
            EINVAL,
            "flags {flags:#x} count {count}"
        );
    }
    // DMA_MAP takes at most one.
    let r = c.call(
        Command::DMA_MAP.0,
        &dma_map_payload(RW, 0, 0x10000, 0x1000),
        &fds(2),
    );
    assert_eq!(RawClient::errno(&r), EINVAL);
    // An fd that is not memory that far: refused.
    let (_r, w) = socket_pair();
    assert_eq!(dma_map(&mut c, 0x10000, 0x1000, 0, Some(w)), EINVAL);
    let short = memfd(0x1000);
    assert_eq!(
        dma_map(&mut c, 0x10000, 0x2000, 0, Some(short.into())),
        EINVAL,
        "map past the end of the file"
    );

    // More fds than the server takes per message: refused, and every one
    // of them closed.
    let limit = Limits::DEFAULT.max_msg_fds as usize;
    let mut pipes = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..limit + 4 {
        let (r, w) = socket_pair();
        pipes.push(r);
        writers.push(w);
    }
    let r = c.call(Command::DEVICE_GET_INFO.0, info.as_bytes(), &writers);
    assert_eq!(RawClient::errno(&r), EINVAL);
    drop(writers);
    for (i, p) in pipes.iter().enumerate() {
        assert!(
            all_writers_closed(p),
            "fd {i} of the oversized batch closed"
        );
    }
    // Still in sync.
    assert_eq!(device_info(&mut c), region::NUM);
}

#[test]
fn region_accesses_out_of_bounds_are_refused() {
    let served = ServedMtty::new();
    let mut c = connect(&served.path);
    assert_eq!(
        r32(&mut c, region::CONFIG, 0).map(|v| v & 0xffff),
        Ok(u32::from(MTTY_VENDOR_ID))
    );

    // Past the end of an existing region: the device's EFAULT (Linux
    // vfio_pci_config_rw); a region the device does not have: EINVAL.
    const EFAULT: u32 = Errno::FAULT.raw_os_error() as u32;
    for (index, offset, errno) in [
        (region::CONFIG, 4096, EFAULT),
        (region::CONFIG, u64::MAX - 1, EFAULT),
        (region::CONFIG, u64::MAX, EFAULT),
        (region::ROM, 0, EINVAL),
        (region::VGA, 0, EINVAL),
        (region::NUM, 0, EINVAL),
        (0xdead_beef, 0, EINVAL),
        (region::BAR5, 0, EINVAL),
    ] {
        assert_eq!(
            r32(&mut c, index, offset),
            Err(errno),
            "read {index} @ {offset:#x}"
        );
        let r = c.call(
            Command::REGION_WRITE.0,
            &region_write_payload(index, offset, &[1, 2, 3, 4]),
            &[],
        );
        assert_eq!(RawClient::errno(&r), errno, "write {index} @ {offset:#x}");
    }
    // Counts beyond the advertised transfer size, or disagreeing with the
    // data.
    let too_big = Limits::DEFAULT.max_data_xfer_size + 1;
    let r = c.call(
        Command::REGION_READ.0,
        &region_read_payload(region::CONFIG, 0, too_big),
        &[],
    );
    assert_eq!(RawClient::errno(&r), EINVAL);
    let mut lying = region_read_payload(region::CONFIG, 0, 8);
    lying.extend_from_slice(&[0; 4]);
    let r = c.call(Command::REGION_WRITE.0, &lying, &[]);
    assert_eq!(RawClient::errno(&r), EINVAL);
    // A refused posted write gets no reply: the next reply is for the
    // next command.
    c.send(
        Command::REGION_WRITE.0,
        flags::TYPE_COMMAND | flags::NO_REPLY,
        &region_write_payload(0xdead_beef, 0, &[0; 4]),
        &[],
    );
    assert_eq!(
        r32(&mut c, region::CONFIG, 0).map(|v| v & 0xffff),
        Ok(u32::from(MTTY_VENDOR_ID))
    );
}

#[test]
fn pipelined_requests_with_reused_ids_are_answered_in_order() {
    let served = ServedMtty::new();
    let mut c = connect(&served.path);
    let info = DeviceInfo {
        argsz: 16,
        ..DeviceInfo::new_zeroed()
    };
    let irq_info = IrqInfo {
        argsz: 16,
        index: irq::INTX,
        ..IrqInfo::new_zeroed()
    };
    let cmd_off = u64::from(PCI_COMMAND);
    let batch: Vec<(u16, u32, Vec<u8>)> = vec![
        (Command::DEVICE_GET_INFO.0, 0, info.as_bytes().to_vec()),
        (
            Command::REGION_READ.0,
            0,
            region_read_payload(region::CONFIG, 0, 4),
        ),
        (0x4242, 0, vec![1, 2, 3]),
        (
            Command::REGION_WRITE.0,
            flags::NO_REPLY,
            region_write_payload(region::CONFIG, cmd_off, &1u16.to_le_bytes()),
        ),
        (
            Command::REGION_READ.0,
            0,
            region_read_payload(region::CONFIG, cmd_off, 2),
        ),
        (
            Command::DEVICE_GET_IRQ_INFO.0,
            0,
            irq_info.as_bytes().to_vec(),
        ),
        (Command::DMA_UNMAP.0, 0, {
            DmaUnmap {
                argsz: 24,
                flags: 0,
                addr: 0x10000,
                size: 0x1000,
            }
            .as_bytes()
            .to_vec()
        }),
    ];
    // Everything in one write, every message with id 7.
    let mut wire = Vec::new();
    for (cmd, f, payload) in &batch {
        let h = Header {
            msg_id: 7,
            cmd: *cmd,
            msg_size: (16 + payload.len()) as u32,
            flags: flags::TYPE_COMMAND | f,
            error_no: 0,
        };
        wire.extend_from_slice(h.as_bytes());
        wire.extend_from_slice(payload);
    }
    c.stream.write_all(&wire).unwrap();
    let expected: Vec<(u16, u32)> = vec![
        (Command::DEVICE_GET_INFO.0, 0),
        (Command::REGION_READ.0, 0),
        (0x4242, EINVAL),
        (Command::REGION_READ.0, 0),
        (Command::DEVICE_GET_IRQ_INFO.0, 0),
        (Command::DMA_UNMAP.0, ENOENT),
    ];
    let mut replies = Vec::new();
    for _ in &expected {
        let r = c.recv();
        assert_eq!(r.header.flags & flags::TYPE_MASK, flags::TYPE_REPLY);
        assert_eq!({ r.header.msg_id }, 7);
        replies.push(r);
    }
    let got: Vec<(u16, u32)> = replies
        .iter()
        .map(|r| (r.header.cmd, RawClient::errno(r)))
        .collect();
    assert_eq!(got, expected);
    // The posted write happened between the two reads, in order.
    let command = u16::from_le_bytes(replies[3].payload[16..18].try_into().unwrap());
    assert_eq!(command & 1, 1, "posted write applied before the next read");
    // Nothing more is pending: the next call's reply is its own.
    assert_eq!(device_info(&mut c), region::NUM);
}

#[test]
fn a_second_client_is_refused_while_the_first_is_served() {
    let rig = Rig::new();
    let (_m, tty) = rig.mtty();
    let (server, path) = rig.serve("mtty", tty);
    let mut first = connect(&path);
    wait_for("session", || server.client_attached());
    let mut second = RawClient::connect(&path);
    let r = second.call(Command::VERSION.0, &version_payload(0, 0, "{}"), &[]);
    assert_eq!(RawClient::errno(&r), EBUSY);
    expect_disconnect(&mut second);
    assert_eq!(device_info(&mut first), region::NUM);
    assert_eq!(server.stats().refused, 1);
}

const IOVA: u64 = 0x10_0000;
const PAGE: u64 = 0x1000;
const SENTINEL: u8 = 0x5a;

fn w32(c: &mut RawClient, offset: u64, v: u32) {
    let r = c.call(
        Command::REGION_WRITE.0,
        &region_write_payload(region::BAR0, offset, &v.to_le_bytes()),
        &[],
    );
    assert_eq!(RawClient::errno(&r), 0);
}

/// Memory space and bus mastering on.
fn enable_dma(c: &mut RawClient) {
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    let r = c.call(
        Command::REGION_WRITE.0,
        &region_write_payload(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes()),
        &[],
    );
    assert_eq!(RawClient::errno(&r), 0);
}

/// Programs a FILL (`src` = None) or COPY and starts it, serving the
/// server's DMA_READ / DMA_WRITE messages from `remote` (the client's
/// fd-less memory at `remote_iova`) while it runs. Returns the status and
/// the sizes of the DMA messages.
fn run_engine(
    c: &mut RawClient,
    src: Option<u64>,
    dst: u64,
    len: u32,
    remote: &mut [u8],
    remote_iova: u64,
) -> (u32, DmaLog) {
    let src = src.unwrap_or(0);
    w32(c, DMATEST_SRC_LO, src as u32);
    w32(c, DMATEST_SRC_HI, (src >> 32) as u32);
    w32(c, DMATEST_DST_LO, dst as u32);
    w32(c, DMATEST_DST_HI, (dst >> 32) as u32);
    w32(c, DMATEST_LEN, len);
    w32(c, DMATEST_FILL_LO, 0xeeee_eeee);
    w32(c, DMATEST_FILL_HI, 0xeeee_eeee);
    let op = if src == 0 {
        DMATEST_OP_FILL
    } else {
        DMATEST_OP_COPY
    };
    let id = c.send(
        Command::REGION_WRITE.0,
        flags::TYPE_COMMAND,
        &region_write_payload(
            region::BAR0,
            DMATEST_CMD,
            &(op | DMATEST_CMD_START).to_le_bytes(),
        ),
        &[],
    );
    // Every DMA message is served from `remote`: one outside it fails the
    // test (out-of-range slice), one larger than the client offered too.
    let (m, log) = c.serve_dma_until(id, remote, remote_iova, CLIENT_XFER);
    assert_eq!(RawClient::errno(&m), 0);
    let r = c.call(
        Command::REGION_READ.0,
        &region_read_payload(region::BAR0, DMATEST_STATUS, 4),
        &[],
    );
    let status = u32::from_le_bytes(r.payload[16..20].try_into().unwrap());
    (status, log)
}

#[test]
fn dma_never_reaches_memory_outside_the_clients_maps() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = connect(&path);
    enable_dma(&mut c);

    // A memfd of 6 pages: pages 1..=4 mapped at IOVA (from file offset
    // 0x1000), pages 0 and 5 are sentinels the server must never touch.
    let file = memfd(6 * PAGE);
    file.write_all_at(&[SENTINEL; 6 * PAGE as usize], 0)
        .unwrap();
    let fd: OwnedFd = file.try_clone().unwrap().into();
    assert_eq!(dma_map(&mut c, IOVA, 4 * PAGE, PAGE, Some(fd)), 0);
    // Overlaps: refused, the first map intact.
    for (addr, size) in [
        (IOVA, 4 * PAGE),
        (IOVA + PAGE, PAGE),
        (IOVA - PAGE, 2 * PAGE),
        (IOVA + 3 * PAGE, 4 * PAGE),
        (IOVA - PAGE, 8 * PAGE),
    ] {
        let f: OwnedFd = memfd(8 * PAGE).into();
        assert_eq!(
            dma_map(&mut c, addr, size, 0, Some(f)),
            EEXIST,
            "{addr:#x}+{size:#x}"
        );
        assert_eq!(
            dma_map(&mut c, addr, size, 0, None),
            EEXIST,
            "fd-less {addr:#x}+{size:#x}"
        );
    }
    // Misaligned or wrapping maps.
    for (addr, size) in [
        (IOVA + 1, PAGE),
        (0x80_0000, 100),
        (u64::MAX - PAGE + 1, 2 * PAGE),
    ] {
        assert_eq!(dma_map(&mut c, addr, size, 0, None), EINVAL);
    }
    // An fd-less map of 2 pages right after the gap (message-based DMA).
    let remote_iova = IOVA + 8 * PAGE;
    assert_eq!(dma_map(&mut c, remote_iova, 2 * PAGE, 0, None), 0);
    let mut remote = vec![SENTINEL; 2 * PAGE as usize];

    let mut no_remote = [0u8; 0];
    // In-bounds fill works.
    let (status, _) = run_engine(&mut c, None, IOVA, 4 * PAGE as u32, &mut no_remote, 0);
    assert_eq!(status, DMATEST_STATUS_DONE);
    let mut page = vec![0u8; 4 * PAGE as usize];
    file.read_exact_at(&mut page, PAGE).unwrap();
    assert!(page.iter().all(|&b| b == 0xee));

    // Writes and reads crossing either end of the fd map, or into the gap
    // between the maps: faults.
    for (src, dst, len) in [
        (None, IOVA + 4 * PAGE - 8, 64),
        (None, IOVA - 8, 64),
        (None, IOVA - PAGE, 16),
        (None, IOVA + 5 * PAGE, 16),
        (Some(IOVA - PAGE), IOVA, 16),
        (Some(IOVA + 4 * PAGE - 8), IOVA, 64),
    ] {
        let (status, dma) = run_engine(&mut c, src, dst, len, &mut no_remote, 0);
        assert_ne!(status & DMATEST_STATUS_ERROR, 0, "{src:x?} -> {dst:#x}");
        assert!(dma.reads.is_empty() && dma.writes.is_empty());
    }
    // Message-based DMA inside the fd-less map: split in client-sized
    // pieces, all inside it.
    let (status, dma) = run_engine(
        &mut c,
        Some(IOVA),
        remote_iova + 100,
        3000,
        &mut remote,
        remote_iova,
    );
    assert_eq!(status, DMATEST_STATUS_DONE);
    assert!(
        dma.writes.len() >= 3,
        "3000 bytes in ≤{CLIENT_XFER}-byte messages"
    );
    assert_eq!(dma.writes.iter().sum::<u64>(), 3000);
    assert!(remote[100..3100].iter().all(|&b| b == 0xee));
    // ... and crossing its end: a fault, nothing outside it asked for.
    let (status, _) = run_engine(
        &mut c,
        None,
        remote_iova + 2 * PAGE - 8,
        64,
        &mut remote,
        remote_iova,
    );
    assert_ne!(status & DMATEST_STATUS_ERROR, 0);
    assert!(remote[..100].iter().all(|&b| b == SENTINEL));
    assert!(
        remote[3100..2 * PAGE as usize - 8]
            .iter()
            .all(|&b| b == SENTINEL)
    );

    // Unmapped: nothing reachable any more; the sentinels never changed.
    let unmap = DmaUnmap {
        argsz: 24,
        flags: 0,
        addr: IOVA,
        size: 4 * PAGE,
    };
    let r = c.call(Command::DMA_UNMAP.0, unmap.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&r), 0);
    assert_eq!(r.payload, unmap.as_bytes(), "the reply echoes the request");
    let r = c.call(Command::DMA_UNMAP.0, unmap.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&r), ENOENT, "unmapped twice");
    let (status, _) = run_engine(&mut c, None, IOVA, 16, &mut no_remote, 0);
    assert_ne!(status & DMATEST_STATUS_ERROR, 0);
    let mut sentinels = vec![0u8; PAGE as usize];
    for at in [0, 5 * PAGE] {
        file.read_exact_at(&mut sentinels, at).unwrap();
        assert!(
            sentinels.iter().all(|&b| b == SENTINEL),
            "sentinel page at {at:#x}"
        );
    }
}

#[test]
fn a_client_that_stops_answering_dma_only_fails_its_own_dma() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio);
    let (_m2, tty) = rig.mtty();
    let (_server2, other) = rig.serve("mtty", tty);
    let mut bystander = connect(&other);
    let mut c = connect(&path);
    enable_dma(&mut c);
    assert_eq!(dma_map(&mut c, IOVA, PAGE, 0, None), 0);
    // Start a fill into the fd-less map and hang up instead of answering.
    for (reg, v) in [
        (DMATEST_DST_LO, IOVA as u32),
        (DMATEST_DST_HI, 0),
        (DMATEST_LEN, 64),
    ] {
        w32(&mut c, reg, v);
    }
    c.send(
        Command::REGION_WRITE.0,
        flags::TYPE_COMMAND,
        &region_write_payload(
            region::BAR0,
            DMATEST_CMD,
            &(DMATEST_OP_FILL | DMATEST_CMD_START).to_le_bytes(),
        ),
        &[],
    );
    let m = c.recv();
    assert_eq!({ m.header.cmd }, Command::DMA_WRITE.0);
    drop(c);
    // The session ends and releases the device; the other device's client
    // is served meanwhile, and the device serves the next client.
    assert_eq!(device_info(&mut bystander), region::NUM);
    wait_for("session end", || !server.client_attached());
    let mut c = connect(&path);
    enable_dma(&mut c);
    let status = r32(&mut c, region::BAR0, DMATEST_STATUS).unwrap();
    assert_eq!(status & DMATEST_STATUS_BUSY, 0, "the orphaned DMA ended");
}
