//! mtty as an mdev parent: types and port accounting through the mdev
//! core, and an mtty mdev driven as a VFIO device by a consumer (regions,
//! INTx with automask, MSI, reset, close, removal).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_devices::mtty::regs::*;
use umdev_devices::mtty::{
    MTTY_DEVICE_ID, MTTY_VENDOR_ID, MttyMdevDriver, MttyParent, MttyType, register_mtty,
};
use umdev_iommu::system::System;
use umdev_iommufd::Ictx;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO, PCI_VENDOR_ID};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{
    DeviceFlags, EventFd, IrqData, IrqInfoFlags, RegionFlags, SetIrqs, VfioDeviceOps, irq, region,
};
use umdev_vfio::mdev::{Mdev, MdevBus, MdevParent, MdevUuid};
use umdev_vfio::registration::Isolation;

const UUID_A: &str = "b1a6c5d4-0e2f-4a3b-9c8d-7e6f5a4b3c2d";
/// BAR1: the second port of a dual-port device.
const BAR1: u32 = region::BAR0 + 1;
const IDLE_LSR: u8 = UART_LSR_THRE | UART_LSR_TEMT;
const FIFO: u8 = UART_IIR_FIFO_ENABLED_16550A;

fn uuid(n: u32) -> MdevUuid {
    MdevUuid::parse(format!("{n:08x}-0000-4000-8000-000000000000").as_bytes()).unwrap()
}

fn mtty() -> (Arc<MdevBus>, Arc<MdevParent>) {
    let bus = MdevBus::new();
    let parent = register_mtty(&bus).unwrap();
    (bus, parent)
}

fn available(parent: &Arc<MdevParent>, name: &str) -> u32 {
    parent.mdev_type(name).unwrap().available_instances()
}

fn create(parent: &Arc<MdevParent>, name: &str, n: u32) -> Result<Arc<Mdev>, Errno> {
    let ty = parent.mdev_type(name).unwrap();
    ty.create(uuid(n)).map_err(|e| e.errno())
}

/// VFIO_DEVICE_SET_IRQS on vectors `0..count` of `index`.
fn set_irqs(
    ops: &dyn VfioDeviceOps,
    index: u32,
    flags: u32,
    count: u32,
    data: IrqData,
) -> Result<(), Errno> {
    let info = ops.irq_info(index).map_err(|e| e.errno())?;
    let req = SetIrqs::validate(ops.info().num_irqs, &info, flags, 0, count, data)
        .map_err(|e| e.errno())?;
    ops.set_irqs(req).map_err(|e| e.errno())
}

/// Connects a new eventfd as the trigger of `index` vector 0.
fn eventfd_trigger(ops: &dyn VfioDeviceOps, index: u32) -> EventFd {
    let fd = EventFd::new().unwrap();
    let data = IrqData::Eventfd(vec![Some(fd.try_clone().unwrap())]);
    set_irqs(ops, index, DATA_EVENTFD | ACTION_TRIGGER, 1, data).unwrap();
    fd
}

fn unmask_intx(ops: &dyn VfioDeviceOps) {
    set_irqs(ops, irq::INTX, DATA_NONE | ACTION_UNMASK, 1, IrqData::None).unwrap();
}

fn rd(ops: &dyn VfioDeviceOps, reg: u8) -> u8 {
    let mut b = [0];
    assert_eq!(
        ops.region_read(region::BAR0, u64::from(reg), &mut b)
            .unwrap(),
        1
    );
    b[0]
}

fn wr(ops: &dyn VfioDeviceOps, reg: u8, value: u8) {
    assert_eq!(
        ops.region_write(region::BAR0, u64::from(reg), &[value])
            .unwrap(),
        1
    );
}

fn write_command(ops: &dyn VfioDeviceOps, cmd: u16) {
    let off = u64::from(PCI_COMMAND);
    assert_eq!(
        ops.region_write(region::CONFIG, off, &cmd.to_le_bytes())
            .unwrap(),
        2
    );
}

/// 8N1, FIFOs on with a 1-byte trigger, receive interrupt enabled.
fn program_uart(ops: &dyn VfioDeviceOps) {
    wr(ops, UART_LCR, UART_LCR_WLEN8);
    wr(ops, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_1);
    wr(ops, UART_IER, UART_IER_RDI);
}

