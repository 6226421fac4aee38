//! vfio-pci on the real stack: the default platform with its VT-d unit and
//! the DMA test device behind the NVMe function's BAR 0. A consumer binds
//! the function through iommufd, maps memory into an IOAS and programs the
//! device through the VFIO regions, as a user-space driver would.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_devices::dmatest::regs::*;
use umdev_iommu::memory::MemoryObject;
use umdev_iommufd::{Ictx, MapFlags};
use umdev_pci::regs::{
    PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY,
};
use umdev_testkit::irq::ToVfio;
use umdev_testkit::vfio_pci::Rig;
use umdev_testkit::{bdf, nvme};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{
    DeviceFlags, EventFd, IrqData, IrqInfoFlags, RegionFlags, SetIrqs, VfioDeviceOps, irq, region,
};
use umdev_vfio::registration::VfioDevice;
use umdev_vfio::vfio_pci::VfioPci;

const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 64 << 10;
const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const FIXED: MapFlags = RW.union(MapFlags::FIXED_IOVA);

fn w32(ops: &dyn VfioDeviceOps, index: u32, at: u64, v: u32) {
    assert_eq!(ops.region_write(index, at, &v.to_le_bytes()).unwrap(), 4);
}

fn r32(ops: &dyn VfioDeviceOps, index: u32, at: u64) -> u32 {
    let mut b = [0; 4];
    assert_eq!(ops.region_read(index, at, &mut b).unwrap(), 4);
    u32::from_le_bytes(b)
}

fn command(ops: &dyn VfioDeviceOps, cmd: u16) {
    let n = ops
        .region_write(region::CONFIG, u64::from(PCI_COMMAND), &cmd.to_le_bytes())
        .unwrap();
    assert_eq!(n, 2);
}

fn set_irqs(
    ops: &dyn VfioDeviceOps,
    index: u32,
    flags: u32,
    start: u32,
    count: u32,
    data: IrqData,
) -> Result<(), Errno> {
    let info = ops.irq_info(index).map_err(|e| e.errno())?;
    let req = SetIrqs::validate(ops.info().num_irqs, &info, flags, start, count, data)
        .map_err(|e| e.errno())?;
    ops.set_irqs(req).map_err(|e| e.errno())
}

/// An eventfd and a handle on it for DATA_EVENTFD.
fn eventfd() -> (EventFd, IrqData) {
    let fd = EventFd::new().unwrap();
    let data = IrqData::Eventfd(vec![Some(fd.try_clone().unwrap())]);
    (fd, data)
}

/// A consumer with the device bound and attached to an IOAS that maps
/// `WINDOW` bytes at `IOVA`.
struct Consumer {
    ictx: Arc<Ictx>,
    mem: Arc<MemoryObject>,
}

fn consumer(r: &Rig, dev: &VfioDevice) -> Consumer {
    let ictx = Ictx::new(r.sys.iommu.clone());
    dev.bind_iommufd(&ictx).unwrap();
    let ioas = ictx.ioas_alloc().unwrap();
    let hwpt = dev.attach_ioas(ioas).unwrap();
    assert_ne!(hwpt, ioas, "an IOAS attach lands on an automatic HWPT");
    let mem = r.sys.vtd.memory().alloc_anonymous(WINDOW).unwrap();
    ictx.ioas_map(ioas, FIXED, &mem, 0, WINDOW, IOVA).unwrap();
    Consumer { ictx, mem }
}

/// Programs a COPY of `len` bytes from IOVA to IOVA + 0x8000 through BAR 0.
fn copy(ops: &dyn VfioDeviceOps, len: u32) -> u32 {
    w32(ops, region::BAR0, DMATEST_SRC_LO, IOVA as u32);
    w32(ops, region::BAR0, DMATEST_SRC_HI, 0);
    w32(ops, region::BAR0, DMATEST_DST_LO, (IOVA + 0x8000) as u32);
    w32(ops, region::BAR0, DMATEST_DST_HI, 0);
    w32(ops, region::BAR0, DMATEST_LEN, len);
    w32(ops, region::BAR0, DMATEST_IRQ_CTRL, 1);
    w32(
        ops,
        region::BAR0,
        DMATEST_CMD,
        DMATEST_OP_COPY | DMATEST_CMD_START,
    );
    r32(ops, region::BAR0, DMATEST_STATUS)
}

