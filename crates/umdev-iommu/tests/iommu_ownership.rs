//! DMA ownership, errno for errno (kernel-semantics §2.4,
//! drivers/iommu/iommu.c `iommu_device_claim_dma_owner` and friends), on
//! the embedded default platform with the real VT-d driver.
//!
//! Group 7 is the non-singleton group: the ACS-less switch downstream port
//! 03:00.0 (pcieport, `driver_managed_dma`) and the two NIC functions
//! 04:00.0 / 04:00.1 below it (igb, a kernel DMA-API driver).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::{Group, OwnerCookie, PagingFlags};
use umdev_pci::{Bdf, IommuHooks};
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

const PORT: &str = "0000:03:00.0";
const NIC0: &str = "0000:04:00.0";
const NIC1: &str = "0000:04:00.1";
const DSA: &str = "0000:01:00.0";

/// The default platform with igb unbound from both NIC functions, so group
/// 7 has no DMA-API user.
fn rig_nics_unbound() -> Rig {
    let rig = Rig::default_platform();
    rig.platform.unbind("igb", bdf(NIC0)).unwrap();
    rig.platform.unbind("igb", bdf(NIC1)).unwrap();
    rig
}

fn group_of(rig: &Rig, dev: &str) -> Arc<Group> {
    rig.iommu.device_group(bdf(dev)).unwrap()
}

fn in_default(group: &Group) -> bool {
    Arc::ptr_eq(&group.domain(), &group.default_domain())
}

fn in_blocking(group: &Group) -> bool {
    Arc::ptr_eq(&group.domain(), &group.blocking_domain())
}

/// Identity-mapped DMA from `dev` to a fresh buffer works.
fn identity_dma_works(rig: &Rig, dev: Bdf) -> bool {
    let buf = rig.vtd.memory().alloc_anonymous(4096).unwrap();
    rig.dma_roundtrip(dev, None, buf.base(), 0x5a5a)
}

#[test]
fn claim_by_another_cookie_is_eperm() {
    let rig = rig_nics_unbound();
    let (a, b) = (OwnerCookie::new(), OwnerCookie::new());
    rig.iommu.device_claim_dma_owner(bdf(NIC0), &a).unwrap();

    for dev in [NIC1, PORT, NIC0] {
        let err = rig.iommu.device_claim_dma_owner(bdf(dev), &b).unwrap_err();
        assert_eq!(err.errno(), Errno::PERM, "{dev}");
    }
    let info = group_of(&rig, NIC0).info();
    assert_eq!((info.owner, info.owner_cnt), (Some(a.id()), 1));
}

#[test]
fn claim_of_group_used_by_dma_api_driver_is_eperm() {
    let rig = Rig::default_platform();
    let group = group_of(&rig, NIC0);
    assert_eq!(group.info().owner_cnt, 2, "both igb bindings counted");
    let owner = OwnerCookie::new();

    let err = rig
        .iommu
        .device_claim_dma_owner(bdf(NIC0), &owner)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::PERM);
    rig.platform.unbind("igb", bdf(NIC0)).unwrap();
    let err = rig
        .iommu
        .device_claim_dma_owner(bdf(NIC0), &owner)
        .unwrap_err();
    assert_eq!(
        err.errno(),
        Errno::PERM,
        "the sibling's igb still uses the group"
    );

    rig.platform.unbind("igb", bdf(NIC1)).unwrap();
    assert_eq!(group.info().owner_cnt, 0);
    rig.iommu.device_claim_dma_owner(bdf(NIC0), &owner).unwrap();
    assert!(in_blocking(&group));
}

#[test]
fn claim_when_not_in_default_domain_is_ebusy() {
    let rig = rig_nics_unbound();
    let group = group_of(&rig, NIC0);
    let kernel = rig
        .iommu
        .domain_alloc_paging(bdf(NIC0), PagingFlags::default())
        .unwrap();
    rig.iommu.attach_group(&kernel, &group).unwrap();
    let owner = OwnerCookie::new();

    let err = rig
        .iommu
        .device_claim_dma_owner(bdf(NIC1), &owner)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    let err = rig.iommu.group_claim_dma_owner(&group, &owner).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    assert!(!group.dma_owner_claimed());

    rig.iommu.detach_group(&kernel, &group).unwrap();
    assert!(in_default(&group));
    rig.iommu.device_claim_dma_owner(bdf(NIC1), &owner).unwrap();
}

