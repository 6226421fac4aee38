//! A hand-written client for what the third-party one cannot do:
//! message-based DMA (DMA_MAP without an fd, the server's DMA_READ /
//! DMA_WRITE answered while a REGION_WRITE is in flight, split by the
//! client's max_data_xfer_size), posted writes, pipelined commands with
//! reused ids, REGION_WRITE_MULTI and DMA logging.

use std::os::unix::fs::FileExt;

use umdev_devices::dmatest::regs::*;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::vfio_user::*;
use umdev_testkit::wait_for;
use umdev_vfio::device::region;
use umdev_vfio_user::proto::{Command, flags, wire};
use zerocopy::{FromBytes, IntoBytes};

const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 64 << 10;

fn version(c: &mut RawClient, json: &str) -> serde_json::Value {
    let mut p = wire::Version { major: 0, minor: 2 }.as_bytes().to_vec();
    p.extend_from_slice(json.as_bytes());
    p.push(0);
    let m = c.call(Command::VERSION.0, &p, &[]);
    assert_eq!(RawClient::errno(&m), 0);
    let v = wire::Version::read_from_prefix(&m.payload).unwrap().0;
    assert_eq!(({ v.major }, { v.minor }), (0, 2));
    let text = &m.payload[4..m.payload.len() - 1];
    serde_json::from_slice(text).unwrap()
}

fn access(region: u32, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut p = wire::RegionAccess {
        offset,
        region,
        count: data.len() as u32,
    }
    .as_bytes()
    .to_vec();
    p.extend_from_slice(data);
    p
}

fn w32(c: &mut RawClient, at: u64, v: u32) {
    let m = c.call(
        Command::REGION_WRITE.0,
        &access(region::BAR0, at, &v.to_le_bytes()),
        &[],
    );
    assert_eq!(RawClient::errno(&m), 0);
}

fn read_payload(region: u32, offset: u64, count: u32) -> Vec<u8> {
    wire::RegionAccess {
        offset,
        region,
        count,
    }
    .as_bytes()
    .to_vec()
}

fn r32(c: &mut RawClient, at: u64) -> u32 {
    let m = c.call(
        Command::REGION_READ.0,
        &read_payload(region::BAR0, at, 4),
        &[],
    );
    assert_eq!(RawClient::errno(&m), 0);
    u32::from_le_bytes(m.payload[16..20].try_into().unwrap())
}

fn enable(c: &mut RawClient) {
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    let p = access(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes());
    let m = c.call(Command::REGION_WRITE.0, &p, &[]);
    assert_eq!(RawClient::errno(&m), 0);
}

fn dma_map(
    c: &mut RawClient,
    mflags: u32,
    addr: u64,
    size: u64,
    fd: Option<std::os::fd::OwnedFd>,
) -> u32 {
    let p = wire::DmaMap {
        argsz: 32,
        flags: mflags,
        offset: 0,
        addr,
        size,
    };
    let fds: Vec<_> = fd.into_iter().collect();
    RawClient::errno(&c.call(Command::DMA_MAP.0, p.as_bytes(), &fds))
}

fn program(c: &mut RawClient, src: u64, dst: u64, len: u32) {
    w32(c, DMATEST_SRC_LO, src as u32);
    w32(c, DMATEST_SRC_HI, (src >> 32) as u32);
    w32(c, DMATEST_DST_LO, dst as u32);
    w32(c, DMATEST_DST_HI, (dst >> 32) as u32);
    w32(c, DMATEST_LEN, len);
}

/// Starts the programmed copy with a REGION_WRITE and serves the server's
/// DMA_READ / DMA_WRITE from `guest` (at IOVA) until that write's reply.
fn start_and_serve(c: &mut RawClient, guest: &mut [u8], max_xfer: u64) -> DmaLog {
    let go = (DMATEST_OP_COPY | DMATEST_CMD_START).to_le_bytes();
    let id = c.send(
        Command::REGION_WRITE.0,
        flags::TYPE_COMMAND,
        &access(region::BAR0, DMATEST_CMD, &go),
        &[],
    );
    let (m, log) = c.serve_dma_until(id, guest, IOVA, max_xfer);
    assert_eq!(RawClient::errno(&m), 0);
    log
}

