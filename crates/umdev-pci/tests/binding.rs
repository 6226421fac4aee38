//! Driver binding with Linux's errnos, DMA ownership through the IOMMU
//! hooks, and SR-IOV configuration.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_pci::{PciDeviceId, Platform};
use umdev_testkit::bdf;
use umdev_testkit::pci::{Event, SriovMode, TestDriver, hook};

/// The default platform with start-up drivers bound.
fn platform() -> Platform {
    let p = Platform::default_platform().unwrap();
    p.bind_startup_drivers().unwrap();
    p
}

const NVME: &str = "0000:05:00.0";
const DSA: &str = "0000:01:00.0";

fn errno<T: std::fmt::Debug>(r: Result<T, umdev_pci::PciError>) -> Errno {
    r.unwrap_err().errno()
}

#[test]
fn bind_errnos() {
    let p = platform();
    let nvme = bdf(NVME);
    // No such device, no such driver.
    assert_eq!(errno(p.bind("nvme", bdf("0000:0a:00.0"))), Errno::NODEV);
    assert_eq!(errno(p.bind("nope", nvme)), Errno::NODEV);
    // Already bound, and the driver matches: EBUSY.
    assert_eq!(errno(p.bind("nvme", nvme)), Errno::BUSY);
    // Already bound but the driver does not match: the match test comes
    // first, ENODEV.
    assert_eq!(errno(p.bind("idxd", nvme)), Errno::NODEV);
    p.unbind("nvme", nvme).unwrap();
    assert_eq!(errno(p.bind("idxd", nvme)), Errno::NODEV);
    // pci-stub has no ids at all.
    assert_eq!(errno(p.bind("pci-stub", nvme)), Errno::NODEV);
    p.bind("nvme", nvme).unwrap();
    assert_eq!(p.driver_of(nvme).unwrap().name, "nvme");
}

#[test]
fn probe_errors_pass_through_and_leave_the_device_unbound() {
    let p = platform();
    let m = hook(&p);
    let d = TestDriver::new("flaky", false, vec![PciDeviceId::device(0x8086, 0x0953)]).arc();
    *d.probe_result.lock() = Err(Errno::IO);
    p.register_driver(d.clone()).unwrap();
    let nvme = bdf(NVME);
    p.unbind("nvme", nvme).unwrap();
    m.clear();
    assert_eq!(errno(p.bind("flaky", nvme)), Errno::IO);
    assert!(p.driver_of(nvme).is_none());
    // The DMA-API driver took the default domain and gave it back.
    assert_eq!(m.events(), vec![Event::Use(nvme), Event::Unuse(nvme)]);
    // During probe the device already looked bound (local_pci_probe sets
    // pci_dev->driver first) and config space was readable.
    assert_eq!(
        d.seen.lock().as_slice(),
        [format!("{nvme} 8086 Some(\"flaky\") Some(\"flaky\")")]
    );
}

#[test]
fn unbind_errnos_and_remove() {
    let p = platform();
    let m = hook(&p);
    let d = TestDriver::new("mine", false, vec![PciDeviceId::device(0x8086, 0x0953)]).arc();
    p.register_driver(d.clone()).unwrap();
    let nvme = bdf(NVME);
    assert_eq!(
        errno(p.unbind("mine", nvme)),
        Errno::NODEV,
        "bound to nvme, not mine"
    );
    assert_eq!(errno(p.unbind("nvme", bdf("0000:0a:00.0"))), Errno::NODEV);
    m.clear();
    p.unbind("nvme", nvme).unwrap();
    assert_eq!(
        errno(p.unbind("nvme", nvme)),
        Errno::NODEV,
        "not bound any more"
    );
    p.bind("mine", nvme).unwrap();
    p.unbind("mine", nvme).unwrap();
    assert_eq!(d.removed.lock().as_slice(), [nvme]);
    assert_eq!(
        m.events(),
        vec![Event::Unuse(nvme), Event::Use(nvme), Event::Unuse(nvme)]
    );
}

