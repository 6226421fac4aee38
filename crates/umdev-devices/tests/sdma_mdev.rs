//! The sdma parent driver on the default host: mdevs of the DMA engine
//! 0000:01:00.0 driven by consumers through their VFIO devices (an IOAS
//! mapping, BIND + ATTACH at the mdev's PASID, BAR0 register writes, MSI-X
//! through SET_IRQS), PASID isolation between consumers, the virtual
//! config space, and the mdev life cycle.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rustix::io::Errno;
use umdev_devices::host::Host;
use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{COMPLETION_SIZE, DESC_SIZE, Descriptor};
use umdev_devices::sdma_mdev::*;
use umdev_iommu::memory::MemoryObject;
use umdev_iommufd::{Ictx, MapFlags};
use umdev_pci::Bdf;
use umdev_pci::regs::*;
use umdev_testkit::sdma::{Cr, PAGE_FAULT, SUCCESS, crc32c_ref, noise};
use umdev_testkit::vfio::{msix_eventfd, r32, w32};
use umdev_vfio::device::irq_set_flags::*;
use umdev_vfio::device::{EventFd, IrqData, SetIrqs, VfioDeviceOps, irq, region};
use umdev_vfio::mdev::{Mdev, MdevUuid};
use umdev_vfio::registration::{Isolation, VfioDevice};

/// The consumer's window: ring, completion records, then data.
const IOVA: u64 = 0x10_0000;
const WINDOW: u64 = 256 << 10;
const RING: u64 = IOVA;
const SLOTS: u32 = 16;
const CRS: u64 = IOVA + 0x1000;
const DATA: u64 = IOVA + 0x4000;
const FIXED: MapFlags = MapFlags::READABLE
    .union(MapFlags::WRITEABLE)
    .union(MapFlags::FIXED_IOVA);

fn pf() -> Bdf {
    "0000:01:00.0".parse().unwrap()
}

fn uuid(n: u32) -> MdevUuid {
    format!("5d4a0000-0000-4000-8000-{n:012x}").parse().unwrap()
}

fn create(host: &Host, n: u32) -> Result<Arc<Mdev>, Errno> {
    let parent = host.sdma.parent(pf()).unwrap();
    let t = parent.mdev_type("idxd-wq").unwrap();
    t.create(uuid(n)).map_err(|e| e.errno())
}

fn w64(ops: &dyn VfioDeviceOps, at: u64, v: u64) {
    let n = ops
        .region_write(region::BAR0, at, &v.to_le_bytes())
        .unwrap();
    assert_eq!(n, 8);
}

fn r16(ops: &dyn VfioDeviceOps, at: u64) -> u16 {
    let mut b = [0; 2];
    ops.region_read(region::CONFIG, at, &mut b).unwrap();
    u16::from_le_bytes(b)
}

fn w16(ops: &dyn VfioDeviceOps, at: u64, v: u16) {
    ops.region_write(region::CONFIG, at, &v.to_le_bytes())
        .unwrap();
}

/// One consumer: its iommufd context with `WINDOW` bytes of fresh memory
/// mapped at `IOVA`, and an sdma mdev bound and attached to it.
struct Consumer {
    ictx: Arc<Ictx>,
    mem: Arc<MemoryObject>,
    mdev: Arc<Mdev>,
    dev: Arc<VfioDevice>,
    irq: EventFd,
}

