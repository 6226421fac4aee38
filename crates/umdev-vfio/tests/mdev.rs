//! The mdev core against a test parent driver: the create / remove errno
//! table, type naming, instance accounting, unregistration, singleton
//! groups, the IOMMU device / domain slots, a concurrent stress and a
//! model-based property test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use proptest::prelude::*;
use rustix::io::Errno;
use umdev_iommu::iommu::PagingFlags;
use umdev_iommu::system::System;
use umdev_iommufd::Ictx;
use umdev_pci::Bdf;
use umdev_vfio::device::{
    DeviceFlags, DeviceInfo, IrqInfo, RegionInfo, SetIrqs, VfioDeviceOps, VfioError,
};
use umdev_vfio::mdev::{
    Accounting, Mdev, MdevBus, MdevDriver, MdevError, MdevParent, MdevType, MdevTypeDesc, MdevUuid,
    ParentDevice, SINGLETON_GROUP_BASE, SingletonGroups,
};
use umdev_vfio::registration::Isolation;

/// A VFIO device with nothing in it.
struct StubDevice;

impl VfioDeviceOps for StubDevice {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            flags: DeviceFlags::PCI,
            num_regions: 0,
            num_irqs: 0,
        }
    }
    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        Err(VfioError::NoRegion { index })
    }
    fn region_read(&self, index: u32, _: u64, _: &mut [u8]) -> Result<usize, VfioError> {
        Err(VfioError::NoRegion { index })
    }
    fn region_write(&self, index: u32, _: u64, _: &[u8]) -> Result<usize, VfioError> {
        Err(VfioError::NoRegion { index })
    }
    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        Err(VfioError::NoIrq { index })
    }
    fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError> {
        Err(VfioError::NoIrq { index: req.index })
    }
    fn reset(&self) -> Result<(), VfioError> {
        Err(VfioError::NoReset)
    }
}

type Hook = Box<dyn FnMut(&Mdev) + Send>;

/// The test parent driver. Type 0 ("a") is IOMMU-backed by `backing`;
/// type 1 ("b") uses vendor-defined isolation. Under
/// `Accounting::GetAvailable` it keeps an mtty-like pool where type `i`
/// takes `i + 1` units.
struct TestDriver {
    accounting: Accounting,
    pool: AtomicU32,
    backing: Bdf,
    fail_create: Mutex<Option<Errno>>,
    on_create: Mutex<Option<Hook>>,
    on_remove: Mutex<Option<Hook>>,
    live: AtomicU32,
    max_live: AtomicU32,
    devices: Mutex<BTreeMap<MdevUuid, Arc<StubDevice>>>,
    removed: Mutex<Vec<MdevUuid>>,
}

impl TestDriver {
    fn new(accounting: Accounting) -> Arc<Self> {
        Arc::new(Self {
            accounting,
            pool: AtomicU32::new(3),
            backing: Bdf::new(0, 3, 0, 0).unwrap(),
            fail_create: Mutex::new(None),
            on_create: Mutex::new(None),
            on_remove: Mutex::new(None),
            live: AtomicU32::new(0),
            max_live: AtomicU32::new(0),
            devices: Mutex::new(BTreeMap::new()),
            removed: Mutex::new(Vec::new()),
        })
    }

    fn units(mdev: &Mdev) -> u32 {
        mdev.type_index() as u32 + 1
    }

    fn run(hook: &Mutex<Option<Hook>>, mdev: &Mdev) {
        let taken = hook.lock().take();
        if let Some(mut f) = taken {
            f(mdev);
        }
    }
}

