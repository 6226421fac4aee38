//! Group viability (every member unbound or bound to a `driver_managed_dma`
//! driver; kernel-semantics §2.4) and devices coming and going through the
//! platform hooks, on the default platform.

use std::collections::BTreeMap;

use umdev_iommu::iommu::OwnerCookie;
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

const NIC0: &str = "0000:04:00.0";
const NIC1: &str = "0000:04:00.1";
const PF: &str = "0000:07:00.0";

fn viability(rig: &Rig) -> BTreeMap<u32, bool> {
    rig.iommu
        .groups()
        .iter()
        .map(|g| (g.id(), rig.iommu.group_viable(g)))
        .collect()
}

#[test]
fn groups_follow_the_platform_and_viability_follows_the_drivers() {
    let rig = Rig::default_platform();
    let platform_groups = rig.platform.iommu_groups();
    let core_groups: BTreeMap<u32, Vec<_>> = rig
        .iommu
        .groups()
        .iter()
        .map(|g| (g.id(), g.devices()))
        .collect();
    assert_eq!(core_groups, platform_groups);

    // Root ports, the switch ports (pcieport) are viable; everything with a
    // kernel DMA-API driver is not.
    let expected: BTreeMap<u32, bool> = (0..=12).map(|g| (g, matches!(g, 0..=4 | 6 | 8))).collect();
    assert_eq!(viability(&rig), expected);
}

#[test]
fn unbinding_dma_api_drivers_makes_a_group_viable() {
    let rig = Rig::default_platform();
    let group = rig.iommu.device_group(bdf(NIC0)).unwrap();
    assert!(!rig.iommu.group_viable(&group));
    rig.platform.unbind("igb", bdf(NIC0)).unwrap();
    assert!(!rig.iommu.group_viable(&group), "NIC1 still has igb");
    rig.platform.unbind("igb", bdf(NIC1)).unwrap();
    assert!(rig.iommu.group_viable(&group));

    // pci-stub is driver_managed_dma: still viable, and it may bind while
    // the group is owned.
    let owner = OwnerCookie::new();
    rig.iommu.device_claim_dma_owner(bdf(NIC1), &owner).unwrap();
    rig.platform
        .set_driver_override(bdf(NIC0), "pci-stub")
        .unwrap();
    rig.platform.bind("pci-stub", bdf(NIC0)).unwrap();
    assert!(rig.iommu.group_viable(&group));
    rig.iommu
        .device_release_dma_owner(bdf(NIC1), &owner)
        .unwrap();

    rig.platform.bind("igb", bdf(NIC1)).unwrap();
    assert!(!rig.iommu.group_viable(&group));
}

#[test]
fn sriov_vfs_are_probed_and_released() {
    let rig = Rig::default_platform();
    let before = rig.iommu.groups().len();
    rig.platform.set_sriov_numvfs(bdf(PF), 2).unwrap();
    let vfs = [bdf("0000:07:02.0"), bdf("0000:07:02.1")];
    for vf in vfs {
        let group = rig.iommu.device_group(vf).expect("VF probed");
        assert_eq!(Some(group.id()), rig.platform.iommu_group(vf));
        assert_eq!(group.devices(), vec![vf]);
        // The VF driver (iavf, DMA API) was counted.
        assert_eq!(group.info().owner_cnt, 1);
        assert!(rig.dma_roundtrip(
            vf,
            None,
            rig.vtd.memory().alloc_anonymous(4096).unwrap().base(),
            1
        ));
    }
    assert_eq!(rig.iommu.groups().len(), before + 2);

    rig.platform.set_sriov_numvfs(bdf(PF), 0).unwrap();
    for vf in vfs {
        assert!(rig.iommu.device_group(vf).is_none(), "VF released");
        assert!(rig.vtd.attached_domain(vf, 0).is_none());
    }
    assert_eq!(rig.iommu.groups().len(), before);
}