#[test]
fn driver_override_and_new_id_bind_vfio_pci() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    assert_eq!(r.vfio_pci.devices(), vec![nvme()]);
    assert_eq!(Some(dev.group()), r.sys.platform.iommu_group(nvme()));
    let driver = r.sys.platform.driver_of(nvme()).unwrap();
    assert_eq!(driver.name, VfioPci::NAME);
    // Unbinding removes it; new_id binds unbound matching functions.
    r.sys.platform.unbind(VfioPci::NAME, nvme()).unwrap();
    assert!(r.vfio_pci.device(nvme()).is_none());
    r.sys.platform.set_driver_override(nvme(), "").unwrap();
    r.sys.platform.new_id(VfioPci::NAME, "8086 0953").unwrap();
    assert!(r.vfio_pci.device(nvme()).is_some());
    // A bridge (type 1 header) is refused like vfio_pci_probe does.
    let bridge = bdf("0000:08:00.0");
    r.sys
        .platform
        .set_driver_override(bridge, VfioPci::NAME)
        .unwrap();
    let err = r.sys.platform.bind(VfioPci::NAME, bridge).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(r.vfio_pci.device(bridge).is_none());
}

#[test]
fn device_region_and_irq_info() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    let ops = dev.ops().as_ref();
    let info = ops.info();
    assert_eq!(info.flags, DeviceFlags::PCI, "no reset method modelled");
    assert_eq!((info.num_regions, info.num_irqs), (9, 5));
    let bar0 = ops.region_info(region::BAR0).unwrap();
    assert_eq!(bar0.size, 16 << 10);
    assert_eq!(bar0.flags, RegionFlags::READ | RegionFlags::WRITE);
    assert_eq!(ops.region_info(1).unwrap().size, 0);
    assert_eq!(ops.region_info(region::ROM).unwrap().size, 0);
    assert_eq!(ops.region_info(region::VGA).unwrap().size, 0);
    let cfg = ops.region_info(region::CONFIG).unwrap();
    assert_eq!(cfg.size, 4096, "PCIe extended config space");
    assert_eq!(ops.region_info(9).unwrap_err().errno(), Errno::INVAL);
    let counts: Vec<u32> = (0..5).map(|i| ops.irq_info(i).unwrap().count).collect();
    // INTx pin 1, no MSI, 32 MSI-X vectors, PCIe (ERR), REQ.
    assert_eq!(counts, vec![1, 0, 32, 1, 1]);
    let intx = ops.irq_info(irq::INTX).unwrap().flags;
    assert_eq!(
        intx,
        IrqInfoFlags::EVENTFD | IrqInfoFlags::MASKABLE | IrqInfoFlags::AUTOMASKED
    );
    assert_eq!(
        ops.irq_info(irq::MSIX).unwrap().flags,
        IrqInfoFlags::EVENTFD
    );
    assert!(
        ops.irq_info(irq::REQ)
            .unwrap()
            .flags
            .contains(IrqInfoFlags::NORESIZE)
    );
    assert_eq!(ops.irq_info(5).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(ops.reset().unwrap_err().errno(), Errno::NOTTY);
    // Config space reads through the virtualisation: the IDs.
    assert_eq!(r32(ops, region::CONFIG, 0), 0x0953_8086);
}

#[test]
fn consumer_dma_through_bar0_lands_in_ioas_memory_and_fires_msix() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    let pci = r.vfio_pci.pci_device(nvme()).unwrap();
    r.model(nvme()).set_interrupts(Some(Arc::new(ToVfio(pci))));
    let c = consumer(&r, &dev);
    let ops = dev.ops().as_ref();
    // Memory decoding off: BAR access refused (EIO).
    let mut b = [0; 4];
    let err = ops.region_read(region::BAR0, 0, &mut b).unwrap_err();
    assert_eq!(err.errno(), Errno::IO);
    command(ops, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_eq!(r32(ops, region::BAR0, DMATEST_ID), DMATEST_ID_VALUE);
    // The MSI-X table (BAR 0 + 0x2000) is hidden.
    assert_eq!(r32(ops, region::BAR0, 0x2000), u32::MAX);
    let (fd, data) = eventfd();
    set_irqs(ops, irq::MSIX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, data).unwrap();
    let src: Vec<u8> = (0..20000u32).map(|i| (i * 7 % 251) as u8).collect();
    c.mem.write(0, &src).unwrap();
    assert_eq!(copy(ops, 20000), DMATEST_STATUS_DONE);
    let mut dst = vec![0; src.len()];
    c.mem.read(0x8000, &mut dst).unwrap();
    assert_eq!(dst, src);
    assert_eq!(fd.take(), 1, "MSI-X vector 0 fired once");
    // Outside the IOAS mapping: the IOMMU faults the read.
    w32(ops, region::BAR0, DMATEST_SRC_LO, 0x4000_0000);
    w32(
        ops,
        region::BAR0,
        DMATEST_CMD,
        DMATEST_OP_COPY | DMATEST_CMD_START,
    );
    let status = r32(ops, region::BAR0, DMATEST_STATUS);
    assert_eq!(status & DMATEST_STATUS_ERROR, DMATEST_STATUS_ERROR);
    assert_eq!(fd.take(), 1);
    drop(c);
}