impl MdevDriver for TestDriver {
    fn name(&self) -> &str {
        "mdev_test"
    }
    fn device_api(&self) -> &str {
        "vfio-pci"
    }
    fn accounting(&self) -> Accounting {
        self.accounting
    }
    fn get_available(&self, mtype: &MdevType) -> u32 {
        self.pool.load(Ordering::SeqCst) / (mtype.index() as u32 + 1)
    }
    fn description(&self, mtype: &MdevType) -> Option<String> {
        (mtype.index() == 0).then(|| "IOMMU-backed test type".to_owned())
    }
    fn create(&self, mdev: &Mdev) -> Result<Arc<dyn VfioDeviceOps>, VfioError> {
        Self::run(&self.on_create, mdev);
        if let Some(errno) = *self.fail_create.lock() {
            return Err(VfioError::Errno {
                what: "test create",
                errno,
            });
        }
        if self.accounting == Accounting::GetAvailable {
            let units = Self::units(mdev);
            self.pool
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(units))
                .map_err(|_| VfioError::Errno {
                    what: "no ports",
                    errno: Errno::NOSPC,
                })?;
        }
        if mdev.type_index() == 0 {
            mdev.set_iommu_device(self.backing);
        }
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(live, Ordering::SeqCst);
        let dev = Arc::new(StubDevice);
        self.devices.lock().insert(mdev.uuid(), dev.clone());
        Ok(dev)
    }
    fn remove(&self, mdev: &Mdev) {
        Self::run(&self.on_remove, mdev);
        if self.accounting == Accounting::GetAvailable {
            self.pool.fetch_add(Self::units(mdev), Ordering::SeqCst);
        }
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.devices.lock().remove(&mdev.uuid());
        self.removed.lock().push(mdev.uuid());
    }
}

fn types() -> Vec<MdevTypeDesc> {
    vec![
        MdevTypeDesc::new("a", Some("Type A")),
        MdevTypeDesc::new("b", None),
    ]
}

fn pci_parent(bus: &Arc<MdevBus>, dev: u8, drv: &Arc<TestDriver>) -> Arc<MdevParent> {
    let bdf = Bdf::new(0, 1, dev, 0).unwrap();
    bus.register_parent(ParentDevice::pci(bdf, "mdev_test_pf"), drv.clone(), types())
        .unwrap()
}

fn uuid(n: u32) -> MdevUuid {
    format!("{n:08x}-0000-4000-8000-00000000abcd")
        .parse()
        .unwrap()
}

fn errno<T: std::fmt::Debug>(r: Result<T, MdevError>) -> Errno {
    r.unwrap_err().errno()
}

/// Everything a failed operation must leave untouched.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    avail: Vec<u32>,
    devices: Vec<MdevUuid>,
    groups: Vec<u32>,
    live: u32,
}

fn snapshot(bus: &MdevBus, parent: &Arc<MdevParent>, drv: &TestDriver) -> Snapshot {
    let devs = bus.devices();
    Snapshot {
        avail: parent
            .types()
            .iter()
            .map(MdevType::available_instances)
            .collect(),
        devices: devs.iter().map(|m| m.uuid()).collect(),
        groups: devs.iter().map(|m| m.group()).collect(),
        live: drv.live.load(Ordering::SeqCst),
    }
}

#[test]
fn type_directories_are_named_as_the_kernel_names_them() {
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(2));
    let parent = pci_parent(&bus, 0, &drv);
    let names: Vec<String> = parent.types().iter().map(MdevType::name).collect();
    assert_eq!(names, ["mdev_test_pf-a", "mdev_test_pf-b"]);
    let a = parent.mdev_type("mdev_test_pf-a").unwrap();
    let b = parent.mdev_type("mdev_test_pf-b").unwrap();
    assert_eq!(a.pretty_name(), "Type A");
    assert_eq!(b.pretty_name(), "b", "name falls back to sysfs_name");
    assert_eq!(a.device_api(), "vfio-pci");
    assert_eq!(a.description().as_deref(), Some("IOMMU-backed test type"));
    assert_eq!(b.description(), None);
    assert_eq!(errno(parent.mdev_type("a")), Errno::NOENT);
    assert_eq!(parent.device().id.to_string(), "0000:01:00.0");

    // A non-PCI parent: dev_driver_string falls back to the class name.
    let mtty = bus
        .register_parent(
            ParentDevice::named("mtty", "mtty"),
            TestDriver::new(Accounting::GetAvailable),
            vec![MdevTypeDesc::new("1", Some("Single port serial"))],
        )
        .unwrap();
    assert_eq!(mtty.types()[0].name(), "mtty-1");
    let parents: BTreeSet<String> = bus
        .parents()
        .iter()
        .map(|p| p.device().id.to_string())
        .collect();
    assert_eq!(
        parents,
        BTreeSet::from(["0000:01:00.0".to_owned(), "mtty".to_owned()])
    );
}