#[test]
fn message_based_dma_is_split_by_the_clients_max_data_xfer_size() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    version(
        &mut c,
        r#"{"capabilities":{"max_msg_fds":1,"max_data_xfer_size":1024}}"#,
    );
    // No fd: the memory stays in this process.
    assert_eq!(dma_map(&mut c, 3, IOVA, WINDOW, None), 0);
    let mut guest = vec![0u8; WINDOW as usize];
    let src: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    guest[..src.len()].copy_from_slice(&src);
    enable(&mut c);
    program(&mut c, IOVA, IOVA + 0x8000, src.len() as u32);
    let log = start_and_serve(&mut c, &mut guest, 1024);
    assert_eq!(r32(&mut c, DMATEST_STATUS), DMATEST_STATUS_DONE);
    assert_eq!(&guest[0x8000..0x8000 + src.len()], &src[..]);
    // The engine moves 4 KiB chunks: 4096 + 904 bytes, each split into
    // pieces of at most 1024.
    assert_eq!(log.reads, [1024, 1024, 1024, 1024, 904]);
    assert_eq!(log.writes, [1024, 1024, 1024, 1024, 904]);

    // Unmapped: the reply echoes the request and the device's DMA faults
    // without a single message to the client.
    let u = wire::DmaUnmap {
        argsz: 24,
        flags: 0,
        addr: IOVA,
        size: WINDOW,
    };
    let m = c.call(Command::DMA_UNMAP.0, u.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&m), 0);
    assert_eq!(m.payload, u.as_bytes());
    program(&mut c, IOVA, IOVA + 0x8000, 16);
    let log = start_and_serve(&mut c, &mut guest, 1024);
    assert!(log.reads.is_empty() && log.writes.is_empty());
    assert_ne!(r32(&mut c, DMATEST_STATUS) & DMATEST_STATUS_ERROR, 0);
}

#[test]
fn fd_and_fdless_maps_coexist_and_read_only_maps_are_honoured() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    version(&mut c, "");
    let mem = memfd(WINDOW);
    let src = vec![0xa5u8; 8192];
    mem.write_all_at(&src, 0).unwrap();
    // Read-only memfd map at IOVA, writable message-based map above it.
    let fd = std::os::fd::OwnedFd::from(mem.try_clone().unwrap());
    assert_eq!(
        dma_map(&mut c, flags::DMA_MAP_READ, IOVA, WINDOW, Some(fd)),
        0
    );
    assert_eq!(dma_map(&mut c, 3, IOVA + WINDOW, WINDOW, None), 0);
    // Overlap: EEXIST.
    let errno = dma_map(&mut c, 3, IOVA + 0x1000, 0x1000, None);
    assert_eq!(errno, rustix::io::Errno::EXIST.raw_os_error() as u32);
    enable(&mut c);
    let mut guest = vec![0u8; 2 * WINDOW as usize];
    // memfd → message memory.
    program(&mut c, IOVA, IOVA + WINDOW, 8192);
    let log = start_and_serve(&mut c, &mut guest, 1 << 20);
    assert!(log.reads.is_empty(), "the source is read through the fd");
    assert_eq!(log.writes, [4096, 4096]);
    assert_eq!(r32(&mut c, DMATEST_STATUS), DMATEST_STATUS_DONE);
    assert_eq!(&guest[WINDOW as usize..][..8192], &src[..]);
    // Into the read-only map: the IOMMU refuses the write.
    program(&mut c, IOVA + WINDOW, IOVA + 0x4000, 4096);
    start_and_serve(&mut c, &mut guest, 1 << 20);
    let status = r32(&mut c, DMATEST_STATUS);
    assert_ne!(
        status & DMATEST_STATUS_ERROR,
        0,
        "read-only map not writable"
    );
    let mut back = vec![0u8; 4096];
    mem.read_exact_at(&mut back, 0x4000).unwrap();
    assert!(back.iter().all(|&b| b == 0));
    // UNMAP_ALL takes both.
    let u = wire::DmaUnmap {
        argsz: 24,
        flags: flags::DMA_UNMAP_ALL,
        addr: 0,
        size: 0,
    };
    let m = c.call(Command::DMA_UNMAP.0, u.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&m), 0);
    assert_eq!(dma_map(&mut c, 3, IOVA + 0x1000, 0x1000, None), 0);
    // Message-based maps cost page tables only, but not without bound.
    let huge = umdev_vfio_user::session::MAX_REMOTE_BYTES;
    let errno = dma_map(&mut c, 3, 1 << 40, huge, None);
    assert_eq!(errno, rustix::io::Errno::NOMEM.raw_os_error() as u32);
}

