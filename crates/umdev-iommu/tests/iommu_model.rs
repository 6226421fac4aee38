//! The ownership / attach / PASID state machine of one group
//! (kernel-semantics §2.3–§2.5) against a reference model: random
//! sequences of claims, releases, DMA-API uses, RID attaches and PASID
//! attaches must give the model's errno, group state and, in the VT-d
//! driver, the model's translation for every device and PASID.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use rustix::io::Errno;
use umdev_iommu::iommu::{Domain, Group, IommuError, OwnerCookie, PagingFlags};
use umdev_pci::{Bdf, IommuHooks};
use umdev_testkit::iommu::Rig;

/// One group of three functions: .0 and .1 with PASIDs, .2 without.
const PLATFORM: &str = r#"
[[iommu]]
name = "dmar0"
segments = [0]
address_widths = [48]
pasid_bits = 20
page_sizes = ["4K"]
fault_log_size = 16

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
pasid = { max_width = 8 }

[[function]]
bdf = "0000:01:00.1"
kind = "endpoint"
vendor = 0x8086
device = 0x0b25
class = 0x088000
pasid = { max_width = 8 }

[[function]]
bdf = "0000:01:00.2"
kind = "endpoint"
vendor = 0x8086
device = 0x0b26
class = 0x088000
"#;

fn dev(i: usize) -> Bdf {
    Bdf::new(0, 1, 0, i as u8).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Claim {
        dev: usize,
        cookie: usize,
    },
    Release {
        dev: usize,
        cookie: usize,
    },
    GroupClaim {
        cookie: usize,
    },
    GroupRelease {
        cookie: usize,
    },
    Use {
        dev: usize,
    },
    Unuse {
        dev: usize,
    },
    Attach {
        domain: usize,
    },
    Detach {
        domain: usize,
    },
    PasidAttach {
        dev: usize,
        domain: usize,
        pasid: u32,
    },
    PasidDetach {
        dev: usize,
        domain: usize,
        pasid: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let dev = 0..3usize;
    let cookie = 0..2usize;
    let domain = 0..2usize;
    let pasid = 1..3u32;
    prop_oneof![
        (dev.clone(), cookie.clone()).prop_map(|(dev, cookie)| Op::Claim { dev, cookie }),
        (dev.clone(), cookie.clone()).prop_map(|(dev, cookie)| Op::Release { dev, cookie }),
        cookie.clone().prop_map(|cookie| Op::GroupClaim { cookie }),
        cookie.prop_map(|cookie| Op::GroupRelease { cookie }),
        dev.clone().prop_map(|dev| Op::Use { dev }),
        dev.clone().prop_map(|dev| Op::Unuse { dev }),
        domain.clone().prop_map(|domain| Op::Attach { domain }),
        domain.clone().prop_map(|domain| Op::Detach { domain }),
        (dev.clone(), domain.clone(), pasid.clone())
            .prop_map(|(dev, domain, pasid)| Op::PasidAttach { dev, domain, pasid }),
        (dev, domain, pasid).prop_map(|(dev, domain, pasid)| Op::PasidDetach {
            dev,
            domain,
            pasid
        }),
    ]
}

/// Which domain the group's RID uses, in model terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rid {
    Default,
    Blocking,
    User(usize),
}

/// The reference model of iommu.c's group state.
#[derive(Debug, Default)]
struct Model {
    owner: Option<usize>,
    owner_cnt: u32,
    /// DMA-API uses per device, to issue only balanced unuses.
    uses: [u32; 3],
    rid: Option<Rid>,
    pasids: BTreeMap<u32, usize>,
}

impl Model {
    fn rid(&self) -> Rid {
        self.rid.unwrap_or(Rid::Default)
    }

    fn take(&mut self, cookie: usize) -> Result<(), Errno> {
        if self.rid() != Rid::Default || !self.pasids.is_empty() {
            return Err(Errno::BUSY);
        }
        self.rid = Some(Rid::Blocking);
        self.owner = Some(cookie);
        self.owner_cnt += 1;
        Ok(())
    }

    fn release_all(&mut self) -> Result<(), Errno> {
        if !self.pasids.is_empty() {
            return Err(Errno::BUSY);
        }
        self.owner = None;
        self.owner_cnt = 0;
        self.rid = Some(Rid::Default);
        Ok(())
    }