#[test]
fn create_errno_table() {
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(2));
    let parent = pci_parent(&bus, 0, &drv);
    let other_drv = TestDriver::new(Accounting::MaxInstances(4));
    let other = pci_parent(&bus, 1, &other_drv);
    let a = &parent.types()[0];
    let b = &parent.types()[1];
    let good = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";

    let fails = |what: &str, r: Result<usize, MdevError>, want: Errno| {
        let before = snapshot(&bus, &parent, &drv);
        assert_eq!(errno(r), want, "{what}");
        assert_eq!(
            snapshot(&bus, &parent, &drv),
            before,
            "{what}: state changed"
        );
    };
    let snap = || snapshot(&bus, &parent, &drv);

    // Length: 36 or 37 bytes only.
    let before = snap();
    assert_eq!(errno(a.create_store(&good.as_bytes()[..35])), Errno::INVAL);
    assert_eq!(
        errno(a.create_store(format!("{good}\n\n").as_bytes())),
        Errno::INVAL
    );
    assert_eq!(errno(a.create_store(b"")), Errno::INVAL);
    // The first 36 bytes must be a UUID.
    assert_eq!(
        errno(a.create_store(b"83b8f4f2-509f-382f-3c1e-e6bfe0fa100g")),
        Errno::INVAL
    );
    assert_eq!(
        errno(a.create_store(b"83b8f4f2-509f-382f-3c1e-e6bfe0fa100\n")),
        Errno::INVAL,
        "36 bytes ending in a newline are 35 UUID characters"
    );
    assert_eq!(
        errno(a.create_store(b"83b8f4f2x509f-382f-3c1e-e6bfe0fa1001\n")),
        Errno::INVAL
    );
    assert_eq!(
        errno(a.create_store(b"{3b8f4f2-509f-382f-3c1e-e6bfe0fa100}")),
        Errno::INVAL
    );
    assert_eq!(snap(), before, "invalid writes changed state");

    // 37 bytes: the 37th is not looked at; upper case becomes lower case.
    let upper = "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001";
    assert_eq!(a.create_store(format!("{upper}\n").as_bytes()).unwrap(), 37);
    let m = bus
        .find(good.parse().unwrap())
        .expect("listed under lower case");
    assert_eq!(m.uuid().to_string(), good);
    assert_eq!(a.devices(), vec![m.uuid()]);

    // Duplicates anywhere: same type, other type, other parent, other case.
    fails(
        "dup same type",
        a.create_store(good.as_bytes()),
        Errno::EXIST,
    );
    fails(
        "dup other type",
        b.create_store(format!("{good}x").as_bytes()),
        Errno::EXIST,
    );
    fails(
        "dup other parent",
        other.types()[0].create_store(upper.as_bytes()),
        Errno::EXIST,
    );

    // Instances are shared by the parent's types: EUSERS when none is left.
    b.create(uuid(2)).unwrap();
    assert_eq!(a.available_instances(), 0);
    fails(
        "no instance",
        a.create_store(uuid(3).to_string().as_bytes()),
        Errno::USERS,
    );
    fails(
        "no instance b",
        b.create_store(uuid(3).to_string().as_bytes()),
        Errno::USERS,
    );
    // The duplicate check comes first.
    fails(
        "dup before EUSERS",
        a.create_store(good.as_bytes()),
        Errno::EXIST,
    );

    // A driver error with an instance left passes through, unchanged state.
    m.remove().unwrap();
    *drv.fail_create.lock() = Some(Errno::IO);
    fails("driver EIO", a.create_store(good.as_bytes()), Errno::IO);
    *drv.fail_create.lock() = None;
    assert_eq!(a.available_instances(), 1);
    assert!(bus.find(good.parse().unwrap()).is_none());

    // Unregistered parent: ENODEV.
    drop(other);
    parent.unregister();
    assert_eq!(a.available_instances(), 2, "unregister gave instances back");
    let before = snap();
    assert_eq!(errno(a.create(uuid(9))), Errno::NODEV);
    assert_eq!(snap(), before);
    assert!(bus.devices().is_empty());
}

