//! mdev-pci on the real default platform: the seed 004 lifecycle (bind by
//! new_id, the type named from the IDs, one instance counted by the
//! driver, unbind and rebind), the probe refusals, and a consumer driving
//! the wrapped function's DMA test device through the mdev.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_devices::dmatest::regs::*;
use umdev_devices::dmatest::{DmaTest, attach_dmatest};
use umdev_devices::mdev_pci::{MdevPci, type_name};
use umdev_iommufd::{Ictx, MapFlags};
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_pci::{Bdf, PciDev, PciDeviceId, PciDriver, SriovConfigure};
use umdev_testkit::irq::ToVfio;
use umdev_testkit::mdev_pci::{Rig, UUID_A};
use umdev_testkit::vfio::{msix_eventfd, r32, w32};
use umdev_testkit::{bdf, nvme};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{EventFd, IrqData, SetIrqs, irq, region};
use umdev_vfio::mdev::{MdevParent, MdevType, MdevUuid};
use umdev_vfio::registration::Isolation;

const UUID_B: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1004";
const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 64 << 10;
const FIXED: MapFlags = MapFlags::READABLE
    .union(MapFlags::WRITEABLE)
    .union(MapFlags::FIXED_IOVA);

fn uuid(s: &str) -> MdevUuid {
    s.parse().unwrap()
}

fn create_errno(t: &MdevType, u: &str) -> Errno {
    t.create(uuid(u)).unwrap_err().errno()
}

#[test]
fn seed_004_lifecycle() {
    let r = Rig::new();
    let p = &r.sys.platform;
    // b) unbind the original driver; c) new_id binds the now-free function.
    p.unbind("nvme", nvme()).unwrap();
    p.new_id(MdevPci::NAME, "8086 0953").unwrap();
    assert_eq!(p.driver_of(nvme()).unwrap().name, MdevPci::NAME);
    assert_eq!(r.drv.parents(), vec![nvme()]);
    // The same id again: EEXIST (new_id_store on a matching dynamic id).
    let again = p.new_id(MdevPci::NAME, "8086 0953").unwrap_err();
    assert_eq!(again.errno(), Errno::EXIST);
    // d) one type, named from vendor:device:subvendor:subdevice:class:rev
    // (the platform file gives 05:00.0 no subsystem IDs: the loader uses
    // the vendor and 0).
    let t = r.the_type(nvme());
    let ids = "8086:0953:8086:0000:010802:00";
    assert_eq!(type_name(&p.function(nvme()).unwrap()), ids);
    assert_eq!(t.name(), format!("mdev-pci-{ids}"));
    assert_eq!(t.pretty_name(), ids);
    assert_eq!(t.device_api(), "vfio-pci");
    assert_eq!(t.available_instances(), 1);
    // e) create with a UUID (newline-terminated, as echo writes it).
    let line = format!("{UUID_A}\n");
    assert_eq!(t.create_store(line.as_bytes()).unwrap(), 37);
    let mdev = r.bus.find(uuid(UUID_A)).unwrap();
    assert_eq!(mdev.iommu_device(), Some(nvme()), "RID-granular backing");
    assert_ne!(Some(mdev.group()), p.iommu_group(nvme()));
    assert_eq!(t.available_instances(), 0);
    assert_eq!(t.devices(), vec![uuid(UUID_A)]);
    // Past the one instance: the driver's ENOSPC, nothing left behind.
    assert_eq!(create_errno(&t, UUID_B), Errno::NOSPC);
    assert_eq!(r.bus.devices().len(), 1);
    assert_eq!(t.available_instances(), 0);
    // g) remove gives the instance back.
    assert_eq!(mdev.remove_store(b"1\n").unwrap(), 2);
    assert!(r.bus.find(uuid(UUID_A)).is_none());
    assert!(r.drv.vfio_device(&mdev).is_none());
    assert_eq!(t.available_instances(), 1);
    let mdev = t.create(uuid(UUID_B)).unwrap();
    let vfio = r.drv.vfio_device(&mdev).unwrap();
    // Unbinding the parent unregisters it: its mdev goes.
    let parent: Arc<MdevParent> = r.drv.parent(nvme()).unwrap();
    p.unbind(MdevPci::NAME, nvme()).unwrap();
    assert!(!parent.is_registered());
    assert!(r.bus.find(uuid(UUID_B)).is_none());
    assert!(r.bus.parents().is_empty());
    assert!(r.drv.parents().is_empty());
    let ictx = Ictx::new(r.sys.iommu.clone());
    let gone = vfio.bind_iommufd(&ictx).unwrap_err();
    assert_eq!(
        gone.errno(),
        Errno::NODEV,
        "the mdev's VFIO device went too"
    );
    // And the function can be bound again (the dynamic id still matches).
    p.bind(MdevPci::NAME, nvme()).unwrap();
    let t = r.the_type(nvme());
    assert_eq!(t.available_instances(), 1);
    t.create(uuid(UUID_A)).unwrap();
    assert_eq!(t.available_instances(), 0);
    // Unregistering the driver unbinds it too.
    p.unregister_driver(MdevPci::NAME).unwrap();
    assert!(r.bus.devices().is_empty());
}

