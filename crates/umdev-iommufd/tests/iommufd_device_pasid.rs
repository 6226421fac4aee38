//! Ports of FIXTURE(iommufd_device_pasid) from
//! tools/testing/selftests/iommu/iommufd.c (kernel-semantics §3.8),
//! variants no_pasid (plus a device without PASID support on the same
//! IOAS) and has_pasid. The selftest also allocates a nested HWPT on a
//! vIOMMU that it never attaches; vIOMMUs are not modelled (§3.7).

mod common;

use std::sync::Arc;

use common::*;
use rustix::io::Errno;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::vtd::S1Flags;
use umdev_iommufd::{HwptAllocFlags, HwptData, Ictx};

struct Fixture {
    env: Env,
    ictx: Arc<Ictx>,
    ioas: u32,
    stdev: MockDev,
    no_pasid: Option<MockDev>,
}

impl Fixture {
    fn new(pasid_capable: bool) -> Self {
        let env = Env::new();
        let ictx = env.ictx();
        let ioas = ictx.ioas_alloc().unwrap();
        let stdev = env.mock_domain_flags(&ictx, ioas, PASID).unwrap();
        let no_pasid = (!pasid_capable).then(|| env.mock_domain(&ictx, ioas).unwrap());
        Self {
            env,
            ictx,
            ioas,
            stdev,
            no_pasid,
        }
    }

    fn attach(&self, pasid: u32, pt: u32) -> Result<u32, Errno> {
        errno(self.ictx.device_attach(self.stdev.dev_id, pasid, pt))
    }

    fn replace(&self, pasid: u32, pt: u32) -> Result<u32, Errno> {
        errno(self.ictx.device_replace(self.stdev.dev_id, pasid, pt))
    }

    fn detach(&self, pasid: u32) {
        self.ictx.device_detach(self.stdev.dev_id, pasid).unwrap();
    }

    /// IOMMU_TEST_OP_PASID_CHECK_HWPT: the domain the IOMMU core has for
    /// `pasid` (0: the RID) is `hwpt`'s (0: none).
    fn check_hwpt(&self, pasid: u32, hwpt: u32) {
        let attached = self
            .env
            .iommu
            .device_domain(self.stdev.bdf, (pasid != 0).then_some(pasid))
            .map(|d| d.id());
        let expected = (hwpt != 0).then(|| self.ictx.hwpt_domain(hwpt).unwrap().id());
        assert_eq!(attached, expected, "pasid {pasid}");
    }

    fn teardown(self) {
        let mut bdfs = vec![self.stdev.bdf];
        bdfs.extend(self.no_pasid.map(|d| d.bdf));
        teardown(&self.env, &self.ictx, &bdfs);
    }
}

fn s1_data() -> HwptData {
    HwptData::VtdS1(VtdS1Config {
        flags: S1Flags::default(),
        pgtbl_addr: 0x10_0000,
        addr_width: 48,
    })
}

