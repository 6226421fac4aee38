//! What the VT-d driver reports upward: reserved regions and hardware info.

use umdev_iommu::iommu::IommuOps;
use umdev_iommu::iommu::ops::ResvType;
use umdev_iommu::system::System;
use umdev_testkit::bdf;

#[test]
fn every_translated_device_reserves_the_x86_msi_window() {
    let sys = System::default_platform().unwrap();
    let regions = sys.vtd.resv_regions(bdf("0000:05:00.0"));
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].kind, ResvType::Msi);
    assert_eq!(regions[0].start, 0xfee0_0000);
    assert_eq!(regions[0].start + regions[0].length - 1, 0xfeef_ffff);
    // A segment no unit covers has none.
    assert!(sys.vtd.resv_regions(bdf("0001:00:00.0")).is_empty());
}

#[test]
fn hw_info_reports_the_unit_registers_and_pasid_width() {
    let sys = System::default_platform().unwrap();
    let unit = &sys.vtd.units()[0];
    let dsa = sys.vtd.hw_info(bdf("0000:01:00.0")).unwrap();
    assert_eq!(dsa.cap_reg, unit.cap().0);
    assert_eq!(dsa.ecap_reg, unit.ecap().0);
    assert_eq!(dsa.max_pasid_log2, 20);
    assert!(dsa.dirty_tracking);
    // The NVMe has no PASID capability.
    assert_eq!(
        sys.vtd.hw_info(bdf("0000:05:00.0")).unwrap().max_pasid_log2,
        0
    );
    assert!(sys.vtd.hw_info(bdf("0001:00:00.0")).is_none());
}
