//! Ports of tools/testing/selftests/iommu/iommufd_fail_nth.c
//! (kernel-semantics §3.9) on the real VT-d model: for every scenario and
//! every N, failing the N-th fallible step (object id, table page, domain
//! id, pin accounting, domain fill, memory object) makes the scenario
//! fail cleanly — nothing leaks once the context is closed — and the
//! scenario then succeeds without injection.

use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::failpoint;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::system::System;
use umdev_iommu::vtd::S1Flags;
use umdev_iommufd::access::AccessOps;
use umdev_iommufd::io_pagetable::IovaRange;
use umdev_iommufd::{HwInfoFlags, HwptAllocFlags, HwptData, Ictx, IommufdError, MapFlags};
use umdev_pci::Bdf;

const PAGE: u64 = 4096;
const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const FIXED: MapFlags = RW.union(MapFlags::FIXED_IOVA);

type Scenario = fn(&Env, &Arc<Ictx>) -> Result<(), IommufdError>;

/// The system, two bindable devices and buffers allocated before any
/// injection is armed.
struct Env {
    sys: System,
    nvme: Bdf,
    dsa: Bdf,
    buffer: Arc<MemoryObject>,
    memfd: Arc<MemoryObject>,
}

fn env() -> Env {
    let sys = System::default_platform().unwrap();
    let nvme: Bdf = "0000:05:00.0".parse().unwrap();
    let dsa: Bdf = "0000:01:00.0".parse().unwrap();
    sys.platform.unbind("nvme", nvme).unwrap();
    sys.platform.unbind("idxd", dsa).unwrap();
    let buffer = sys.vtd.memory().alloc_anonymous(256 * 1024).unwrap();
    let memfd = sys
        .vtd
        .memory()
        .alloc_memfd("fail_nth", 256 * 1024)
        .unwrap();
    Env {
        sys,
        nvme,
        dsa,
        buffer,
        memfd,
    }
}

/// Everything that must come back after a failed attempt is closed.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    groups: Vec<(u32, bool, Option<u64>, u32, usize)>,
    domain_ids: Vec<usize>,
    placed: u64,
}

fn snapshot(env: &Env) -> Snapshot {
    Snapshot {
        groups: env
            .sys
            .iommu
            .group_infos()
            .into_iter()
            .map(|g| {
                (
                    g.id,
                    g.domain == g.default_domain,
                    g.owner,
                    g.owner_cnt,
                    g.pasids.len(),
                )
            })
            .collect(),
        domain_ids: env
            .sys
            .vtd
            .iommus()
            .iter()
            .map(|u| u.domain_ids_in_use())
            .collect(),
        placed: env.sys.vtd.memory().placed_bytes(),
    }
}

fn run_fail_nth(name: &str, scenario: Scenario) {
    let env = env();
    // A clean run first: it must succeed, and lazily built hardware
    // structures (PASID tables) exist before the baseline is taken.
    let ictx = Ictx::new(env.sys.iommu.clone());
    scenario(&env, &ictx).unwrap_or_else(|e| panic!("{name}: clean run failed: {e}"));
    ictx.close();
    drop(ictx);
    let baseline = snapshot(&env);
    let mut failures = 0;
    for n in 1.. {
        let ictx = Ictx::new(env.sys.iommu.clone());
        failpoint::arm(n);
        let result = scenario(&env, &ictx);
        let hit = failpoint::disarm();
        let objects_left = ictx.objects();
        ictx.close();
        assert!(
            ictx.objects().is_empty(),
            "{name}: step {n}: objects after close"
        );
        assert_eq!(
            ictx.account().pinned(),
            0,
            "{name}: step {n}: pins after close"
        );
        drop(ictx);
        assert_eq!(
            snapshot(&env),
            baseline,
            "{name}: step {n} ({hit:?}) leaked; objects before close {objects_left:?}"
        );
        match hit {
            Some(site) => {
                assert!(
                    result.is_err(),
                    "{name}: the failure injected at step {n} ({site}) was swallowed"
                );
                failures += 1;
            }
            None => {
                result.unwrap_or_else(|e| panic!("{name}: run past every step failed: {e}"));
                break;
            }
        }
        assert!(n < 100_000, "{name}: no end");
    }
    assert!(failures > 0, "{name}: no fallible step was reached");
    eprintln!("{name}: {failures} injected failures, all clean");
}