    /// Applies `op`; `None` means the op is not issued (an unbalanced
    /// unuse, which the platform never makes).
    fn apply(&mut self, op: Op) -> Option<Result<(), Errno>> {
        Some(match op {
            Op::Claim { cookie, .. } => {
                if self.owner_cnt != 0 {
                    if self.owner != Some(cookie) {
                        Err(Errno::PERM)
                    } else {
                        self.owner_cnt += 1;
                        Ok(())
                    }
                } else {
                    self.take(cookie)
                }
            }
            Op::Release { cookie, .. } | Op::GroupRelease { cookie } => {
                if self.owner_cnt == 0 || self.owner != Some(cookie) {
                    Err(Errno::PERM)
                } else if matches!(op, Op::Release { .. }) && self.owner_cnt > 1 {
                    self.owner_cnt -= 1;
                    Ok(())
                } else {
                    self.release_all()
                }
            }
            Op::GroupClaim { cookie } => {
                if self.owner_cnt != 0 {
                    Err(Errno::PERM)
                } else {
                    self.take(cookie)
                }
            }
            Op::Use { dev } => {
                if self.owner_cnt != 0
                    && (self.rid() != Rid::Default
                        || self.owner.is_some()
                        || !self.pasids.is_empty())
                {
                    Err(Errno::BUSY)
                } else {
                    self.owner_cnt += 1;
                    self.uses[dev] += 1;
                    Ok(())
                }
            }
            Op::Unuse { dev } => {
                if self.uses[dev] == 0 {
                    return None;
                }
                self.uses[dev] -= 1;
                self.owner_cnt -= 1;
                Ok(())
            }
            Op::Attach { domain } => {
                if !matches!(self.rid(), Rid::Default | Rid::Blocking) {
                    Err(Errno::BUSY)
                } else {
                    self.rid = Some(Rid::User(domain));
                    Ok(())
                }
            }
            Op::Detach { domain } => {
                if self.rid() != Rid::User(domain) {
                    Err(Errno::INVAL)
                } else {
                    self.rid = Some(if self.owner.is_some() {
                        Rid::Blocking
                    } else {
                        Rid::Default
                    });
                    Ok(())
                }
            }
            Op::PasidAttach { dev, domain, pasid } => {
                if dev == 2 {
                    Err(Errno::INVAL)
                } else if let std::collections::btree_map::Entry::Vacant(slot) =
                    self.pasids.entry(pasid)
                {
                    slot.insert(domain);
                    Ok(())
                } else {
                    Err(Errno::BUSY)
                }
            }
            Op::PasidDetach { domain, pasid, .. } => {
                if self.pasids.get(&pasid) != Some(&domain) {
                    Err(Errno::INVAL)
                } else {
                    self.pasids.remove(&pasid);
                    Ok(())
                }
            }
        })
    }
}

struct Real {
    rig: Rig,
    group: Arc<Group>,
    cookies: [OwnerCookie; 2],
    domains: [Arc<Domain>; 2],
}

impl Real {
    fn new() -> Self {
        let rig = Rig::from_toml(PLATFORM);
        let group = rig.iommu.device_group(dev(0)).unwrap();
        let domains = [0, 1].map(|_| {
            rig.iommu
                .domain_alloc_paging(dev(0), PagingFlags::default())
                .unwrap()
        });
        Self {
            rig,
            group,
            cookies: [OwnerCookie::new(), OwnerCookie::new()],
            domains,
        }
    }

    fn apply(&self, op: Op) -> Result<(), Errno> {
        let iommu = &self.rig.iommu;
        let e = |r: Result<(), IommuError>| r.map_err(|e| e.errno());
        match op {
            Op::Claim { dev: d, cookie } => {
                e(iommu.device_claim_dma_owner(dev(d), &self.cookies[cookie]))
            }
            Op::Release { dev: d, cookie } => {
                e(iommu.device_release_dma_owner(dev(d), &self.cookies[cookie]))
            }
            Op::GroupClaim { cookie } => {
                e(iommu.group_claim_dma_owner(&self.group, &self.cookies[cookie]))
            }
            Op::GroupRelease { cookie } => {
                e(iommu.group_release_dma_owner(&self.group, &self.cookies[cookie]))
            }
            Op::Use { dev: d } => iommu.device_use_default_domain(dev(d)),
            Op::Unuse { dev: d } => {
                iommu.device_unuse_default_domain(dev(d));
                Ok(())
            }
            Op::Attach { domain } => e(iommu.attach_group(&self.domains[domain], &self.group)),
            Op::Detach { domain } => e(iommu.detach_group(&self.domains[domain], &self.group)),
            Op::PasidAttach {
                dev: d,
                domain,
                pasid,
            } => e(iommu.attach_device_pasid(&self.domains[domain], dev(d), pasid)),
            Op::PasidDetach {
                dev: d,
                domain,
                pasid,
            } => e(iommu.detach_device_pasid(&self.domains[domain], dev(d), pasid)),
        }
    }

    fn rid_domain(&self, rid: Rid) -> Arc<Domain> {
        match rid {
            Rid::Default => self.group.default_domain(),
            Rid::Blocking => self.group.blocking_domain(),
            Rid::User(i) => self.domains[i].clone(),
        }
    }

    /// The group and the driver agree with the model.
    fn check(&self, model: &Model) -> Result<(), TestCaseError> {
        let info = self.group.info();
        prop_assert_eq!(info.owner, model.owner.map(|c| self.cookies[c].id()));
        prop_assert_eq!(info.owner_cnt, model.owner_cnt);
        let rid = self.rid_domain(model.rid());
        prop_assert_eq!(info.domain, rid.id());
        let pasids: Vec<(u32, u64)> = model
            .pasids
            .iter()
            .map(|(&p, &d)| (p, self.domains[d].id()))
            .collect();
        prop_assert_eq!(info.pasids, pasids);
        for d in 0..3 {
            // The blocked domain is never recorded by the driver.
            let programmed = self.rig.vtd.attached_domain(dev(d), 0);
            match model.rid() {
                Rid::Blocking => prop_assert!(programmed.is_none()),
                _ => prop_assert!(programmed.is_some_and(|p| Arc::ptr_eq(&p, rid.ops()))),
            }
            for pasid in 1..3 {
                let programmed = self.rig.vtd.attached_domain(dev(d), pasid);
                match model.pasids.get(&pasid) {
                    Some(&i) if d < 2 => prop_assert!(
                        programmed.is_some_and(|p| Arc::ptr_eq(&p, self.domains[i].ops()))
                    ),
                    _ => prop_assert!(programmed.is_none()),
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn group_state_machine_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let real = Real::new();
        let mut model = Model::default();
        real.check(&model)?;
        for op in ops {
            let Some(expected) = model.apply(op) else { continue };
            prop_assert_eq!(real.apply(op), expected, "{:?}", op);
            real.check(&model)?;
        }
    }
}
