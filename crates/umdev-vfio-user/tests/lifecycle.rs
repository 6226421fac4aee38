//! Server life cycle: a refused bind is an error reply, shutdown with a
//! client attached releases the device, several devices are served at
//! once, and socket paths are handled (live → EADDRINUSE, stale →
//! replaced).

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommufd::Ictx;
use umdev_testkit::vfio_user::*;
use umdev_testkit::{nvme, wait_for};
use umdev_vfio::device::region;
use umdev_vfio_user::proto::{Command, Limits, wire};
use umdev_vfio_user::transport::recv_message;
use umdev_vfio_user::{Server, ServerError};
use zerocopy::IntoBytes;

fn version_payload() -> Vec<u8> {
    let mut v = wire::Version { major: 0, minor: 0 }.as_bytes().to_vec();
    v.push(0);
    v
}

fn config_dword(c: &mut RawClient) -> u32 {
    let p = wire::RegionAccess {
        offset: 0,
        region: region::CONFIG,
        count: 4,
    };
    let m = c.call(Command::REGION_READ.0, p.as_bytes(), &[]);
    assert_eq!(RawClient::errno(&m), 0);
    u32::from_le_bytes(m.payload[16..20].try_into().unwrap())
}

#[test]
fn a_refused_bind_is_an_error_reply_and_the_server_goes_on() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio.clone());
    // Someone else holds the device.
    let other = Ictx::new(rig.host.system.iommu.clone());
    vfio.bind_iommufd(&other).unwrap();
    let mut c = RawClient::connect(&path);
    let m = c.call(Command::VERSION.0, &version_payload(), &[]);
    assert_eq!(RawClient::errno(&m), Errno::BUSY.raw_os_error() as u32);
    let end = recv_message(c.stream.as_fd(), &Limits::DEFAULT).unwrap();
    assert!(end.is_none(), "then the connection is closed");
    assert_eq!(server.stats().refused, 1);
    // Released: the next client is served.
    vfio.unbind().unwrap();
    let mut c = RawClient::connect(&path);
    let m = c.call(Command::VERSION.0, &version_payload(), &[]);
    assert_eq!(RawClient::errno(&m), 0);
    assert_eq!(config_dword(&mut c), 0x0953_8086);
}

#[test]
fn shutdown_with_a_client_attached_releases_the_device() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio.clone());
    let group = rig.host.system.iommu.device_group(nvme()).unwrap();
    let mut c = RawClient::connect(&path);
    assert_eq!(config_dword(&mut c), 0x0953_8086);
    let map = wire::DmaMap {
        argsz: 32,
        flags: 3,
        offset: 0,
        addr: 0x10_0000,
        size: 0x1_0000,
    };
    let fd = std::os::fd::OwnedFd::from(memfd(0x1_0000));
    let m = c.call(Command::DMA_MAP.0, map.as_bytes(), &[fd]);
    assert_eq!(RawClient::errno(&m), 0);
    assert!(server.client_attached());
    server.shutdown();
    assert!(!server.client_attached());
    assert!(vfio.devid().is_none(), "unbound");
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    assert!(!path.exists(), "socket removed");
    let end = recv_message(c.stream.as_fd(), &Limits::DEFAULT).unwrap();
    assert!(end.is_none(), "the client sees the end of the stream");
    server.shutdown();
}

#[test]
fn several_devices_are_served_at_once() {
    let rig = Rig::new();
    let (_m1, nvme_dev) = rig.pass_through();
    let (_m2, mtty_dev) = rig.mtty();
    let (s1, p1) = rig.serve("nvme", nvme_dev);
    let (s2, p2) = rig.serve("mtty", mtty_dev);
    let mut a = RawClient::connect(&p1);
    let mut b = RawClient::connect(&p2);
    for _ in 0..3 {
        assert_eq!(config_dword(&mut a), 0x0953_8086);
        assert_ne!(config_dword(&mut b), 0x0953_8086);
    }
    assert!(s1.client_attached() && s2.client_attached());
    assert_eq!(s1.stats().current.unwrap().messages, 3);
}

#[test]
fn socket_paths_live_and_stale() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.mtty();
    let (server, path) = rig.serve("mtty", vfio.clone());
    let e = Server::serve(&rig.ctx, &path, vfio.clone()).unwrap_err();
    assert!(matches!(e, ServerError::InUse { .. }));
    assert_eq!(e.errno(), Errno::ADDRINUSE);
    server.shutdown();
    // A socket file nobody listens on any more is replaced.
    let stale = rig.sock("stale");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let h = Server::serve(&rig.ctx, &stale, vfio).unwrap();
    let mut c = RawClient::connect(&stale);
    assert_ne!(config_dword(&mut c), 0);
    drop(h);
    assert!(!stale.exists());
    // Not a socket: refused, and the file is left alone.
    let file = rig.sock("file");
    std::fs::write(&file, b"keep").unwrap();
    let (_mdev2, other) = rig.pass_through();
    let e = Server::serve(&rig.ctx, &file, other).unwrap_err();
    assert_eq!(e.errno(), Errno::ADDRINUSE);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}

/// A session that ends (here on a foreign VERSION major) while its client
/// still floods commands: the reader, blocked on the full command queue,
/// is released and the device is free for the next client.
#[test]
fn a_session_ending_under_a_flood_releases_the_device() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.mtty();
    let (server, path) = rig.serve("mtty", vfio.clone());
    let mut c = RawClient::connect(&path);
    let bad = wire::Version { major: 7, minor: 0 };
    c.send(
        Command::VERSION.0,
        umdev_vfio_user::proto::flags::TYPE_COMMAND,
        bad.as_bytes(),
        &[],
    );
    let read = wire::RegionAccess {
        offset: 0,
        region: region::CONFIG,
        count: 4,
    };
    // The server may hang up mid-flood: send errors are expected.
    let mut payload = wire::Header {
        msg_id: 1,
        cmd: Command::REGION_READ.0,
        msg_size: 32,
        flags: 0,
        error_no: 0,
    }
    .as_bytes()
    .to_vec();
    payload.extend_from_slice(read.as_bytes());
    let flood = payload.repeat(2 * umdev_vfio_user::session::QUEUE_DEPTH);
    let _ = std::io::Write::write_all(&mut c.stream, &flood);
    wait_for("session end", || {
        server.stats().sessions == 1 && !server.client_attached() && vfio.devid().is_none()
    });
    let mut next = RawClient::connect(&path);
    assert_ne!(config_dword(&mut next), 0);
}