impl Consumer {
    /// Binds `mdev`, attaches it to a new IOAS mapping fresh memory,
    /// turns on memory decoding and bus mastering, MSI-X, and a ring of
    /// `SLOTS` at `RING`.
    fn new(host: &Host, mdev: Arc<Mdev>) -> Self {
        let ictx = Ictx::new(host.system.iommu.clone());
        let ioas = ictx.ioas_alloc().unwrap();
        let mem = host.system.vtd.memory().alloc_anonymous(WINDOW).unwrap();
        ictx.ioas_map(ioas, FIXED, &mem, 0, WINDOW, IOVA).unwrap();
        let dev = mdev.registration().unwrap();
        dev.bind_iommufd(&ictx).unwrap();
        dev.attach_ioas(ioas).unwrap();
        let ops = dev.ops().as_ref();
        w16(
            ops,
            u64::from(PCI_COMMAND),
            PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
        );
        let irq = msix_eventfd(ops);
        w64(ops, WQ_RING_BASE, RING);
        w32(ops, region::BAR0, WQ_RING_SIZE, SLOTS);
        w32(ops, region::BAR0, WQ_INT_CTRL, INT_ENABLE);
        w32(ops, region::BAR0, WQ_CTRL, CTRL_ENABLE);
        assert_eq!(
            r32(ops, region::BAR0, WQ_STATUS) & STATUS_ENABLED,
            STATUS_ENABLED
        );
        Self {
            ictx,
            mem,
            mdev,
            dev,
            irq,
        }
    }

    fn ops(&self) -> &dyn VfioDeviceOps {
        self.dev.ops().as_ref()
    }

    fn read(&self, iova: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.mem.read(iova - IOVA, &mut b).unwrap();
        b
    }

    fn write(&self, iova: u64, data: &[u8]) {
        self.mem.write(iova - IOVA, data).unwrap();
    }

    /// Writes `descs` at TAIL and rings the doorbell through BAR0.
    fn post(&self, descs: &[Descriptor]) {
        let mut tail = r32(self.ops(), region::BAR0, WQ_TAIL);
        for d in descs {
            self.write(RING + u64::from(tail) * DESC_SIZE as u64, &d.encode());
            tail = (tail + 1) % SLOTS;
        }
        w32(self.ops(), region::BAR0, WQ_TAIL, tail);
    }

    /// Runs `desc` with a completion record (and interrupt) in slot `n`
    /// of the record area; returns the record.
    fn run(&self, n: u64, desc: Descriptor) -> Cr {
        let at = CRS + n * COMPLETION_SIZE as u64;
        self.write(at, &[0; COMPLETION_SIZE]);
        self.post(&[desc.with_completion(at, true)]);
        Cr::parse(&self.read(at, COMPLETION_SIZE))
    }
}

#[test]
fn every_operation_through_a_consumer() {
    let host = Host::default_platform().unwrap();
    let c = Consumer::new(&host, create(&host, 1).unwrap());
    // The mdev is backed by a PASID of the engine, and the consumer's
    // domain is attached there and recorded.
    let pasid = c.mdev.iommu_pasid().unwrap();
    assert_eq!(
        c.dev.isolation(),
        Isolation::IommuBacked {
            iommu_device: pf(),
            pasid: Some(pasid)
        }
    );
    let group = host.system.iommu.device_group(pf()).unwrap();
    let domain = c.mdev.iommu_domain().expect("domain recorded");
    assert!(Arc::ptr_eq(&group.pasid_domain(pasid).unwrap(), &domain));
    assert_eq!(r32(c.ops(), region::BAR0, WQ_PASID), pasid | PASID_VALID);

    let src = noise(1, 5000);
    c.write(DATA, &src);
    // memmove
    let cr = c.run(0, Descriptor::memmove(DATA, DATA + 0x4000, 5000));
    assert_eq!((cr.status, cr.bytes), (SUCCESS, 5000));
    assert_eq!(c.read(DATA + 0x4000, 5000), src);
    assert_eq!(c.irq.take(), 1, "one interrupt per descriptor");
    // fill
    let pattern = 0x0807_0605_0403_0201u64;
    let cr = c.run(1, Descriptor::fill(DATA + 0x8000, pattern, 100));
    assert_eq!(cr.status, SUCCESS);
    let want: Vec<u8> = (0..100).map(|i| (i % 8 + 1) as u8).collect();
    assert_eq!(c.read(DATA + 0x8000, 100), want);
    assert_eq!(c.irq.take(), 1);
    // compare: equal, then a difference at 1234
    let cr = c.run(2, Descriptor::compare(DATA, DATA + 0x4000, 5000));
    assert_eq!((cr.status, cr.result), (SUCCESS, 0));
    c.write(DATA + 0x4000 + 1234, &[!src[1234]]);
    let cr = c.run(3, Descriptor::compare(DATA, DATA + 0x4000, 5000));
    assert_eq!((cr.status, cr.result, cr.value), (SUCCESS, 1, 1234));
    // compare-pattern: the filled bytes match, one off at 77
    let cr = c.run(4, Descriptor::compare_pattern(DATA + 0x8000, pattern, 96));
    assert_eq!((cr.status, cr.result), (SUCCESS, 0));
    c.write(DATA + 0x8000 + 77, &[0xee]);
    let cr = c.run(5, Descriptor::compare_pattern(DATA + 0x8000, pattern, 96));
    assert_eq!((cr.status, cr.result, cr.value), (SUCCESS, 1, 77));
    // CRC-32C
    let cr = c.run(6, Descriptor::crc32c(DATA, 5000, 0));
    assert_eq!(cr.status, SUCCESS);
    assert_eq!(cr.value, u64::from(crc32c_ref(0, &src)));
    assert_eq!(c.irq.take(), 5);
}

