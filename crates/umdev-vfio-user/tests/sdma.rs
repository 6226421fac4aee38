//! An sdma mdev (one work queue of the DMA engine, isolated by PASID)
//! served to the third-party `vfio_user` Client: the client maps a memfd,
//! programs the queue through BAR0, posts a memmove descriptor in the ring
//! that lives in its memfd, rings the doorbell; the result and the
//! completion record appear in the memfd and the completion interrupt on
//! the client's MSI-X eventfd.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{COMPLETION_SIZE, Descriptor};
use umdev_pci::Bdf;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::vfio_user::*;
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{EventFd, irq, region};
use umdev_vfio::mdev::Mdev;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio_user::proto::{Command, flags, wire};
use vfio_user::Client;
use zerocopy::IntoBytes;

const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 256 << 10;
const RING: u64 = IOVA;
const SLOTS: u32 = 16;
const CR: u64 = IOVA + 0x1000;
const DATA: u64 = IOVA + 0x4000;

fn engine() -> Bdf {
    "0000:01:00.0".parse().unwrap()
}

fn sdma_mdev(rig: &Rig) -> (Arc<Mdev>, Arc<VfioDevice>) {
    let parent = rig.host.sdma.parent(engine()).unwrap();
    let t = parent.mdev_type("idxd-wq").unwrap();
    let mdev = t
        .create("5d4a0000-0000-4000-8000-000000000001".parse().unwrap())
        .unwrap();
    let vfio = mdev.registration().unwrap();
    (mdev, vfio)
}

fn call<R: Send + 'static>(
    c: Client,
    f: impl FnOnce(&mut Client) -> R + Send + 'static,
) -> (Client, R) {
    timed(move || {
        let mut c = c;
        let r = f(&mut c);
        (c, r)
    })
}

fn w(c: Client, index: u32, at: u64, data: Vec<u8>) -> Client {
    call(c, move |c| c.region_write(index, at, &data).unwrap()).0
}

fn r32(c: Client, at: u64) -> (Client, u32) {
    call(c, move |c| {
        let mut b = [0u8; 4];
        c.region_read(region::BAR0, at, &mut b).unwrap();
        u32::from_le_bytes(b)
    })
}

#[test]
fn sdma_memmove_posted_through_the_ring_lands_in_the_memfd() {
    let rig = Rig::new();
    let (_mdev, vfio) = sdma_mdev(&rig);
    let (server, path) = rig.serve("sdma", vfio);
    let c = timed(move || Client::new(&path).unwrap());

    let mem = memfd(WINDOW);
    let fd = mem.as_raw_fd();
    let (c, ()) = call(c, move |c| c.dma_map(0, IOVA, WINDOW, fd).unwrap());
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    let c = w(
        c,
        region::CONFIG,
        u64::from(PCI_COMMAND),
        cmd.to_le_bytes().to_vec(),
    );
    let efd = EventFd::new().unwrap();
    let raw = efd.as_fd().as_raw_fd();
    let (c, ()) = call(c, move |c| {
        c.set_irqs(irq::MSIX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, &[raw])
            .unwrap()
    });
    let c = w(c, region::BAR0, WQ_RING_BASE, RING.to_le_bytes().to_vec());
    let c = w(c, region::BAR0, WQ_RING_SIZE, SLOTS.to_le_bytes().to_vec());
    let c = w(
        c,
        region::BAR0,
        WQ_INT_CTRL,
        INT_ENABLE.to_le_bytes().to_vec(),
    );
    let c = w(c, region::BAR0, WQ_CTRL, CTRL_ENABLE.to_le_bytes().to_vec());
    let (c, status) = r32(c, WQ_STATUS);
    assert_eq!(status & STATUS_ENABLED, STATUS_ENABLED);

    // The descriptor goes into the ring in the client's own memory; the
    // doorbell is a BAR0 write through the socket.
    let src: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 241) as u8).collect();
    mem.write_all_at(&src, DATA - IOVA).unwrap();
    let desc = Descriptor::memmove(DATA, DATA + 0x4000, src.len() as u32).with_completion(CR, true);
    mem.write_all_at(&desc.encode(), RING - IOVA).unwrap();
    let (c, tail) = r32(c, WQ_TAIL);
    assert_eq!(tail, 0);
    let c = w(c, region::BAR0, WQ_TAIL, 1u32.to_le_bytes().to_vec());

    let mut dst = vec![0u8; src.len()];
    mem.read_exact_at(&mut dst, DATA + 0x4000 - IOVA).unwrap();
    assert_eq!(dst, src, "the memmove's result is in the memfd");
    let mut cr = [0u8; COMPLETION_SIZE];
    mem.read_exact_at(&mut cr, CR - IOVA).unwrap();
    assert_eq!(cr[0], 1, "completion record: success");
    assert_eq!(u32::from_le_bytes(cr[4..8].try_into().unwrap()), 5000);
    assert_eq!(efd.take(), 1, "completion interrupt on the eventfd");
    let (c, head) = r32(c, WQ_HEAD);
    assert_eq!(head, 1);
    assert_eq!(server.stats().current.unwrap().errors, 0);
    timed(move || c.shutdown().unwrap());
}