#[test]
fn probe_refuses_a_non_normal_header_with_einval() {
    let r = Rig::new();
    let p = &r.sys.platform;
    let bridge = bdf("0000:08:00.0");
    assert_eq!(r.bind_override(bridge), Err(Errno::INVAL));
    assert!(p.driver_of(bridge).is_none());
    assert!(r.drv.parent(bridge).is_none());
    assert!(r.bus.parents().is_empty());
    // new_id ignores probe failures (driver_attach): success, still unbound.
    p.set_driver_override(bridge, "").unwrap();
    p.new_id(MdevPci::NAME, "104c 8240").unwrap();
    assert!(p.driver_of(bridge).is_none());
    assert!(r.bus.parents().is_empty());
}

/// Linux's pci-pf-stub: `pci_sriov_configure_simple` and no remove, so
/// unbinding it leaves the VFs enabled (`pci_iov_remove` only warns).
/// i40e, the PF's own driver, disables its VFs on remove, so a PF with VFs
/// enabled and no driver is reached only this way.
struct PfStub;

impl PciDriver for PfStub {
    fn name(&self) -> &str {
        "pci-pf-stub"
    }

    fn driver_managed_dma(&self) -> bool {
        false
    }

    fn id_table(&self) -> Vec<PciDeviceId> {
        Vec::new()
    }

    fn probe(&self, _: &PciDev<'_>) -> Result<(), Errno> {
        Ok(())
    }