#[test]
fn driver_counted_types_pass_the_driver_errno_through() {
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::GetAvailable);
    let parent = pci_parent(&bus, 0, &drv);
    let (one, two) = (&parent.types()[0], &parent.types()[1]);
    // Pool of 3 units: type 0 takes 1, type 1 takes 2.
    assert_eq!(
        (one.available_instances(), two.available_instances()),
        (3, 1)
    );
    two.create(uuid(1)).unwrap();
    assert_eq!(
        (one.available_instances(), two.available_instances()),
        (1, 0)
    );
    let before = snapshot(&bus, &parent, &drv);
    assert_eq!(
        errno(two.create(uuid(2))),
        Errno::NOSPC,
        "driver's own errno, not EUSERS"
    );
    assert_eq!(snapshot(&bus, &parent, &drv), before);
    one.create(uuid(2)).unwrap();
    assert_eq!(errno(one.create(uuid(3))), Errno::NOSPC);
    bus.find(uuid(1)).unwrap().remove().unwrap();
    assert_eq!(
        (one.available_instances(), two.available_instances()),
        (2, 1)
    );
}

#[test]
fn remove_errno_table() {
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(4));
    let parent = pci_parent(&bus, 0, &drv);
    let a = parent.types()[0].clone();
    let m = a.create(uuid(1)).unwrap();

    // remove_store: kstrtoul(buf, 0) or EINVAL; 0 is a no-op.
    let before = snapshot(&bus, &parent, &drv);
    for bad in [&b""[..], b"abc", b"-1", b" 1", b"1x", b"0x", b"08"] {
        assert_eq!(errno(m.remove_store(bad)), Errno::INVAL, "{bad:?}");
    }
    assert_eq!(m.remove_store(b"0\n").unwrap(), 2);
    assert_eq!(
        snapshot(&bus, &parent, &drv),
        before,
        "0 or invalid removed"
    );
    assert_eq!(m.remove_store(b"0x1\n").unwrap(), 4);
    assert!(bus.find(uuid(1)).is_none());
    assert_eq!(drv.removed.lock().as_slice(), [uuid(1)]);

    // Not listed any more: ENODEV, through both paths.
    let before = snapshot(&bus, &parent, &drv);
    assert_eq!(errno(m.remove()), Errno::NODEV);
    assert_eq!(errno(m.remove_store(b"1")), Errno::NODEV);
    assert_eq!(snapshot(&bus, &parent, &drv), before);

    // Still being created (not active): EAGAIN.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    *drv.on_create.lock() = Some(Box::new(move |mdev: &Mdev| {
        s.lock()
            .push(mdev.remove().map(|()| 0).map_err(|e| e.errno()));
        s.lock()
            .push(mdev.remove_store(b"1").map_err(|e| e.errno()));
    }));
    let m2 = a.create(uuid(2)).unwrap();
    assert_eq!(
        seen.lock().as_slice(),
        [Err(Errno::AGAIN), Err(Errno::AGAIN)]
    );
    assert!(bus.find(uuid(2)).is_some(), "a failed remove left it alone");

    // Already being removed: EAGAIN for a remove; remove_store loses the
    // race silently (device_remove_file_self returns false).
    seen.lock().clear();
    let s = seen.clone();
    *drv.on_remove.lock() = Some(Box::new(move |mdev: &Mdev| {
        s.lock()
            .push(mdev.remove().map(|()| 0).map_err(|e| e.errno()));
        s.lock()
            .push(mdev.remove_store(b"1").map_err(|e| e.errno()));
    }));
    m2.remove().unwrap();
    assert_eq!(seen.lock().as_slice(), [Err(Errno::AGAIN), Ok(1)]);
    assert_eq!(drv.removed.lock().len(), 2, "removed exactly once");
    assert_eq!(a.available_instances(), 4);
}

