//! Isolation between PASIDs: one device, two PASIDs attached to two paging
//! domains backed by different memory objects mapped at the same IOVAs.
//! Random DMA through one PASID never reads or changes the other's memory,
//! and IOVAs outside the mapping fault.

use std::sync::Arc;

use proptest::prelude::*;
use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::iommu::{IommuOps, PagingFlags};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::vtd::FaultReason;
use umdev_testkit::vtd::{bdf, config, driver};

/// Bytes mapped per PASID, at IOVA 0.
const MAPPED: u64 = 64 << 10;

#[derive(Clone, Debug)]
enum Op {
    Read {
        pasid: usize,
        iova: u64,
        len: usize,
    },
    Write {
        pasid: usize,
        iova: u64,
        data: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let iova = 0..(2 * MAPPED);
    prop_oneof![
        (0..2usize, iova.clone(), 1..6000usize).prop_map(|(pasid, iova, len)| Op::Read {
            pasid,
            iova,
            len
        }),
        (
            0..2usize,
            iova,
            proptest::collection::vec(any::<u8>(), 1..6000)
        )
            .prop_map(|(pasid, iova, data)| Op::Write { pasid, iova, data }),
    ]
}

struct Fixture {
    port: DmaPort,
    pasids: [u32; 2],
    memory: [Arc<MemoryObject>; 2],
}

fn fixture() -> Fixture {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 5, 0);
    driver.probe_device(dev).unwrap();
    let flags = PagingFlags {
        pasid: true,
        ..PagingFlags::default()
    };
    let pasids = [1, 0x8_0001];
    let memory = [0, 1].map(|i| {
        let object = mem.alloc_anonymous(MAPPED).unwrap();
        object
            .write(0, &vec![0x10 + i as u8; MAPPED as usize])
            .unwrap();
        let domain = driver.domain_alloc_paging(dev, flags).unwrap();
        domain
            .map(0, object.base(), MAPPED, Prot::READ | Prot::WRITE)
            .unwrap();
        driver.set_dev_pasid(&domain, dev, pasids[i], None).unwrap();
        object
    });
    Fixture {
        port: DmaPort::for_requester(driver.units(), dev).unwrap(),
        pasids,
        memory,
    }
}

fn contents(object: &MemoryObject) -> Vec<u8> {
    let mut bytes = vec![0u8; MAPPED as usize];
    object.read(0, &mut bytes).unwrap();
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn dma_through_one_pasid_never_touches_the_other(ops in proptest::collection::vec(op(), 1..60)) {
        let fx = fixture();
        let mut model = [contents(&fx.memory[0]), contents(&fx.memory[1])];
        for op in ops {
            let (pasid, iova, len) = match &op {
                Op::Read { pasid, iova, len } => (*pasid, *iova, *len as u64),
                Op::Write { pasid, iova, data } => (*pasid, *iova, data.len() as u64),
            };
            let inside = iova + len <= MAPPED;
            let result = match &op {
                Op::Read { .. } => {
                    let mut buf = vec![0u8; len as usize];
                    let r = fx.port.read(Some(fx.pasids[pasid]), iova, &mut buf);
                    if r.is_ok() {
                        let at = iova as usize;
                        prop_assert_eq!(&buf[..], &model[pasid][at..at + len as usize]);
                    }
                    r
                }
                Op::Write { data, .. } => {
                    let r = fx.port.write(Some(fx.pasids[pasid]), iova, data);
                    if r.is_ok() {
                        model[pasid][iova as usize..(iova + len) as usize].copy_from_slice(data);
                    }
                    r
                }
            };
            prop_assert_eq!(result.is_ok(), inside, "{:?}", op);
            if let Err(err) = result {
                let record = err.record();
                // The first byte beyond the mapping faults.
                prop_assert_eq!(record.addr, iova.max(MAPPED));
                prop_assert_eq!(record.pasid, Some(fx.pasids[pasid]));
                let first_level_miss = matches!(record.reason, FaultReason::FirstLevelNotPresent { .. });
                prop_assert!(first_level_miss, "{:?}", record.reason);
            }
            // The other PASID's memory is exactly as the model says.
            let other = 1 - pasid;
            prop_assert!(contents(&fx.memory[other]) == model[other], "PASID {} leaked into the other", pasid);
            // Own memory too, except a faulting write may have moved bytes
            // inside its own range: take them from memory.
            let own = contents(&fx.memory[pasid]);
            let (lo, hi) = (iova.min(MAPPED) as usize, (iova + len).min(MAPPED) as usize);
            prop_assert!(own[..lo] == model[pasid][..lo] && own[hi..] == model[pasid][hi..]);
            model[pasid] = own;
        }
    }
}