#[test]
fn posted_writes_get_no_reply_and_pipelined_replies_come_in_order() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    let caps = version(
        &mut c,
        r#"{"capabilities":{"write_multiple":true,"migration":{"pgsize":4096}}}"#,
    );
    assert_eq!(caps["capabilities"]["write_multiple"], true);
    assert!(caps["capabilities"].get("migration").is_none());
    enable(&mut c);
    // Posted (NO_REPLY) writes, then three reads with one reused id: the
    // first message back is the first read's reply.
    for (reg, v) in [
        (DMATEST_SRC_LO, 0x1111u32),
        (DMATEST_DST_LO, 0x2222),
        (DMATEST_LEN, 0x33),
    ] {
        c.send(
            Command::REGION_WRITE.0,
            flags::TYPE_COMMAND | flags::NO_REPLY,
            &access(region::BAR0, reg, &v.to_le_bytes()),
            &[],
        );
    }
    // A failing posted write: no reply either.
    c.send(
        Command::REGION_WRITE.0,
        flags::TYPE_COMMAND | flags::NO_REPLY,
        &access(99, 0, &[1]),
        &[],
    );
    for reg in [DMATEST_SRC_LO, DMATEST_DST_LO, DMATEST_LEN] {
        c.send_with_id(
            7,
            Command::REGION_READ.0,
            flags::TYPE_COMMAND,
            &read_payload(region::BAR0, reg, 4),
            &[],
        );
    }
    let got: Vec<u32> = (0..3)
        .map(|_| {
            let m = c.recv();
            assert_eq!(
                ({ m.header.msg_id }, { m.header.cmd }),
                (7, Command::REGION_READ.0)
            );
            u32::from_le_bytes(m.payload[16..20].try_into().unwrap())
        })
        .collect();
    assert_eq!(got, [0x1111, 0x2222, 0x33]);

    // REGION_WRITE_MULTI: two 4-byte writes in one message.
    let entries = [
        (DMATEST_FILL_LO, 0xdead_beefu32),
        (DMATEST_FILL_HI, 0x0bad_f00d),
    ];
    let mut p = (entries.len() as u64).to_le_bytes().to_vec();
    for (reg, v) in entries {
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&v.to_le_bytes());
        let e = wire::WriteMultiEntry {
            offset: reg,
            region: region::BAR0,
            count: 4,
            data,
        };
        p.extend_from_slice(e.as_bytes());
    }
    let m = c.call(Command::REGION_WRITE_MULTI.0, &p, &[]);
    assert_eq!(m.payload, 2u64.to_le_bytes());
    assert_eq!(r32(&mut c, DMATEST_FILL_LO), 0xdead_beef);
    assert_eq!(r32(&mut c, DMATEST_FILL_HI), 0x0bad_f00d);
}

