//! A real vfio-user client (the `vfio_user` crate, what cloud-hypervisor
//! uses) on a daemon's socket: `list` shows it attached, and the DMA and
//! the IOMMU fault it makes the device do show in `stats` and `faults`
//! under the mdev's name.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use serde_json::{Value, json};
use umdev_devices::dmatest::regs::*;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::daemon::Daemon;
use umdev_vfio::device::region;
use vfio_user::Client;

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const NVME: &str = "0000:05:00.0";
const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 64 << 10;
const BAD_IOVA: u64 = 0x4000_0000;

fn w32(c: &mut Client, at: u64, v: u32) {
    c.region_write(region::BAR0, at, &v.to_le_bytes()).unwrap();
}

/// A COPY by the DMA test device behind the function; its status.
fn copy(c: &mut Client, src: u64, dst: u64, len: u32) -> u32 {
    w32(c, DMATEST_SRC_LO, src as u32);
    w32(c, DMATEST_SRC_HI, (src >> 32) as u32);
    w32(c, DMATEST_DST_LO, dst as u32);
    w32(c, DMATEST_DST_HI, (dst >> 32) as u32);
    w32(c, DMATEST_LEN, len);
    w32(c, DMATEST_CMD, DMATEST_OP_COPY | DMATEST_CMD_START);
    let mut b = [0u8; 4];
    c.region_read(region::BAR0, DMATEST_STATUS, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn served<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} not served: {list}"))
}

#[test]
fn a_clients_dma_and_faults_are_charged_to_its_mdev() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));
    // Seed 004: the NVMe function wrapped by mdev-pci, one mdev on it.
    let mdev_type = d.wrap_nvme_with_mdev_pci(NVME);
    d.ok(json!({"op": "create", "parent": NVME, "type": mdev_type, "uuid": U1}));
    let socket = d.root.join(format!("run/umdev/{U1}.sock"));

    let mut client = Client::new(&socket).expect("vfio-user negotiation");
    let list = d.ok(json!({"op": "list"}));
    assert_eq!(served(&list, U1)["attached"], true, "{list}");
    assert!(served(&list, U1)["consumer_devid"].is_u64(), "{list}");

    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    client
        .region_write(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes())
        .unwrap();
    let mem = {
        let fd = rustix::fs::memfd_create("guest", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, WINDOW).unwrap();
        std::fs::File::from(fd)
    };
    client.dma_map(0, IOVA, WINDOW, mem.as_raw_fd()).unwrap();
    let src: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    mem.write_all_at(&src, 0).unwrap();

    let before = d.ok(json!({"op": "stats"}));
    let status = copy(&mut client, IOVA, IOVA + 0x8000, src.len() as u32);
    assert_eq!(status & DMATEST_STATUS_DONE, DMATEST_STATUS_DONE);
    let status = copy(&mut client, BAD_IOVA, IOVA, 64);
    assert_ne!(status & DMATEST_STATUS_ERROR, 0);
    let after = d.ok(json!({"op": "stats"}));

    let row = |stats: &Value| {
        stats["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == U1)
            .unwrap_or_else(|| panic!("no stats for {U1}: {stats}"))
            .clone()
    };
    let (b, a) = (row(&before), row(&after));
    assert_eq!(a["requester"], NVME);
    let delta = |k: &str| a["counters"][k].as_u64().unwrap() - b["counters"][k].as_u64().unwrap();
    assert!(delta("dma_read_bytes") >= src.len() as u64, "{a}");
    assert!(delta("dma_write_bytes") >= src.len() as u64, "{a}");
    assert_eq!(delta("faults"), 1, "{a}");
    assert!(a["counters"]["iotlb_hit_ratio"].is_f64(), "{a}");
    assert_eq!(a["dma_maps"], 1, "{a}");

    let faults = d.ok(json!({"op": "faults"}));
    let records = faults["units"][0]["records"].as_array().unwrap();
    let fault = records
        .iter()
        .find(|r| r["addr"] == BAD_IOVA)
        .unwrap_or_else(|| panic!("no fault at {BAD_IOVA:#x}: {faults}"));
    assert_eq!(
        (fault["requester"].as_str(), fault["device"].as_str()),
        (Some(NVME), Some(U1))
    );
    assert_eq!(fault["access"], "read");
    // The text forms carry the same.
    let text = String::from_utf8(d.cli(&["faults"]).stdout).unwrap();
    assert!(text.contains("0x40000000") && text.contains(U1), "{text}");
    let text = String::from_utf8(d.cli(&["stats"]).stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with(U1) && l.contains(NVME)),
        "{text}"
    );

    client.shutdown().unwrap();
    // The session ends asynchronously: wait (bounded) for the detach.
    let detached = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        served(&d.ok(json!({"op": "list"})), U1)["attached"] == false
    });
    assert!(detached, "the client's disconnect is not seen");
}

#[test]
fn sigterm_with_a_client_attached_disconnects_it_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::start(&root);
    d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-2", "uuid": U1}));
    let client = Client::new(&d.root.join(format!("run/umdev/{U1}.sock"))).unwrap();
    let list = d.ok(json!({"op": "list"}));
    assert_eq!(served(&list, U1)["attached"], true, "{list}");
    let status = d.terminate();
    assert!(status.success(), "{status}");
    assert!(!umdev_testkit::daemon::is_mounted(&root.join("sys")));
    assert!(umdev_testkit::daemon::sockets(&root.join("run/umdev")).is_empty());
    drop(client);
}