fn basic(env: &Env, ictx: &Arc<Ictx>) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    ictx.ioas_iova_ranges(ioas)?;
    ictx.ioas_allow_iovas(ioas, &[IovaRange::new(16 * PAGE, 1 << 30)])?;
    ictx.ioas_allow_iovas(ioas, &[])?;
    let iova = ictx.ioas_map(ioas, RW, &env.buffer, 0, 64 * PAGE, 0)?;
    let copied = ictx.ioas_copy(ioas, ioas, RW, 64 * PAGE, iova, 0)?;
    ictx.ioas_unmap(ioas, copied, 64 * PAGE)?;
    ictx.ioas_unmap(ioas, iova, 64 * PAGE)?;
    // Unmap of nothing.
    assert!(ictx.ioas_unmap(ioas, iova, 64 * PAGE).is_err());
    ictx.destroy(ioas)
}

fn map_domain(env: &Env, ictx: &Arc<Ictx>) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    ictx.ioas_map(ioas, FIXED, &env.buffer, 0, 256 * 1024, 0x10_0000)?;
    let dev = ictx.device_bind(env.nvme)?;
    ictx.device_attach(dev, 0, ioas)?;
    ictx.device_detach(dev, 0)?;
    ictx.device_unbind(dev)?;
    let dev = ictx.device_bind(env.nvme)?;
    ictx.device_attach(dev, 0, ioas)?;
    ictx.ioas_unmap(ioas, 0, u64::MAX)?;
    Ok(())
}

fn map_file_domain(env: &Env, ictx: &Arc<Ictx>) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    let dev = ictx.device_bind(env.nvme)?;
    ictx.device_attach(dev, 0, ioas)?;
    ictx.ioas_map(ioas, FIXED, &env.memfd, 0, 256 * 1024, 0x10_0000)?;
    ictx.ioas_unmap(ioas, 0x10_0000, 256 * 1024)?;
    Ok(())
}

fn map_two_domains(env: &Env, ictx: &Arc<Ictx>) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    ictx.ioas_map(ioas, FIXED, &env.buffer, 0, 256 * 1024, 0x10_0000)?;
    let a = ictx.device_bind(env.nvme)?;
    let b = ictx.device_bind(env.dsa)?;
    let hwpt = ictx.hwpt_alloc(a, ioas, HwptAllocFlags::empty(), HwptData::None)?;
    ictx.device_attach(a, 0, hwpt)?;
    ictx.device_attach(b, 0, ioas)?;
    ictx.device_unbind(a)?;
    ictx.device_unbind(b)?;
    ictx.destroy(hwpt)?;
    Ok(())
}

/// An access owner that drops its pins when user space unmaps.
#[derive(Default)]
struct Pinner {
    access: Mutex<Option<Arc<umdev_iommufd::access::Access>>>,
    pins: Mutex<Vec<(u64, u64)>>,
}

impl AccessOps for Pinner {
    fn needs_pin_pages(&self) -> bool {
        true
    }

    fn unmap(&self, iova: u64, length: u64) {
        let access = self.access.lock().clone();
        let mut pins = self.pins.lock();
        pins.retain(|&(i, l)| {
            let inside = i + l > iova && i <= iova.saturating_add(length - 1);
            if inside && let Some(a) = &access {
                a.unpin_pages(i, l);
            }
            !inside
        });
    }
}

