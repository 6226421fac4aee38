//! DMA_MAP / DMA_UNMAP over the socket against a model: random sequences
//! of message-based maps, exact and inexact unmaps and UNMAP_ALL get the
//! errno a map of non-overlapping ranges predicts (EEXIST on overlap,
//! ENOENT for an unmap that names no map exactly). Each case is a new
//! client of the same served device, so every case also checks that a
//! reconnect starts from an empty IOAS.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rustix::io::Errno;
use umdev_testkit::vfio_user::*;
use umdev_testkit::wait_for;
use umdev_vfio_user::proto::{Command, flags, wire};
use zerocopy::IntoBytes;

const BASE: u64 = 0x100_0000;
const PAGE: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    Map { page: u64, pages: u64 },
    Unmap { page: u64, pages: u64 },
    UnmapAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..48, 1u64..8).prop_map(|(page, pages)| Op::Map { page, pages }),
        3 => (0u64..48, 1u64..8).prop_map(|(page, pages)| Op::Unmap { page, pages }),
        1 => Just(Op::UnmapAll),
    ]
}

fn errno_of(e: Errno) -> u32 {
    e.raw_os_error() as u32
}

#[test]
fn maps_and_unmaps_follow_the_model() {
    let rig = Rig::new();
    let (_mdev, vfio) = rig.pass_through();
    let (server, path) = rig.serve("nvme", vfio);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let mut c = RawClient::connect(&path);
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            for op in ops {
                let (cmd, payload, want) = match op {
                    Op::Map { page, pages } => {
                        let (addr, size) = (BASE + page * PAGE, pages * PAGE);
                        let overlap = model.iter().any(|(&a, &s)| a < addr + size && addr < a + s);
                        if !overlap {
                            model.insert(addr, size);
                        }
                        let m = wire::DmaMap {
                            argsz: 32,
                            flags: 3,
                            offset: 0,
                            addr,
                            size,
                        };
                        let want = if overlap { errno_of(Errno::EXIST) } else { 0 };
                        (Command::DMA_MAP, m.as_bytes().to_vec(), want)
                    }
                    Op::Unmap { page, pages } => {
                        let (addr, size) = (BASE + page * PAGE, pages * PAGE);
                        let exact = model.get(&addr) == Some(&size);
                        if exact {
                            model.remove(&addr);
                        }
                        let u = wire::DmaUnmap {
                            argsz: 24,
                            flags: 0,
                            addr,
                            size,
                        };
                        let want = if exact { 0 } else { errno_of(Errno::NOENT) };
                        (Command::DMA_UNMAP, u.as_bytes().to_vec(), want)
                    }
                    Op::UnmapAll => {
                        model.clear();
                        let u = wire::DmaUnmap {
                            argsz: 24,
                            flags: flags::DMA_UNMAP_ALL,
                            addr: 0,
                            size: 0,
                        };
                        (Command::DMA_UNMAP, u.as_bytes().to_vec(), 0)
                    }
                };
                let m = c.call(cmd.0, &payload, &[]);
                prop_assert_eq!(RawClient::errno(&m), want);
            }
            let maps = server.stats().current.map(|s| s.dma_maps);
            prop_assert_eq!(maps, Some(model.len() as u64));
            drop(c);
            wait_for("release", || !server.client_attached());
            Ok(())
        })
        .unwrap();
}