#[test]
fn unmapped_iova_completes_with_page_fault_and_the_address() {
    let host = Host::default_platform().unwrap();
    let c = Consumer::new(&host, create(&host, 1).unwrap());
    let end = IOVA + WINDOW;
    // The destination runs 100 bytes into unmapped space.
    let cr = c.run(0, Descriptor::memmove(DATA, end - 100, 300));
    assert_eq!(cr.status, PAGE_FAULT);
    assert_eq!((cr.bytes, cr.fault_addr), (100, end));
    assert_eq!(cr.fault_info & 1, 1, "the faulting access was a write");
    assert_eq!(c.irq.take(), 1);
    // A source wholly elsewhere faults at its start; the queue goes on.
    let cr = c.run(1, Descriptor::crc32c(0x4000_0000, 64, 0));
    assert_eq!(
        (cr.status, cr.bytes, cr.fault_addr),
        (PAGE_FAULT, 0, 0x4000_0000)
    );
    let cr = c.run(2, Descriptor::fill(DATA, 7, 8));
    assert_eq!(cr.status, SUCCESS);
}

#[test]
fn two_mdevs_of_one_engine_in_two_consumers_at_once() {
    let host = Host::default_platform().unwrap();
    let a = Consumer::new(&host, create(&host, 1).unwrap());
    let b = Consumer::new(&host, create(&host, 2).unwrap());
    let (pa, pb) = (a.mdev.iommu_pasid().unwrap(), b.mdev.iommu_pasid().unwrap());
    assert_ne!(pa, pb);
    // Neither consumer owns the engine's group: it stays with idxd.
    let group = host.system.iommu.device_group(pf()).unwrap();
    assert_eq!(group.info().owner, None);
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    assert_eq!(host.platform().driver_of(pf()).unwrap().name, "idxd");
    // Same IOVAs, different memory.
    a.write(DATA, b"consumer A data");
    b.write(DATA, b"consumer B data");
    assert_eq!(
        a.run(0, Descriptor::memmove(DATA, DATA + 0x100, 15)).status,
        SUCCESS
    );
    assert_eq!(
        b.run(0, Descriptor::memmove(DATA, DATA + 0x100, 15)).status,
        SUCCESS
    );
    assert_eq!(a.read(DATA + 0x100, 15), b"consumer A data");
    assert_eq!(b.read(DATA + 0x100, 15), b"consumer B data");
    assert_eq!((a.irq.take(), b.irq.take()), (1, 1));
    // Detaching one stops its DMA only.
    a.dev.detach_ioas().unwrap();
    assert!(a.mdev.iommu_domain().is_none());
    assert!(group.pasid_domain(pa).is_none());
    let cr_at = CRS + 0x100;
    a.write(cr_at, &[0; COMPLETION_SIZE]);
    a.post(&[Descriptor::fill(DATA, 0, 8).with_completion(cr_at, true)]);
    assert_eq!(
        a.read(cr_at, 1),
        [0],
        "nothing reachable: not even the record"
    );
    assert_eq!(b.run(1, Descriptor::fill(DATA, 0, 8)).status, SUCCESS);
}