#[test]
fn intx_fires_automasks_and_honours_intx_disable() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    let pci = r.vfio_pci.pci_device(nvme()).unwrap();
    r.model(nvme()).set_interrupts(Some(Arc::new(ToVfio(pci))));
    let _c = consumer(&r, &dev);
    let ops = dev.ops().as_ref();
    command(ops, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    let (fd, data) = eventfd();
    set_irqs(ops, irq::INTX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, data).unwrap();
    assert_eq!(copy(ops, 64), DMATEST_STATUS_DONE);
    assert_eq!(fd.take(), 1);
    // Automasked: the next completion does not fire until UNMASK.
    assert_eq!(copy(ops, 64), DMATEST_STATUS_DONE);
    assert_eq!(fd.take(), 0);
    set_irqs(
        ops,
        irq::INTX,
        DATA_NONE | ACTION_UNMASK,
        0,
        1,
        IrqData::None,
    )
    .unwrap();
    assert_eq!(copy(ops, 64), DMATEST_STATUS_DONE);
    assert_eq!(fd.take(), 1);
    set_irqs(
        ops,
        irq::INTX,
        DATA_NONE | ACTION_UNMASK,
        0,
        1,
        IrqData::None,
    )
    .unwrap();
    // INTx disable in the virtual command register masks it.
    command(
        ops,
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE,
    );
    assert_eq!(copy(ops, 64), DMATEST_STATUS_DONE);
    assert_eq!(fd.take(), 0);
    command(ops, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_eq!(copy(ops, 64), DMATEST_STATUS_DONE);
    assert_eq!(fd.take(), 1);
    // A level the model holds: UNMASK while it is asserted fires again.
    let pci = r.vfio_pci.pci_device(nvme()).unwrap();
    let unmask = || {
        set_irqs(
            ops,
            irq::INTX,
            DATA_NONE | ACTION_UNMASK,
            0,
            1,
            IrqData::None,
        )
    };
    unmask().unwrap();
    pci.set_intx_line(true);
    assert_eq!(fd.take(), 1);
    unmask().unwrap();
    assert_eq!(fd.take(), 1);
    pci.set_intx_line(false);
    unmask().unwrap();
    assert_eq!(fd.take(), 0);
    assert!(!pci.irqs().intx_masked());
}

#[test]
fn set_irqs_errnos_follow_vfio_pci() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    let _c = consumer(&r, &dev);
    let ops = dev.ops().as_ref();
    let trig = DATA_EVENTFD | ACTION_TRIGGER;
    // No MSI capability: no vectors, EINVAL.
    assert_eq!(
        set_irqs(ops, irq::MSI, trig, 0, 1, eventfd().1),
        Err(Errno::INVAL)
    );
    // Masking INTx before enabling it.
    let none = || IrqData::None;
    assert_eq!(
        set_irqs(ops, irq::INTX, DATA_NONE | ACTION_MASK, 0, 1, none()),
        Err(Errno::INVAL)
    );
    let (msix, data) = eventfd();
    set_irqs(ops, irq::MSIX, trig, 0, 1, data).unwrap();
    // INTx while MSI-X is enabled; MSI-X masking is not supported.
    assert_eq!(
        set_irqs(ops, irq::INTX, trig, 0, 1, eventfd().1),
        Err(Errno::INVAL)
    );
    assert_eq!(
        set_irqs(ops, irq::MSIX, DATA_NONE | ACTION_MASK, 0, 1, none()),
        Err(Errno::NOTTY)
    );
    // Past the table; two actions.
    assert_eq!(
        set_irqs(ops, irq::MSIX, trig, 32, 1, eventfd().1),
        Err(Errno::INVAL)
    );
    let two = DATA_NONE | ACTION_MASK | ACTION_TRIGGER;
    assert_eq!(
        set_irqs(ops, irq::MSIX, two, 0, 1, none()),
        Err(Errno::NOTTY)
    );
    // Loopback trigger, then disable; INTx may be enabled afterwards.
    set_irqs(ops, irq::MSIX, DATA_NONE | ACTION_TRIGGER, 0, 1, none()).unwrap();
    assert_eq!(msix.take(), 1);
    set_irqs(ops, irq::MSIX, DATA_NONE | ACTION_TRIGGER, 0, 0, none()).unwrap();
    set_irqs(ops, irq::INTX, trig, 0, 1, eventfd().1).unwrap();
}

