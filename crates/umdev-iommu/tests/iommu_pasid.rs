//! PASID attach with the iommu-core rules of kernel-semantics §2.3
//! (`iommu_attach_device_pasid`, v6.15+), checked through the VT-d unit's
//! PASID tables and by DMA.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::iommu::DomainOps;
use umdev_pci::Bdf;
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

/// One multifunction device without ACS, so one group of three functions:
/// .0 with 20-bit PASIDs, .1 with 5-bit PASIDs (32), .2 without PASID.
const MIXED: &str = r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
pasid_bits = 20
page_sizes = ["4K", "2M"]
fault_log_size = 64

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
pasid = { max_width = 5 }

[[function]]
bdf = "0000:01:00.2"
kind = "endpoint"
vendor = 0x8086
device = 0x0b26
class = 0x088000
"#;

const IOVA: u64 = 0x20_0000;

fn f(function: u8) -> Bdf {
    Bdf::new(0, 1, 0, function).unwrap()
}

fn same(a: &Option<Arc<dyn DomainOps>>, b: &Arc<dyn DomainOps>) -> bool {
    a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
}

#[test]
fn mixed_group_is_one_group_with_per_device_limits() {
    let rig = Rig::from_toml(MIXED);
    let group = rig.iommu.device_group(f(0)).unwrap();
    assert_eq!(group.devices(), vec![f(0), f(1), f(2)]);
    let limits: Vec<u32> = (0..3)
        .map(|i| rig.iommu.device_caps(f(i)).unwrap().max_pasids)
        .collect();
    assert_eq!(limits, vec![1 << 20, 32, 0]);
}

#[test]
fn pasid_attach_errnos() {
    let rig = Rig::from_toml(MIXED);
    let (domain, _) = rig.mapped_domain(f(0), IOVA, 4096);
    let (other, _) = rig.mapped_domain(f(0), IOVA, 4096);
    let attach = |d, dev, pasid| {
        rig.iommu
            .attach_device_pasid(d, dev, pasid)
            .map_err(|e| e.errno())
    };

    assert_eq!(
        attach(&domain, f(0), 0),
        Err(Errno::INVAL),
        "IOMMU_NO_PASID"
    );
    assert_eq!(
        attach(&domain, f(2), 4),
        Err(Errno::INVAL),
        "device without PASID"
    );
    assert_eq!(
        attach(&domain, f(0), 32),
        Err(Errno::INVAL),
        "beyond .1's 32 PASIDs"
    );
    assert_eq!(attach(&domain, bdf("0000:07:00.0"), 4), Err(Errno::NODEV));
    let group = rig.iommu.device_group(f(0)).unwrap();
    assert!(
        group.info().pasids.is_empty(),
        "nothing attached by the failures"
    );

    // PASID 31 fits every PASID-capable member; the one without PASID
    // support is skipped (v6.15).
    assert_eq!(attach(&domain, f(0), 31), Ok(()));
    assert!(same(&rig.vtd.attached_domain(f(0), 31), domain.ops()));
    assert!(same(&rig.vtd.attached_domain(f(1), 31), domain.ops()));
    assert!(rig.vtd.attached_domain(f(2), 31).is_none());

    assert_eq!(attach(&other, f(0), 31), Err(Errno::BUSY));
    assert_eq!(
        attach(&domain, f(0), 31),
        Err(Errno::BUSY),
        "even the same domain"
    );
    assert_eq!(attach(&other, f(1), 31), Err(Errno::BUSY), "group-wide");
    assert!(Arc::ptr_eq(&group.pasid_domain(31).unwrap(), &domain));
}

#[test]
fn pasid_dma_translates_for_every_capable_member() {
    let rig = Rig::from_toml(MIXED);
    let (domain, memory) = rig.mapped_domain(f(0), IOVA, 4096);
    rig.iommu.attach_device_pasid(&domain, f(1), 7).unwrap();

    for (i, dev) in [f(0), f(1)].into_iter().enumerate() {
        let offset = 8 * i as u64;
        rig.dma(dev)
            .write(Some(7), IOVA + offset, &[i as u8 + 1; 8])
            .unwrap();
        let mut word = [0u8; 8];
        memory.read(offset, &mut word).unwrap();
        assert_eq!(word, [i as u8 + 1; 8], "{dev}");
    }
    assert!(
        !rig.dma_roundtrip(f(0), Some(8), IOVA, 1),
        "another PASID faults"
    );
    assert!(
        !rig.dma_roundtrip(f(0), None, IOVA, 1),
        "the RID is in identity"
    );
    assert_eq!(
        rig.iommu.device_domain(f(1), Some(7)).map(|d| d.id()),
        Some(domain.id())
    );
}

#[test]
fn replace_and_detach() {
    let rig = Rig::from_toml(MIXED);
    let (first, _) = rig.mapped_domain(f(0), IOVA, 4096);
    let (second, second_memory) = rig.mapped_domain(f(0), IOVA, 4096);
    let errno = |r: Result<(), umdev_iommu::iommu::IommuError>| r.map_err(|e| e.errno());

    assert_eq!(
        errno(rig.iommu.replace_device_pasid(&second, f(0), 5)),
        Err(Errno::INVAL),
        "nothing to replace"
    );
    rig.iommu.attach_device_pasid(&first, f(0), 5).unwrap();
    rig.iommu.replace_device_pasid(&second, f(1), 5).unwrap();
    rig.iommu.replace_device_pasid(&second, f(0), 5).unwrap();
    assert!(same(&rig.vtd.attached_domain(f(0), 5), second.ops()));
    rig.dma(f(0)).write(Some(5), IOVA, &[9; 4]).unwrap();
    let mut word = [0u8; 4];
    second_memory.read(0, &mut word).unwrap();
    assert_eq!(word, [9; 4]);

    assert_eq!(
        errno(rig.iommu.detach_device_pasid(&first, f(0), 5)),
        Err(Errno::INVAL),
        "not the attached domain"
    );
    rig.iommu.detach_device_pasid(&second, f(1), 5).unwrap();
    assert!(rig.vtd.attached_domain(f(0), 5).is_none());
    assert!(rig.vtd.attached_domain(f(1), 5).is_none());
    assert!(!rig.dma_roundtrip(f(0), Some(5), IOVA, 1));
    assert_eq!(
        errno(rig.iommu.detach_device_pasid(&second, f(1), 5)),
        Err(Errno::INVAL)
    );
    rig.iommu.attach_device_pasid(&first, f(0), 5).unwrap();
}

#[test]
fn two_pasids_of_one_device_are_isolated() {
    let rig = Rig::default_platform();
    let dsa = bdf("0000:01:00.0");
    let (one, one_memory) = rig.mapped_domain(dsa, IOVA, 4096);
    let (two, two_memory) = rig.mapped_domain(dsa, IOVA, 4096);
    rig.iommu.attach_device_pasid(&one, dsa, 1).unwrap();
    rig.iommu.attach_device_pasid(&two, dsa, 2).unwrap();

    let port = rig.dma(dsa);
    port.write(Some(1), IOVA, &[0x11; 16]).unwrap();
    port.write(Some(2), IOVA, &[0x22; 16]).unwrap();
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    one_memory.read(0, &mut a).unwrap();
    two_memory.read(0, &mut b).unwrap();
    assert_eq!((a, b), ([0x11; 16], [0x22; 16]));

    rig.iommu.detach_device_pasid(&one, dsa, 1).unwrap();
    assert!(port.write(Some(1), IOVA, &[0x33; 16]).is_err());
    two_memory.read(0, &mut b).unwrap();
    assert_eq!(b, [0x22; 16], "PASID 2 untouched");
}