#[test]
fn consumers_of_one_engine_run_in_parallel() {
    let host = Host::default_platform().unwrap();
    let consumers: Vec<Consumer> = (0..4)
        .map(|n| Consumer::new(&host, create(&host, n).unwrap()))
        .collect();
    std::thread::scope(|s| {
        for (n, c) in consumers.iter().enumerate() {
            s.spawn(move || {
                for round in 0..50u64 {
                    let src = noise(round * 8 + n as u64, 4096);
                    c.write(DATA, &src);
                    let cr = c.run(round % 8, Descriptor::memmove(DATA, DATA + 0x2000, 4096));
                    assert_eq!(cr.status, SUCCESS);
                    assert_eq!(c.read(DATA + 0x2000, 4096), src, "consumer {n}");
                }
                assert_eq!(c.irq.take(), 50);
            });
        }
    });
}

/// Every byte of `c`'s window.
fn snapshot(c: &Consumer) -> Vec<u8> {
    c.read(IOVA, WINDOW as usize)
}

/// A descriptor over addresses around and beyond the window: below it,
/// inside it (never the ring or the records), past its end, far away.
fn arb_desc() -> impl Strategy<Value = Descriptor> {
    let addr = prop_oneof![
        Just(IOVA - 0x1000),
        DATA..IOVA + WINDOW - 64,
        IOVA + WINDOW - 256..IOVA + WINDOW + 256,
        0x4000_0000u64..0x4000_4000,
    ];
    (0u8..5, addr.clone(), addr, 1u32..512, any::<u64>()).prop_map(
        |(op, src, dst, len, pattern)| match op {
            0 => Descriptor::memmove(src, dst, len),
            1 => Descriptor::fill(dst, pattern, len),
            2 => Descriptor::compare(src, dst, len),
            3 => Descriptor::compare_pattern(src, pattern, len),
            _ => Descriptor::crc32c(src, len, pattern as u32),
        },
    )
}

/// Whether `[addr, addr + len)` lies in the window.
fn inside(addr: u64, len: u32) -> bool {
    addr >= IOVA && addr + u64::from(len) <= IOVA + WINDOW
}

#[test]
fn consumers_cannot_reach_each_others_memory() {
    let host = Host::default_platform().unwrap();
    let a = Consumer::new(&host, create(&host, 1).unwrap());
    let b = Consumer::new(&host, create(&host, 2).unwrap());
    a.write(IOVA, &noise(10, WINDOW as usize));
    b.write(IOVA, &noise(11, WINDOW as usize));
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let strategy = (any::<bool>(), proptest::collection::vec(arb_desc(), 1..8));
    runner
        .run(&strategy, |(a_runs, descs)| {
            let (me, other) = if a_runs { (&a, &b) } else { (&b, &a) };
            let theirs = snapshot(other);
            // Its own interrupts of earlier cases.
            other.irq.take();
            for (i, d) in descs.iter().enumerate() {
                let cr = me.run(i as u64, *d);
                prop_assert!(cr.status == SUCCESS || cr.status == PAGE_FAULT);
                if cr.status == PAGE_FAULT {
                    // Only an address outside the consumer's own map.
                    prop_assert!(!inside(cr.fault_addr, 1), "{:#x}", cr.fault_addr);
                    continue;
                }
                // A success touched only the consumer's own map (a compare
                // may end at a difference before reaching a fault).
                let n = d.xfer_size;
                let ok = match d.opcode {
                    0x03 => inside(d.src, n) && inside(d.dst, n),
                    0x04 => inside(d.dst, n),
                    0x10 => inside(d.src, n),
                    _ => true,
                };
                prop_assert!(ok, "{:?} succeeded", d);
            }
            prop_assert!(
                snapshot(other) == theirs,
                "the other consumer's memory changed"
            );
            prop_assert_eq!(other.irq.take(), 0, "the other consumer was interrupted");
            Ok(())
        })
        .unwrap();
}