#[test]
fn dma_logging_reports_the_pages_the_device_wrote() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    version(&mut c, "");
    let mem = memfd(WINDOW);
    let fd = std::os::fd::OwnedFd::from(mem.try_clone().unwrap());
    assert_eq!(dma_map(&mut c, 3, IOVA, WINDOW, Some(fd)), 0);
    let feature = |f: u32| flags::FEATURE_SET | f;
    // PROBE, then START with no ranges (everything).
    let probe = wire::DeviceFeature {
        argsz: 8,
        flags: feature(flags::FEATURE_DMA_LOGGING_START) | flags::FEATURE_PROBE,
    };
    let m = c.call(Command::DEVICE_FEATURE.0, probe.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&m), 0);
    let mut start = wire::DeviceFeature {
        argsz: 24,
        flags: feature(flags::FEATURE_DMA_LOGGING_START),
    }
    .as_bytes()
    .to_vec();
    start.extend_from_slice(
        wire::DmaLoggingControl {
            page_size: 4096,
            num_ranges: 0,
            reserved: 0,
        }
        .as_bytes(),
    );
    let m = c.call(Command::DEVICE_FEATURE.0, &start, &[]);
    assert_eq!(RawClient::errno(&m), 0);
    assert_eq!(m.payload, start, "SET echoes the request");

    // The device writes pages 2 and 3 of the map.
    enable(&mut c);
    program(&mut c, IOVA, IOVA + 0x2000, 0x2000);
    let mut none = [];
    start_and_serve(&mut c, &mut none, 0);
    assert_eq!(r32(&mut c, DMATEST_STATUS), DMATEST_STATUS_DONE);

    let mut report = wire::DeviceFeature {
        argsz: 8 + 24 + 8,
        flags: flags::FEATURE_GET | flags::FEATURE_DMA_LOGGING_REPORT,
    }
    .as_bytes()
    .to_vec();
    let r = wire::DmaLoggingReport {
        iova: IOVA,
        length: WINDOW,
        page_size: 4096,
    };
    report.extend_from_slice(r.as_bytes());
    let m = c.call(Command::DEVICE_FEATURE.0, &report, &[]);
    assert_eq!(RawClient::errno(&m), 0);
    let bits = u64::from_le_bytes(m.payload[32..40].try_into().unwrap());
    assert_eq!(bits, 0b1100, "pages 2 and 3 dirty, the source pages clean");
    // Read and cleared.
    let m = c.call(Command::DEVICE_FEATURE.0, &report, &[]);
    assert_eq!(u64::from_le_bytes(m.payload[32..40].try_into().unwrap()), 0);

    // Dirty again, then an unmap that returns the bitmap.
    program(&mut c, IOVA, IOVA + 0x8000, 0x1000);
    start_and_serve(&mut c, &mut none, 0);
    let mut u = wire::DmaUnmap {
        argsz: 24 + 16 + 8,
        flags: flags::DMA_UNMAP_GET_DIRTY_BITMAP,
        addr: IOVA,
        size: WINDOW,
    }
    .as_bytes()
    .to_vec();
    u.extend_from_slice(
        wire::DirtyBitmap {
            pgsize: 4096,
            size: 8,
        }
        .as_bytes(),
    );
    let m = c.call(Command::DMA_UNMAP.0, &u, &[]);
    assert_eq!(RawClient::errno(&m), 0);
    assert_eq!(m.payload.len(), 24 + 16 + 8);
    assert_eq!(
        u64::from_le_bytes(m.payload[40..48].try_into().unwrap()),
        1 << 8
    );

    // STOP; then a dirty-bitmap unmap is EINVAL.
    let stop = wire::DeviceFeature {
        argsz: 8,
        flags: feature(flags::FEATURE_DMA_LOGGING_STOP),
    };
    assert_eq!(
        RawClient::errno(&c.call(Command::DEVICE_FEATURE.0, stop.as_bytes(), &[])),
        0
    );
    let mem2 = memfd(WINDOW);
    let fd = std::os::fd::OwnedFd::from(mem2);
    assert_eq!(dma_map(&mut c, 3, IOVA, WINDOW, Some(fd)), 0);
    let m = c.call(Command::DMA_UNMAP.0, &u, &[]);
    assert_eq!(
        RawClient::errno(&m),
        rustix::io::Errno::INVAL.raw_os_error() as u32
    );
}

