//! The VT-d driver behind IommuOps: probe, static domains, paging format
//! choice, nested checks, domain ids, PASID attach, dirty tracking,
//! release, several units.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::intel::{VtdIommu, VtdNestedDomain, VtdPagingDomain};
use umdev_iommu::iommu::{DomainOps, DomainType, IommuOps, PagingFlags, VtdS1Config};
use umdev_iommu::pgtable::{Access, Prot, PtFormat};
use umdev_iommu::vtd::{FaultReason, PasidEntry, S1Flags};
use umdev_pci::Bdf;
use umdev_testkit::vtd::{ALL_SIZES, attached_paging, bdf, config, driver};

fn paging(domain: &Arc<dyn DomainOps>) -> &VtdPagingDomain {
    domain.as_any().downcast_ref().unwrap()
}

/// The error of a call expected to fail.
fn errno<T>(result: Result<T, Errno>) -> Errno {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

const RW: Prot = Prot::READ.union(Prot::WRITE);

#[test]
fn probe_reports_caps_and_writes_the_context() {
    let mut small = config("dmar1", &[1]);
    small.pasid_bits = 8;
    small.nesting = false;
    small.dirty_tracking = false;
    let (_mem, driver) = driver(vec![config("dmar0", &[0]), small]);
    assert_eq!(
        driver
            .probe_device(Bdf::new(2, 0, 1, 0).unwrap())
            .unwrap_err(),
        Errno::NODEV
    );
    let dev = bdf(0, 1, 0);
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    let err = port.read(None, 0, &mut [0u8; 4]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::ContextNotPresent);

    let caps = driver.probe_device(dev).unwrap();
    assert_eq!(caps.max_pasids, 1 << 20);
    assert!(caps.dirty_tracking && caps.nesting);
    assert_eq!(driver.probe_device(dev).unwrap(), caps, "probing again");
    assert!(driver.iommus()[0].has_context(dev));
    // Probed, nothing attached: blocked.
    let err = port.read(None, 0, &mut [0u8; 4]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::PasidNotPresent);

    // Function 7 has no PASID capability: PASIDE clear.
    let no_pasid = bdf(0, 1, 7);
    assert_eq!(driver.probe_device(no_pasid).unwrap().max_pasids, 0);
    let err = DmaPort::for_requester(driver.units(), no_pasid)
        .unwrap()
        .read(Some(5), 0, &mut [0u8; 4])
        .unwrap_err();
    assert_eq!(err.record().reason, FaultReason::PasidDisabled);

    // The device's width is capped by the unit's.
    let caps = driver.probe_device(Bdf::new(1, 0, 1, 0).unwrap()).unwrap();
    assert_eq!(caps.max_pasids, 1 << 8);
    assert!(!caps.dirty_tracking && !caps.nesting);
}

#[test]
fn static_domains() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 1, 0);
    driver.probe_device(dev).unwrap();
    let identity = driver.identity_domain();
    let blocked = driver.blocked_domain();
    assert_eq!(identity.domain_type(), DomainType::Identity);
    assert_eq!(blocked.domain_type(), DomainType::Blocked);
    assert_eq!(identity.map(0, 0, 0x1000, RW), Err(Errno::INVAL));
    assert_eq!(identity.iova_to_phys(0x1234), Some(0x1234));
    assert_eq!(blocked.iova_to_phys(0x1234), None);

    driver.attach_dev(&identity, dev).unwrap();
    assert_eq!(
        driver.iommus()[0].pasid_entry(dev, 0),
        Some(PasidEntry::PassThrough { did: 1 }),
        "FLPT_DEFAULT_DID"
    );
    let object = mem.alloc_anonymous(0x2000).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.write(None, object.base() + 0xff0, &[7u8; 32]).unwrap();
    let mut back = [0u8; 32];
    object.read(0xff0, &mut back).unwrap();
    assert_eq!(back, [7u8; 32]);
    let err = port.read(None, 0x1000, &mut [0u8; 4]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::Unbacked);

    driver.attach_dev(&blocked, dev).unwrap();
    assert_eq!(driver.iommus()[0].pasid_entry(dev, 0), None);
    let err = port.read(None, object.base(), &mut [0u8; 4]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::PasidNotPresent);
}