    fn remove(&self, _: &PciDev<'_>) {}

    fn sriov_configure(&self) -> Option<&dyn SriovConfigure> {
        Some(self)
    }
}

impl SriovConfigure for PfStub {
    fn configure(&self, dev: &PciDev<'_>, num_vfs: u16) -> Result<u16, Errno> {
        if num_vfs == 0 {
            dev.disable_sriov();
        } else {
            dev.enable_sriov(num_vfs).map_err(|e| e.errno())?;
        }
        Ok(num_vfs)
    }
}

#[test]
fn probe_refuses_a_pf_with_vfs_enabled_with_ebusy() {
    let r = Rig::new();
    let p = &r.sys.platform;
    let pf = bdf("0000:07:00.0");
    p.unbind("i40e", pf).unwrap();
    p.register_driver(Arc::new(PfStub)).unwrap();
    p.set_driver_override(pf, "pci-pf-stub").unwrap();
    p.bind("pci-pf-stub", pf).unwrap();
    p.set_sriov_numvfs(pf, 2).unwrap();
    p.unbind("pci-pf-stub", pf).unwrap();
    assert_eq!(p.sriov_numvfs(pf).unwrap(), 2, "VFs outlive pci-pf-stub");
    assert_eq!(r.bind_override(pf), Err(Errno::BUSY));
    assert!(p.driver_of(pf).is_none());
    assert!(r.bus.parents().is_empty());
    // With the VFs disabled the same PF binds.
    p.set_driver_override(pf, "pci-pf-stub").unwrap();
    p.bind("pci-pf-stub", pf).unwrap();
    p.set_sriov_numvfs(pf, 0).unwrap();
    p.unbind("pci-pf-stub", pf).unwrap();
    r.bind_override(pf).unwrap();
    assert_eq!(
        r.the_type(pf).pretty_name(),
        "8086:1572:8086:0000:020000:02"
    );
}

fn model(models: &[Arc<DmaTest>], dev: Bdf) -> Arc<DmaTest> {
    models.iter().find(|m| m.bdf() == dev).unwrap().clone()
}

#[test]
fn consumer_dma_through_the_mdev_lands_in_its_memory() {
    let r = Rig::new();
    let models = attach_dmatest(&r.sys);
    let mdev = r.nvme_mdev();
    let vfio = r.drv.vfio_device(&mdev).unwrap();
    let expected = Isolation::IommuBacked {
        iommu_device: nvme(),
        pasid: None,
    };
    assert_eq!(vfio.isolation(), expected);
    assert_eq!(vfio.group(), mdev.group());
    let pci = r.drv.pci_device(&mdev).unwrap();
    model(&models, nvme()).set_interrupts(Some(Arc::new(ToVfio(pci))));
    // The consumer binds the mdev: the wrapped function's group is owned.
    let ictx = Ictx::new(r.sys.iommu.clone());
    vfio.bind_iommufd(&ictx).unwrap();
    let ioas = ictx.ioas_alloc().unwrap();
    vfio.attach_ioas(ioas).unwrap();
    let group = r.sys.iommu.device_group(nvme()).unwrap();
    assert!(!Arc::ptr_eq(&group.domain(), &group.default_domain()));
    let mem = r.sys.vtd.memory().alloc_anonymous(WINDOW).unwrap();
    ictx.ioas_map(ioas, FIXED, &mem, 0, WINDOW, IOVA).unwrap();
    // A second consumer cannot take the device.
    let other = Ictx::new(r.sys.iommu.clone());
    assert_eq!(vfio.bind_iommufd(&other).unwrap_err().errno(), Errno::BUSY);
    // Config and BAR 0 pass through to the function.
    let ops = vfio.ops().as_ref();
    assert_eq!(r32(ops, region::CONFIG, 0), 0x0953_8086);
    let cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    let n = ops.region_write(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes());
    assert_eq!(n.unwrap(), 2);
    assert_eq!(r32(ops, region::BAR0, DMATEST_ID), DMATEST_ID_VALUE);
    let fd = msix_eventfd(ops);
    let src: Vec<u8> = (0..12345u32).map(|i| (i * 13 % 251) as u8).collect();
    mem.write(0, &src).unwrap();
    w32(ops, region::BAR0, DMATEST_SRC_LO, IOVA as u32);
    w32(ops, region::BAR0, DMATEST_SRC_HI, 0);
    w32(ops, region::BAR0, DMATEST_DST_LO, (IOVA + 0x8000) as u32);
    w32(ops, region::BAR0, DMATEST_DST_HI, 0);
    w32(ops, region::BAR0, DMATEST_LEN, src.len() as u32);
    w32(ops, region::BAR0, DMATEST_IRQ_CTRL, 1);
    let go = DMATEST_OP_COPY | DMATEST_CMD_START;
    w32(ops, region::BAR0, DMATEST_CMD, go);
    assert_eq!(r32(ops, region::BAR0, DMATEST_STATUS), DMATEST_STATUS_DONE);
    let mut dst = vec![0; src.len()];
    mem.read(0x8000, &mut dst).unwrap();
    assert_eq!(dst, src, "the copy went through the consumer's IOAS");
    assert_eq!(fd.take(), 1, "MSI-X vector 0 fired through the mdev");
    // Removing the mdev unbinds the consumer and the group returns to its
    // default domain.
    mdev.remove().unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    assert_eq!(vfio.bind_iommufd(&ictx).unwrap_err().errno(), Errno::NODEV);
}

#[test]
fn racing_creates_take_the_one_instance_once() {
    let r = Rig::new();
    r.sys.platform.unbind("nvme", nvme()).unwrap();
    r.bind_override(nvme()).unwrap();
    let t = r.the_type(nvme());
    let results: Vec<Result<(), Errno>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u32)
            .map(|i| {
                let t = t.clone();
                s.spawn(move || {
                    let u = format!("{i:08x}-0000-4000-8000-000000000001");
                    t.create(uuid(&u)).map(drop).map_err(|e| e.errno())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Errno::NOSPC)))
    );
    assert_eq!(r.bus.devices().len(), 1);
    assert_eq!(t.available_instances(), 0);
}

