//! The third-party `vfio_user` crate's `Client` (what cloud-hypervisor
//! uses) against the server: negotiation, device and region info, config
//! space, BAR registers, DMA_MAP of a memfd, an mdev-pci pass-through
//! device doing RID DMA into that memfd with its MSI-X interrupt on an
//! eventfd, reset, one client at a time, disconnect and reconnect.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use umdev_devices::dmatest::regs::*;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::vfio_user::*;
use umdev_testkit::{nvme, wait_for};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{EventFd, irq, region};
use vfio_user::Client;

const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 64 << 10;

/// A `Client` whose every call runs under a timeout.
struct Peer(Option<Client>);

impl Peer {
    fn connect(path: &std::path::Path) -> Self {
        let p = path.to_path_buf();
        Self(Some(timed(move || Client::new(&p).unwrap())))
    }

    fn with<R: Send + 'static>(&mut self, f: impl FnOnce(&mut Client) -> R + Send + 'static) -> R {
        let mut c = self.0.take().unwrap();
        let (c, r) = timed(move || {
            let r = f(&mut c);
            (c, r)
        });
        self.0 = Some(c);
        r
    }

    fn r32(&mut self, index: u32, at: u64) -> u32 {
        self.with(move |c| {
            let mut b = [0u8; 4];
            c.region_read(index, at, &mut b).unwrap();
            u32::from_le_bytes(b)
        })
    }

    fn w32(&mut self, index: u32, at: u64, v: u32) {
        self.with(move |c| c.region_write(index, at, &v.to_le_bytes()).unwrap());
    }

    fn disconnect(mut self) {
        let c = self.0.take().unwrap();
        timed(move || c.shutdown().unwrap());
    }
}

/// Programs a COPY of `len` bytes and starts it.
fn copy(peer: &mut Peer, src: u64, dst: u64, len: u32) -> u32 {
    peer.w32(region::BAR0, DMATEST_SRC_LO, src as u32);
    peer.w32(region::BAR0, DMATEST_SRC_HI, (src >> 32) as u32);
    peer.w32(region::BAR0, DMATEST_DST_LO, dst as u32);
    peer.w32(region::BAR0, DMATEST_DST_HI, (dst >> 32) as u32);
    peer.w32(region::BAR0, DMATEST_LEN, len);
    peer.w32(region::BAR0, DMATEST_IRQ_CTRL, 1);
    peer.w32(
        region::BAR0,
        DMATEST_CMD,
        DMATEST_OP_COPY | DMATEST_CMD_START,
    );
    peer.r32(region::BAR0, DMATEST_STATUS)
}

fn enable_bus_master(peer: &mut Peer) {
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    peer.with(move |c| {
        c.region_write(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes())
            .unwrap()
    });
}

#[test]
fn pass_through_mdev_does_rid_dma_into_the_clients_memfd() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio.clone());
    assert!(!server.client_attached());
    assert!(
        vfio.devid().is_none(),
        "bound only while a client is attached"
    );

    // Client::new negotiates VERSION, reads DEVICE_GET_INFO (it insists
    // on the PCI flag) and every region's info.
    let mut peer = Peer::connect(&path);
    wait_for("session", || server.client_attached());
    assert!(vfio.devid().is_some(), "the session bound the device");
    let config_size = peer.with(|c| c.region(region::CONFIG).map(|r| r.size));
    assert!(config_size.unwrap() >= 256);
    let bar0 = peer.with(|c| c.region(region::BAR0).map(|r| (r.size, r.flags)));
    let (bar0_size, bar0_flags) = bar0.unwrap();
    assert!(bar0_size >= DMATEST_REGS_SIZE);
    assert_eq!(bar0_flags & 3, 3, "BAR0 readable and writable");

    // Config space passes through the wrapped function; BAR 0 decodes
    // once memory space is enabled.
    assert_eq!(peer.r32(region::CONFIG, 0), 0x0953_8086);
    enable_bus_master(&mut peer);
    assert_eq!(peer.r32(region::BAR0, DMATEST_ID), DMATEST_ID_VALUE);

    // The client's memory: a memfd mapped at IOVA.
    let mem = memfd(WINDOW);
    let fd = mem.as_raw_fd();
    peer.with(move |c| c.dma_map(0, IOVA, WINDOW, fd).unwrap());
    assert_eq!(server.stats().current.unwrap().dma_maps, 1);

    // MSI-X vector 0 on an eventfd.
    let irq_info = peer.with(|c| c.get_irq_info(irq::MSIX).unwrap());
    assert!(irq_info.count >= 1);
    let efd = EventFd::new().unwrap();
    let raw = efd.as_fd_raw();
    peer.with(move |c| {
        c.set_irqs(irq::MSIX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, &[raw])
            .unwrap()
    });

    let src: Vec<u8> = (0..12345u32).map(|i| (i * 7 % 253) as u8).collect();
    mem.write_all_at(&src, 0).unwrap();
    let status = copy(&mut peer, IOVA, IOVA + 0x8000, src.len() as u32);
    assert_eq!(status, DMATEST_STATUS_DONE);
    let mut dst = vec![0u8; src.len()];
    mem.read_exact_at(&mut dst, 0x8000).unwrap();
    assert_eq!(dst, src, "the device's DMA landed in the client's memfd");
    assert_eq!(efd.take(), 1, "completion interrupt on the eventfd");

    // DMA outside the client's maps faults in the IOMMU.
    let status = copy(&mut peer, IOVA, IOVA + WINDOW, 4096);
    assert_ne!(
        status & DMATEST_STATUS_ERROR,
        0,
        "write past the map refused"
    );
    let status = copy(&mut peer, 0x4000_0000, IOVA, 4096);
    assert_ne!(
        status & DMATEST_STATUS_ERROR,
        0,
        "read of unmapped IOVA refused"
    );

    // Unmapped: the same copy faults now.
    peer.with(|c| c.dma_unmap(IOVA, WINDOW).unwrap());
    assert_eq!(server.stats().current.unwrap().dma_maps, 0);
    let status = copy(&mut peer, IOVA, IOVA + 0x8000, 16);
    assert_ne!(
        status & DMATEST_STATUS_ERROR,
        0,
        "unmapped memory unreachable"
    );
    peer.disconnect();
    server.shutdown();
    assert!(!path.exists(), "shutdown removes the socket");
}

