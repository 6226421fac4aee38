//! vfio-user over the socket, client and server pinned to one vCPU by
//! running under `taskset -c 0` (see
//! shared/reference/vfio-user.md "Measuring message rates": across the two
//! vCPUs of these machines the wakeup latency, not the server, dominates):
//!
//! - `pingpong/raw_32B`: a plain UNIX-socket ping-pong between two threads,
//!   the limit any round trip can reach in the same run;
//! - `region/read_config_4B`, `region/write_bar0_4B`: REGION_READ /
//!   REGION_WRITE round trips (time per round trip; 1/time = rate);
//! - `dma_msg/{write,read}`: message-based DMA bandwidth, the pass-through
//!   DMA test engine copying between a memfd map and an fd-less map that
//!   the client serves with DMA_WRITE / DMA_READ replies (1 MiB pieces);
//! - `sdma/memmove`: an sdma mdev memmove posted through the ring in an
//!   fd-mapped memfd (doorbell = one REGION_WRITE), bytes moved per second;
//! - `{dma_msg,sdma}/memcpy_baseline`: a plain memcpy of the same bytes in
//!   the same run, the baseline the DMA figures are reported against.

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;

use criterion::measurement::WallTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umdev_devices::dmatest::regs::*;
use umdev_devices::sdma::Descriptor;
use umdev_devices::sdma::regs::*;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::vfio_user::{RawClient, Rig, memfd};
use umdev_vfio::device::region;
use umdev_vfio_user::proto::wire::{DmaMap, RegionAccess, Version};
use umdev_vfio_user::proto::{Command, flags};
use zerocopy::IntoBytes;

/// Says which CPUs the process may run on: run the bench as
/// `taskset -c 0 cargo bench -p umdev-vfio-user --bench socket` so that
/// client and server threads share one vCPU.
fn report_affinity() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cpus = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map_or("unknown", str::trim);
    eprintln!("socket bench: CPUs allowed: {cpus} (pin with `taskset -c 0`)");
}

fn connect(path: &std::path::Path) -> RawClient {
    let mut c = RawClient::connect(path);
    let mut v = Version { major: 0, minor: 0 }.as_bytes().to_vec();
    v.extend_from_slice(b"{\"capabilities\":{\"max_data_xfer_size\":1048576}}\0");
    assert_eq!(RawClient::errno(&c.call(Command::VERSION.0, &v, &[])), 0);
    c
}

fn access(index: u32, offset: u64, count: usize) -> Vec<u8> {
    RegionAccess {
        offset,
        region: index,
        count: count as u32,
    }
    .as_bytes()
    .to_vec()
}

fn write(c: &mut RawClient, index: u32, offset: u64, data: &[u8]) -> u16 {
    let mut p = access(index, offset, data.len());
    p.extend_from_slice(data);
    c.send(Command::REGION_WRITE.0, flags::TYPE_COMMAND, &p, &[])
}

fn write_ok(c: &mut RawClient, index: u32, offset: u64, data: &[u8]) {
    let id = write(c, index, offset, data);
    let m = c.recv();
    assert_eq!(({ m.header.msg_id }, RawClient::errno(&m)), (id, 0));
}

fn map(c: &mut RawClient, addr: u64, size: u64, fd: Option<OwnedFd>) {
    let m = DmaMap {
        argsz: 32,
        flags: flags::DMA_MAP_READ | flags::DMA_MAP_WRITE,
        offset: 0,
        addr,
        size,
    };
    let fds: Vec<OwnedFd> = fd.into_iter().collect();
    assert_eq!(
        RawClient::errno(&c.call(Command::DMA_MAP.0, m.as_bytes(), &fds)),
        0
    );
}

fn enable_dma(c: &mut RawClient) {
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    write_ok(
        c,
        region::CONFIG,
        u64::from(PCI_COMMAND),
        &cmd.to_le_bytes(),
    );
}

fn pingpong(c: &mut Criterion) {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 32];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut buf = [7u8; 32];
    c.bench_function("pingpong/raw_32B", |bench| {
        bench.iter(|| {
            a.write_all(&buf).unwrap();
            a.read_exact(&mut buf).unwrap();
        })
    });
    drop(a);
    echo.join().unwrap();
}

fn region(c: &mut Criterion) {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut client = connect(&path);
    enable_dma(&mut client);
    let read = access(region::CONFIG, 0, 4);
    c.bench_function("region/read_config_4B", |bench| {
        bench.iter(|| black_box(client.call(Command::REGION_READ.0, &read, &[])))
    });
    c.bench_function("region/write_bar0_4B", |bench| {
        bench.iter(|| write_ok(&mut client, region::BAR0, DMATEST_SRC_LO, &[1, 2, 3, 4]))
    });
}