#[test]
fn create_and_remove_during_unregistration_fail_with_enodev() {
    // Its own group allocator: the global one is shared with the tests
    // running in parallel, which may take a freed number at once.
    let bus = MdevBus::with_groups(Arc::new(SingletonGroups::new()));
    let drv = TestDriver::new(Accounting::MaxInstances(4));
    let parent = pci_parent(&bus, 0, &drv);
    let a = parent.types()[0].clone();
    let m1 = a.create(uuid(1)).unwrap();
    let m2 = a.create(uuid(2)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let (a2, m2c) = (a.clone(), m2.clone());
    // The first removal of the unregistration tries a create and a remove.
    *drv.on_remove.lock() = Some(Box::new(move |_: &Mdev| {
        s.lock()
            .push(a2.create(uuid(3)).map(|_| ()).map_err(|e| e.errno()));
        s.lock().push(m2c.remove().map_err(|e| e.errno()));
    }));
    parent.unregister();
    assert_eq!(
        seen.lock().as_slice(),
        [Err(Errno::NODEV), Err(Errno::NODEV)]
    );
    assert!(bus.devices().is_empty());
    let removed: BTreeSet<MdevUuid> = drv.removed.lock().iter().copied().collect();
    assert_eq!(removed, BTreeSet::from([uuid(1), uuid(2)]));
    assert_eq!(drv.live.load(Ordering::SeqCst), 0);
    assert_eq!(a.available_instances(), 4);
    assert!(!bus.groups().is_allocated(m1.group()));
    assert!(!bus.groups().is_allocated(m2.group()));
}

#[test]
fn unregister_removes_only_that_parents_mdevs_and_allows_reregistration() {
    let bus = MdevBus::new();
    let drv_a = TestDriver::new(Accounting::MaxInstances(4));
    let drv_b = TestDriver::new(Accounting::MaxInstances(4));
    let pa = pci_parent(&bus, 0, &drv_a);
    let pb = pci_parent(&bus, 1, &drv_b);
    pa.types()[0].create(uuid(1)).unwrap();
    pa.types()[1].create(uuid(2)).unwrap();
    pb.types()[0].create(uuid(3)).unwrap();
    let bdf = Bdf::new(0, 1, 0, 0).unwrap();
    let again = bus.register_parent(ParentDevice::pci(bdf, "x"), drv_a.clone(), types());
    assert_eq!(errno(again), Errno::EXIST, "already a parent");

    pa.unregister();
    assert!(!pa.is_registered());
    let left: Vec<MdevUuid> = bus.devices().iter().map(|m| m.uuid()).collect();
    assert_eq!(left, [uuid(3)]);
    assert_eq!(drv_a.live.load(Ordering::SeqCst), 0);
    assert_eq!(drv_b.live.load(Ordering::SeqCst), 1);
    assert_eq!(bus.parents().len(), 1);
    assert_eq!(errno(pa.mdev_type("mdev_test_pf-a")), Errno::NOENT);

    // Dropping the last handle unregisters too.
    drop(pb);
    assert!(bus.devices().is_empty());
    assert_eq!(drv_b.live.load(Ordering::SeqCst), 0);

    let pa2 = pci_parent(&bus, 0, &drv_a);
    pa2.types()[0].create(uuid(1)).unwrap();
    assert_eq!(bus.devices().len(), 1);
}

#[test]
fn each_mdev_is_its_own_group_and_numbers_are_released() {
    let system = System::default_platform().unwrap();
    let platform_groups: BTreeSet<u32> = system.platform.iommu_groups().into_keys().collect();
    assert!(!platform_groups.is_empty());
    // Its own allocator, so that other tests' groups cannot take the
    // number freed below.
    let bus = MdevBus::with_groups(Arc::new(SingletonGroups::new()));
    let drv = TestDriver::new(Accounting::MaxInstances(8));
    let parent = pci_parent(&bus, 0, &drv);
    let a = &parent.types()[0];
    let mdevs: Vec<Arc<Mdev>> = (0..8).map(|i| a.create(uuid(i)).unwrap()).collect();
    let groups: BTreeSet<u32> = mdevs.iter().map(|m| m.group()).collect();
    assert_eq!(groups.len(), 8, "singleton groups");
    assert!(groups.iter().all(|g| *g >= SINGLETON_GROUP_BASE));
    assert!(groups.is_disjoint(&platform_groups));
    assert!(groups.iter().all(|g| bus.groups().is_allocated(*g)));

    let freed = mdevs[3].group();
    mdevs[3].remove().unwrap();
    assert!(!bus.groups().is_allocated(freed));
    assert_eq!(
        a.create(uuid(100)).unwrap().group(),
        freed,
        "lowest free reused"
    );
    parent.unregister();
    assert!(groups.iter().all(|g| !bus.groups().is_allocated(*g)));
}

#[test]
fn iommu_device_and_domain_slots() {
    let system = System::default_platform().unwrap();
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(4));
    let parent = pci_parent(&bus, 0, &drv);
    let backed = parent.types()[0].create(uuid(1)).unwrap();
    let vendor = parent.types()[1].create(uuid(2)).unwrap();

    // The parent created both; only the backed one has an IOMMU device,
    // and it is not the parent.
    assert_eq!(backed.parent(), vendor.parent());
    assert_eq!(backed.iommu_device(), Some(drv.backing));
    assert_ne!(
        backed.parent().id,
        umdev_vfio::mdev::ParentId::Pci(drv.backing)
    );
    assert_eq!(vendor.iommu_device(), None, "vendor-defined isolation");
    assert_eq!(backed.type_name(), "mdev_test_pf-a");

    // The VFIO device is the one the driver made.
    let ops = backed.vfio_device().unwrap();
    let mine = drv.devices.lock()[&uuid(1)].clone();
    assert!(std::ptr::addr_eq(Arc::as_ptr(&ops), Arc::as_ptr(&mine)));
    assert_eq!(ops.info().flags, DeviceFlags::PCI);

    let bdf = *system
        .platform
        .iommu_groups()
        .values()
        .next()
        .unwrap()
        .first()
        .unwrap();
    let domain = system
        .iommu
        .domain_alloc_paging(bdf, PagingFlags::default())
        .unwrap();
    assert!(backed.iommu_domain().is_none());
    backed.set_iommu_domain(Some(domain.clone()));
    assert_eq!(backed.iommu_domain().map(|d| d.id()), Some(domain.id()));
    assert!(vendor.iommu_domain().is_none());
    backed.set_iommu_domain(None);
    assert!(backed.iommu_domain().is_none());

    backed.set_iommu_device(bdf);
    assert_eq!(backed.iommu_device(), Some(bdf));
}