#[test]
fn config_space_is_virtualised() {
    let host = Host::default_platform().unwrap();
    let mdev = create(&host, 1).unwrap();
    let ops = mdev.registration().unwrap().ops().clone();
    let ops = ops.as_ref();
    let cfg = |at: u16| r32(ops, region::CONFIG, u64::from(at));
    // Identity.
    assert_eq!(r16(ops, 0), SDMA_MDEV_VENDOR_ID);
    assert_eq!(r16(ops, 2), SDMA_MDEV_DEVICE_ID);
    assert_eq!(cfg(PCI_REVISION_ID) >> 8, SDMA_MDEV_CLASS);
    assert_eq!(cfg(PCI_REVISION_ID) & 0xff, u32::from(SDMA_MDEV_REVISION));
    assert_eq!(
        cfg(PCI_SUBSYSTEM_VENDOR_ID),
        u32::from(SDMA_MDEV_VENDOR_ID) | u32::from(SDMA_MDEV_SUBSYSTEM_ID) << 16
    );
    // Read-only fields ignore writes.
    w32(ops, region::CONFIG, 0, 0xffff_ffff);
    assert_eq!(r16(ops, 0), SDMA_MDEV_VENDOR_ID);
    w32(ops, region::CONFIG, u64::from(PCI_REVISION_ID), 0);
    assert_eq!(cfg(PCI_REVISION_ID) >> 8, SDMA_MDEV_CLASS);
    w16(ops, u64::from(PCI_STATUS), 0xffff);
    assert_eq!(r16(ops, u64::from(PCI_STATUS)), PCI_STATUS_CAP_LIST);
    // Command: only MEMORY, MASTER and INTX_DISABLE stick.
    w16(ops, u64::from(PCI_COMMAND), 0xffff);
    assert_eq!(
        r16(ops, u64::from(PCI_COMMAND)),
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE
    );
    // BAR sizing: BAR0 is 8 KiB of 32-bit memory, the others absent.
    w32(ops, region::CONFIG, u64::from(PCI_BASE_ADDRESS_0), !0);
    assert_eq!(cfg(PCI_BASE_ADDRESS_0), !(SDMA_MDEV_BAR0_SIZE as u32 - 1));
    w32(
        ops,
        region::CONFIG,
        u64::from(PCI_BASE_ADDRESS_0),
        0xfebc_0000,
    );
    assert_eq!(cfg(PCI_BASE_ADDRESS_0), 0xfebc_0000);
    for bar in 1..6u16 {
        let at = PCI_BASE_ADDRESS_0 + 4 * bar;
        w32(ops, region::CONFIG, u64::from(at), !0);
        assert_eq!(cfg(at), 0, "BAR{bar}");
    }
    // No INTx pin; one capability, MSI-X with one vector in BAR0.
    assert_eq!(cfg(PCI_INTERRUPT_LINE) >> 8 & 0xff, 0);
    let cap = u16::try_from(cfg(PCI_CAPABILITY_LIST) & 0xff).unwrap();
    assert_eq!(cap, SDMA_MDEV_MSIX_CAP);
    assert_eq!(cfg(cap) & 0xffff, u32::from(PCI_CAP_ID_MSIX), "id, no next");
    assert_eq!(cfg(cap) >> 16 & u32::from(PCI_MSIX_FLAGS_QSIZE), 0);
    assert_eq!(cfg(cap + PCI_MSIX_TABLE), SDMA_MDEV_MSIX_TABLE as u32);
    assert_eq!(cfg(cap + PCI_MSIX_PBA), SDMA_MDEV_MSIX_PBA as u32);
    // Region and IRQ info as vfio-pci reports them.
    assert_eq!(
        ops.region_info(region::BAR0).unwrap().size,
        SDMA_MDEV_BAR0_SIZE
    );
    assert_eq!(ops.region_info(region::CONFIG).unwrap().size, 256);
    assert_eq!(ops.region_info(region::BAR0 + 2).unwrap().size, 0);
    let counts: Vec<u32> = (0..irq::NUM)
        .map(|i| ops.irq_info(i).unwrap().count)
        .collect();
    assert_eq!(counts, [0, 0, 1, 0, 1]);
    // Outside config space: EFAULT (vfio_config_do_rw).
    let mut b = [0; 4];
    let err = ops.region_read(region::CONFIG, 254, &mut b).unwrap_err();
    assert_eq!(err.errno(), Errno::FAULT);
    // Reset returns the writable fields to power-on.
    ops.reset().unwrap();
    assert_eq!(r16(ops, u64::from(PCI_COMMAND)), 0);
    assert_eq!(cfg(PCI_BASE_ADDRESS_0), 0);
}