#[test]
fn parent_has_the_samples_types_counted_from_the_port_pool() {
    let (bus, parent) = mtty();
    assert_eq!(parent.device().driver_string, "mtty");
    assert_eq!(parent.device().id.to_string(), "mtty");
    let types = parent.types();
    let names: Vec<String> = types.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["mtty-1", "mtty-2"]);
    let pretty: Vec<&str> = types.iter().map(|t| t.pretty_name()).collect();
    assert_eq!(pretty, ["Single port serial", "Dual port serial"]);
    assert!(types.iter().all(|t| t.device_api() == "vfio-pci"));
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (24, 12)
    );

    // Create through the sysfs `create` attribute, with a newline.
    let dual = parent.mdev_type("mtty-2").unwrap();
    assert_eq!(
        dual.create_store(format!("{UUID_A}\n").as_bytes()).unwrap(),
        37
    );
    let mdev = bus
        .find(MdevUuid::parse(UUID_A.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(mdev.type_name(), "mtty-2");
    assert_eq!(mdev.iommu_device(), None, "vendor-defined isolation");
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (22, 11)
    );
    let single = create(&parent, "mtty-1", 1).unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (21, 10)
    );
    assert_eq!(parent.mdev_type("mtty-2").unwrap().devices().len(), 1);

    // A second "mtty" parent on the same bus: EEXIST.
    assert_eq!(register_mtty(&bus).unwrap_err().errno(), Errno::EXIST);

    // The VFIO face: a PCI device with reset and the vfio-pci layout.
    let ops = mdev.vfio_device().unwrap();
    let info = ops.info();
    assert_eq!(info.flags, DeviceFlags::PCI | DeviceFlags::RESET);
    assert_eq!((info.num_regions, info.num_irqs), (9, 5));
    let size = |ops: &Arc<dyn VfioDeviceOps>, i| ops.region_info(i).unwrap().size;
    assert_eq!(size(&ops, region::CONFIG), 256);
    assert_eq!((size(&ops, region::BAR0), size(&ops, BAR1)), (8, 8));
    let sops = single.vfio_device().unwrap();
    assert_eq!((size(&sops, region::BAR0), size(&sops, BAR1)), (8, 0));
    for i in [region::BAR0 + 2, region::BAR5, region::ROM, region::VGA] {
        let r = ops.region_info(i).unwrap();
        assert_eq!((r.size, r.flags), (0, RegionFlags::empty()), "region {i}");
    }
    let bar0 = ops.region_info(region::BAR0).unwrap();
    assert_eq!(bar0.flags, RegionFlags::READ | RegionFlags::WRITE);
    assert_eq!(
        ops.region_info(region::NUM).unwrap_err().errno(),
        Errno::INVAL
    );

    // mtty_get_irq_info.
    let intx = ops.irq_info(irq::INTX).unwrap();
    let automask = IrqInfoFlags::EVENTFD | IrqInfoFlags::MASKABLE | IrqInfoFlags::AUTOMASKED;
    assert_eq!((intx.flags, intx.count), (automask, 1));
    let msi = ops.irq_info(irq::MSI).unwrap();
    let noresize = IrqInfoFlags::EVENTFD | IrqInfoFlags::NORESIZE;
    assert_eq!((msi.flags, msi.count), (noresize, 1));
    for i in [irq::MSIX, irq::ERR, irq::REQ] {
        assert_eq!(ops.irq_info(i).unwrap().count, 0, "IRQ index {i}");
    }
    assert_eq!(ops.irq_info(irq::NUM).unwrap_err().errno(), Errno::INVAL);

    // Config space and the model's errnos through the regions.
    let mut id = [0u8; 4];
    let vendor = u64::from(PCI_VENDOR_ID);
    assert_eq!(ops.region_read(region::CONFIG, vendor, &mut id).unwrap(), 4);
    let want = u32::from(MTTY_DEVICE_ID) << 16 | u32::from(MTTY_VENDOR_ID);
    assert_eq!(u32::from_le_bytes(id), want);
    let mut b = [0u8; 2];
    assert_eq!(
        ops.region_read(region::CONFIG, 255, &mut b)
            .unwrap_err()
            .errno(),
        Errno::FAULT
    );
    assert_eq!(
        sops.region_read(BAR1, 0, &mut b).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(
        ops.region_read(region::BAR0, 8, &mut b)
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
    assert_eq!(
        ops.region_read(region::ROM, 0, &mut b).unwrap_err().errno(),
        Errno::INVAL
    );
    // A BAR access running past the end is cut short.
    assert_eq!(ops.region_read(BAR1, 7, &mut b).unwrap(), 1);
}

#[test]
fn create_until_the_ports_run_out_then_remove_gives_them_back() {
    let (bus, parent) = mtty();
    let duals: Vec<Arc<Mdev>> = (0..11)
        .map(|n| create(&parent, "mtty-2", n).unwrap())
        .collect();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (2, 1)
    );
    let s1 = create(&parent, "mtty-1", 100).unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (1, 0)
    );
    // One port left: a dual device fails with the sample's own ENOSPC
    // (not the core's EUSERS), and leaves nothing behind.
    assert_eq!(create(&parent, "mtty-2", 200).unwrap_err(), Errno::NOSPC);
    assert!(bus.find(uuid(200)).is_none());
    let s2 = create(&parent, "mtty-1", 101).unwrap();
    assert_eq!(create(&parent, "mtty-1", 201).unwrap_err(), Errno::NOSPC);
    assert_eq!(bus.devices().len(), 13);
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (0, 0)
    );

    // Removing returns the ports at once, even while someone still holds
    // the mdev and its VFIO device, which now fails with ENODEV.
    let held = duals[3].vfio_device().unwrap();
    duals[3].remove().unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (2, 1)
    );
    let mut b = [0u8];
    assert_eq!(
        held.region_read(region::BAR0, 0, &mut b)
            .unwrap_err()
            .errno(),
        Errno::NODEV
    );
    assert_eq!(held.reset().unwrap_err().errno(), Errno::NODEV);
    s1.remove().unwrap();
    s2.remove().unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (4, 2)
    );

    // Unregistering the parent removes (and unplugs) the rest.
    parent.unregister();
    assert!(bus.devices().is_empty());
    for m in &duals {
        let err = m
            .vfio_device()
            .unwrap()
            .region_read(0, 0, &mut b)
            .unwrap_err();
        assert_eq!(err.errno(), Errno::NODEV);
    }
}

