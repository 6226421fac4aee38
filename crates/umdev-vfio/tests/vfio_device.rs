//! The registration kinds of a VFIO device and their iommufd binding: an
//! emulated device (singleton group, DMA through an iommufd access whose
//! unmaps reach the device), an mdev backed by its parent's IOMMU at RID
//! granularity (EBUSY while another consumer owns the backing group), and
//! at PASID granularity (no ownership claimed, the PASID attached).

use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommufd::access::Access;
use umdev_iommufd::{HwptAllocFlags, HwptData, Ictx};
use umdev_pci::Bdf;
use umdev_testkit::vfio::{IOVA, Rig, WINDOW};
use umdev_vfio::device::{
    DeviceFlags, DeviceInfo, IrqInfo, OpenContext, RegionInfo, SetIrqs, VfioDeviceOps, VfioError,
};
use umdev_vfio::mdev::{SINGLETON_GROUP_BASE, SingletonGroups};
use umdev_vfio::registration::{Isolation, VfioDevice};

const PAGE: u64 = 4096;

/// A device with no regions or IRQs that records its lifecycle and pins
/// pages through its access like an emulated device does.
#[derive(Default)]
struct Mock {
    refuse_open: Option<Errno>,
    access: Mutex<Option<Arc<Access>>>,
    opens: Mutex<u32>,
    closes: Mutex<u32>,
    unmaps: Mutex<Vec<(u64, u64)>>,
}

impl VfioDeviceOps for Mock {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            flags: DeviceFlags::empty(),
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

    fn open_device(&self, ctx: &OpenContext) -> Result<(), VfioError> {
        if let Some(errno) = self.refuse_open {
            return Err(VfioError::Errno {
                what: "refused",
                errno,
            });
        }
        *self.opens.lock() += 1;
        *self.access.lock() = ctx.access.clone();
        Ok(())
    }

    fn close_device(&self) {
        *self.closes.lock() += 1;
        *self.access.lock() = None;
    }

    fn pins_pages(&self) -> bool {
        true
    }

    fn dma_unmap(&self, iova: u64, length: u64) {
        self.unmaps.lock().push((iova, length));
        if let Some(a) = self.access.lock().as_ref() {
            a.unpin_pages(IOVA, PAGE);
        }
    }
}

/// Held by every test that takes numbers from the process-wide singleton
/// group allocator, so that a number one test frees is not taken by a
/// test running in parallel before the first checks it went back.
static GLOBAL_GROUPS: Mutex<()> = Mutex::new(());

#[test]
fn emulated_device_reaches_memory_through_its_access() {
    let _global = GLOBAL_GROUPS.lock();
    let r = Rig::new();
    let mock = Arc::new(Mock::default());
    let dev = VfioDevice::new_emulated(mock.clone()).unwrap();
    let other = VfioDevice::new_emulated(Arc::new(Mock::default())).unwrap();
    assert_eq!(dev.isolation(), Isolation::Emulated);
    assert_ne!(dev.group(), other.group(), "each its own group");
    assert!(
        r.sys
            .platform
            .iommu_groups()
            .keys()
            .all(|&g| g != dev.group())
    );
    let devid = dev.bind_iommufd(&r.ictx).unwrap();
    let access = mock.access.lock().clone().expect("opened with the access");
    assert_eq!(access.id(), devid);
    assert_eq!(*mock.opens.lock(), 1);
    // Attach only to an IOAS: the id answers.
    assert_eq!(dev.attach_ioas(r.ioas).unwrap(), r.ioas);
    assert_eq!(access.ioas_id(), Some(r.ioas));
    let mut msg = *b"through the access";
    access.rw(IOVA + 0x100, &mut msg, true).unwrap();
    let mut back = [0; 18];
    r.mem.read(0x100, &mut back).unwrap();
    assert_eq!(&back, b"through the access");
    // A pinned page being unmapped: the device's dma_unmap unpins.
    access.pin_pages(IOVA, PAGE, true).unwrap();
    assert_eq!(r.ictx.ioas_unmap(r.ioas, IOVA, WINDOW).unwrap(), WINDOW);
    assert_eq!(*mock.unmaps.lock(), vec![(IOVA, WINDOW)]);
    // Unbinding closes the device and destroys the access.
    dev.unbind().unwrap();
    assert_eq!(*mock.closes.lock(), 1);
    assert!(r.ictx.objects().iter().all(|&(id, _)| id != devid));
}