#[test]
fn paging_format_follows_the_flags() {
    let (_mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 1, 0);
    driver.probe_device(dev).unwrap();
    let default = driver
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    assert_eq!(
        paging(&default).format(),
        PtFormat::FirstLevel { levels: 5 }
    );
    assert_eq!(
        default.aperture(),
        (0, (1 << 56) - 1),
        "lower canonical half"
    );
    assert_eq!(default.pgsize_bitmap(), ALL_SIZES);
    for flags in [
        PagingFlags {
            nest_parent: true,
            ..PagingFlags::default()
        },
        PagingFlags {
            dirty_tracking: true,
            ..PagingFlags::default()
        },
    ] {
        let domain = driver.domain_alloc_paging(dev, flags).unwrap();
        assert_eq!(
            paging(&domain).format(),
            PtFormat::SecondLevel { levels: 5 }
        );
    }

    let mut plain = config("dmar0", &[0]);
    plain.nesting = false;
    plain.dirty_tracking = false;
    plain.address_widths = vec![48];
    let (_mem, plain) = umdev_testkit::vtd::driver(vec![plain]);
    plain.probe_device(dev).unwrap();
    let domain = plain
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    assert_eq!(paging(&domain).format(), PtFormat::FirstLevel { levels: 4 });
    for flags in [
        PagingFlags {
            nest_parent: true,
            ..PagingFlags::default()
        },
        PagingFlags {
            dirty_tracking: true,
            ..PagingFlags::default()
        },
    ] {
        assert_eq!(
            errno(plain.domain_alloc_paging(dev, flags)),
            Errno::OPNOTSUPP
        );
    }
    let no_nesting = plain.domain_alloc_nested(
        dev,
        &domain,
        VtdS1Config {
            flags: S1Flags::default(),
            pgtbl_addr: 0,
            addr_width: 48,
        },
        false,
    );
    assert_eq!(errno(no_nesting), Errno::OPNOTSUPP);
}

#[test]
fn domain_ids_follow_attachments() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let unit = Arc::clone(&driver.units()[0]);
    let (d1, d2) = (bdf(0, 1, 0), bdf(0, 2, 0));
    let a = attached_paging(&driver, d1, PagingFlags::default());
    let b = attached_paging(&driver, d2, PagingFlags::default());
    let (a_did, b_did) = (
        paging(&a).domain_id(&unit).unwrap(),
        paging(&b).domain_id(&unit).unwrap(),
    );
    assert!(a_did >= 2 && b_did >= 2 && a_did != b_did);
    // A second device on the same domain shares its id.
    driver.attach_dev(&a, d2).unwrap();
    assert_eq!(driver.iommus()[0].pasid_entry(d2, 0).unwrap().did(), a_did);
    assert_eq!(paging(&b).domain_id(&unit), None, "b's last user left");
    assert_eq!(driver.iommus()[0].domain_ids_in_use(), 1);

    // Replacing is hitless: DMA through the device keeps working and
    // lands in the new domain's memory.
    let (ma, mb) = (
        mem.alloc_anonymous(0x1000).unwrap(),
        mem.alloc_anonymous(0x1000).unwrap(),
    );
    a.map(0, ma.base(), 0x1000, RW).unwrap();
    b.map(0, mb.base(), 0x1000, RW).unwrap();
    let port = DmaPort::for_requester(driver.units(), d2).unwrap();
    port.write(None, 0, b"A").unwrap();
    driver.attach_dev(&b, d2).unwrap();
    port.write(None, 0, b"B").unwrap();
    let (mut ra, mut rb) = ([0u8], [0u8]);
    ma.read(0, &mut ra).unwrap();
    mb.read(0, &mut rb).unwrap();
    assert_eq!((&ra, &rb), (b"A", b"B"));

    driver.release_device(d1);
    driver.release_device(d2);
    assert_eq!(driver.iommus()[0].domain_ids_in_use(), 0);
    let err = port.read(None, 0, &mut [0u8; 1]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::ContextNotPresent);
}