#[test]
fn command_register_gates_bar0_and_dma() {
    let host = Host::default_platform().unwrap();
    let c = Consumer::new(&host, create(&host, 1).unwrap());
    let ops = c.ops();
    // Memory decoding off: BAR0 is EIO.
    w16(ops, u64::from(PCI_COMMAND), PCI_COMMAND_MASTER);
    let mut b = [0; 4];
    let err = ops
        .region_read(region::BAR0, WQ_STATUS, &mut b)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::IO);
    // Bus mastering off: the doorbell is held, no DMA happens...
    w16(ops, u64::from(PCI_COMMAND), PCI_COMMAND_MEMORY);
    c.write(DATA, b"held");
    c.write(CRS, &[0; COMPLETION_SIZE]);
    c.post(&[Descriptor::memmove(DATA, DATA + 0x10, 4).with_completion(CRS, true)]);
    assert_eq!(c.read(DATA + 0x10, 4), [0; 4]);
    assert_eq!(r32(ops, region::BAR0, WQ_HEAD), 0);
    // ...until it is turned on.
    w16(
        ops,
        u64::from(PCI_COMMAND),
        PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
    );
    assert_eq!(c.read(DATA + 0x10, 4), b"held");
    assert_eq!(Cr::parse(&c.read(CRS, COMPLETION_SIZE)).status, SUCCESS);
    assert_eq!(c.irq.take(), 1);
}

#[test]
fn msix_table_is_the_ims_entry() {
    let host = Host::default_platform().unwrap();
    let c = Consumer::new(&host, create(&host, 1).unwrap());
    let ops = c.ops();
    let drv = host.sdma.device(&c.mdev).unwrap();
    let ims = host
        .sdma
        .parent_driver(pf())
        .unwrap()
        .sdma()
        .ims()
        .entry(drv.ims_entry());
    assert!(!ims.unwrap().masked, "SET_IRQS enabled MSI-X: unmasked");
    let table = SDMA_MDEV_MSIX_TABLE;
    assert_eq!(r32(ops, region::BAR0, table + 12), 0);
    // The consumer's address and data read back; the entry keeps the
    // parent's handle as its data.
    w64(ops, table, 0xfee0_1000);
    w32(ops, region::BAR0, table + 8, 0x4041);
    assert_eq!(r32(ops, region::BAR0, table), 0xfee0_1000);
    assert_eq!(r32(ops, region::BAR0, table + 8), 0x4041);
    let sdma = host.sdma.parent_driver(pf()).unwrap().sdma().clone();
    let entry = sdma.ims().entry(drv.ims_entry()).unwrap();
    assert_eq!(entry.message.addr, 0xfee0_1000);
    assert_eq!(entry.message.data, drv.ims_entry() as u32);
    // Masked through the table: the interrupt goes pending (PBA), and is
    // delivered on unmask.
    w32(ops, region::BAR0, table + 12, 1);
    assert!(sdma.ims().entry(drv.ims_entry()).unwrap().masked);
    assert_eq!(c.run(0, Descriptor::noop()).status, SUCCESS);
    assert_eq!(c.irq.take(), 0);
    assert_eq!(r32(ops, region::BAR0, SDMA_MDEV_MSIX_PBA), 1);
    w32(ops, region::BAR0, table + 12, 0);
    assert_eq!(c.irq.take(), 1);
    assert_eq!(r32(ops, region::BAR0, SDMA_MDEV_MSIX_PBA), 0);
    // Disabling MSI-X through SET_IRQS masks the entry.
    let info = ops.irq_info(irq::MSIX).unwrap();
    let off = SetIrqs::validate(
        irq::NUM,
        &info,
        DATA_NONE | ACTION_TRIGGER,
        0,
        0,
        IrqData::None,
    );
    ops.set_irqs(off.unwrap()).unwrap();
    assert_eq!(r32(ops, region::BAR0, table + 12), 1);
    // Register accesses must be 4 or 8 bytes, aligned.
    let mut b = [0; 2];
    let err = ops.region_read(region::BAR0, 0, &mut b).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
}

