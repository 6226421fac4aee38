//! Ports of FIXTURE(iommufd) from tools/testing/selftests/iommu/iommufd.c
//! (kernel-semantics §3.1) that are not ABI checks (the VFIO compatibility
//! ones are in vfio_compat.rs), and tests of the context-wide rules: the
//! object table, close(), the accounting mode and the fault queue.

mod common;

use common::*;
use rustix::io::Errno;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::vtd::S1Flags;
use umdev_iommufd::io_pagetable::AccountMode;
use umdev_iommufd::{HwptAllocFlags, HwptData, MapFlags, PageResponse, PageResponseCode};

const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);

#[test]
fn simple_close() {
    let env = Env::new();
    let ictx = env.ictx();
    ictx.close();
    assert!(ictx.objects().is_empty());
}

#[test]
fn cmd_fail() {
    // Object id 0 is never valid. (A NULL argument (EFAULT) and an unknown
    // ioctl number (ENOTTY) are ABI-only.)
    let env = Env::new();
    let ictx = env.ictx();
    assert_eq!(errno(ictx.destroy(0)), Err(Errno::NOENT));
}

#[test]
fn global_options() {
    let env = Env::new();
    let ictx = env.ictx();
    assert_eq!(errno(ictx.option_rlimit_mode(0, None)), Ok(0));
    assert_eq!(errno(ictx.option_rlimit_mode(0, Some(1))), Ok(1));
    assert_eq!(
        errno(ictx.option_rlimit_mode(0, Some(2))),
        Err(Errno::INVAL)
    );
    assert_eq!(errno(ictx.option_rlimit_mode(0, None)), Ok(1));
    assert_eq!(errno(ictx.option_rlimit_mode(0, Some(0))), Ok(0));
    // HUGE_PAGES is per IOAS: object 0 does not exist.
    assert_eq!(errno(ictx.option_huge_pages(0, None)), Err(Errno::NOENT));
    assert_eq!(errno(ictx.option_huge_pages(0, Some(0))), Err(Errno::NOENT));
    // RLIMIT_MODE is global (object_id must be 0) and fixed once objects
    // exist.
    assert_eq!(
        errno(ictx.option_rlimit_mode(1, None)),
        Err(Errno::OPNOTSUPP)
    );
    let ioas = ictx.ioas_alloc().unwrap();
    assert_eq!(errno(ictx.option_rlimit_mode(0, Some(1))), Err(Errno::BUSY));
    ictx.destroy(ioas).unwrap();
    assert_eq!(errno(ictx.option_rlimit_mode(0, Some(1))), Ok(1));
}

/// Object ids start at 1 and the lowest free one is reused
/// (XA_FLAGS_ALLOC1); DESTROY is ENOENT for unknown ids and EBUSY for
/// referenced objects, devices and accesses (driver-held) included.
#[test]
fn object_table_rules() {
    let env = Env::new();
    let ictx = env.ictx();
    let a = ictx.ioas_alloc().unwrap();
    let b = ictx.ioas_alloc().unwrap();
    assert_eq!((a, b), (1, 2));
    ictx.destroy(a).unwrap();
    assert_eq!(errno(ictx.destroy(a)), Err(Errno::NOENT));
    assert_eq!(ictx.ioas_alloc().unwrap(), 1);
    let dev = env.mock_domain(&ictx, b).unwrap();
    assert_eq!(errno(ictx.destroy(b)), Err(Errno::BUSY));
    assert_eq!(errno(ictx.destroy(dev.hwpt_id)), Err(Errno::BUSY));
    assert_eq!(errno(ictx.destroy(dev.dev_id)), Err(Errno::BUSY));
    let access = TestAccess::create(&ictx, b, true).unwrap();
    assert_eq!(errno(ictx.destroy(access.id)), Err(Errno::BUSY));
    access.destroy(&ictx);
    // The auto HWPT goes with its last device, then the IOAS is free.
    ictx.device_unbind(dev.dev_id).unwrap();
    assert_eq!(errno(ictx.destroy(dev.hwpt_id)), Err(Errno::NOENT));
    ictx.destroy(b).unwrap();
    teardown(&env, &ictx, &[dev.bdf]);
}

