//! RID attach and the group rules (kernel-semantics §2.4 "Attach to a
//! group", §2.5), checked by DMA through the real VT-d unit.
//!
//! Group 7 of the default platform: the ACS-less downstream port 03:00.0
//! and the two NIC functions 04:00.0 / 04:00.1 below it.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::iommu::{DefaultDomainType, DomainType, Group, OwnerCookie, PagingFlags};
use umdev_iommu::pgtable::Prot;
use umdev_iommu::vtd::{FaultHandler, FaultRecord};
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

const NIC0: &str = "0000:04:00.0";
const NIC1: &str = "0000:04:00.1";
const NVME: &str = "0000:05:00.0";
const IOVA: u64 = 0x40_0000;

/// Group 7 with igb unbound and owned by `owner`.
fn owned_group(rig: &Rig, owner: &OwnerCookie) -> Arc<Group> {
    rig.platform.unbind("igb", bdf(NIC0)).unwrap();
    rig.platform.unbind("igb", bdf(NIC1)).unwrap();
    rig.iommu.device_claim_dma_owner(bdf(NIC0), owner).unwrap();
    rig.iommu.device_group(bdf(NIC0)).unwrap()
}

#[test]
fn attach_device_on_non_singleton_group_is_einval() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (domain, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);

    let err = rig.iommu.attach_device(&domain, bdf(NIC0)).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(Arc::ptr_eq(&group.domain(), &group.blocking_domain()));
    assert!(!rig.dma_roundtrip(bdf(NIC0), None, IOVA, 1));

    // The NVMe is alone in its group: the single-device API works there.
    let nvme = bdf(NVME);
    let (single, memory) = rig.mapped_domain(nvme, IOVA, 4096);
    rig.iommu.attach_device(&single, nvme).unwrap();
    assert!(rig.dma_roundtrip(nvme, None, IOVA + 8, 0xfeed));
    let mut word = [0u8; 8];
    memory.read(8, &mut word).unwrap();
    assert_eq!(u64::from_le_bytes(word), 0xfeed);
    let err = rig.iommu.detach_device(&domain, nvme).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL, "not the attached domain");
    rig.iommu.detach_device(&single, nvme).unwrap();
    assert!(
        !rig.dma_roundtrip(nvme, None, IOVA, 1),
        "identity again: IOVA unbacked"
    );
}

#[test]
fn attach_group_switches_every_device() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (domain, memory) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    for dev in [NIC0, NIC1] {
        assert!(!rig.dma_roundtrip(bdf(dev), None, IOVA, 1), "{dev} blocked");
    }

    rig.iommu.attach_group(&domain, &group).unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &domain));
    for (i, dev) in [NIC0, NIC1].into_iter().enumerate() {
        let offset = 8 * i as u64;
        let value = 0x1000 + i as u64;
        rig.dma(bdf(dev))
            .write(None, IOVA + offset, &value.to_le_bytes())
            .unwrap();
        let mut word = [0u8; 8];
        memory.read(offset, &mut word).unwrap();
        assert_eq!(
            u64::from_le_bytes(word),
            value,
            "{dev} DMA landed in the domain"
        );
    }
    assert_eq!(
        rig.iommu.device_domain(bdf(NIC1), None).map(|d| d.id()),
        Some(domain.id())
    );
}

#[test]
fn detach_returns_to_blocking_while_owned() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (domain, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    rig.iommu.attach_group(&domain, &group).unwrap();
    assert!(rig.dma_roundtrip(bdf(NIC1), None, IOVA, 3));

    rig.iommu.detach_group(&domain, &group).unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &group.blocking_domain()));
    for dev in [NIC0, NIC1] {
        assert!(!rig.dma_roundtrip(bdf(dev), None, IOVA, 3), "{dev} blocked");
    }
    let err = rig.iommu.detach_group(&domain, &group).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL, "already detached");

    rig.iommu
        .device_release_dma_owner(bdf(NIC0), &owner)
        .unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &group.default_domain()));
}

#[test]
fn second_attach_of_another_domain_is_ebusy() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (first, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    let (second, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    rig.iommu.attach_group(&first, &group).unwrap();

    for domain in [&second, &first] {
        let err = rig.iommu.attach_group(domain, &group).unwrap_err();
        assert_eq!(err.errno(), Errno::BUSY);
    }
    assert!(Arc::ptr_eq(&group.domain(), &first));

    rig.iommu.detach_group(&first, &group).unwrap();
    rig.iommu.attach_group(&second, &group).unwrap();
}

#[test]
fn replace_switches_the_group_without_detaching() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (first, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    let (second, second_memory) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    rig.iommu.attach_group(&first, &group).unwrap();

    rig.iommu.replace_group_domain(&group, &second).unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &second));
    for (i, dev) in [NIC0, NIC1].into_iter().enumerate() {
        let offset = 16 * i as u64;
        rig.dma(bdf(dev))
            .write(None, IOVA + offset, &[0xab; 8])
            .unwrap();
        let mut word = [0u8; 8];
        second_memory.read(offset, &mut word).unwrap();
        assert_eq!(
            word, [0xab; 8],
            "{dev} now translates through the new domain"
        );
    }
}