#[test]
fn pasid_attach_and_remove() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 1, 0);
    driver.probe_device(dev).unwrap();
    let domain = driver
        .domain_alloc_paging(
            dev,
            PagingFlags {
                pasid: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    assert!(domain.pasid_compat());
    let object = mem.alloc_anonymous(0x1000).unwrap();
    domain.map(0x2000, object.base(), 0x1000, RW).unwrap();
    assert_eq!(
        driver.set_dev_pasid(&domain, dev, 1 << 20, None),
        Err(Errno::INVAL)
    );
    assert_eq!(
        driver.set_dev_pasid(&domain, dev, 0, None),
        Err(Errno::INVAL)
    );
    driver.set_dev_pasid(&domain, dev, 42, None).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.write(Some(42), 0x2000, b"pasid").unwrap();
    // The RID is still blocked.
    assert!(port.read(None, 0x2000, &mut [0u8; 1]).is_err());
    assert!(driver.attached_domain(dev, 42).is_some());
    driver.remove_dev_pasid(dev, 42, &domain);
    let err = port.read(Some(42), 0x2000, &mut [0u8; 1]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::PasidNotPresent);
    assert!(driver.attached_domain(dev, 42).is_none());

    let mut no_pasid = config("dmar0", &[0]);
    no_pasid.pasid_bits = 0;
    let (_mem, plain) = umdev_testkit::vtd::driver(vec![no_pasid]);
    assert_eq!(plain.probe_device(dev).unwrap().max_pasids, 0);
    let d = plain
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    assert_eq!(plain.set_dev_pasid(&d, dev, 1, None), Err(Errno::OPNOTSUPP));
}

#[test]
fn nested_checks() {
    let mut cfg = config("dmar0", &[0]);
    cfg.address_widths = vec![48];
    cfg.supervisor_requests = false;
    cfg.extended_accessed = false;
    let (_mem, driver) = driver(vec![cfg]);
    let dev = bdf(0, 1, 0);
    driver.probe_device(dev).unwrap();
    let s1 = |flags, addr_width| VtdS1Config {
        flags,
        pgtbl_addr: 0x1000,
        addr_width,
    };
    let plain = driver
        .domain_alloc_paging(dev, PagingFlags::default())
        .unwrap();
    let alloc = |parent: &Arc<dyn DomainOps>, config| {
        driver.domain_alloc_nested(dev, parent, config, false)
    };
    assert_eq!(
        errno(alloc(&plain, s1(S1Flags::default(), 48))),
        Errno::INVAL,
        "parent is not a nest parent"
    );
    assert_eq!(
        errno(alloc(&driver.identity_domain(), s1(S1Flags::default(), 48))),
        Errno::INVAL
    );
    let (_other_mem, other) = umdev_testkit::vtd::driver(vec![config("dmar9", &[0])]);
    let foreign = other
        .domain_alloc_paging(
            dev,
            PagingFlags {
                nest_parent: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    assert_eq!(
        errno(alloc(&foreign, s1(S1Flags::default(), 48))),
        Errno::INVAL,
        "another driver's domain"
    );

    let parent = driver
        .domain_alloc_paging(
            dev,
            PagingFlags {
                nest_parent: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    // intel_pasid_setup_nested's checks run at attach.
    for (flags, width) in [
        (S1Flags::default(), 40),
        (S1Flags::default(), 57),
        (
            S1Flags {
                sre: true,
                ..S1Flags::default()
            },
            48,
        ),
        (
            S1Flags {
                eafe: true,
                ..S1Flags::default()
            },
            48,
        ),
    ] {
        let nested = alloc(&parent, s1(flags, width)).unwrap();
        assert_eq!(nested.domain_type(), DomainType::Nested);
        assert_eq!(
            driver.attach_dev(&nested, dev),
            Err(Errno::INVAL),
            "{flags:?} width {width}"
        );
    }
    let good = alloc(
        &parent,
        s1(
            S1Flags {
                wpe: true,
                ..S1Flags::default()
            },
            48,
        ),
    )
    .unwrap();
    driver.attach_dev(&good, dev).unwrap();
    assert_eq!(good.map(0, 0, 0x1000, RW), Err(Errno::INVAL));
    let nested: &VtdNestedDomain = good.as_any().downcast_ref().unwrap();
    assert!(Arc::ptr_eq(nested.parent(), &parent_of(&parent)));
    match driver.iommus()[0].pasid_entry(dev, 0).unwrap() {
        PasidEntry::Nested {
            s1_root, s2_root, ..
        } => {
            assert_eq!(s1_root, 0x1000);
            assert_eq!(s2_root, paging(&parent).page_table().root());
        }
        other => panic!("{other:?}"),
    }
}

fn parent_of(domain: &Arc<dyn DomainOps>) -> Arc<VtdPagingDomain> {
    let any: Arc<dyn std::any::Any + Send + Sync> = domain.clone();
    any.downcast().unwrap()
}

#[test]
fn dirty_tracking() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 1, 0);
    let plain = attached_paging(&driver, dev, PagingFlags::default());
    assert_eq!(
        paging(&plain).set_dirty_tracking(true),
        Err(Errno::OPNOTSUPP)
    );

    let domain = driver
        .domain_alloc_paging(
            dev,
            PagingFlags {
                dirty_tracking: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    driver.attach_dev(&domain, dev).unwrap();
    let d = paging(&domain);
    let object = mem.alloc_anonymous(0x4000).unwrap();
    domain.map(0x10_0000, object.base(), 0x4000, RW).unwrap();
    let harvest = || {
        let mut dirty = Vec::new();
        d.read_and_clear_dirty(0x10_0000, 0x4000, true, &mut |iova, size| {
            dirty.push((iova, size))
        })
        .map(|()| dirty)
    };
    assert_eq!(harvest(), Err(Errno::INVAL), "tracking is off");

    let unit = &driver.units()[0];
    d.set_dirty_tracking(true).unwrap();
    assert!(matches!(
        driver.iommus()[0].pasid_entry(dev, 0),
        Some(PasidEntry::SecondLevel {
            dirty_tracking: true,
            ..
        })
    ));
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.read(None, 0x10_0000, &mut [0u8; 8]).unwrap();
    port.write(None, 0x10_2000, &[1u8; 8]).unwrap();
    assert_eq!(harvest().unwrap(), vec![(0x10_2000, 0x1000)]);
    assert_eq!(harvest().unwrap(), vec![], "cleared");
    // The harvest flushed the IOTLB: writing again marks the page again.
    port.write(None, 0x10_2000, &[2u8; 8]).unwrap();
    assert_eq!(harvest().unwrap(), vec![(0x10_2000, 0x1000)]);

    d.set_dirty_tracking(false).unwrap();
    assert!(matches!(
        driver.iommus()[0].pasid_entry(dev, 0),
        Some(PasidEntry::SecondLevel {
            dirty_tracking: false,
            ..
        })
    ));
    let t = unit.translate(dev, None, 0x10_3000, Access::Write).unwrap();
    assert_eq!(t.phys, object.base() + 0x3000);
}

#[test]
fn one_domain_over_two_units() {
    let (mem, driver): (_, Arc<VtdIommu>) =
        driver(vec![config("dmar0", &[0]), config("dmar1", &[1])]);
    let (d0, d1) = (bdf(0, 1, 0), Bdf::new(1, 0, 1, 0).unwrap());
    let domain = attached_paging(&driver, d0, PagingFlags::default());
    driver.probe_device(d1).unwrap();
    driver.attach_dev(&domain, d1).unwrap();
    let object = mem.alloc_anonymous(0x1000).unwrap();
    domain.map(0x8000, object.base(), 0x1000, RW).unwrap();
    let ports = [
        DmaPort::for_requester(driver.units(), d0).unwrap(),
        DmaPort::for_requester(driver.units(), d1).unwrap(),
    ];
    for port in &ports {
        port.read(None, 0x8000, &mut [0u8; 8]).unwrap();
    }
    let [u0, u1] = [&driver.units()[0], &driver.units()[1]];
    assert!(paging(&domain).domain_id(u0).is_some() && paging(&domain).domain_id(u1).is_some());
    assert_eq!(domain.unmap(0x8000, 0x1000), 0x1000);
    for port in &ports {
        let err = port.read(None, 0x8000, &mut [0u8; 8]).unwrap_err();
        assert!(matches!(
            err.record().reason,
            FaultReason::FirstLevelNotPresent { .. }
        ));
    }
    assert_eq!(domain.iova_to_phys(0x8000), None);
}