#[test]
fn pasid_attach() {
    for pasid_capable in [false, true] {
        let f = Fixture::new(pasid_capable);
        let ictx = &f.ictx;
        let dev = f.stdev.dev_id;
        let mut pasid = 100;

        // Detaching a PASID never attached is not an error.
        f.detach(pasid);

        // Two nested HWPTs with ALLOC_PASID on one parent.
        let parent = ictx
            .hwpt_alloc(dev, f.ioas, HwptAllocFlags::NEST_PARENT, HwptData::None)
            .unwrap();
        let nested0 = ictx
            .hwpt_alloc(dev, parent, HwptAllocFlags::PASID, s1_data())
            .unwrap();
        let nested1 = ictx
            .hwpt_alloc(dev, parent, HwptAllocFlags::PASID, s1_data())
            .unwrap();
        // Fault related preparation.
        let fault = ictx.fault_queue_alloc().unwrap();
        let iopf_hwpt = ictx
            .hwpt_alloc_fault(
                dev,
                parent,
                HwptAllocFlags::FAULT_ID_VALID | HwptAllocFlags::PASID,
                s1_data(),
                fault.id(),
            )
            .unwrap();
        let s2 = ictx
            .hwpt_alloc(dev, f.ioas, HwptAllocFlags::PASID, HwptData::None)
            .unwrap();

        // The RID on a non-PASID-compatible domain, then a PASID attach fails,
        f.replace(0, parent).unwrap();
        assert_eq!(f.attach(pasid, s2), Err(Errno::INVAL));
        // the RID on a PASID-compatible one, then it succeeds,
        f.replace(0, s2).unwrap();
        f.attach(pasid, nested0).unwrap();
        // but now the RID cannot go to a non-PASID-compatible domain.
        assert_eq!(f.replace(0, parent), Err(Errno::INVAL));
        f.check_hwpt(0, s2);
        // Detach pasid 100: no domain.
        f.detach(pasid);
        f.check_hwpt(pasid, 0);

        if let Some(no_pasid) = f.no_pasid {
            // A PASID-compatible domain can be used by a device without
            // PASID support,
            ictx.device_replace(no_pasid.dev_id, 0, nested0).unwrap();
            ictx.device_replace(no_pasid.dev_id, 0, f.ioas).unwrap();
            // but not on one of its PASIDs, compatible or not.
            assert_eq!(
                errno(ictx.device_attach(no_pasid.dev_id, pasid, parent)),
                Err(Errno::INVAL)
            );
            assert_eq!(
                errno(ictx.device_attach(no_pasid.dev_id, pasid, s2)),
                Err(Errno::INVAL)
            );
        }

        // A non-PASID-compatible HWPT on a PASID fails, leaving no domain.
        assert_eq!(f.attach(pasid, parent), Err(Errno::INVAL));
        f.check_hwpt(pasid, 0);
        // An IOAS on a PASID (its auto domain is not PASID-compatible).
        assert_eq!(f.attach(pasid, f.ioas), Err(Errno::INVAL));
        f.check_hwpt(pasid, 0);
        // The s2 HWPT works.
        assert_eq!(f.attach(pasid, s2), Ok(s2));
        f.check_hwpt(pasid, s2);
        // Attach does not overwrite (that is replace).
        assert_eq!(f.attach(pasid, nested0), Err(Errno::BUSY));
        f.check_hwpt(pasid, s2);
        f.detach(pasid);
        f.check_hwpt(pasid, 0);
        // A nested HWPT on pasid 100, twice.
        assert_eq!(f.attach(pasid, nested0), Ok(nested0));
        f.check_hwpt(pasid, nested0);
        assert_eq!(f.attach(pasid, nested0), Err(Errno::BUSY));
        f.detach(pasid);

        // Replace.
        pasid = 200;
        // Replacing a PASID not attached.
        assert_eq!(f.replace(pasid, s2), Err(Errno::INVAL));
        f.attach(pasid, s2).unwrap();
        f.check_hwpt(pasid, s2);
        // Replacing with the IOAS fails, the old domain stays.
        assert_eq!(f.replace(pasid, f.ioas), Err(Errno::INVAL));
        f.check_hwpt(pasid, s2);
        // Replacing with nested HWPTs works.
        f.replace(pasid, nested0).unwrap();
        f.check_hwpt(pasid, nested0);
        f.replace(pasid, nested1).unwrap();
        f.check_hwpt(pasid, nested1);
        f.detach(pasid);

        // IOMMU_TEST_PASID_RESERVED: the mock fails the replace, the old
        // domain stays.
        pasid = IOMMU_TEST_PASID_RESERVED;
        f.attach(pasid, s2).unwrap();
        f.check_hwpt(pasid, s2);
        assert_eq!(f.replace(pasid, nested0), Err(Errno::NOMEM));
        f.check_hwpt(pasid, s2);
        f.detach(pasid);

        // An IOPF-capable HWPT on pasid 2048.
        pasid = 2048;
        f.attach(pasid, iopf_hwpt).unwrap();
        f.check_hwpt(pasid, iopf_hwpt);
        trigger_iopf(&f.env, &fault, &f.stdev, Some(pasid));
        f.replace(pasid, s2).unwrap();
        f.check_hwpt(pasid, s2);
        f.detach(pasid);

        ictx.destroy(iopf_hwpt).unwrap();
        let fault_id = fault.id();
        drop(fault);
        ictx.destroy(fault_id).unwrap();
        // Detach s2 from the RID.
        f.replace(0, f.ioas).unwrap();
        f.teardown();
    }
}