#[test]
fn dma_api_driver_cannot_probe_a_user_owned_group() {
    let p = platform();
    let m = hook(&p);
    let g = p.iommu_group(bdf("0000:04:00.0")).unwrap();
    let (f0, f1) = (bdf("0000:04:00.0"), bdf("0000:04:00.1"));
    p.unbind("igb", f0).unwrap();
    p.unbind("igb", f1).unwrap();
    m.own_group(g);
    m.clear();
    // igb uses the DMA API: EBUSY, and the device stays unbound.
    assert_eq!(errno(p.bind("igb", f0)), Errno::BUSY);
    assert!(p.driver_of(f0).is_none());
    // drivers_probe stops on the ownership error too.
    assert_eq!(errno(p.drivers_probe(f0)), Errno::BUSY);
    // A driver_managed_dma driver binds fine (pci-stub via new_id).
    p.new_id("pci-stub", "8086 1521").unwrap();
    assert_eq!(p.driver_of(f0).unwrap().name, "pci-stub");
    assert_eq!(p.driver_of(f1).unwrap().name, "pci-stub");
    assert!(p.driver_of(f0).unwrap().driver_managed_dma);
    // The port in the same group keeps pcieport (driver_managed_dma).
    assert_eq!(p.driver_of(bdf("0000:03:00.0")).unwrap().name, "pcieport");
    assert!(!m.events().iter().any(|e| matches!(e, Event::Use(_))));
}

#[test]
fn hooks_see_every_function_and_existing_dma_api_users() {
    let p = platform();
    let m = hook(&p);
    let events = m.events();
    let probes: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Probe(..)))
        .collect();
    assert_eq!(probes.len(), p.functions().len());
    assert_eq!(probes[0], &Event::Probe(bdf("0000:00:01.0"), 0));
    // Functions already bound to DMA-API drivers are reported as users;
    // pcieport devices and the driverless bridge are not.
    assert!(events.contains(&Event::Use(bdf(DSA))));
    assert!(!events.contains(&Event::Use(bdf("0000:00:01.0"))));
    assert!(!events.contains(&Event::Use(bdf("0000:08:00.0"))));
    // Every Use comes after all probes.
    let first_use = events
        .iter()
        .position(|e| matches!(e, Event::Use(_)))
        .unwrap();
    assert_eq!(first_use, probes.len());
}

#[test]
fn driver_override_semantics() {
    let p = platform();
    let nvme = bdf(NVME);
    p.unbind("nvme", nvme).unwrap();
    // Only the named driver matches, even without ids.
    p.set_driver_override(nvme, "pci-stub\n").unwrap();
    assert_eq!(
        p.driver_override(nvme).unwrap().as_deref(),
        Some("pci-stub")
    );
    assert_eq!(errno(p.bind("nvme", nvme)), Errno::NODEV);
    p.bind("pci-stub", nvme).unwrap();
    p.unbind("pci-stub", nvme).unwrap();
    // Text stops at the first newline; "\n" and "" clear.
    p.set_driver_override(nvme, "nvme\nextra").unwrap();
    assert_eq!(p.driver_override(nvme).unwrap().as_deref(), Some("nvme"));
    p.set_driver_override(nvme, "\n").unwrap();
    assert_eq!(p.driver_override(nvme).unwrap(), None);
    p.set_driver_override(nvme, "x").unwrap();
    p.set_driver_override(nvme, "").unwrap();
    assert_eq!(p.driver_override(nvme).unwrap(), None);
    // len >= PAGE_SIZE - 1 is EINVAL; one byte less is accepted.
    assert_eq!(
        errno(p.set_driver_override(nvme, &"a".repeat(4095))),
        Errno::INVAL
    );
    p.set_driver_override(nvme, &"a".repeat(4094)).unwrap();
    assert_eq!(
        errno(p.set_driver_override(bdf("0000:0a:00.0"), "x")),
        Errno::NODEV
    );
}