#[test]
fn claim_with_pasid_attached_is_ebusy_and_release_waits_for_it() {
    let rig = Rig::default_platform();
    rig.platform.unbind("idxd", bdf(DSA)).unwrap();
    let group = group_of(&rig, DSA);
    let domain = rig
        .iommu
        .domain_alloc_paging(bdf(DSA), PagingFlags::default())
        .unwrap();
    let owner = OwnerCookie::new();

    rig.iommu.attach_device_pasid(&domain, bdf(DSA), 3).unwrap();
    let err = rig
        .iommu
        .device_claim_dma_owner(bdf(DSA), &owner)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    let err = rig.iommu.group_claim_dma_owner(&group, &owner).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    rig.iommu.detach_device_pasid(&domain, bdf(DSA), 3).unwrap();

    // Owned, then a PASID attached: the last release is refused.
    rig.iommu.device_claim_dma_owner(bdf(DSA), &owner).unwrap();
    rig.iommu.attach_device_pasid(&domain, bdf(DSA), 3).unwrap();
    let err = rig
        .iommu
        .device_release_dma_owner(bdf(DSA), &owner)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    assert_eq!(group.info().owner, Some(owner.id()));
    rig.iommu.detach_device_pasid(&domain, bdf(DSA), 3).unwrap();
    rig.iommu
        .device_release_dma_owner(bdf(DSA), &owner)
        .unwrap();
    assert!(in_default(&group));
}

#[test]
fn group_claim_is_exclusive() {
    let rig = rig_nics_unbound();
    let group = group_of(&rig, NIC0);
    let (a, b) = (OwnerCookie::new(), OwnerCookie::new());
    rig.iommu.group_claim_dma_owner(&group, &a).unwrap();

    for cookie in [&a, &b] {
        let err = rig.iommu.group_claim_dma_owner(&group, cookie).unwrap_err();
        assert_eq!(err.errno(), Errno::PERM);
    }
    let err = rig.iommu.device_claim_dma_owner(bdf(NIC0), &b).unwrap_err();
    assert_eq!(err.errno(), Errno::PERM);
    assert_eq!(group.info().owner_cnt, 1);

    let err = rig.iommu.group_release_dma_owner(&group, &b).unwrap_err();
    assert_eq!(err.errno(), Errno::PERM);
    rig.iommu.group_release_dma_owner(&group, &a).unwrap();
    assert!(!rig.iommu.group_dma_owner_claimed(&group));
    // A device claim on a group already claimed at device level is also
    // enough to make the group claim fail.
    rig.iommu.device_claim_dma_owner(bdf(NIC0), &a).unwrap();
    let err = rig.iommu.group_claim_dma_owner(&group, &a).unwrap_err();
    assert_eq!(err.errno(), Errno::PERM);
}

#[test]
fn release_returns_group_to_default_domain() {
    let rig = rig_nics_unbound();
    let group = group_of(&rig, NIC0);
    let owner = OwnerCookie::new();
    assert!(identity_dma_works(&rig, bdf(NIC0)));

    rig.iommu.device_claim_dma_owner(bdf(NIC0), &owner).unwrap();
    assert!(in_blocking(&group));
    for dev in [NIC0, NIC1] {
        assert!(!identity_dma_works(&rig, bdf(dev)), "{dev} is blocked");
    }

    rig.iommu
        .device_release_dma_owner(bdf(NIC0), &owner)
        .unwrap();
    assert!(in_default(&group));
    assert_eq!((group.info().owner, group.info().owner_cnt), (None, 0));
    for dev in [NIC0, NIC1] {
        assert!(identity_dma_works(&rig, bdf(dev)), "{dev} back in identity");
    }
}

#[test]
fn dma_api_driver_probe_is_ebusy_on_owned_group() {
    let rig = rig_nics_unbound();
    let owner = OwnerCookie::new();
    rig.iommu.device_claim_dma_owner(bdf(NIC0), &owner).unwrap();

    let err = rig.platform.bind("igb", bdf(NIC1)).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    assert!(rig.platform.driver_of(bdf(NIC1)).is_none());
    // A driver_managed_dma driver may bind on the owned group.
    rig.platform.unbind("pcieport", bdf(PORT)).unwrap();
    rig.platform.bind("pcieport", bdf(PORT)).unwrap();

    rig.iommu
        .device_release_dma_owner(bdf(NIC0), &owner)
        .unwrap();
    rig.platform.bind("igb", bdf(NIC1)).unwrap();
    assert_eq!(group_of(&rig, NIC1).info().owner_cnt, 1);
}