/// close() tears everything down leaf-first, and so does dropping the
/// last reference to the context.
#[test]
fn close_releases_everything() {
    for explicit_close in [true, false] {
        let env = Env::new();
        let ictx = env.ictx();
        let buf = env.buffer(BUFFER_SIZE);
        let ioas = ictx.ioas_alloc().unwrap();
        let dev = env.mock_domain(&ictx, ioas).unwrap();
        let parent = ictx
            .hwpt_alloc(
                dev.dev_id,
                ioas,
                HwptAllocFlags::NEST_PARENT,
                HwptData::None,
            )
            .unwrap();
        let fault = ictx.fault_queue_alloc().unwrap();
        let data = HwptData::VtdS1(VtdS1Config {
            flags: S1Flags::default(),
            pgtbl_addr: 0x10_0000,
            addr_width: 48,
        });
        let nested = ictx
            .hwpt_alloc_fault(
                dev.dev_id,
                parent,
                HwptAllocFlags::FAULT_ID_VALID,
                data,
                fault.id(),
            )
            .unwrap();
        ictx.device_replace(dev.dev_id, 0, nested).unwrap();
        ictx.ioas_map(ioas, RW, &buf, 0, BUFFER_SIZE, 0).unwrap();
        let access = TestAccess::create(&ictx, ioas, true).unwrap();
        let iova = ictx.ioas_iova_ranges(ioas).unwrap().0[0].start;
        let iova = ictx
            .ioas_map(
                ioas,
                RW | MapFlags::FIXED_IOVA,
                &buf,
                0,
                BUFFER_SIZE,
                iova.max(1 << 30),
            )
            .unwrap();
        access.pin(iova, BUFFER_SIZE).unwrap();
        assert!(env.trigger_iopf(dev.bdf, None, 0x1000));
        assert!(ictx.account().pinned() > 0);
        drop(access);
        if explicit_close {
            // The open fault fd keeps its queue until the context goes; its
            // fault is then answered INVALID.
            ictx.close();
            assert!(ictx.objects().is_empty());
            let answered = fault.take_responses();
            assert_eq!(answered.len(), 1);
            assert_eq!(answered[0].code, PageResponseCode::Invalid);
            assert!(fault.read(1).is_empty());
        } else {
            let account = ictx.account().clone();
            drop(fault);
            drop(ictx);
            assert_eq!(account.pinned(), 0);
            let other = env.ictx();
            other
                .device_unbind(other.device_bind(dev.bdf).unwrap())
                .unwrap();
            continue;
        }
        teardown(&env, &ictx, &[dev.bdf]);
    }
}

/// IOMMU_OPTION_RLIMIT_MODE: in mm mode pins also count in the process's
/// locked_vm (VmLck), in user mode only in pinned_vm.
#[test]
fn rlimit_mode_accounting() {
    for (mode, val) in [(AccountMode::User, 0), (AccountMode::Mm, 1)] {
        let env = Env::new();
        let ictx = env.ictx();
        ictx.option_rlimit_mode(0, Some(val)).unwrap();
        assert_eq!(ictx.account().mode(), mode);
        let ioas = ictx.ioas_alloc().unwrap();
        let dev = env.mock_domain(&ictx, ioas).unwrap();
        let buf = env.buffer(BUFFER_SIZE);
        ictx.ioas_map(ioas, RW, &buf, 0, 4 * PAGE_SIZE, 0).unwrap();
        assert_eq!(ictx.account().pinned(), 4);
        assert_eq!(ictx.account().locked(), if val == 1 { 4 } else { 0 });
        teardown(&env, &ictx, &[dev.bdf]);
        assert_eq!(ictx.account().locked(), 0);
    }
}