#[test]
fn pool_of_a_custom_driver_sizes_available_instances() {
    let driver = MttyMdevDriver::new(MttyParent::new(3));
    assert_eq!(driver.pool().available_instances(MttyType::Dual), 1);
    let bus = MdevBus::new();
    let parent = bus
        .register_parent(
            umdev_vfio::mdev::ParentDevice::named("mtty", "mtty"),
            Arc::new(driver),
            MttyMdevDriver::types(),
        )
        .unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (3, 1)
    );
    create(&parent, "mtty-2", 1).unwrap();
    assert_eq!(
        (available(&parent, "mtty-1"), available(&parent, "mtty-2")),
        (1, 0)
    );
}

#[test]
fn consumer_loops_bytes_back_with_automasked_intx() {
    let (_bus, parent) = mtty();
    let mdev = create(&parent, "mtty-2", 7).unwrap();
    // The core registered it with vendor-defined isolation in the mdev's
    // own group.
    let vdev = mdev.registration().unwrap();
    assert_eq!(vdev.isolation(), Isolation::Emulated);
    assert_eq!(vdev.group(), mdev.group());
    let system = System::default_platform().unwrap();
    let ictx = Ictx::new(system.iommu.clone());
    vdev.bind_iommufd(&ictx).unwrap();
    let ops = vdev.ops().as_ref();

    let intx = eventfd_trigger(ops, irq::INTX);
    program_uart(ops);
    assert_eq!(intx.take(), 0, "nothing pending yet");
    assert_eq!(rd(ops, UART_IIR), FIFO | UART_IIR_NO_INT);

    wr(ops, UART_TX, b'h');
    assert_eq!(intx.take(), 1, "received data raises INTx");
    assert_eq!(rd(ops, UART_LSR), UART_LSR_DR | IDLE_LSR);
    assert_eq!(rd(ops, UART_IIR), FIFO | UART_IIR_RDI);
    assert_eq!(rd(ops, UART_RX), b'h');
    assert_eq!(rd(ops, UART_LSR), IDLE_LSR);

    // Automasked: a new edge while masked is not signalled...
    wr(ops, UART_TX, b'i');
    assert_eq!(intx.take(), 0, "INTx stays masked until UNMASK");
    // ...but UNMASK with the line still up fires again (and stays masked).
    unmask_intx(ops);
    assert_eq!(intx.take(), 1, "pending condition refires on unmask");
    assert_eq!(rd(ops, UART_RX), b'i');
    assert_eq!(rd(ops, UART_IIR), FIFO | UART_IIR_NO_INT);
    unmask_intx(ops);
    assert_eq!(intx.take(), 0, "line down: unmask only re-arms");
    for &b in b"ok" {
        wr(ops, UART_TX, b);
    }
    assert_eq!(intx.take(), 1, "one edge for the burst");
    assert_eq!((rd(ops, UART_RX), rd(ops, UART_RX)), (b'o', b'k'));

    // The second port has its own UART behind BAR1.
    let mut lsr = [0u8];
    ops.region_read(BAR1, u64::from(UART_LSR), &mut lsr)
        .unwrap();
    assert_eq!(lsr[0], IDLE_LSR);

    // INTx disable in the command register masks; clearing it refires
    // while the line is up.
    unmask_intx(ops);
    write_command(ops, PCI_COMMAND_IO | PCI_COMMAND_INTX_DISABLE);
    wr(ops, UART_TX, b'x');
    assert_eq!(intx.take(), 0, "INTx disabled");
    write_command(ops, PCI_COMMAND_IO);
    assert_eq!(intx.take(), 1, "re-enabled with data pending");

    // Reset empties the FIFO; the trigger survives it.
    ops.reset().unwrap();
    assert_eq!(rd(ops, UART_LSR), IDLE_LSR);
    assert_eq!(rd(ops, UART_IIR), UART_IIR_NO_INT);
    unmask_intx(ops);
    program_uart(ops);
    wr(ops, UART_TX, b'r');
    assert_eq!(intx.take(), 1, "trigger kept across reset");

    // Closing drops the trigger and resets the device for the next user.
    vdev.unbind().unwrap();
    assert_eq!(
        rd(ops, UART_LSR),
        IDLE_LSR,
        "no data left for the next consumer"
    );
    program_uart(ops);
    wr(ops, UART_TX, b'z');
    assert_eq!(intx.take(), 0, "trigger dropped at close");

    // A new consumer: bind again and re-arm.
    vdev.bind_iommufd(&ictx).unwrap();
    let again = eventfd_trigger(ops, irq::INTX);
    assert_eq!(rd(ops, UART_RX), b'z');
    wr(ops, UART_TX, b'!');
    assert_eq!(again.take(), 1);

    // Removing the mdev returns both ports.
    let before = available(&parent, "mtty-1");
    mdev.remove().unwrap();
    assert_eq!(available(&parent, "mtty-1"), before + 2);
    wr_fails(ops);
}