#[test]
fn dma_api_use_is_ebusy_when_not_in_default_domain_or_with_pasids() {
    // Group 10: GPU + audio, both DMA-API. A kernel attach of another
    // domain (allowed while only DMA-API users count) makes the next
    // DMA-API probe fail.
    let rig = Rig::default_platform();
    let gpu = bdf("0000:06:00.0");
    let audio = bdf("0000:06:00.1");
    rig.platform.unbind("snd_hda_intel", audio).unwrap();
    let group = group_of(&rig, "0000:06:00.0");
    let kernel = rig
        .iommu
        .domain_alloc_paging(gpu, PagingFlags::default())
        .unwrap();
    rig.iommu.attach_group(&kernel, &group).unwrap();
    let err = rig.platform.bind("snd_hda_intel", audio).unwrap_err();
    assert_eq!(err.errno(), Errno::BUSY);
    rig.iommu.detach_group(&kernel, &group).unwrap();
    rig.platform.bind("snd_hda_intel", audio).unwrap();

    // The DMA engine with idxd bound and a PASID attached.
    let dsa = bdf(DSA);
    let domain = rig
        .iommu
        .domain_alloc_paging(dsa, PagingFlags::default())
        .unwrap();
    rig.iommu.attach_device_pasid(&domain, dsa, 9).unwrap();
    assert_eq!(rig.iommu.device_use_default_domain(dsa), Err(Errno::BUSY));
    rig.iommu.detach_device_pasid(&domain, dsa, 9).unwrap();
    assert_eq!(rig.iommu.device_use_default_domain(dsa), Ok(()));
    assert_eq!(group_of(&rig, DSA).info().owner_cnt, 2);
}

#[test]
fn device_claims_with_shared_cookie_are_counted() {
    let rig = rig_nics_unbound();
    let group = group_of(&rig, NIC0);
    let owner = OwnerCookie::new();
    rig.iommu.device_claim_dma_owner(bdf(NIC0), &owner).unwrap();
    rig.iommu.device_claim_dma_owner(bdf(NIC1), &owner).unwrap();
    rig.iommu.device_claim_dma_owner(bdf(PORT), &owner).unwrap();
    assert_eq!(group.info().owner_cnt, 3);

    rig.iommu
        .device_release_dma_owner(bdf(NIC0), &owner)
        .unwrap();
    rig.iommu
        .device_release_dma_owner(bdf(NIC1), &owner)
        .unwrap();
    assert!(in_blocking(&group), "one claim left: still owned");
    assert_eq!(group.info().owner_cnt, 1);
    let stranger = OwnerCookie::new();
    let err = rig
        .iommu
        .device_release_dma_owner(bdf(PORT), &stranger)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::PERM);

    rig.iommu
        .device_release_dma_owner(bdf(PORT), &owner)
        .unwrap();
    assert!(in_default(&group));
    let err = rig
        .iommu
        .device_release_dma_owner(bdf(PORT), &owner)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::PERM, "nothing left to release");
}

#[test]
fn device_without_group_is_enodev() {
    // Segment 1 has no IOMMU unit: its device is never probed.
    let rig = Rig::from_toml(
        r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
page_sizes = ["4K"]

[[function]]
bdf = "0000:00:01.0"
kind = "endpoint"
vendor = 0x8086
device = 0x1234
class = 0x020000

[[function]]
bdf = "0001:00:01.0"
kind = "endpoint"
vendor = 0x8086
device = 0x1234
class = 0x020000
"#,
    );
    let owner = OwnerCookie::new();
    let lone = bdf("0001:00:01.0");
    assert!(rig.iommu.device_group(lone).is_none());
    let err = rig.iommu.device_claim_dma_owner(lone, &owner).unwrap_err();
    assert_eq!(err.errno(), Errno::NODEV);
    assert_eq!(
        rig.iommu.device_use_default_domain(lone),
        Ok(()),
        "no group: fine"
    );
    rig.iommu
        .device_claim_dma_owner(bdf("0000:00:01.0"), &owner)
        .unwrap();
}