#[test]
fn emulated_bind_attach_errnos() {
    let _global = GLOBAL_GROUPS.lock();
    let r = Rig::new();
    let dev = VfioDevice::new_emulated(Arc::new(Mock::default())).unwrap();
    assert_eq!(dev.attach_ioas(r.ioas).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(dev.detach_ioas().unwrap_err().errno(), Errno::INVAL);
    dev.bind_iommufd(&r.ictx).unwrap();
    assert_eq!(dev.attach_ioas(999).unwrap_err().errno(), Errno::NOENT);
    dev.attach_ioas(r.ioas).unwrap();
    // Attached: a second attach replaces.
    let ioas2 = r.ictx.ioas_alloc().unwrap();
    assert_eq!(dev.attach_ioas(ioas2).unwrap(), ioas2);
    dev.detach_ioas().unwrap();
    dev.detach_ioas().unwrap();
    // A device refusing to open leaves no access behind.
    let refusing = Arc::new(Mock {
        refuse_open: Some(Errno::NOSPC),
        ..Mock::default()
    });
    let before = r.ictx.objects().len();
    let dev2 = VfioDevice::new_emulated(refusing).unwrap();
    let err = dev2.bind_iommufd(&r.ictx).unwrap_err();
    assert_eq!(err.errno(), Errno::NOSPC);
    assert_eq!(r.ictx.objects().len(), before);
    assert_eq!(dev2.devid(), None);
}

#[test]
fn iommu_backed_rid_binds_the_parent_function() {
    let r = Rig::new();
    let nvme: Bdf = "0000:05:00.0".parse().unwrap();
    r.sys.platform.unbind("nvme", nvme).unwrap();
    let kind = Isolation::IommuBacked {
        iommu_device: nvme,
        pasid: None,
    };
    let mock = Arc::new(Mock::default());
    let dev = VfioDevice::new(mock.clone(), kind, 0x2_0000);
    dev.bind_iommufd(&r.ictx).unwrap();
    assert!(mock.access.lock().is_none(), "IOMMU-translated: no access");
    let group = r.sys.iommu.device_group(nvme).unwrap();
    let hwpt = dev.attach_ioas(r.ioas).unwrap();
    assert_ne!(hwpt, r.ioas);
    assert!(!Arc::ptr_eq(&group.domain(), &group.default_domain()));
    // The parent's group is owned: a DMA-API driver cannot bind.
    let err = r.sys.platform.bind("nvme", nvme).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    dev.detach_ioas().unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &group.blocking_domain()));
    dev.unbind().unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    r.sys.platform.bind("nvme", nvme).unwrap();
}

#[test]
fn singleton_groups_come_from_the_shared_allocator_and_go_back() {
    let _global = GLOBAL_GROUPS.lock();
    let dev = VfioDevice::new_emulated(Arc::new(Mock::default())).unwrap();
    let group = dev.group();
    assert!(group >= SINGLETON_GROUP_BASE);
    assert!(SingletonGroups::global().is_allocated(group));
    drop(dev);
    assert!(!SingletonGroups::global().is_allocated(group));
}