#[test]
fn concurrent_create_and_remove_never_over_commit() {
    const MAX: u32 = 5;
    const THREADS: u32 = 6;
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(MAX));
    let parent = pci_parent(&bus, 0, &drv);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (bus, parent) = (&bus, &parent);
            s.spawn(move || {
                let mut x = t.wrapping_mul(2_654_435_761) | 1;
                for _ in 0..400 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // A small shared UUID pool makes creates and removes race
                    // on the same names.
                    let u = uuid(x % 12);
                    let mtype = &parent.types()[(x >> 8) as usize % 2];
                    if x & 0x100_0000 == 0 {
                        if let Err(e) = mtype.create(u) {
                            assert!(matches!(e.errno(), Errno::USERS | Errno::EXIST), "{e}");
                        }
                    } else if let Some(m) = bus.find(u) {
                        match m.remove() {
                            Ok(()) => {}
                            Err(e) => {
                                assert!(matches!(e.errno(), Errno::NODEV | Errno::AGAIN), "{e}")
                            }
                        }
                    }
                }
            });
        }
    });
    let live = bus.devices().len() as u32;
    assert!(drv.max_live.load(Ordering::SeqCst) <= MAX, "over-commit");
    assert_eq!(drv.live.load(Ordering::SeqCst), live);
    assert_eq!(parent.types()[0].available_instances() + live, MAX);
    parent.unregister();
    assert_eq!(parent.types()[1].available_instances(), MAX);
    assert_eq!(drv.live.load(Ordering::SeqCst), 0);
}

