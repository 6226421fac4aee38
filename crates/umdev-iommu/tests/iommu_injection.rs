//! Failure injection: a driver that refuses an operation half-way through a
//! group must leave every device where it was (Linux
//! `__iommu_group_set_domain` / `__iommu_set_group_pasid` revert), and a
//! domain without `set_dev_pasid` is refused with EOPNOTSUPP. The real
//! VT-d model never fails these calls, so a fake driver stands in.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::{Iommu, IommuOps, OwnerCookie, PagingFlags};
use umdev_pci::{Bdf, IommuHooks};
use umdev_testkit::iommu::fake::{FakeOps, key};

fn bdf(dev: u8) -> Bdf {
    Bdf::new(0, 1, dev, 0).unwrap()
}

/// Devices 1 and 2 in group 7 (both with 16 PASIDs), device 3 alone in
/// group 8 (no PASID).
fn setup() -> (Arc<FakeOps>, Arc<Iommu>) {
    let fake = FakeOps::new(&[(bdf(1), 16), (bdf(2), 16), (bdf(3), 0)]);
    let iommu = Iommu::new(fake.clone());
    iommu.probe_device(bdf(1), 7).unwrap();
    iommu.probe_device(bdf(2), 7).unwrap();
    iommu.probe_device(bdf(3), 8).unwrap();
    (fake, iommu)
}

#[test]
fn attach_group_failure_reverts_every_device() {
    let (fake, iommu) = setup();
    let group = iommu.group(7).unwrap();
    let identity = key(iommu.identity_domain().ops());
    let paging = iommu
        .domain_alloc_paging(bdf(1), PagingFlags::default())
        .unwrap();
    fake.fail.lock().insert(bdf(2));

    let err = iommu.attach_group(&paging, &group).unwrap_err();
    assert_eq!(err.errno(), Errno::NOMEM);
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
    // Device 1 had been switched before device 2 failed: it is back.
    assert_eq!(fake.rid.lock()[&bdf(1)], identity);

    fake.fail.lock().clear();
    iommu.attach_group(&paging, &group).unwrap();
    assert_eq!(fake.rid.lock()[&bdf(1)], key(paging.ops()));
    assert_eq!(fake.rid.lock()[&bdf(2)], key(paging.ops()));
}

#[test]
fn failed_ownership_claim_leaves_group_unowned() {
    let (fake, iommu) = setup();
    let group = iommu.group(7).unwrap();
    let cookie = OwnerCookie::new();
    fake.fail.lock().insert(bdf(2));

    let err = iommu.device_claim_dma_owner(bdf(1), &cookie).unwrap_err();
    assert_eq!(err.errno(), Errno::NOMEM);
    assert!(!iommu.group_dma_owner_claimed(&group));
    assert_eq!(group.info().owner, None);
    assert_eq!(fake.rid.lock()[&bdf(1)], key(iommu.identity_domain().ops()));

    fake.fail.lock().clear();
    iommu.device_claim_dma_owner(bdf(1), &cookie).unwrap();
    assert_eq!(group.info().owner, Some(cookie.id()));
    assert_eq!(fake.rid.lock()[&bdf(2)], key(&fake.blocked_domain()));
}

#[test]
fn pasid_attach_failure_reverts_every_device() {
    let (fake, iommu) = setup();
    let group = iommu.group(7).unwrap();
    let paging = iommu
        .domain_alloc_paging(bdf(1), PagingFlags::default())
        .unwrap();
    fake.fail.lock().insert(bdf(2));

    let err = iommu.attach_device_pasid(&paging, bdf(1), 5).unwrap_err();
    assert_eq!(err.errno(), Errno::NOMEM);
    assert!(group.pasid_domain(5).is_none());
    assert!(
        fake.pasid.lock().is_empty(),
        "device 1's PASID 5 was removed again"
    );
}

#[test]
fn pasid_replace_failure_keeps_the_old_domain() {
    let (fake, iommu) = setup();
    let group = iommu.group(7).unwrap();
    let old = iommu
        .domain_alloc_paging(bdf(1), PagingFlags::default())
        .unwrap();
    let new = iommu
        .domain_alloc_paging(bdf(1), PagingFlags::default())
        .unwrap();
    iommu.attach_device_pasid(&old, bdf(1), 5).unwrap();
    fake.fail.lock().insert(bdf(2));

    let err = iommu.replace_device_pasid(&new, bdf(1), 5).unwrap_err();
    assert_eq!(err.errno(), Errno::NOMEM);
    assert!(Arc::ptr_eq(&group.pasid_domain(5).unwrap(), &old));
    assert_eq!(fake.pasid.lock()[&(bdf(1), 5)], key(old.ops()));

    fake.fail.lock().clear();
    iommu.replace_device_pasid(&new, bdf(2), 5).unwrap();
    assert_eq!(fake.pasid.lock()[&(bdf(1), 5)], key(new.ops()));
    assert_eq!(fake.pasid.lock()[&(bdf(2), 5)], key(new.ops()));
}

#[test]
fn domain_without_set_dev_pasid_is_eopnotsupp_before_other_checks() {
    let (fake, iommu) = setup();
    *fake.paging_without_pasid.lock() = true;
    let paging = iommu
        .domain_alloc_paging(bdf(1), PagingFlags::default())
        .unwrap();
    assert!(!paging.supports_pasid());
    for pasid in [0, 5, 16] {
        let err = iommu
            .attach_device_pasid(&paging, bdf(1), pasid)
            .unwrap_err();
        assert_eq!(err.errno(), Errno::OPNOTSUPP, "pasid {pasid}");
    }
    // EOPNOTSUPP comes even before the device's lack of PASID support.
    let err = iommu.attach_device_pasid(&paging, bdf(3), 5).unwrap_err();
    assert_eq!(err.errno(), Errno::OPNOTSUPP);
}

#[test]
fn device_joining_an_owned_group_is_blocked() {
    let fake = FakeOps::new(&[(bdf(1), 0), (bdf(2), 0)]);
    let iommu = Iommu::new(fake.clone());
    iommu.probe_device(bdf(1), 3).unwrap();
    let cookie = OwnerCookie::new();
    iommu.device_claim_dma_owner(bdf(1), &cookie).unwrap();

    iommu.probe_device(bdf(2), 3).unwrap();
    let group = iommu.group(3).unwrap();
    assert_eq!(group.devices(), vec![bdf(1), bdf(2)]);
    assert_eq!(fake.rid.lock()[&bdf(2)], key(group.blocking_domain().ops()));
    assert_eq!(
        iommu.probe_device(bdf(2), 3),
        Err(Errno::EXIST),
        "a second probe is refused"
    );
    assert_eq!(
        iommu.probe_device(bdf(9), 3),
        Err(Errno::NODEV),
        "the driver does not know it"
    );
}

#[test]
fn viability_without_a_platform_uses_the_dma_api_count() {
    let (_, iommu) = setup();
    let group = iommu.group(7).unwrap();
    assert!(iommu.group_viable(&group));
    iommu.device_use_default_domain(bdf(2)).unwrap();
    assert!(
        !iommu.group_viable(&group),
        "a kernel DMA-API driver is bound"
    );
    iommu.device_unuse_default_domain(bdf(2));
    let cookie = OwnerCookie::new();
    iommu.group_claim_dma_owner(&group, &cookie).unwrap();
    assert!(iommu.group_viable(&group), "owned by user space");
}
