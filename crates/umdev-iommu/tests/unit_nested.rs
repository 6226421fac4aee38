//! Nested translation: x86-64 4-level tables built inside guest memory
//! (reached only through the second level), DMA following both stages,
//! and the fault each kind of miss produces.

use std::sync::Arc;

use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::intel::VtdNestedDomain;
use umdev_iommu::iommu::{IommuOps, PagingFlags, VtdS1Config};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::{Access, Prot};
use umdev_iommu::vtd::{FaultReason, S1Flags};
use umdev_testkit::vtd::{Recorder, bdf, config, driver};

/// Where the second level puts guest memory.
const GPA_BASE: u64 = 0x8000_0000;
const GUEST_SIZE: u64 = 4 << 20;
/// Guest table pages (offsets into guest memory).
const PML4: u64 = 0x0000;
const PDPT: u64 = 0x1000;
const PD: u64 = 0x2000;
const PT: u64 = 0x3000;
const DATA: u64 = 0x10_0000;
/// x86 P | R/W | U/S.
const PRW: u64 = 0x7;
/// x86 P | U/S (read-only).
const PRO: u64 = 0x5;
const PS: u64 = 1 << 7;

/// IOVA 0x4000_0000 + n pages: PML4[0] → PDPT[1] → PD[0] → PT[n].
const IOVA: u64 = 0x4000_0000;

struct Guest {
    memory: Arc<MemoryObject>,
}

impl Guest {
    fn set(&self, table: u64, index: u64, value: u64) {
        self.memory
            .write(table + 8 * index, &value.to_le_bytes())
            .unwrap();
    }

    fn get(&self, table: u64, index: u64) -> u64 {
        let mut raw = [0u8; 8];
        self.memory.read(table + 8 * index, &mut raw).unwrap();
        u64::from_le_bytes(raw)
    }
}