/// Two DMA_MAPs sent back to back, only the second with an fd: the fd
/// stays with its own message (one header per recvmsg), so the first map
/// is message-based and the second fd-backed.
#[test]
fn pipelined_maps_keep_their_fds() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    version(&mut c, "");
    let mem = memfd(WINDOW);
    let map = |addr: u64| wire::DmaMap {
        argsz: 32,
        flags: 3,
        offset: 0,
        addr,
        size: WINDOW,
    };
    let fd = std::os::fd::OwnedFd::from(mem.try_clone().unwrap());
    let a = c.send(
        Command::DMA_MAP.0,
        flags::TYPE_COMMAND,
        map(IOVA).as_bytes(),
        &[],
    );
    let b = c.send(
        Command::DMA_MAP.0,
        flags::TYPE_COMMAND,
        map(IOVA + WINDOW).as_bytes(),
        &[fd],
    );
    for id in [a, b] {
        let m = c.recv();
        assert_eq!(({ m.header.msg_id }, RawClient::errno(&m)), (id, 0));
    }
    enable(&mut c);
    let mut guest = vec![0u8; WINDOW as usize];
    guest[..4096].fill(0x3c);
    program(&mut c, IOVA, IOVA + WINDOW, 4096);
    let log = start_and_serve(&mut c, &mut guest, 1 << 20);
    assert_eq!(r32(&mut c, DMATEST_STATUS), DMATEST_STATUS_DONE);
    assert_eq!(log.reads, [4096], "the first map is message-based");
    assert!(log.writes.is_empty(), "the second is the memfd");
    let mut back = vec![0u8; 4096];
    mem.read_exact_at(&mut back, 0).unwrap();
    assert!(back.iter().all(|&x| x == 0x3c));
}

/// VERSION as the real peers send it (§5 of the reference): QEMU 0.0 with
/// its full JSON, the Rust client's 0.1, SPDK's without any JSON; the
/// reply's minor is the client's when lower, and a foreign major is
/// refused and ends the connection.
#[test]
fn version_variants_of_real_peers() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.mtty();
    let (server, path) = rig.serve("mtty", vfio);
    let qemu = r#"{"capabilities": {"pgsizes": 4096, "max_msg_fds": 16, "max_dma_maps": 65535, "max_data_xfer_size": 1048576, "migration": {"max_bitmap_size": 268435456, "pgsize": 4096}, "write_multiple": true}}"#;
    let rust = r#"{"capabilities":{"max_msg_fds":1,"max_data_xfer_size":1048576,"migration":{"pgsize":4096}}}"#;
    for (minor, json, want_minor) in [(0u16, Some(qemu), 0u16), (1, Some(rust), 1), (3, None, 2)] {
        let mut c = RawClient::connect(&path);
        let mut p = wire::Version { major: 0, minor }.as_bytes().to_vec();
        if let Some(j) = json {
            p.extend_from_slice(j.as_bytes());
            p.push(0);
        }
        let m = c.call(Command::VERSION.0, &p, &[]);
        assert_eq!(RawClient::errno(&m), 0);
        let v = wire::Version::read_from_prefix(&m.payload).unwrap().0;
        assert_eq!(({ v.major }, { v.minor }), (0, want_minor));
        let caps: serde_json::Value =
            serde_json::from_slice(&m.payload[4..m.payload.len() - 1]).unwrap();
        assert!(caps["capabilities"].get("migration").is_none());
        assert!(caps["capabilities"]["max_msg_fds"].as_u64().unwrap() <= 16);
        drop(c);
        wait_for("release", || !server.client_attached());
    }
    let mut c = RawClient::connect(&path);
    let p = wire::Version { major: 1, minor: 0 }.as_bytes().to_vec();
    let m = c.call(Command::VERSION.0, &p, &[]);
    assert_eq!(
        RawClient::errno(&m),
        rustix::io::Errno::INVAL.raw_os_error() as u32
    );
    let end = umdev_vfio_user::transport::recv_message(
        std::os::fd::AsFd::as_fd(&c.stream),
        &umdev_vfio_user::proto::Limits::DEFAULT,
    )
    .unwrap();
    assert!(end.is_none(), "the session ends after a foreign major");
}

