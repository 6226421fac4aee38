//! The legacy auxiliary-domain API (Linux v5.1 .. v5.16; kernel-semantics
//! §4.1) on PASID attach: the Scalable-IOV DMA engine 01:00.0 of the
//! default platform gets aux domains whose PASID tags its DMA.

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::iommu::{DevFeature, IommuError, OwnerCookie};
use umdev_pci::IommuHooks;
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

const DSA: &str = "0000:01:00.0";
const NVME: &str = "0000:05:00.0";
const IOVA: u64 = 0x10_0000;

fn errno<T>(r: Result<T, IommuError>) -> Result<T, Errno> {
    r.map_err(|e| e.errno())
}

#[test]
fn feature_needs_an_iommu_and_pasid_support() {
    let rig = Rig::default_platform();
    let (dsa, nvme) = (bdf(DSA), bdf(NVME));
    assert!(rig.iommu.dev_has_feature(dsa, DevFeature::Aux));
    assert!(!rig.iommu.dev_has_feature(nvme, DevFeature::Aux));
    assert_eq!(
        errno(rig.iommu.dev_enable_feature(nvme, DevFeature::Aux)),
        Err(Errno::NODEV)
    );
    assert_eq!(
        errno(
            rig.iommu
                .dev_enable_feature(bdf("0000:0a:00.0"), DevFeature::Aux)
        ),
        Err(Errno::NODEV)
    );
    assert!(!rig.iommu.dev_feature_enabled(dsa, DevFeature::Aux));
    rig.iommu.dev_enable_feature(dsa, DevFeature::Aux).unwrap();
    assert!(rig.iommu.dev_feature_enabled(dsa, DevFeature::Aux));
    rig.iommu.dev_disable_feature(dsa, DevFeature::Aux).unwrap();
    assert!(!rig.iommu.dev_feature_enabled(dsa, DevFeature::Aux));
}

#[test]
fn aux_attach_needs_the_feature_and_a_paging_domain() {
    let rig = Rig::default_platform();
    let dsa = bdf(DSA);
    let (domain, _) = rig.mapped_domain(dsa, IOVA, 4096);
    assert_eq!(
        errno(rig.iommu.attach_device_aux(&domain, dsa)),
        Err(Errno::PERM)
    );
    rig.iommu.dev_enable_feature(dsa, DevFeature::Aux).unwrap();
    let identity = rig.iommu.identity_domain();
    assert_eq!(
        errno(rig.iommu.attach_device_aux(&identity, dsa)),
        Err(Errno::PERM)
    );
    assert_eq!(
        errno(rig.iommu.aux_get_pasid(&domain, dsa)),
        Err(Errno::INVAL)
    );
    assert_eq!(
        errno(rig.iommu.aux_get_pasid(&domain, bdf("0000:0a:00.0"))),
        Err(Errno::NODEV)
    );
    assert_eq!(
        errno(rig.iommu.detach_device_aux(&domain, dsa)),
        Err(Errno::INVAL)
    );
}

#[test]
fn aux_pasid_tags_dma_into_the_aux_domain_while_rid_dma_is_not() {
    let rig = Rig::default_platform();
    let dsa = bdf(DSA);
    rig.iommu.dev_enable_feature(dsa, DevFeature::Aux).unwrap();
    // The RID stays in the identity default domain (idxd is bound); put a
    // decoy buffer where identity DMA to the aux IOVA would land.
    let decoy = rig.vtd.memory().alloc_anonymous(4096).unwrap();
    let iova = decoy.base();
    let (domain, memory) = rig.mapped_domain(dsa, iova, 4096);

    let pasid = rig.iommu.attach_device_aux(&domain, dsa).unwrap();
    assert!(pasid >= 1);
    assert_eq!(rig.iommu.aux_get_pasid(&domain, dsa).unwrap(), pasid);
    assert_eq!(domain.aux_pasid(), Some(pasid));

    let port = rig.dma(dsa);
    port.write(Some(pasid), iova, b"aux-data").unwrap();
    port.write(None, iova, b"rid-data").unwrap();
    let mut word = [0u8; 8];
    memory.read(0, &mut word).unwrap();
    assert_eq!(&word, b"aux-data", "PASID DMA went through the aux domain");
    decoy.read(0, &mut word).unwrap();
    assert_eq!(&word, b"rid-data", "RID DMA did not");
    assert!(port.write(Some(pasid + 1), iova, b"x").is_err());

    // An aux PASID is a PASID attachment: the group cannot be claimed.
    let group = rig.iommu.device_group(dsa).unwrap();
    assert_eq!(group.info().pasids, vec![(pasid, domain.id())]);
    rig.platform.unbind("idxd", dsa).unwrap();
    let owner = OwnerCookie::new();
    assert_eq!(
        errno(rig.iommu.device_claim_dma_owner(dsa, &owner)),
        Err(Errno::BUSY)
    );

    rig.iommu.detach_device_aux(&domain, dsa).unwrap();
    assert!(port.write(Some(pasid), iova, b"x").is_err());
    rig.iommu.device_claim_dma_owner(dsa, &owner).unwrap();
}