trait RawEventFd {
    fn as_fd_raw(&self) -> i32;
}

impl RawEventFd for EventFd {
    fn as_fd_raw(&self) -> i32 {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}

#[test]
fn disconnect_releases_everything_and_the_next_client_is_served() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio.clone());
    let group = rig.host.system.iommu.device_group(nvme()).unwrap();
    let idle = rig.ctx.memory.placed_bytes();

    let mut peer = Peer::connect(&path);
    wait_for("session", || server.client_attached());
    assert!(!Arc::ptr_eq(&group.domain(), &group.default_domain()));
    // (The session's domain has page tables of its own in host memory.)
    let placed = rig.ctx.memory.placed_bytes();
    let mem = memfd(WINDOW);
    let fd = mem.as_raw_fd();
    peer.with(move |c| c.dma_map(0, IOVA, WINDOW, fd).unwrap());
    assert_eq!(rig.ctx.memory.placed_bytes(), placed + WINDOW);
    let efd = EventFd::new().unwrap();
    let raw = efd.as_fd_raw();
    peer.with(move |c| {
        c.set_irqs(irq::MSIX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, &[raw])
            .unwrap()
    });

    // A second client while the first is attached: refused (its
    // Client::new fails on the EBUSY error reply); the first is untouched.
    let p2 = path.clone();
    let second = timed(move || Client::new(&p2).is_err());
    assert!(second, "second concurrent client refused");
    assert_eq!(server.stats().refused, 1);
    assert_eq!(peer.r32(region::CONFIG, 0), 0x0953_8086);

    // The client goes away without unmapping anything.
    peer.disconnect();
    wait_for("release", || {
        !server.client_attached() && vfio.devid().is_none()
    });
    assert!(
        Arc::ptr_eq(&group.domain(), &group.default_domain()),
        "DMA ownership released"
    );
    assert_eq!(
        rig.ctx.memory.placed_bytes(),
        idle,
        "map memory and the session's page tables released"
    );

    // The next client gets the device, with nothing of the old session:
    // no maps (DMA faults) and no interrupt trigger.
    let mut peer = Peer::connect(&path);
    wait_for("second session", || server.client_attached());
    assert_eq!(server.stats().sessions, 2);
    enable_bus_master(&mut peer);
    let status = copy(&mut peer, IOVA, IOVA + 0x8000, 16);
    assert_ne!(status & DMATEST_STATUS_ERROR, 0, "old maps are gone");
    assert_eq!(efd.take(), 0, "old eventfd no longer signalled");
    peer.disconnect();
}

#[test]
fn mtty_reset_through_the_client() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.mtty();
    let (server, path) = rig.serve("mtty", vfio);
    let mut peer = Peer::connect(&path);
    // The UART scratch register (offset 7 of the port in BAR0) keeps what
    // is written until a reset returns the UART to power-on.
    let scratch = |peer: &mut Peer| {
        peer.with(|c| {
            let mut b = [0u8; 1];
            c.region_read(region::BAR0, 7, &mut b).unwrap();
            b[0]
        })
    };
    peer.with(|c| c.region_write(region::BAR0, 7, &[0x5a]).unwrap());
    assert_eq!(scratch(&mut peer), 0x5a);
    peer.with(|c| c.reset().unwrap());
    assert_eq!(scratch(&mut peer), 0, "DEVICE_RESET reached the device");
    assert_eq!(server.stats().current.unwrap().errors, 0);
    peer.disconnect();
}