fn access_scenario(
    env: &Env,
    ictx: &Arc<Ictx>,
    pin: bool,
    domain: bool,
) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    if domain {
        let dev = ictx.device_bind(env.nvme)?;
        ictx.device_attach(dev, 0, ioas)?;
    }
    let iova = ictx.ioas_map(ioas, RW, &env.buffer, 0, 32 * 1024, 0)?;
    let owner = Arc::new(Pinner::default());
    let (id, access) = ictx.access_create(owner.clone())?;
    *owner.access.lock() = Some(access.clone());
    ictx.access_attach(id, ioas)?;
    if pin {
        access.pin_pages(iova, 4 * PAGE, true)?;
        owner.pins.lock().push((iova, 4 * PAGE));
    }
    let mut buf = vec![0x5au8; 32 * 1024];
    access.rw(iova + 1, &mut buf[..100], true)?;
    access.rw(iova, &mut buf, false)?;
    ictx.ioas_unmap(ioas, iova, 32 * 1024)?;
    ictx.access_destroy(id)?;
    Ok(())
}

fn device(env: &Env, ictx: &Arc<Ictx>) -> Result<(), IommufdError> {
    let ioas = ictx.ioas_alloc()?;
    let ioas2 = ictx.ioas_alloc()?;
    ictx.ioas_map(ioas, FIXED, &env.buffer, 0, 64 * PAGE, 0x10_0000)?;
    ictx.ioas_map(ioas2, FIXED, &env.buffer, 0, 64 * PAGE, 0x10_0000)?;
    let dev = ictx.device_bind(env.dsa)?;
    let mut info = [0u8; 32];
    ictx.get_hw_info(dev, HwInfoFlags::empty(), 0, &mut info)?;
    let pasid_hwpt = ictx.hwpt_alloc(dev, ioas, HwptAllocFlags::PASID, HwptData::None)?;
    ictx.device_attach(dev, 0, ioas)?;
    ictx.device_replace(dev, 0, ioas2)?;
    ictx.device_replace(dev, 0, pasid_hwpt)?;
    let parent = ictx.hwpt_alloc(
        dev,
        ioas,
        HwptAllocFlags::NEST_PARENT | HwptAllocFlags::PASID,
        HwptData::None,
    )?;
    let fault = ictx.fault_queue_alloc()?;
    let s1 = VtdS1Config {
        flags: S1Flags::default(),
        pgtbl_addr: 0x10_0000,
        addr_width: 48,
    };
    let nested = ictx.hwpt_alloc_fault(
        dev,
        parent,
        HwptAllocFlags::FAULT_ID_VALID | HwptAllocFlags::PASID,
        HwptData::VtdS1(s1),
        fault.id(),
    )?;
    ictx.device_attach(dev, 100, pasid_hwpt)?;
    ictx.device_replace(dev, 100, nested)?;
    ictx.device_detach(dev, 100)?;
    ictx.device_detach(dev, 0)?;
    ictx.device_unbind(dev)?;
    Ok(())
}

#[test]
fn basic_fail_nth_basic() {
    run_fail_nth("basic", basic);
}

#[test]
fn basic_fail_nth_map_domain() {
    run_fail_nth("map_domain", map_domain);
}

#[test]
fn basic_fail_nth_map_file_domain() {
    run_fail_nth("map_file_domain", map_file_domain);
}

#[test]
fn basic_fail_nth_map_two_domains() {
    run_fail_nth("map_two_domains", map_two_domains);
}

#[test]
fn basic_fail_nth_access_rw() {
    run_fail_nth("access_rw", |e, i| access_scenario(e, i, false, false));
}

#[test]
fn basic_fail_nth_access_pin() {
    run_fail_nth("access_pin", |e, i| access_scenario(e, i, true, false));
}

#[test]
fn basic_fail_nth_access_pin_domain() {
    run_fail_nth("access_pin_domain", |e, i| {
        access_scenario(e, i, true, true)
    });
}

#[test]
fn basic_fail_nth_device() {
    run_fail_nth("device", device);
}
