//! The scalable-mode structures land in host memory with the exact bits
//! VT-d hardware reads (root, context, PASID directory, PASID table), and
//! the programming API keeps Linux's errno rules.

use rustix::io::Errno;
use umdev_iommu::memory::HostMemory;
use umdev_iommu::vtd::{IommuUnit, PasidEntry, S1Flags};
use umdev_pci::Bdf;
use umdev_testkit::vtd::{bdf, config, unit};

fn read(mem: &HostMemory, addr: u64) -> u64 {
    mem.read_u64(addr).unwrap()
}

/// Walks root → context → directory → table by hand and returns the
/// entry's address.
fn entry_addr(mem: &HostMemory, unit: &IommuUnit, dev: Bdf, pasid: u32) -> u64 {
    let root = unit.root_table(dev.segment()).unwrap();
    let half = u64::from(dev.devfn() >= 0x80);
    let root_word = read(mem, root + 16 * u64::from(dev.bus()) + 8 * half);
    assert_eq!(root_word & 1, 1, "root entry half present");
    let context = (root_word & !0xfff) + 32 * u64::from(dev.devfn() & 0x7f);
    let lo = read(mem, context);
    assert_eq!(lo & 1, 1, "context present");
    let dir = lo & !0xfff;
    let dir_word = read(mem, dir + 8 * u64::from(pasid >> 6));
    assert_eq!(dir_word & 1, 1, "PASID directory entry present");
    (dir_word & !0xfff) + 64 * u64::from(pasid & 0x3f)
}

#[test]
fn root_and_context_entries() {
    let (mem, iommu) = unit(config("dmar0", &[0]));
    let root = iommu.unit().root_table(0).unwrap();
    assert_eq!(
        iommu.unit().rtaddr_reg(0),
        Some(root | 1 << 10),
        "RTADDR with SMT"
    );
    let upper = bdf(3, 0x11, 2); // devfn 0x8a: upper half
    let lower = bdf(3, 1, 0); // devfn 0x08: lower half
    iommu.setup_context(upper, 1 << 20).unwrap();
    iommu.setup_context(lower, 0).unwrap();

    let lo_half = read(&mem, root + 3 * 16);
    let hi_half = read(&mem, root + 3 * 16 + 8);
    assert_eq!(lo_half & 0xfff, 1, "LP only");
    assert_eq!(hi_half & 0xfff, 1, "UP only");
    assert_ne!(lo_half & !0xfff, hi_half & !0xfff, "two context tables");

    let ctx = (hi_half & !0xfff) + 32 * 0x0a;
    let lo = read(&mem, ctx);
    // P, PASIDE (bit 3), PDTS 7 (2^14 directory entries for 20-bit PASIDs).
    assert_eq!(lo & 0xfff, 1 | 1 << 3 | 7 << 9);
    assert_eq!(read(&mem, ctx + 8) & 0xf_ffff, 0, "RID_PASID = 0");
    assert_eq!(read(&mem, ctx + 16), 0);
    assert_eq!(read(&mem, ctx + 24), 0);
    // The directory is 32 pages; its last entry exists and is empty.
    assert_eq!(read(&mem, (lo & !0xfff) + 8 * ((1 << 14) - 1)), 0);

    let ctx = (lo_half & !0xfff) + 32 * 0x08;
    let lo = read(&mem, ctx);
    // No PASID capability: PASIDE clear, one directory page (PDTS 2).
    assert_eq!(lo & 0xfff, 1 | 2 << 9);

    assert_eq!(
        iommu.setup_context(lower, 0).unwrap_err().errno(),
        Errno::EXIST
    );
    iommu.teardown_context(lower);
    assert_eq!(read(&mem, ctx), 0, "context entry cleared");
    assert!(!iommu.has_context(lower) && iommu.has_context(upper));
}