#[test]
fn concurrent_creates_racing_unregistration_leave_nothing_behind() {
    let bus = MdevBus::new();
    let drv = TestDriver::new(Accounting::MaxInstances(64));
    let parent = pci_parent(&bus, 0, &drv);
    let mtype = parent.types()[0].clone();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let mtype = mtype.clone();
            s.spawn(move || {
                for i in 0..16 {
                    match mtype.create(uuid(t * 100 + i)) {
                        Ok(_) => {}
                        Err(e) => assert_eq!(e.errno(), Errno::NODEV),
                    }
                }
            });
        }
        parent.unregister();
    });
    assert!(bus.devices().is_empty());
    assert_eq!(drv.live.load(Ordering::SeqCst), 0);
    assert_eq!(mtype.available_instances(), 64);
}

/// One step of the model-based test.
#[derive(Clone, Debug)]
enum Op {
    Create { ty: usize, uuid: u32 },
    Remove { uuid: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..6u32).prop_map(|(ty, uuid)| Op::Create { ty, uuid }),
        (0..6u32).prop_map(|uuid| Op::Remove { uuid }),
    ]
}

proptest! {
    /// Sequential creates and removes on two parents (one counted by the
    /// core, one by the driver) against a reference model.
    #[test]
    fn matches_a_reference_model(ops in prop::collection::vec((0..2usize, op()), 0..40)) {
        let bus = MdevBus::new();
        let drvs = [
            TestDriver::new(Accounting::MaxInstances(3)),
            TestDriver::new(Accounting::GetAvailable),
        ];
        let parents = [pci_parent(&bus, 0, &drvs[0]), pci_parent(&bus, 1, &drvs[1])];
        // uuid -> (parent, type)
        let mut model: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
        for (p, op) in ops {
            match op {
                Op::Create { ty, uuid: u } => {
                    let units = |p: usize, m: &BTreeMap<u32, (usize, usize)>| -> u32 {
                        m.values().filter(|(q, _)| *q == p).map(|(_, t)| if p == 0 { 1 } else { *t as u32 + 1 }).sum()
                    };
                    let want = if model.contains_key(&u) {
                        Err(Errno::EXIST)
                    } else if p == 0 && units(0, &model) == 3 {
                        Err(Errno::USERS)
                    } else if p == 1 && units(1, &model) + ty as u32 + 1 > 3 {
                        Err(Errno::NOSPC)
                    } else {
                        Ok(())
                    };
                    let got = parents[p].types()[ty].create(uuid(u)).map(|_| ()).map_err(|e| e.errno());
                    prop_assert_eq!(got, want);
                    if want.is_ok() {
                        model.insert(u, (p, ty));
                    }
                }
                Op::Remove { uuid: u } => {
                    match bus.find(uuid(u)) {
                        Some(m) => {
                            prop_assert!(model.remove(&u).is_some());
                            m.remove().unwrap();
                            prop_assert_eq!(m.remove().unwrap_err().errno(), Errno::NODEV);
                        }
                        None => prop_assert!(!model.contains_key(&u)),
                    }
                }
            }
            let used0 = model.values().filter(|(q, _)| *q == 0).count() as u32;
            prop_assert_eq!(parents[0].types()[0].available_instances(), 3 - used0);
            prop_assert_eq!(parents[0].types()[1].available_instances(), 3 - used0);
            let mut listed: Vec<u32> = model.keys().copied().collect();
            listed.sort_by_key(|u| uuid(*u));
            let got: Vec<MdevUuid> = bus.devices().iter().map(|m| m.uuid()).collect();
            prop_assert_eq!(got, listed.into_iter().map(uuid).collect::<Vec<_>>());
        }
    }
}