#[test]
fn aux_attach_is_counted_and_each_domain_has_its_pasid() {
    let rig = Rig::default_platform();
    let dsa = bdf(DSA);
    rig.iommu.dev_enable_feature(dsa, DevFeature::Aux).unwrap();
    let (one, _) = rig.mapped_domain(dsa, IOVA, 4096);
    let (two, _) = rig.mapped_domain(dsa, IOVA, 4096);

    let p1 = rig.iommu.attach_device_aux(&one, dsa).unwrap();
    let p2 = rig.iommu.attach_device_aux(&two, dsa).unwrap();
    assert_ne!(p1, p2);
    assert_eq!(rig.iommu.attach_device_aux(&one, dsa).unwrap(), p1);
    assert_eq!(rig.iommu.aux_attach_count(&one, dsa), 2);

    rig.iommu.detach_device_aux(&one, dsa).unwrap();
    assert!(rig.dma_roundtrip(dsa, Some(p1), IOVA, 5), "one attach left");
    assert_eq!(
        errno(rig.iommu.dev_disable_feature(dsa, DevFeature::Aux)),
        Err(Errno::BUSY)
    );
    rig.iommu.detach_device_aux(&one, dsa).unwrap();
    assert!(!rig.dma_roundtrip(dsa, Some(p1), IOVA, 5));
    assert!(rig.dma_roundtrip(dsa, Some(p2), IOVA, 6));
    assert_eq!(
        errno(rig.iommu.detach_device_aux(&one, dsa)),
        Err(Errno::INVAL)
    );

    // The PASID belongs to the domain until it is freed.
    assert_eq!(rig.iommu.aux_get_pasid(&one, dsa).unwrap(), p1);
    assert!(rig.iommu.ioasids().is_allocated(p1));
    drop(one);
    assert!(!rig.iommu.ioasids().is_allocated(p1));
    rig.iommu.detach_device_aux(&two, dsa).unwrap();
    rig.iommu.dev_disable_feature(dsa, DevFeature::Aux).unwrap();
}

#[test]
fn one_aux_domain_keeps_one_pasid_across_devices() {
    // Two PASID-capable endpoints in separate groups.
    let mut text = String::from(
        r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
pasid_bits = 20
page_sizes = ["4K"]
fault_log_size = 16
"#,
    );
    for n in 1..=2 {
        text += &format!(
            r#"
[[function]]
bdf = "0000:00:0{n}.0"
kind = "root-port"
vendor = 0x8086
device = 0x347a
secondary_bus = {n}
acs = {{ capability = ["SV", "RR", "CR", "UF"] }}

[[function]]
bdf = "0000:0{n}:00.0"
kind = "endpoint"
vendor = 0x8086
device = 0x0b25
class = 0x088000
pasid = {{ max_width = 20 }}
"#
        );
    }
    let rig = Rig::from_toml(&text);
    let (a, b) = (bdf("0000:01:00.0"), bdf("0000:02:00.0"));
    assert_ne!(
        rig.iommu.device_group(a).unwrap().id(),
        rig.iommu.device_group(b).unwrap().id()
    );
    let (domain, memory) = rig.mapped_domain(a, IOVA, 4096);
    for dev in [a, b] {
        rig.iommu.dev_enable_feature(dev, DevFeature::Aux).unwrap();
    }
    let pasid = rig.iommu.attach_device_aux(&domain, a).unwrap();
    assert_eq!(rig.iommu.attach_device_aux(&domain, b).unwrap(), pasid);
    rig.dma(b).write(Some(pasid), IOVA, &[0x77; 4]).unwrap();
    let mut word = [0u8; 4];
    memory.read(0, &mut word).unwrap();
    assert_eq!(word, [0x77; 4]);

    rig.iommu.detach_device_aux(&domain, a).unwrap();
    assert!(!rig.dma_roundtrip(a, Some(pasid), IOVA, 1));
    assert!(rig.dma_roundtrip(b, Some(pasid), IOVA, 2), "b keeps it");
}

#[test]
fn aux_pasid_is_released_with_its_last_device_and_not_by_plain_detach() {
    // One group: a two-function device without ACS, both with PASIDs.
    let rig = Rig::from_toml(
        r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
pasid_bits = 20
page_sizes = ["4K"]

[[function]]
bdf = "0000:00:01.0"
kind = "root-port"
vendor = 0x8086
device = 0x347a
secondary_bus = 1
acs = { capability = ["SV", "RR", "CR", "UF"] }

[[function]]
bdf = "0000:01:00.0"
kind = "endpoint"
vendor = 0x8086
device = 0x0b25
class = 0x088000
pasid = { max_width = 20 }

[[function]]
bdf = "0000:01:00.1"
kind = "endpoint"
vendor = 0x8086
device = 0x0b25
class = 0x088000
pasid = { max_width = 20 }
"#,
    );
    let (a, b) = (bdf("0000:01:00.0"), bdf("0000:01:00.1"));
    let group = rig.iommu.device_group(a).unwrap();
    assert_eq!(group.devices(), vec![a, b]);
    rig.iommu.dev_enable_feature(a, DevFeature::Aux).unwrap();
    let (domain, _) = rig.mapped_domain(a, IOVA, 4096);
    let pasid = rig.iommu.attach_device_aux(&domain, a).unwrap();
    assert!(
        rig.dma_roundtrip(b, Some(pasid), IOVA, 1),
        "programmed group-wide"
    );

    assert_eq!(
        errno(rig.iommu.detach_device_pasid(&domain, a, pasid)),
        Err(Errno::BUSY),
        "held by the aux API"
    );
    // a goes away (hot-unplug): its aux attachment and the group's PASID go.
    rig.iommu.release_device(a);
    assert!(group.info().pasids.is_empty());
    assert!(!rig.dma_roundtrip(b, Some(pasid), IOVA, 2));
}