/// Through message-based DMA: the client shares no fd, so the engine
/// fetches the descriptor from the ring with DMA_READ and writes the fill
/// and the completion record with DMA_WRITE messages of at most the
/// client's 1024 bytes, all while the client waits for the reply to its
/// doorbell write.
#[test]
fn sdma_fill_through_message_based_dma() {
    let rig = Rig::new();
    let (_mdev, vfio) = sdma_mdev(&rig);
    let (_server, path) = rig.serve("sdma", vfio);
    let mut c = RawClient::connect(&path);
    let mut v = wire::Version { major: 0, minor: 0 }.as_bytes().to_vec();
    v.extend_from_slice(b"{\"capabilities\":{\"max_data_xfer_size\":1024}}\0");
    assert_eq!(RawClient::errno(&c.call(Command::VERSION.0, &v, &[])), 0);
    let map = wire::DmaMap {
        argsz: 32,
        flags: 3,
        offset: 0,
        addr: IOVA,
        size: WINDOW,
    };
    assert_eq!(
        RawClient::errno(&c.call(Command::DMA_MAP.0, map.as_bytes(), &[])),
        0
    );
    let write = |c: &mut RawClient, index: u32, at: u64, data: &[u8]| {
        let mut p = wire::RegionAccess {
            offset: at,
            region: index,
            count: data.len() as u32,
        }
        .as_bytes()
        .to_vec();
        p.extend_from_slice(data);
        c.send(Command::REGION_WRITE.0, flags::TYPE_COMMAND, &p, &[])
    };
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    let mut guest = vec![0u8; WINDOW as usize];
    for (index, at, data) in [
        (
            region::CONFIG,
            u64::from(PCI_COMMAND),
            cmd.to_le_bytes().to_vec(),
        ),
        (region::BAR0, WQ_RING_BASE, RING.to_le_bytes().to_vec()),
        (region::BAR0, WQ_RING_SIZE, SLOTS.to_le_bytes().to_vec()),
        (region::BAR0, WQ_CTRL, CTRL_ENABLE.to_le_bytes().to_vec()),
    ] {
        let id = write(&mut c, index, at, &data);
        let (m, log) = c.serve_dma_until(id, &mut guest, IOVA, 1024);
        assert_eq!(RawClient::errno(&m), 0);
        assert!(log.reads.is_empty() && log.writes.is_empty());
    }
    let pattern = 0x0807_0605_0403_0201u64;
    let desc = Descriptor::fill(DATA, pattern, 3000).with_completion(CR, false);
    guest[..64].copy_from_slice(&desc.encode());
    let id = write(&mut c, region::BAR0, WQ_TAIL, &1u32.to_le_bytes());
    let (m, log) = c.serve_dma_until(id, &mut guest, IOVA, 1024);
    assert_eq!(RawClient::errno(&m), 0);
    let data = (DATA - IOVA) as usize;
    let filled = &guest[data..data + 3000];
    assert!(
        filled
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 8) as u8 + 1),
        "the fill is in the client's memory"
    );
    assert_eq!(guest[data + 3000], 0, "and not beyond");
    let cr = (CR - IOVA) as usize;
    assert_eq!(guest[cr], 1, "completion record written by DMA_WRITE");
    assert_eq!(
        u32::from_le_bytes(guest[cr + 4..cr + 8].try_into().unwrap()),
        3000
    );
    // The descriptor fetch, then the fill and the record, each piece at
    // most 1024 bytes.
    assert_eq!(log.reads, [64]);
    assert_eq!(
        log.writes.iter().sum::<u64>(),
        3000 + COMPLETION_SIZE as u64
    );
    assert!(log.writes.len() >= 4);

    // A memmove of the fill to a distant buffer, then one overlapping
    // itself upwards: both through DMA_READ / DMA_WRITE messages, with
    // memmove's semantics kept across the bounce chunks.
    let far = DATA + 0x8000;
    for (slot, src, dst, len) in [(1u32, DATA, far, 3000u32), (2, far, far + 5, 3000)] {
        let desc = Descriptor::memmove(src, dst, len).with_completion(CR, false);
        let at = slot as usize * 64;
        guest[at..at + 64].copy_from_slice(&desc.encode());
        guest[cr] = 0;
        let expect = guest[(src - IOVA) as usize..][..len as usize].to_vec();
        let id = write(&mut c, region::BAR0, WQ_TAIL, &(slot + 1).to_le_bytes());
        let (m, _) = c.serve_dma_until(id, &mut guest, IOVA, 1024);
        assert_eq!(RawClient::errno(&m), 0);
        assert_eq!(guest[cr], 1, "memmove {slot} completed successfully");
        assert_eq!(
            &guest[(dst - IOVA) as usize..][..len as usize],
            &expect[..],
            "memmove {slot} moved the bytes"
        );
    }
}