#[test]
fn the_core_registers_every_mdev_with_the_isolation_its_driver_chose() {
    let bus = MdevBus::with_groups(Arc::new(SingletonGroups::new()));
    let drv = TestDriver::new(Accounting::MaxInstances(8));
    let parent = pci_parent(&bus, 0, &drv);
    let backed = parent.types()[0].create(uuid(1)).unwrap();
    let vendor = parent.types()[1].create(uuid(2)).unwrap();
    let reg = backed.registration().unwrap();
    assert_eq!(
        reg.isolation(),
        Isolation::IommuBacked {
            iommu_device: drv.backing,
            pasid: None
        }
    );
    assert_eq!(reg.group(), backed.group());
    let ops = backed.vfio_device().unwrap();
    assert!(std::ptr::addr_eq(Arc::as_ptr(reg.ops()), Arc::as_ptr(&ops)));
    assert_eq!(
        vendor.registration().unwrap().isolation(),
        Isolation::Emulated
    );

    // A PASID named from create makes it PASID-granular.
    *drv.on_create.lock() = Some(Box::new(|m: &Mdev| m.set_iommu_pasid(7)));
    let pasid = parent.types()[0].create(uuid(3)).unwrap();
    assert_eq!(pasid.iommu_pasid(), Some(7));
    assert_eq!(
        pasid.registration().unwrap().isolation(),
        Isolation::IommuBacked {
            iommu_device: drv.backing,
            pasid: Some(7)
        }
    );
    // A PASID without an IOMMU device: EINVAL, nothing left behind.
    let live = drv.live.load(Ordering::SeqCst);
    *drv.on_create.lock() = Some(Box::new(|m: &Mdev| m.set_iommu_pasid(7)));
    assert_eq!(errno(parent.types()[1].create(uuid(4))), Errno::INVAL);
    assert!(bus.find(uuid(4)).is_none());
    assert_eq!(drv.live.load(Ordering::SeqCst), live, "driver's remove ran");

    // Remove unregisters the registration before the driver's remove.
    let system = System::default_platform().unwrap();
    let ictx = Ictx::new(system.iommu.clone());
    let reg = vendor.registration().unwrap();
    reg.bind_iommufd(&ictx).unwrap();
    let seen = Arc::new(Mutex::new(None));
    let (s, r) = (seen.clone(), reg.clone());
    *drv.on_remove.lock() = Some(Box::new(move |_: &Mdev| {
        *s.lock() = Some(r.devid());
    }));
    vendor.remove().unwrap();
    assert_eq!(*seen.lock(), Some(None), "consumer unbound before remove");
    assert_eq!(
        reg.bind_iommufd(&ictx).unwrap_err().errno(),
        Errno::NODEV,
        "unregistered"
    );
}