#[test]
fn domain_of_another_iommu_is_einval() {
    let rig = Rig::default_platform();
    let other = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (foreign, _) = other.mapped_domain(bdf(NIC0), IOVA, 4096);

    let err = rig.iommu.attach_group(&foreign, &group).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let err = rig
        .iommu
        .replace_group_domain(&group, &foreign)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let dsa = bdf("0000:01:00.0");
    let err = rig.iommu.attach_device_pasid(&foreign, dsa, 1).unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    let err = rig
        .iommu
        .domain_alloc_nested(dsa, &foreign, nested_config(), false)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(Arc::ptr_eq(&group.domain(), &group.blocking_domain()));
}

fn nested_config() -> umdev_iommu::iommu::VtdS1Config {
    umdev_iommu::iommu::VtdS1Config {
        flags: Default::default(),
        pgtbl_addr: 0x1000,
        addr_width: 48,
    }
}

#[test]
fn nested_domain_keeps_its_parent_and_attaches() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let parent = rig
        .iommu
        .domain_alloc_paging(
            bdf(NIC0),
            PagingFlags {
                nest_parent: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    let nested = rig
        .iommu
        .domain_alloc_nested(bdf(NIC0), &parent, nested_config(), false)
        .unwrap();
    assert_eq!(nested.domain_type(), DomainType::Nested);
    assert!(Arc::ptr_eq(nested.parent().unwrap(), &parent));
    rig.iommu.attach_group(&nested, &group).unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &nested));
    rig.iommu.detach_group(&nested, &group).unwrap();
}

#[test]
fn map_and_unmap_need_a_paging_domain() {
    let rig = Rig::default_platform();
    let identity = rig.iommu.identity_domain();
    let blocked = rig.iommu.blocked_domain();
    for domain in [&identity, &blocked] {
        let err = domain.map(0, 0, 4096, Prot::READ).unwrap_err();
        assert_eq!(err.errno(), Errno::INVAL, "{domain:?}");
        assert_eq!(domain.unmap(0, 4096).unwrap_err().errno(), Errno::INVAL);
    }
    assert_eq!(identity.iova_to_phys(0x1234), Some(0x1234));
    assert_eq!(blocked.iova_to_phys(0x1234), None);

    let (paging, memory) = rig.mapped_domain(bdf(NIC0), IOVA, 8192);
    assert_eq!(paging.iova_to_phys(IOVA + 4100), Some(memory.base() + 4100));
    assert_eq!(paging.unmap(IOVA, 8192).unwrap(), 8192);
    assert_eq!(paging.iova_to_phys(IOVA), None);
}

/// Collects the faults reported to it.
#[derive(Default)]
struct Recorder(parking_lot::Mutex<Vec<FaultRecord>>);

impl FaultHandler for Recorder {
    fn report(&self, fault: &FaultRecord) {
        self.0.lock().push(*fault);
    }
}

#[test]
fn fault_handler_slot_receives_the_domains_faults() {
    let rig = Rig::default_platform();
    let owner = OwnerCookie::new();
    let group = owned_group(&rig, &owner);
    let (domain, _) = rig.mapped_domain(bdf(NIC0), IOVA, 4096);
    let recorder = Arc::new(Recorder::default());
    domain.set_fault_handler(Some(recorder.clone()));
    assert!(domain.fault_handler().is_some());
    rig.iommu.attach_group(&domain, &group).unwrap();

    let hole = IOVA + 0x10_0000;
    assert!(rig.dma(bdf(NIC1)).write(None, hole, &[1]).is_err());
    let faults = recorder.0.lock().clone();
    assert_eq!(faults.len(), 1);
    assert_eq!((faults[0].requester, faults[0].addr), (bdf(NIC1), hole));

    domain.set_fault_handler(None);
    assert!(rig.dma(bdf(NIC1)).write(None, hole, &[1]).is_err());
    assert_eq!(recorder.0.lock().len(), 1, "handler removed");
}

#[test]
fn dma_default_domains_translate_only_what_the_kernel_maps() {
    let rig = Rig::default_platform_dma();
    assert_eq!(rig.iommu.default_domain_type(), DefaultDomainType::Dma);
    let nvme = bdf(NVME);
    let group = rig.iommu.device_group(nvme).unwrap();
    let default = group.default_domain();
    assert_eq!(default.domain_type(), DomainType::Paging);
    let other = rig.iommu.device_group(bdf(NIC0)).unwrap().default_domain();
    assert_ne!(default.id(), other.id(), "one DMA domain per group");

    assert!(
        !rig.dma_roundtrip(nvme, None, IOVA, 1),
        "nothing mapped yet"
    );
    let buffer = rig.vtd.memory().alloc_anonymous(4096).unwrap();
    default
        .map(IOVA, buffer.base(), 4096, Prot::READ | Prot::WRITE)
        .unwrap();
    assert!(
        rig.dma_roundtrip(nvme, None, IOVA, 2),
        "the kernel's mapping"
    );

    rig.platform.unbind("nvme", nvme).unwrap();
    let owner = OwnerCookie::new();
    rig.iommu.device_claim_dma_owner(nvme, &owner).unwrap();
    assert!(
        !rig.dma_roundtrip(nvme, None, IOVA, 3),
        "blocked while owned"
    );
    rig.iommu.device_release_dma_owner(nvme, &owner).unwrap();
    assert!(Arc::ptr_eq(&group.domain(), &default));
    assert!(
        rig.dma_roundtrip(nvme, None, IOVA, 4),
        "the same DMA domain again"
    );
}