#[test]
fn iommu_backed_rid_of_a_group_owned_elsewhere_is_ebusy() {
    let r = Rig::new();
    let nic0: Bdf = "0000:04:00.0".parse().unwrap();
    let nic1: Bdf = "0000:04:00.1".parse().unwrap();
    for nic in [nic0, nic1] {
        r.sys.platform.unbind("igb", nic).unwrap();
    }
    let backed = |bdf| Isolation::IommuBacked {
        iommu_device: bdf,
        pasid: None,
    };
    let a = VfioDevice::new(Arc::new(Mock::default()), backed(nic0), 0x2_0002);
    let b = VfioDevice::new(Arc::new(Mock::default()), backed(nic1), 0x2_0003);
    a.bind_iommufd(&r.ictx).unwrap();
    let other = Ictx::new(r.sys.iommu.clone());
    // The raw claim says EPERM; the device layer says the group is busy.
    assert_eq!(other.device_bind(nic1).unwrap_err().errno(), Errno::PERM);
    assert_eq!(b.bind_iommufd(&other).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(b.devid(), None);
    // The same consumer may hold both devices of the group.
    b.bind_iommufd(&r.ictx).unwrap();
    b.unbind().unwrap();
    a.unbind().unwrap();
    b.bind_iommufd(&other).unwrap();
    b.unbind().unwrap();
    // A group held by a kernel DMA-API driver stays EPERM.
    r.sys.platform.bind("igb", nic0).unwrap();
    assert_eq!(b.bind_iommufd(&other).unwrap_err().errno(), Errno::PERM);
}

#[test]
fn iommu_backed_pasid_binds_only_the_pasid() {
    let r = Rig::new();
    let dsa: Bdf = "0000:01:00.0".parse().unwrap();
    // The function stays with its (DMA-API) kernel driver.
    assert_eq!(r.sys.platform.driver_of(dsa).unwrap().name, "idxd");
    let group = r.sys.iommu.device_group(dsa).unwrap();
    let before = group.info();
    let pasid = r.sys.iommu.alloc_global_pasid(dsa).unwrap();
    let kind = Isolation::IommuBacked {
        iommu_device: dsa,
        pasid: Some(pasid),
    };
    // IOMMU_NO_PASID cannot be bound alone.
    let err = r.ictx.device_bind_pasid(dsa, 0).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let dev = VfioDevice::new(Arc::new(Mock::default()), kind, 0x2_0001);
    let devid = dev.bind_iommufd(&r.ictx).unwrap();
    assert_eq!(group.info(), before, "no ownership claimed");
    // The consumer's own HWPT must be PASID-compatible, as for any PASID
    // attach (the automatic one of an IOAS attach is allocated so).
    let plain = r
        .ictx
        .hwpt_alloc(devid, r.ioas, HwptAllocFlags::empty(), HwptData::None)
        .unwrap();
    let err = r.ictx.device_attach(devid, pasid, plain).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    r.ictx.destroy(plain).unwrap();
    let hwpt = dev.attach_ioas(r.ioas).unwrap();
    let domain = r.ictx.hwpt_domain(hwpt).unwrap();
    assert!(Arc::ptr_eq(&group.pasid_domain(pasid).unwrap(), &domain));
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    // Nothing but its PASID: not the RID, not another PASID.
    assert_eq!(
        r.ictx.device_attach(devid, 0, r.ioas).unwrap_err().errno(),
        Errno::PERM
    );
    assert_eq!(
        r.ictx
            .device_attach(devid, pasid + 1, r.ioas)
            .unwrap_err()
            .errno(),
        Errno::PERM
    );
    // A second consumer can hold another PASID of the same function.
    let other = Ictx::new(r.sys.iommu.clone());
    let ioas2 = other.ioas_alloc().unwrap();
    let pasid2 = r.sys.iommu.alloc_global_pasid(dsa).unwrap();
    let kind2 = Isolation::IommuBacked {
        iommu_device: dsa,
        pasid: Some(pasid2),
    };
    let dev2 = VfioDevice::new(Arc::new(Mock::default()), kind2, 0x2_0004);
    dev2.bind_iommufd(&other).unwrap();
    let hwpt2 = dev2.attach_ioas(ioas2).unwrap();
    assert!(Arc::ptr_eq(
        &group.pasid_domain(pasid2).unwrap(),
        &other.hwpt_domain(hwpt2).unwrap()
    ));
    dev.detach_ioas().unwrap();
    assert!(group.pasid_domain(pasid).is_none());
    dev.unbind().unwrap();
    dev2.unbind().unwrap();
    assert!(group.pasid_domain(pasid2).is_none());
    assert_eq!(group.info(), before);
    // The function can still be unbound and rebound by its kernel driver.
    r.sys.platform.unbind("idxd", dsa).unwrap();
    r.sys.platform.bind("idxd", dsa).unwrap();
}