#[test]
fn pasid_entries_have_the_exact_bits() {
    let (mem, iommu) = unit(config("dmar0", &[0]));
    let dev = bdf(0, 2, 0);
    iommu.setup_context(dev, 1 << 20).unwrap();
    let sl_root = 0x1_2345_6000;
    let fl_root = 0x2_0000_1000;
    let s1_root = 0x7_7000;

    iommu
        .set_pasid_entry(
            dev,
            0,
            PasidEntry::SecondLevel {
                did: 5,
                root: sl_root,
                levels: 4,
                dirty_tracking: true,
            },
        )
        .unwrap();
    let e = entry_addr(&mem, iommu.unit(), dev, 0);
    // P, AW 2 (48-bit), PGTT 2, SSADE, SSPTPTR.
    assert_eq!(read(&mem, e), sl_root | 1 | 2 << 2 | 2 << 6 | 1 << 9);
    // DID 5, PWSNP (bit 87).
    assert_eq!(read(&mem, e + 8), 5 | 1 << 23);
    assert_eq!(read(&mem, e + 16), 0);

    let pasid = 0x1_2345;
    iommu
        .set_pasid_entry(
            dev,
            pasid,
            PasidEntry::Nested {
                did: 0x1234,
                s1_root,
                s1_levels: 5,
                s1_flags: S1Flags {
                    sre: true,
                    eafe: true,
                    wpe: true,
                },
                s2_root: sl_root,
                s2_levels: 5,
                dirty_tracking: false,
            },
        )
        .unwrap();
    let e = entry_addr(&mem, iommu.unit(), dev, pasid);
    assert_eq!(read(&mem, e), sl_root | 1 | 3 << 2 | 3 << 6);
    assert_eq!(read(&mem, e + 8), 0x1234 | 1 << 23);
    // SRE (bit 128), FLPM 1 (bits 131:130), WPE (bit 132), EAFE (bit 135).
    assert_eq!(read(&mem, e + 16), s1_root | 1 | 1 << 2 | 1 << 4 | 1 << 7);

    iommu
        .set_pasid_entry(
            dev,
            65,
            PasidEntry::FirstLevel {
                did: 9,
                root: fl_root,
                levels: 4,
            },
        )
        .unwrap();
    let e = entry_addr(&mem, iommu.unit(), dev, 65);
    // AW is the unit's (3: 57-bit), PGTT 1, no SSPTPTR.
    assert_eq!(read(&mem, e), 1 | 3 << 2 | 1 << 6);
    assert_eq!(read(&mem, e + 16), fl_root, "FLPM 0 = 4-level");

    iommu
        .set_pasid_entry(dev, 66, PasidEntry::PassThrough { did: 1 })
        .unwrap();
    let e = entry_addr(&mem, iommu.unit(), dev, 66);
    assert_eq!(read(&mem, e), 1 | 3 << 2 | 4 << 6);
    assert_eq!(read(&mem, e + 8), 1 | 1 << 23);
    assert_eq!(iommu.pasid_entry_addr(dev, 66), Some(e));

    // Decoding what is in memory gives back what was programmed.
    assert_eq!(
        iommu.pasid_entry(dev, 65),
        Some(PasidEntry::FirstLevel {
            did: 9,
            root: fl_root,
            levels: 4
        })
    );
    assert_eq!(iommu.pasid_entry(dev, 67), None);

    // Clearing zeroes all eight words.
    let old = iommu.clear_pasid_entry(dev, 66).unwrap();
    assert_eq!(old, Some(PasidEntry::PassThrough { did: 1 }));
    for word in 0..8 {
        assert_eq!(read(&mem, e + 8 * word), 0);
    }
}

#[test]
fn programming_errnos() {
    let (_mem, iommu) = unit(config("dmar0", &[0]));
    let dev = bdf(0, 2, 0);
    let pt = PasidEntry::PassThrough { did: 1 };
    assert_eq!(
        iommu.set_pasid_entry(dev, 0, pt).unwrap_err().errno(),
        Errno::NODEV,
        "no context entry yet"
    );
    iommu.setup_context(dev, 1 << 8).unwrap();
    iommu.set_pasid_entry(dev, 0, pt).unwrap();
    assert_eq!(
        iommu.set_pasid_entry(dev, 0, pt).unwrap_err().errno(),
        Errno::BUSY,
        "intel_pasid_setup_*: already present"
    );
    assert_eq!(
        iommu.replace_pasid_entry(dev, 3, pt).unwrap_err().errno(),
        Errno::INVAL,
        "intel_pasid_replace_*: not present"
    );
    assert_eq!(
        iommu.set_pasid_entry(dev, 1 << 20, pt).unwrap_err().errno(),
        Errno::INVAL,
        "beyond the unit's 20 bits"
    );
    // 256 PASIDs still get a one-page directory (32768 PASIDs), as Linux.
    iommu.set_pasid_entry(dev, 32767, pt).unwrap();
    assert_eq!(
        iommu.set_pasid_entry(dev, 32768, pt).unwrap_err().errno(),
        Errno::INVAL,
        "beyond the device's directory"
    );
    let old = iommu
        .replace_pasid_entry(dev, 0, PasidEntry::PassThrough { did: 1 })
        .unwrap();
    assert_eq!(old, pt);
    assert_eq!(iommu.clear_pasid_entry(dev, 5).unwrap(), None);
}

#[test]
fn domain_ids_skip_the_reserved_ones() {
    let (_mem, iommu) = unit(config("dmar0", &[0]));
    let a = iommu.alloc_domain_id().unwrap();
    let b = iommu.alloc_domain_id().unwrap();
    assert_eq!((a, b), (2, 3));
    iommu.free_domain_id(a);
    assert_eq!(iommu.alloc_domain_id().unwrap(), 2);
    assert_eq!(iommu.domain_ids_in_use(), 2);
}

#[test]
fn bad_configs_are_refused() {
    let mem = HostMemory::new();
    let mut c = config("bad", &[0]);
    c.address_widths = vec![52];
    assert_eq!(
        IommuUnit::new(mem.clone(), c).unwrap_err().errno(),
        Errno::INVAL
    );
    let mut c = config("bad", &[0]);
    c.pgsize_bitmap = 1 << 21;
    assert_eq!(
        IommuUnit::new(mem.clone(), c).unwrap_err().errno(),
        Errno::INVAL
    );
    let mut c = config("bad", &[0]);
    c.pasid_bits = 21;
    assert_eq!(IommuUnit::new(mem, c).unwrap_err().errno(), Errno::INVAL);
}
