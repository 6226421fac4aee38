//! Concurrency: threads claiming, attaching, DMAing, detaching and
//! releasing on several groups, while another thread binds and unbinds a
//! DMA-API driver through the platform (whose hooks take group locks with
//! platform locks held) and another asks for viability (which calls the
//! platform). Everything must finish, every error must be one the rules
//! allow, an owner's attached domain must really translate its group, and
//! the end state must be clean.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::iommu::{IommuError, OwnerCookie};
use umdev_pci::Bdf;
use umdev_testkit::bdf;
use umdev_testkit::iommu::Rig;

const WORKERS: usize = 4;
const ROUNDS: usize = 1000;
const DSA: &str = "0000:01:00.0";
const IOVA: u64 = 0x80_0000;

/// (device used to claim, other members) of the groups the workers fight
/// over: the NIC group 7, the DMA engine, the NVMe, the GPU group.
fn targets() -> Vec<Vec<Bdf>> {
    [
        vec!["0000:04:00.0", "0000:04:00.1"],
        vec![DSA],
        vec!["0000:05:00.0"],
        vec!["0000:06:00.0", "0000:06:00.1"],
    ]
    .into_iter()
    .map(|g| g.into_iter().map(bdf).collect())
    .collect()
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Errors a worker may legitimately see while others hold the group.
fn expected(e: &IommuError) -> bool {
    matches!(e.errno(), Errno::PERM | Errno::BUSY)
}

/// Returns how many rounds got the group.
fn worker(rig: &Rig, seed: u64) -> usize {
    let owner = OwnerCookie::new();
    let targets = targets();
    let (domain, memory) = rig.mapped_domain(targets[0][0], IOVA, 4096);
    let mut rng = Rng(seed);
    let mut owned = 0;
    for round in 0..ROUNDS {
        let members = &targets[rng.below(targets.len())];
        let claim = members[rng.below(members.len())];
        match rig.iommu.device_claim_dma_owner(claim, &owner) {
            Ok(()) => {}
            Err(e) if expected(&e) => continue,
            Err(e) => panic!("claim {claim}: {e}"),
        }
        owned += 1;
        let group = rig.iommu.device_group(claim).unwrap();
        rig.iommu.attach_group(&domain, &group).unwrap();
        // Owned and attached: nobody else can move the group, so DMA from
        // any member lands in this worker's memory.
        for (i, &dev) in members.iter().enumerate() {
            let value = (seed << 32) | (round as u64) << 8 | i as u64;
            rig.dma(dev)
                .write(None, IOVA + 8 * i as u64, &value.to_le_bytes())
                .unwrap();
            let mut word = [0u8; 8];
            memory.read(8 * i as u64, &mut word).unwrap();
            assert_eq!(u64::from_le_bytes(word), value, "{dev}");
        }
        if claim == bdf(DSA) {
            // The same domain on a PASID too, gone again before release.
            let pasid = 1 + rng.below(64) as u32;
            rig.iommu
                .attach_device_pasid(&domain, claim, pasid)
                .unwrap();
            rig.dma(claim).write(Some(pasid), IOVA, &[0xee]).unwrap();
            rig.iommu
                .detach_device_pasid(&domain, claim, pasid)
                .unwrap();
        }
        if rng.below(2) == 0 {
            rig.iommu.detach_group(&domain, &group).unwrap();
        }
        rig.iommu.device_release_dma_owner(claim, &owner).unwrap();
    }
    owned
}

#[test]
fn concurrent_claims_attaches_and_binds_end_consistent() {
    let rig = Arc::new(Rig::default_platform());
    for (driver, dev) in [
        ("igb", "0000:04:00.0"),
        ("igb", "0000:04:00.1"),
        ("idxd", "0000:01:00.0"),
        ("nvme", "0000:05:00.0"),
        ("nouveau", "0000:06:00.0"),
        ("snd_hda_intel", "0000:06:00.1"),
    ] {
        rig.platform.unbind(driver, bdf(dev)).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let rig = rig.clone();
            thread::spawn(move || worker(&rig, 0x9e37_79b9 + i as u64))
        })
        .collect();
    let binder = {
        let (rig, done) = (rig.clone(), done.clone());
        thread::spawn(move || {
            let nic = bdf("0000:04:00.1");
            let (mut bound, mut refused) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                match rig.platform.bind("igb", nic) {
                    Ok(()) => {
                        bound += 1;
                        rig.platform.unbind("igb", nic).unwrap();
                    }
                    Err(e) => {
                        assert_eq!(e.errno(), Errno::BUSY);
                        refused += 1;
                    }
                }
                thread::yield_now();
            }
            (bound, refused)
        })
    };
    let watcher = {
        let (rig, done) = (rig.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for group in rig.iommu.groups() {
                    let _ = rig.iommu.group_viable(&group);
                    let info = group.info();
                    assert!(info.owner.is_none() || info.owner_cnt > 0, "{info:?}");
                }
                thread::yield_now();
            }
        })
    };

    for w in workers {
        assert!(w.join().unwrap() > 0, "every worker got a group sometimes");
    }
    done.store(true, Ordering::Relaxed);
    let (bound, refused) = binder.join().unwrap();
    watcher.join().unwrap();
    assert!(bound + refused > 0);

    for group in rig.iommu.groups() {
        let info = group.info();
        assert_eq!(info.domain, info.default_domain, "{info:?}");
        assert_eq!(info.owner, None, "{info:?}");
        assert!(info.pasids.is_empty(), "{info:?}");
    }
    let nic_group = rig.iommu.device_group(bdf("0000:04:00.0")).unwrap();
    assert_eq!(nic_group.info().owner_cnt, 0, "every bind was unbound");
    let buf = rig.vtd.memory().alloc_anonymous(4096).unwrap();
    for members in targets() {
        for dev in members {
            assert!(
                rig.dma_roundtrip(dev, None, buf.base(), 42),
                "{dev} identity again"
            );
        }
    }
}