#[test]
fn override_only_ids_match_through_driver_override() {
    let p = platform();
    let mut any = PciDeviceId::device(0xffff, 0xffff);
    any.vendor = !0;
    any.device = !0;
    any.override_only = true;
    p.register_driver(TestDriver::new("vfio-pci", true, vec![any]).arc())
        .unwrap();
    let nvme = bdf(NVME);
    p.unbind("nvme", nvme).unwrap();
    assert_eq!(errno(p.bind("vfio-pci", nvme)), Errno::NODEV);
    p.set_driver_override(nvme, "vfio-pci").unwrap();
    // drivers_probe offers the device to every driver; only vfio-pci
    // matches now.
    p.drivers_probe(nvme).unwrap();
    assert_eq!(p.driver_of(nvme).unwrap().name, "vfio-pci");
}

#[test]
fn new_id_and_remove_id() {
    let p = platform();
    let nvme = bdf(NVME);
    assert_eq!(errno(p.new_id("pci-stub", "8086")), Errno::INVAL);
    assert_eq!(errno(p.new_id("nope", "8086 0953")), Errno::NODEV);
    // The seed recipe: unbind, then new_id binds the now-unbound device.
    p.unbind("nvme", nvme).unwrap();
    p.new_id("pci-stub", "8086 0953\n").unwrap();
    assert_eq!(p.driver_of(nvme).unwrap().name, "pci-stub");
    assert_eq!(errno(p.new_id("pci-stub", "8086 0953")), Errno::EXIST);
    let stub = p
        .drivers()
        .into_iter()
        .find(|d| d.name == "pci-stub")
        .unwrap();
    assert_eq!(stub.dynamic_ids, vec![PciDeviceId::device(0x8086, 0x0953)]);
    // A static id already matching is EEXIST too.
    assert_eq!(
        errno(p.new_id("nvme", "8086 0953 ffffffff ffffffff 010802")),
        Errno::EXIST
    );
    // driver_data must belong to a static entry of a driver with a table.
    assert_eq!(
        errno(p.new_id("idxd", "8086 0b26 ffffffff ffffffff 0 0 1")),
        Errno::INVAL
    );
    p.new_id("idxd", "8086 0b26 ffffffff ffffffff 0 0 0")
        .unwrap();
    // remove_id: ENODEV when absent, EINVAL when short; bound devices stay.
    assert_eq!(errno(p.remove_id("pci-stub", "8086 1234")), Errno::NODEV);
    assert_eq!(errno(p.remove_id("pci-stub", "8086")), Errno::INVAL);
    p.remove_id("pci-stub", "8086 0953").unwrap();
    assert_eq!(p.driver_of(nvme).unwrap().name, "pci-stub");
    assert_eq!(errno(p.remove_id("pci-stub", "8086 0953")), Errno::NODEV);
}

#[test]
fn drivers_probe_binds_the_first_matching_driver() {
    let p = platform();
    let nvme = bdf(NVME);
    assert_eq!(errno(p.drivers_probe(bdf("0000:0a:00.0"))), Errno::NODEV);
    p.unbind("nvme", nvme).unwrap();
    let failing = TestDriver::new("aaa", false, vec![PciDeviceId::device(0x8086, 0x0953)]).arc();
    *failing.probe_result.lock() = Err(Errno::NXIO);
    // nvme (registered first) wins.
    p.register_driver(failing.clone()).unwrap();
    p.drivers_probe(nvme).unwrap();
    assert_eq!(p.driver_of(nvme).unwrap().name, "nvme");
    // With nvme gone, the failing driver's probe error is skipped and the
    // device stays unbound without an error.
    p.unregister_driver("nvme").unwrap();
    assert!(p.driver_of(nvme).is_none());
    p.drivers_probe(nvme).unwrap();
    assert!(p.driver_of(nvme).is_none());
    assert_eq!(
        failing.probed.lock().len(),
        2,
        "register_driver tried it too"
    );
    // A bound device is left alone.
    p.drivers_probe(bdf(DSA)).unwrap();
    assert_eq!(p.driver_of(bdf(DSA)).unwrap().name, "idxd");
}