/// SET_IRQS over the socket: an eventfd passed with SCM_RIGHTS is the one
/// the device signals (loopback DATA_NONE / DATA_BOOL triggers reach it),
/// QEMU's disable-all (DATA_NONE|TRIGGER, start = count = 0) drops it, and
/// a wrong fd count is EINVAL.
#[test]
fn set_irqs_passes_eventfds_and_disables_all() {
    use umdev_vfio::device::irq;
    use umdev_vfio::device::irq_set_flags::*;
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut c = RawClient::connect(&path);
    version(&mut c, "");
    let set =
        |c: &mut RawClient, f: u32, count: u32, data: &[u8], fds: Vec<std::os::fd::OwnedFd>| {
            let mut p = wire::IrqSet {
                argsz: 20 + data.len() as u32,
                flags: f,
                index: irq::MSIX,
                start: 0,
                count,
            }
            .as_bytes()
            .to_vec();
            p.extend_from_slice(data);
            RawClient::errno(&c.call(Command::DEVICE_SET_IRQS.0, &p, &fds))
        };
    let efd = umdev_vfio::device::EventFd::new().unwrap();
    let dup = std::os::fd::AsFd::as_fd(&efd).try_clone_to_owned().unwrap();
    assert_eq!(
        set(&mut c, DATA_EVENTFD | ACTION_TRIGGER, 1, &[], vec![dup]),
        0
    );
    assert_eq!(set(&mut c, DATA_NONE | ACTION_TRIGGER, 1, &[], vec![]), 0);
    assert_eq!(efd.take(), 1, "loopback reached the passed eventfd");
    assert_eq!(set(&mut c, DATA_BOOL | ACTION_TRIGGER, 1, &[0], vec![]), 0);
    assert_eq!(efd.take(), 0);
    assert_eq!(set(&mut c, DATA_BOOL | ACTION_TRIGGER, 1, &[1], vec![]), 0);
    assert_eq!(efd.take(), 1);
    // Two fds for one vector.
    let two = vec![
        std::os::fd::OwnedFd::from(memfd(4096)),
        std::os::fd::OwnedFd::from(memfd(4096)),
    ];
    let einval = rustix::io::Errno::INVAL.raw_os_error() as u32;
    assert_eq!(
        set(&mut c, DATA_EVENTFD | ACTION_TRIGGER, 1, &[], two),
        einval
    );
    // Disable all: the eventfd is no longer signalled.
    assert_eq!(set(&mut c, DATA_NONE | ACTION_TRIGGER, 0, &[], vec![]), 0);
    let _ = set(&mut c, DATA_NONE | ACTION_TRIGGER, 1, &[], vec![]);
    assert_eq!(efd.take(), 0, "disabled");
}

/// A sealable memfd passed with DMA_MAP can no longer shrink under the
/// server's mapping; one too short for the map is refused outright.
#[test]
fn mapped_memfds_cannot_shrink() {
    use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
    let rig = Rig::new();
    let (_mdev, vfio) = rig.mtty();
    let (_server, path) = rig.serve("mtty", vfio);
    let mut c = RawClient::connect(&path);
    version(&mut c, "");
    let fd = memfd_create("g", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    ftruncate(&fd, WINDOW).unwrap();
    let mine = fd.try_clone().unwrap();
    assert_eq!(dma_map(&mut c, 3, IOVA, WINDOW, Some(fd)), 0);
    assert_eq!(ftruncate(&mine, 4096), Err(rustix::io::Errno::PERM));
    let short = std::os::fd::OwnedFd::from(memfd(4096));
    let einval = rustix::io::Errno::INVAL.raw_os_error() as u32;
    assert_eq!(
        dma_map(&mut c, 3, IOVA + WINDOW, WINDOW, Some(short)),
        einval
    );
}