#[test]
fn one_consumer_at_a_time_and_unbind_restores_the_default_domain() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    assert!(r.default_domain(nvme()));
    let c = consumer(&r, &dev);
    assert!(!r.default_domain(nvme()));
    // Same context again: EINVAL; another consumer: EBUSY.
    let err = dev.bind_iommufd(&c.ictx).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let other = Ictx::new(r.sys.iommu.clone());
    assert_eq!(dev.bind_iommufd(&other).unwrap_err().errno(), Errno::BUSY);
    // Closing tears down the triggers.
    let (fd, data) = eventfd();
    let ops = dev.ops().as_ref();
    set_irqs(ops, irq::REQ, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, data).unwrap();
    dev.unbind().unwrap();
    assert!(r.default_domain(nvme()));
    assert!(!r.vfio_pci.pci_device(nvme()).unwrap().trigger(irq::REQ, 0));
    assert_eq!(fd.take(), 0);
    assert_eq!(dev.unbind().unwrap_err().errno(), Errno::INVAL);
    // The other consumer can have it now.
    dev.bind_iommufd(&other).unwrap();
    dev.unbind().unwrap();
}

#[test]
fn driver_unbind_sends_req_and_releases_the_consumer() {
    let r = Rig::new();
    let dev = r.to_vfio("nvme", nvme());
    let _c = consumer(&r, &dev);
    let (fd, data) = eventfd();
    let ops = dev.ops().as_ref();
    set_irqs(ops, irq::REQ, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, data).unwrap();
    r.sys.platform.unbind(VfioPci::NAME, nvme()).unwrap();
    assert_eq!(fd.take(), 1);
    assert!(r.vfio_pci.device(nvme()).is_none());
    assert_eq!(dev.devid(), None);
    assert!(r.default_domain(nvme()));
    // The unregistered device cannot be bound again.
    let other = Ictx::new(r.sys.iommu.clone());
    assert_eq!(dev.bind_iommufd(&other).unwrap_err().errno(), Errno::NODEV);
    // A DMA-API driver can have the function again.
    r.sys.platform.set_driver_override(nvme(), "").unwrap();
    r.sys.platform.bind("nvme", nvme()).unwrap();
}

#[test]
fn shared_group_ownership_rules() {
    let r = Rig::new();
    let gpu = bdf("0000:06:00.0");
    let audio = bdf("0000:06:00.1");
    let gpu_dev = r.to_vfio("nouveau", gpu);
    r.sys.platform.unbind("snd_hda_intel", audio).unwrap();
    let a = Ictx::new(r.sys.iommu.clone());
    gpu_dev.bind_iommufd(&a).unwrap();
    // A DMA-API driver on a member of the owned group: EBUSY.
    let err = r.sys.platform.bind("snd_hda_intel", audio).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    // vfio-pci manages DMA itself and may bind; another consumer may not
    // take the group (EPERM from the DMA ownership claim).
    let audio_dev = r.to_vfio_unbound(audio);
    let b = Ictx::new(r.sys.iommu.clone());
    assert_eq!(audio_dev.bind_iommufd(&b).unwrap_err().errno(), Errno::PERM);
    // The owner may bind both.
    audio_dev.bind_iommufd(&a).unwrap();
    audio_dev.unbind().unwrap();
    gpu_dev.unbind().unwrap();
    r.sys.platform.unbind(VfioPci::NAME, audio).unwrap();
    r.sys.platform.set_driver_override(audio, "").unwrap();
    r.sys.platform.bind("snd_hda_intel", audio).unwrap();
}