#[test]
fn register_and_unregister_drivers() {
    let p = platform();
    let dup = TestDriver::new("nvme", false, vec![]).arc();
    assert_eq!(errno(p.register_driver(dup)), Errno::EXIST);
    assert_eq!(errno(p.unregister_driver("nope")), Errno::NODEV);
    // Registering autoprobes unbound matching devices only.
    let d = TestDriver::new("dsa2", false, vec![PciDeviceId::device(0x8086, 0x0b25)]).arc();
    p.register_driver(d.clone()).unwrap();
    assert!(d.probed.lock().is_empty(), "01:00.0 is bound to idxd");
    p.unregister_driver("idxd").unwrap();
    assert!(p.driver_of(bdf(DSA)).is_none());
    p.drivers_probe(bdf(DSA)).unwrap();
    assert_eq!(p.driver_of(bdf(DSA)).unwrap().name, "dsa2");
    p.unregister_driver("dsa2").unwrap();
    assert_eq!(d.removed.lock().as_slice(), [bdf(DSA)]);
    assert!(p.drivers().iter().all(|d| d.name != "dsa2"));
}

#[test]
fn sriov_numvfs_errnos() {
    let p = platform();
    let pf = bdf("0000:07:00.0");
    // Not a PF: no sriov_numvfs attribute.
    assert_eq!(errno(p.set_sriov_numvfs(bdf(NVME), 1)), Errno::NOENT);
    assert_eq!(errno(p.sriov_numvfs(bdf(NVME))), Errno::NOENT);
    assert_eq!(errno(p.set_sriov_numvfs(pf, 5)), Errno::RANGE);
    // No change succeeds before the driver is looked at.
    p.unbind("i40e", pf).unwrap();
    p.set_sriov_numvfs(pf, 0).unwrap();
    assert_eq!(errno(p.set_sriov_numvfs(pf, 2)), Errno::NOENT, "no driver");
    // A driver without sriov_configure.
    p.new_id("pci-stub", "8086 1572").unwrap();
    assert_eq!(p.driver_of(pf).unwrap().name, "pci-stub");
    assert_eq!(errno(p.set_sriov_numvfs(pf, 2)), Errno::NOENT);
    p.unbind("pci-stub", pf).unwrap();
    p.bind("i40e", pf).unwrap();
    p.set_sriov_numvfs(pf, 2).unwrap();
    p.set_sriov_numvfs(pf, 2).unwrap();
    // Changing the count needs a disable first.
    assert_eq!(errno(p.set_sriov_numvfs(pf, 3)), Errno::BUSY);
    p.set_sriov_numvfs(pf, 0).unwrap();
    p.set_sriov_numvfs(pf, 3).unwrap();
    let info = p.function(pf).unwrap();
    assert!(info.is_physfn());
    assert_eq!(info.num_vfs, 3);
    // i40e disables its VFs when it is unbound.
    p.unbind("i40e", pf).unwrap();
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 0);
    assert!(p.function(bdf("0000:07:02.0")).is_none());
}

#[test]
fn sriov_configure_errors_pass_through() {
    let p = platform();
    let pf = bdf("0000:07:00.0");
    p.unbind("i40e", pf).unwrap();
    let mut d = TestDriver::new("pfdrv", false, vec![PciDeviceId::device(0x8086, 0x1572)]);
    d.sriov = Some(SriovMode::Fail(Errno::NOMEM));
    p.register_driver(Arc::new(d)).unwrap();
    assert_eq!(p.driver_of(pf).unwrap().name, "pfdrv");
    assert_eq!(errno(p.set_sriov_numvfs(pf, 1)), Errno::NOMEM);
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 0);
}

#[test]
fn disabling_vfs_unbinds_their_drivers_first() {
    let p = platform();
    let m = hook(&p);
    let pf = bdf("0000:07:00.0");
    p.unregister_driver("iavf").unwrap();
    let vfd = TestDriver::new("vfdrv", true, vec![PciDeviceId::device(0x8086, 0x154c)]).arc();
    p.register_driver(vfd.clone()).unwrap();
    p.set_sriov_numvfs(pf, 2).unwrap();
    let vfs = [bdf("0000:07:02.0"), bdf("0000:07:02.1")];
    assert_eq!(vfd.probed.lock().as_slice(), vfs);
    m.clear();
    p.set_sriov_numvfs(pf, 0).unwrap();
    assert_eq!(vfd.removed.lock().as_slice(), vfs);
    assert_eq!(
        m.events(),
        vec![Event::Release(vfs[0]), Event::Release(vfs[1])]
    );
    assert_eq!(errno(p.bind("vfdrv", vfs[0])), Errno::NODEV);
}