#[test]
fn life_cycle_queues_pasids_and_unbinding() {
    let host = Host::default_platform().unwrap();
    let parent = host.sdma.parent(pf()).unwrap();
    let t = parent.mdev_type("idxd-wq").unwrap();
    assert_eq!(t.device_api(), "vfio-pci");
    let wqs = host.sdma.parent_driver(pf()).unwrap().sdma().wqs().len() as u32;
    assert_eq!(t.available_instances(), wqs);
    let mdevs: Vec<Arc<Mdev>> = (0..wqs).map(|n| create(&host, n).unwrap()).collect();
    assert_eq!(t.available_instances(), 0);
    assert_eq!(create(&host, 100).unwrap_err(), Errno::NOSPC);
    let pasids: std::collections::BTreeSet<u32> =
        mdevs.iter().map(|m| m.iommu_pasid().unwrap()).collect();
    assert_eq!(pasids.len(), wqs as usize, "a PASID each");
    let ioasids = host.system.iommu.ioasids().clone();
    assert!(pasids.iter().all(|&p| ioasids.is_allocated(p)));
    // Every mdev is servable by UUID.
    let names: Vec<String> = host.servable().into_iter().map(|s| s.name).collect();
    assert!(mdevs.iter().all(|m| names.contains(&m.uuid().to_string())));
    // Removing a bound, attached mdev unbinds its consumer, detaches the
    // PASID and frees it.
    let c = Consumer::new(&host, mdevs[0].clone());
    let pasid = c.mdev.iommu_pasid().unwrap();
    let group = host.system.iommu.device_group(pf()).unwrap();
    assert!(group.pasid_domain(pasid).is_some());
    mdevs[0].remove().unwrap();
    assert_eq!(c.dev.devid(), None);
    assert!(group.pasid_domain(pasid).is_none());
    assert!(!ioasids.is_allocated(pasid));
    assert!(c.ictx.objects().iter().all(|&(_, kind)| kind != "device"));
    assert_eq!(t.available_instances(), 1);
    let again = create(&host, 200).unwrap();
    let wq = host.sdma.device(&again).unwrap().wq().clone();
    assert_eq!(wq.pasid(), again.iommu_pasid());
    // Unbinding the engine removes every mdev and frees every PASID.
    host.platform().unbind(SdmaMdev::NAME, pf()).unwrap();
    assert!(!parent.is_registered());
    assert!(host.bus.devices().is_empty());
    assert!(pasids.iter().all(|&p| !ioasids.is_allocated(p)));
    host.platform().bind(SdmaMdev::NAME, pf()).unwrap();
    let parent = host.sdma.parent(pf()).unwrap();
    assert_eq!(parent.types()[0].available_instances(), wqs);
}