#[test]
fn mdevs_of_one_shared_group_follow_the_wrapped_group_rules() {
    let r = Rig::new();
    let p = &r.sys.platform;
    let gpu = bdf("0000:06:00.0");
    let audio = bdf("0000:06:00.1");
    assert_eq!(p.iommu_group(gpu), p.iommu_group(audio));
    p.unbind("nouveau", gpu).unwrap();
    p.unbind("snd_hda_intel", audio).unwrap();
    r.bind_override(gpu).unwrap();
    r.bind_override(audio).unwrap();
    let gpu_mdev = r.the_type(gpu).create(uuid(UUID_A)).unwrap();
    let audio_mdev = r.the_type(audio).create(uuid(UUID_B)).unwrap();
    // Each mdev has its own singleton group number...
    assert_ne!(gpu_mdev.group(), audio_mdev.group());
    let gpu_dev = r.drv.vfio_device(&gpu_mdev).unwrap();
    let audio_dev = r.drv.vfio_device(&audio_mdev).unwrap();
    // ...but binding owns the wrapped functions' shared group: another
    // consumer is refused the second one with EBUSY (the backing group is
    // busy; the raw ownership claim would say EPERM).
    let a = Ictx::new(r.sys.iommu.clone());
    let b = Ictx::new(r.sys.iommu.clone());
    gpu_dev.bind_iommufd(&a).unwrap();
    let err = audio_dev.bind_iommufd(&b).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    // The owner may bind both.
    audio_dev.bind_iommufd(&a).unwrap();
    audio_dev.unbind().unwrap();
    gpu_dev.unbind().unwrap();
    // Released: now the other consumer may have it.
    audio_dev.bind_iommufd(&b).unwrap();
}

#[test]
fn shared_group_7_in_two_consumers_is_ebusy_and_the_domain_is_recorded() {
    let r = Rig::new();
    let p = &r.sys.platform;
    let (nic0, nic1) = (bdf("0000:04:00.0"), bdf("0000:04:00.1"));
    assert_eq!(p.iommu_group(nic0), Some(7));
    assert_eq!(p.iommu_group(nic1), Some(7));
    for nic in [nic0, nic1] {
        p.unbind("igb", nic).unwrap();
    }
    p.new_id(MdevPci::NAME, "8086 1521").unwrap();
    let m0 = r.the_type(nic0).create(uuid(UUID_A)).unwrap();
    let m1 = r.the_type(nic1).create(uuid(UUID_B)).unwrap();
    let (d0, d1) = (m0.registration().unwrap(), m1.registration().unwrap());
    assert_eq!(
        d0.isolation(),
        Isolation::IommuBacked {
            iommu_device: nic0,
            pasid: None
        }
    );
    let a = Ictx::new(r.sys.iommu.clone());
    let b = Ictx::new(r.sys.iommu.clone());
    let ioas = a.ioas_alloc().unwrap();
    d0.bind_iommufd(&a).unwrap();
    assert!(m0.iommu_domain().is_none());
    let hwpt = d0.attach_ioas(ioas).unwrap();
    let domain = a.hwpt_domain(hwpt).unwrap();
    assert!(Arc::ptr_eq(&m0.iommu_domain().unwrap(), &domain));
    assert_eq!(d1.bind_iommufd(&b).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(d1.devid(), None);
    // Removing the bound mdev asks its consumer (REQ) and unbinds it.
    let ops = d0.ops().clone();
    let req = EventFd::new().unwrap();
    let info = ops.irq_info(irq::REQ).unwrap();
    let data = IrqData::Eventfd(vec![Some(req.try_clone().unwrap())]);
    let set = SetIrqs::validate(
        ops.info().num_irqs,
        &info,
        DATA_EVENTFD | ACTION_TRIGGER,
        0,
        1,
        data,
    );
    ops.set_irqs(set.unwrap()).unwrap();
    m0.remove().unwrap();
    assert_eq!(req.take(), 1, "REQ signalled before the unbind");
    assert_eq!(d0.devid(), None);
    assert!(m0.iommu_domain().is_none(), "detached with the unbind");
    // The group is free: the other consumer gets the other function.
    d1.bind_iommufd(&b).unwrap();
}