#[test]
fn dma_follows_both_stages_and_faults_name_the_stage() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let unit = Arc::clone(&driver.units()[0]);
    let dev = bdf(0, 3, 0);
    driver.probe_device(dev).unwrap();
    let parent = driver
        .domain_alloc_paging(
            dev,
            PagingFlags {
                nest_parent: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();

    let guest = Guest {
        memory: mem.alloc_anonymous(GUEST_SIZE).unwrap(),
    };
    parent
        .map(
            GPA_BASE,
            guest.memory.base(),
            GUEST_SIZE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    guest.set(PML4, 0, (GPA_BASE + PDPT) | PRW);
    guest.set(PDPT, 1, (GPA_BASE + PD) | PRW);
    guest.set(PD, 0, (GPA_BASE + PT) | PRW);
    guest.set(PT, 3, (GPA_BASE + DATA) | PRW);
    // A 2 MiB guest page at GPA_BASE + 2M.
    guest.set(PD, 2, (GPA_BASE + (2 << 20)) | PRW | PS);
    // Read-only page.
    guest.set(PT, 6, (GPA_BASE + DATA + 0x1000) | PRO);
    // The final GPA is outside what the second level maps.
    guest.set(PT, 5, 0x9000_0000 | PRW);
    // A guest table the second level does not map.
    guest.set(PD, 1, 0x1_0000_0000 | PRW);

    let nested = driver
        .domain_alloc_nested(
            dev,
            &parent,
            VtdS1Config {
                flags: S1Flags::default(),
                pgtbl_addr: GPA_BASE + PML4,
                addr_width: 48,
            },
            false,
        )
        .unwrap();
    let handler = Arc::new(Recorder::default());
    nested.set_fault_handler(Some(handler.clone()));
    driver.attach_dev(&nested, dev).unwrap();
    let did = nested
        .as_any()
        .downcast_ref::<VtdNestedDomain>()
        .unwrap()
        .domain_id(&unit);
    assert!(did.is_some());

    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.write(None, IOVA + 3 * 0x1000 + 0x10, b"hello nested")
        .unwrap();
    let mut landed = [0u8; 12];
    guest.memory.read(DATA + 0x10, &mut landed).unwrap();
    assert_eq!(&landed, b"hello nested");
    // Hardware set Accessed and Dirty in the guest's leaf, through S2.
    assert_eq!(guest.get(PT, 3) & 0x60, 0x60);
    let mut back = [0u8; 12];
    port.read(None, IOVA + 3 * 0x1000 + 0x10, &mut back)
        .unwrap();
    assert_eq!(&back, b"hello nested");

    // Guest 2M page over S2 2M pages.
    let t = unit
        .translate(dev, None, IOVA + (4 << 20) + 0x1234, Access::Write)
        .unwrap();
    assert_eq!(t.phys, guest.memory.base() + (2 << 20) + 0x1234);
    assert_eq!(t.page_size, 2 << 20);

    let fault = |iova: u64, access| match access {
        Access::Read => port.read(None, iova, &mut [0u8; 4]).unwrap_err(),
        Access::Write => port.write(None, iova, &[0u8; 4]).unwrap_err(),
    };

    let missing = fault(IOVA + 4 * 0x1000, Access::Read);
    assert_eq!(
        missing.record().reason,
        FaultReason::FirstLevelNotPresent { level: 1 }
    );
    assert_eq!(missing.record().addr, IOVA + 4 * 0x1000);
    assert_eq!(missing.record().did, did);

    let table_read = fault(IOVA + (2 << 20), Access::Read);
    assert_eq!(
        table_read.record().reason,
        FaultReason::NestedTableRead { gpa: 0x1_0000_0000 }
    );

    let final_gpa = fault(IOVA + 5 * 0x1000, Access::Write);
    assert_eq!(
        final_gpa.record().reason,
        FaultReason::SecondLevelNotPresent { level: 2 }
    );
    assert_eq!(
        final_gpa.record().addr,
        0x9000_0000,
        "S2 faults name the GPA"
    );

    let ro = fault(IOVA + 6 * 0x1000, Access::Write);
    assert_eq!(ro.record().reason, FaultReason::Permission);
    port.read(None, IOVA + 6 * 0x1000, &mut [0u8; 4]).unwrap();

    let seen: Vec<_> = handler.take().iter().map(|r| r.reason).collect();
    assert_eq!(seen.len(), 4, "the nested domain's handler got every fault");
    assert_eq!(unit.fault_log().records().len(), 4);

    // Unmapping guest memory in the parent makes the cached nested
    // translation go too: the walk now fails reading the guest's PML4.
    assert_eq!(parent.unmap(GPA_BASE, GUEST_SIZE), GUEST_SIZE);
    let gone = fault(IOVA + 3 * 0x1000, Access::Read);
    assert_eq!(
        gone.record().reason,
        FaultReason::NestedTableRead {
            gpa: GPA_BASE + PML4
        }
    );
}

#[test]
fn guest_table_changes_need_a_cache_invalidation() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(0, 4, 0);
    driver.probe_device(dev).unwrap();
    let parent = driver
        .domain_alloc_paging(
            dev,
            PagingFlags {
                nest_parent: true,
                ..PagingFlags::default()
            },
        )
        .unwrap();
    let guest = Guest {
        memory: mem.alloc_anonymous(GUEST_SIZE).unwrap(),
    };
    parent
        .map(
            GPA_BASE,
            guest.memory.base(),
            GUEST_SIZE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    guest.set(PML4, 0, (GPA_BASE + PDPT) | PRW);
    guest.set(PDPT, 1, (GPA_BASE + PD) | PRW);
    guest.set(PD, 0, (GPA_BASE + PT) | PRW);
    guest.set(PT, 0, (GPA_BASE + DATA) | PRW);
    let nested = driver
        .domain_alloc_nested(
            dev,
            &parent,
            VtdS1Config {
                flags: S1Flags::default(),
                pgtbl_addr: GPA_BASE + PML4,
                addr_width: 48,
            },
            false,
        )
        .unwrap();
    driver.attach_dev(&nested, dev).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.read(None, IOVA, &mut [0u8; 8]).unwrap();

    // The guest clears its PTE: the IOTLB still holds the translation
    // until the guest asks for an invalidation (HWPT_INVALIDATE).
    guest.set(PT, 0, 0);
    port.read(None, IOVA, &mut [0u8; 8]).unwrap();
    nested
        .as_any()
        .downcast_ref::<VtdNestedDomain>()
        .unwrap()
        .cache_invalidate(Some((IOVA, 0x1000)));
    let err = port.read(None, IOVA, &mut [0u8; 8]).unwrap_err();
    assert_eq!(
        err.record().reason,
        FaultReason::FirstLevelNotPresent { level: 1 }
    );
}