const FD_IOVA: u64 = 0x10_0000;
const MSG_IOVA: u64 = 0x100_0000;
const LEN: u64 = 1 << 20;

fn dma_msg(c: &mut Criterion) {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (_server, path) = rig.serve("nvme", vfio);
    let mut client = connect(&path);
    enable_dma(&mut client);
    map(&mut client, FD_IOVA, LEN, Some(memfd(LEN).into()));
    map(&mut client, MSG_IOVA, LEN, None);
    let mut guest = vec![0u8; LEN as usize];
    let mut group = c.benchmark_group("dma_msg");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);
    for (name, src, dst) in [("write", FD_IOVA, MSG_IOVA), ("read", MSG_IOVA, FD_IOVA)] {
        for (reg, v) in [
            (DMATEST_SRC_LO, src as u32),
            (DMATEST_SRC_HI, 0),
            (DMATEST_DST_LO, dst as u32),
            (DMATEST_DST_HI, 0),
            (DMATEST_LEN, LEN as u32),
        ] {
            write_ok(&mut client, region::BAR0, reg, &v.to_le_bytes());
        }
        let start = (DMATEST_OP_COPY | DMATEST_CMD_START).to_le_bytes();
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let id = write(&mut client, region::BAR0, DMATEST_CMD, &start);
                let (m, _) = client.serve_dma_until(id, &mut guest, MSG_IOVA, LEN);
                assert_eq!(RawClient::errno(&m), 0);
            })
        });
    }
    memcpy_baseline(&mut group, LEN as usize);
    group.finish();
}

/// A plain memcpy of `len` bytes between two buffers, in `group`.
fn memcpy_baseline(group: &mut criterion::BenchmarkGroup<'_, WallTime>, len: usize) {
    let src = vec![0x5au8; len];
    let mut dst = vec![0u8; len];
    group.bench_function("memcpy_baseline", |bench| {
        bench.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });
}

const SLOTS: u32 = 16;
const RING: u64 = FD_IOVA;
const CR: u64 = FD_IOVA + 0x1000;
const DATA: u64 = FD_IOVA + 0x10_0000;
const SDMA_WINDOW: u64 = 4 << 20;
const MOVE: u32 = 1 << 20;

fn sdma(c: &mut Criterion) {
    let rig = Rig::new();
    let engine: umdev_pci::Bdf = "0000:01:00.0".parse().unwrap();
    let parent = rig.host.sdma.parent(engine).unwrap();
    let mdev = parent
        .mdev_type("idxd-wq")
        .unwrap()
        .create("5d4a0000-0000-4000-8000-0000000000be".parse().unwrap())
        .unwrap();
    let (_server, path) = rig.serve("sdma", mdev.registration().unwrap());
    let mut client = connect(&path);
    let mem = memfd(SDMA_WINDOW);
    map(
        &mut client,
        FD_IOVA,
        SDMA_WINDOW,
        Some(mem.try_clone().unwrap().into()),
    );
    enable_dma(&mut client);
    write_ok(&mut client, region::BAR0, WQ_RING_BASE, &RING.to_le_bytes());
    write_ok(
        &mut client,
        region::BAR0,
        WQ_RING_SIZE,
        &SLOTS.to_le_bytes(),
    );
    write_ok(
        &mut client,
        region::BAR0,
        WQ_CTRL,
        &CTRL_ENABLE.to_le_bytes(),
    );
    let desc = Descriptor::memmove(DATA, DATA + u64::from(MOVE), MOVE).with_completion(CR, false);
    let mut tail = 0u32;
    let mut group = c.benchmark_group("sdma");
    group.throughput(Throughput::Bytes(u64::from(MOVE)));
    group.sample_size(20);
    group.bench_function("memmove_1MiB_fd_mapped", |bench| {
        bench.iter(|| {
            let slot = u64::from(tail % SLOTS) * desc.encode().len() as u64;
            mem.write_all_at(&[0], CR - FD_IOVA).unwrap();
            mem.write_all_at(&desc.encode(), RING - FD_IOVA + slot)
                .unwrap();
            tail = tail.wrapping_add(1);
            write_ok(
                &mut client,
                region::BAR0,
                WQ_TAIL,
                &(tail % SLOTS).to_le_bytes(),
            );
            let mut status = [0u8; 1];
            while status[0] == 0 {
                mem.read_exact_at(&mut status, CR - FD_IOVA).unwrap();
                std::thread::yield_now();
            }
            assert_eq!(status[0], 1, "memmove completed successfully");
        })
    });
    memcpy_baseline(&mut group, MOVE as usize);
    group.finish();
}

fn benches(c: &mut Criterion) {
    report_affinity();
    pingpong(c);
    region(c);
    dma_msg(c);
    sdma(c);
}

criterion_group!(socket, benches);
criterion_main!(socket);