#[test]
fn concurrent_binding_and_queries_do_not_deadlock() {
    let p = Arc::new(platform());
    let _m = hook(&p);
    let nics = [
        bdf("0000:04:00.0"),
        bdf("0000:04:00.1"),
        bdf(NVME),
        bdf(DSA),
    ];
    let drivers = ["igb", "igb", "nvme", "idxd"];
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = p.clone();
            s.spawn(move || {
                for _ in 0..200 {
                    let (b, d) = (nics[t], drivers[t]);
                    p.unbind(d, b).unwrap();
                    p.bind(d, b).unwrap();
                }
            });
        }
        let p2 = p.clone();
        s.spawn(move || {
            for _ in 0..200 {
                let _ = p2.set_sriov_numvfs(bdf("0000:07:00.0"), 4);
                let _ = p2.set_sriov_numvfs(bdf("0000:07:00.0"), 0);
            }
        });
        for _ in 0..2 {
            let p = p.clone();
            s.spawn(move || {
                for _ in 0..500 {
                    for b in p.functions() {
                        let _ = p.function(b);
                        let _ = p.driver_of(b);
                    }
                    let _ = p.iommu_groups();
                    let _ = p.describe();
                }
            });
        }
    });
    for (b, d) in nics.iter().zip(drivers) {
        assert_eq!(p.driver_of(*b).unwrap().name, d);
    }
    assert_eq!(p.sriov_numvfs(bdf("0000:07:00.0")).unwrap(), 0);
    assert_eq!(p.iommu_groups().len(), 13);
}

/// A PF driver that enables VFs from its probe, as drivers with a
/// `max_vfs` parameter do.
struct EnableInProbe {
    num_vfs: u16,
    result: parking_lot::Mutex<Option<Result<(), Errno>>>,
}

impl umdev_pci::PciDriver for EnableInProbe {
    fn name(&self) -> &str {
        "enabler"
    }

    fn driver_managed_dma(&self) -> bool {
        false
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        Vec::new()
    }

    fn probe(&self, dev: &umdev_pci::PciDev<'_>) -> Result<(), Errno> {
        let r = dev.enable_sriov(self.num_vfs).map_err(|e| e.errno());
        *self.result.lock() = Some(r);
        Ok(())
    }

    fn remove(&self, dev: &umdev_pci::PciDev<'_>) {
        dev.disable_sriov();
    }
}

#[test]
fn pci_enable_sriov_errnos_from_probe() {
    let p = platform();
    let pf = bdf("0000:07:00.0");
    p.unbind("i40e", pf).unwrap();
    p.unbind("nvme", bdf(NVME)).unwrap();
    let run = |target: &str, num_vfs: u16| {
        let d = Arc::new(EnableInProbe {
            num_vfs,
            result: parking_lot::Mutex::new(None),
        });
        p.register_driver(d.clone()).unwrap();
        p.set_driver_override(bdf(target), "enabler").unwrap();
        p.bind("enabler", bdf(target)).unwrap();
        let r = d.result.lock().take().unwrap();
        p.unbind("enabler", bdf(target)).unwrap();
        p.set_driver_override(bdf(target), "").unwrap();
        p.unregister_driver("enabler").unwrap();
        r
    };
    assert_eq!(run(NVME, 1), Err(Errno::NOSYS), "not a PF");
    assert_eq!(run("0000:07:00.0", 5), Err(Errno::INVAL), "above TotalVFs");
    assert_eq!(run("0000:07:00.0", 0), Ok(()));
    // VFs created inside probe get groups and drivers at once; remove
    // disabled them again.
    assert_eq!(run("0000:07:00.0", 2), Ok(()));
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 0);
    assert!(p.function(bdf("0000:07:02.0")).is_none());
}

#[test]
fn platform_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Platform>();
    check::<umdev_pci::PciError>();
}