fn wr_fails(ops: &dyn VfioDeviceOps) {
    let err = ops.region_write(region::BAR0, 0, &[0]).unwrap_err();
    assert_eq!(err.errno(), Errno::NODEV);
    let off = set_irqs(ops, irq::INTX, DATA_NONE | ACTION_TRIGGER, 0, IrqData::None);
    assert_eq!(off, Err(Errno::NODEV));
}

#[test]
fn msi_signals_every_edge_without_automask() {
    let (_bus, parent) = mtty();
    let mdev = create(&parent, "mtty-1", 1).unwrap();
    let ops = mdev.vfio_device().unwrap();
    let ops = ops.as_ref();
    let msi = eventfd_trigger(ops, irq::MSI);
    // One type at a time: INTx cannot be enabled while MSI is.
    let fd = EventFd::new().unwrap();
    let data = IrqData::Eventfd(vec![Some(fd)]);
    let intx = set_irqs(ops, irq::INTX, DATA_EVENTFD | ACTION_TRIGGER, 1, data);
    assert_eq!(intx, Err(Errno::INVAL));
    program_uart(ops);
    wr(ops, UART_TX, b'a');
    assert_eq!(rd(ops, UART_RX), b'a');
    wr(ops, UART_TX, b'b');
    assert_eq!(msi.take(), 2, "no automask under MSI");
    // MSI-X has no vectors.
    let none = set_irqs(
        ops,
        irq::MSIX,
        DATA_EVENTFD | ACTION_TRIGGER,
        1,
        IrqData::Eventfd(vec![None]),
    );
    assert_eq!(none, Err(Errno::INVAL));
    // Disabling MSI stops the signals.
    set_irqs(ops, irq::MSI, DATA_NONE | ACTION_TRIGGER, 0, IrqData::None).unwrap();
    assert_eq!(rd(ops, UART_RX), b'b');
    wr(ops, UART_TX, b'c');
    assert_eq!(msi.take(), 0);
}
