//! mtty types and the port pool instances are counted from.

use std::sync::Arc;
use std::thread;

use rustix::io::Errno;
use umdev_devices::irq::Interrupts;
use umdev_devices::mtty::{MAX_MTTYS, MTTY_DEVICE_API, MttyError, MttyParent, MttyType};

struct NoIrq;

impl Interrupts for NoIrq {
    fn trigger(&self, _vector: u32) {}
}

fn irq() -> Arc<dyn Interrupts> {
    Arc::new(NoIrq)
}

#[test]
fn types_as_the_sample_names_them() {
    assert_eq!(MttyType::Single.sysfs_name(), "1");
    assert_eq!(MttyType::Dual.sysfs_name(), "2");
    assert_eq!(MttyType::Single.pretty_name(), "Single port serial");
    assert_eq!(MttyType::Dual.pretty_name(), "Dual port serial");
    assert_eq!(MttyType::from_sysfs_name("2"), Some(MttyType::Dual));
    assert_eq!(MttyType::from_sysfs_name("3"), None);
    assert_eq!(MTTY_DEVICE_API, "vfio-pci");
}

#[test]
fn create_until_exhausted_then_remove_gives_ports_back() {
    let parent = MttyParent::default();
    assert_eq!(parent.available_ports(), MAX_MTTYS);
    assert_eq!(parent.available_instances(MttyType::Single), 24);
    assert_eq!(parent.available_instances(MttyType::Dual), 12);

    let mut duals: Vec<_> = (0..11)
        .map(|_| parent.create(MttyType::Dual, irq()).unwrap())
        .collect();
    assert_eq!(parent.available_instances(MttyType::Single), 2);
    assert_eq!(parent.available_instances(MttyType::Dual), 1);
    let single = parent.create(MttyType::Single, irq()).unwrap();
    assert_eq!(parent.available_instances(MttyType::Dual), 0);
    let e = parent.create(MttyType::Dual, irq()).unwrap_err();
    assert_eq!(
        e,
        MttyError::NoPorts {
            needed: 2,
            available: 1
        }
    );
    assert_eq!(e.errno(), Errno::NOSPC, "mtty's own error, not EUSERS");
    let last = parent.create(MttyType::Single, irq()).unwrap();
    assert_eq!(parent.available_ports(), 0);
    assert_eq!(
        parent.create(MttyType::Single, irq()).unwrap_err().errno(),
        Errno::NOSPC
    );

    drop(duals.pop());
    assert_eq!(parent.available_instances(MttyType::Dual), 1);
    assert_eq!(parent.available_instances(MttyType::Single), 2);
    drop((single, last));
    assert_eq!(parent.available_ports(), 4);
    drop(duals);
    assert_eq!(parent.available_ports(), MAX_MTTYS);
}

#[test]
fn devices_outlive_the_parent_handle_and_still_return_ports() {
    let parent = MttyParent::new(2);
    let dev = parent.create(MttyType::Dual, irq()).unwrap();
    assert_eq!(dev.mtty_type(), MttyType::Dual);
    assert_eq!(parent.available_ports(), 0);
    drop(dev);
    assert_eq!(parent.available_instances(MttyType::Dual), 1);
}

#[test]
fn concurrent_creates_never_oversubscribe() {
    let parent = Arc::new(MttyParent::new(25));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let parent = Arc::clone(&parent);
            let ty = if i % 2 == 0 {
                MttyType::Single
            } else {
                MttyType::Dual
            };
            thread::spawn(move || {
                let mut held = Vec::new();
                while let Ok(dev) = parent.create(ty, irq()) {
                    held.push(dev);
                }
                held
            })
        })
        .collect();
    let made: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let ports: u32 = made.iter().map(|d| d.mtty_type().nr_ports()).sum();
    assert_eq!(ports + parent.available_ports(), 25);
    assert_eq!(parent.available_ports(), 0, "single creates stop only at 0");
    drop(made);
    assert_eq!(parent.available_ports(), 25);
}
