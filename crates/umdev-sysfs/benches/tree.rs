//! Cost of one sysfs access: resolving a path from the root through the
//! live model and showing an attribute, in the tree alone and through
//! the FUSE mount (a full open/read/close from user space).
//!
//! - `tree/stat_deep`: `stat` of a PCI attribute five directories down;
//! - `tree/read_type_attr`: `available_instances` of an mtty type,
//!   reached through the `class/mdev_bus/mtty` link;
//! - `fuse/read_type_attr`: the same file read with `std::fs::read`
//!   through a mount (needs root and /dev/fuse);
//! - `fuse/create_remove`: an mdev created and removed with two writes.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use umdev_devices::host::Host;
use umdev_sysfs::{Tree, mount};

const DEEP: &str = "devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:00.0/0000:04:00.1/vendor";
const AVAIL: &str = "class/mdev_bus/mtty/mdev_supported_types/mtty-1/available_instances";
const CREATE: &str = "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create";
const UUID: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";

fn tree(c: &mut Criterion) {
    let t = Tree::new(Host::default_platform().unwrap());
    c.bench_function("tree/stat_deep", |b| {
        b.iter(|| black_box(t.stat(DEEP).unwrap()))
    });
    c.bench_function("tree/read_type_attr", |b| {
        b.iter(|| black_box(t.read(AVAIL).unwrap()))
    });
}

fn fuse(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    let handle = mount(Host::default_platform().unwrap(), &sys, Arc::new(|| {})).unwrap();
    let avail = sys.join(AVAIL);
    c.bench_function("fuse/read_type_attr", |b| {
        b.iter(|| black_box(std::fs::read(&avail).unwrap()))
    });
    let create = sys.join(CREATE);
    let remove = sys.join(format!("bus/mdev/devices/{UUID}/remove"));
    c.bench_function("fuse/create_remove", |b| {
        b.iter(|| {
            std::fs::write(&create, UUID).unwrap();
            std::fs::write(&remove, "1").unwrap();
        })
    });
    handle.unmount().unwrap();
}

criterion_group!(benches, tree, fuse);
criterion_main!(benches);