/// The fault queue: cookies from 1, lowest free; an unknown cookie is
/// EINVAL (after the responses before it are consumed); detaching or
/// replacing the HWPT answers its outstanding faults INVALID; a queue in
/// use cannot be destroyed; faults of a device not attached through
/// iommufd, or that no page request could resolve, are not queued.
#[test]
fn fault_queue() {
    let env = Env::new();
    let ictx = env.ictx();
    let ioas = ictx.ioas_alloc().unwrap();
    let dev = env.mock_domain(&ictx, ioas).unwrap();
    let fault = ictx.fault_queue_alloc().unwrap();
    let iopf = ictx
        .hwpt_alloc_fault(
            dev.dev_id,
            ioas,
            HwptAllocFlags::FAULT_ID_VALID,
            HwptData::None,
            fault.id(),
        )
        .unwrap();
    // The HWPT and the fd both hold the queue.
    assert_eq!(errno(ictx.destroy(fault.id())), Err(Errno::BUSY));
    // Not attached yet: nothing is routed.
    let domain = ictx.hwpt_domain(iopf).unwrap();
    assert!(domain.fault_handler().is_some());
    ictx.device_replace(dev.dev_id, 0, iopf).unwrap();

    for _ in 0..3 {
        assert!(env.trigger_iopf(dev.bdf, None, 0x4000));
    }
    assert_eq!(fault.pending(), 3);
    let read = fault.read(2);
    assert_eq!(
        read.iter().map(|f| f.cookie).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!((fault.pending(), fault.outstanding()), (1, 2));
    let ok = |cookie| PageResponse {
        cookie,
        code: PageResponseCode::Success,
    };
    // Cookie 1 is answered, 7 is unknown: one consumed.
    assert_eq!(errno(fault.write(&[ok(1), ok(7)])), Ok(1));
    assert_eq!(errno(fault.write(&[ok(1)])), Err(Errno::INVAL));
    // The freed cookie is reused.
    assert_eq!(
        fault.read(4).iter().map(|f| f.cookie).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(fault.take_responses().len(), 1);

    // Replacing the HWPT answers the two outstanding faults (cookies 1, 2)
    // and one not yet read.
    assert!(env.trigger_iopf(dev.bdf, None, 0x5000));
    ictx.device_replace(dev.dev_id, 0, ioas).unwrap();
    let answered = fault.take_responses();
    assert_eq!(answered.len(), 3);
    assert!(
        answered
            .iter()
            .all(|r| r.auto && r.code == PageResponseCode::Invalid)
    );
    assert_eq!((fault.pending(), fault.outstanding()), (0, 0));
    assert_eq!(errno(fault.write(&[ok(2)])), Err(Errno::INVAL));

    // Detaching the last device does the same.
    ictx.device_replace(dev.dev_id, 0, iopf).unwrap();
    assert!(env.trigger_iopf(dev.bdf, None, 0x6000));
    ictx.device_detach(dev.dev_id, 0).unwrap();
    assert_eq!(fault.take_responses().len(), 1);
    assert_eq!(fault.pending(), 0);

    // Faults a page request cannot resolve stay in the unit's fault log.
    ictx.device_attach(dev.dev_id, 0, iopf).unwrap();
    let handler = env
        .iommu
        .device_domain(dev.bdf, None)
        .unwrap()
        .fault_handler()
        .unwrap();
    handler.report(&umdev_iommu::vtd::FaultRecord {
        requester: dev.bdf,
        pasid: None,
        addr: 0x7000,
        access: umdev_iommu::pgtable::Access::Read,
        reason: umdev_iommu::vtd::FaultReason::Reserved,
        did: None,
    });
    // And so do faults of a requester no bound device attached.
    handler.report(&umdev_iommu::vtd::FaultRecord {
        requester: env.mock_device(MockDeviceFlags::default()),
        pasid: None,
        addr: 0x7000,
        access: umdev_iommu::pgtable::Access::Read,
        reason: umdev_iommu::vtd::FaultReason::Permission,
        did: None,
    });
    assert_eq!(fault.pending(), 0);

    // Destroying the HWPT drops its hold; the fd's remains until closed.
    ictx.device_replace(dev.dev_id, 0, ioas).unwrap();
    ictx.destroy(iopf).unwrap();
    assert!(domain.fault_handler().is_none());
    assert_eq!(errno(ictx.destroy(fault.id())), Err(Errno::BUSY));
    let id = fault.id();
    drop(fault);
    ictx.destroy(id).unwrap();
    teardown(&env, &ictx, &[dev.bdf]);
}
