//! The rules of the legacy VFIO group / container model (drivers/vfio/
//! group.c, container.c, vfio_iommu_type1.c) on the real default platform
//! and the VT-d driver: group open, SET/UNSET_CONTAINER, SET_IOMMU,
//! GET_DEVICE_FD, the container's type1 ioctls, emulated mdevs, and DMA
//! isolation between containers.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::system::System;
use umdev_iommufd::vfio_compat::{
    VFIO_DMA_CC_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1V2_IOMMU, VfioDmaMap,
    VfioDmaMapFlags, VfioDmaUnmap, VfioDmaUnmapFlags,
};
use umdev_pci::Bdf;
use umdev_vfio::container::{
    Vfio, VfioContainer, VfioGroup, VfioGroupKey, VfioGroupKind, VfioGroupStatus, uuid_string,
};

const PAGE: u64 = 4096;
const IOVA: u64 = 0x20_0000;
const EMULATED: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

struct Fixture {
    sys: System,
    vfio: Arc<Vfio>,
    /// The NVMe controller, alone in its group, its driver unbound.
    nvme: Bdf,
    nvme_group: u32,
    /// The DMA engine, alone in its group, its driver unbound.
    dsa: Bdf,
    dsa_group: u32,
}

impl Fixture {
    fn new() -> Self {
        let sys = System::default_platform().unwrap();
        let vfio = Vfio::new(sys.iommu.clone());
        let (nvme, dsa) = (bdf("0000:05:00.0"), bdf("0000:01:00.0"));
        sys.platform.unbind("nvme", nvme).unwrap();
        sys.platform.unbind("idxd", dsa).unwrap();
        let nvme_group = sys.platform.iommu_group(nvme).unwrap();
        let dsa_group = sys.platform.iommu_group(dsa).unwrap();
        Self {
            sys,
            vfio,
            nvme,
            nvme_group,
            dsa,
            dsa_group,
        }
    }

    fn open(&self, group: u32) -> VfioGroup {
        self.vfio.open_group(VfioGroupKind::Iommu(group)).unwrap()
    }

    /// Why opening `kind` fails.
    fn open_err(&self, kind: VfioGroupKind) -> Errno {
        self.vfio.open_group(kind).unwrap_err().errno()
    }

    /// A fresh container with the NVMe group set in it, no IOMMU yet.
    fn nvme_in_container(&self) -> (Arc<VfioContainer>, VfioGroup) {
        let c = self.vfio.open_container().unwrap();
        let g = self.open(self.nvme_group);
        g.set_container(&c).unwrap();
        (c, g)
    }

    fn buffer(&self, pages: u64) -> Arc<MemoryObject> {
        self.sys.vtd.memory().alloc_anonymous(pages * PAGE).unwrap()
    }

    fn map(
        &self,
        c: &VfioContainer,
        buffer: &MemoryObject,
        offset: u64,
        iova: u64,
        len: u64,
    ) -> Result<(), Errno> {
        let flags = VfioDmaMapFlags::READ | VfioDmaMapFlags::WRITE;
        let map = VfioDmaMap::new(flags, buffer.base() + offset, iova, len);
        c.map_dma(self.sys.vtd.memory(), &map)
            .map_err(|e| e.errno())
    }

    fn unmap(&self, c: &VfioContainer, iova: u64, len: u64) -> Result<u64, Errno> {
        let mut unmap = VfioDmaUnmap::new(VfioDmaUnmapFlags::empty(), iova, len);
        c.unmap_dma(&mut unmap).map_err(|e| e.errno())?;
        Ok(unmap.size)
    }

    /// The 8 bytes device `rid` reads at `iova`.
    fn dma_read(&self, rid: Bdf, iova: u64) -> Option<[u8; 8]> {
        let mut buf = [0u8; 8];
        self.sys
            .dma_for(rid)
            .unwrap()
            .read(None, iova, &mut buf)
            .ok()?;
        Some(buf)
    }
}

#[test]
fn group_opens_once() {
    let f = Fixture::new();
    let g = f.open(f.nvme_group);
    assert_eq!(f.open_err(VfioGroupKind::Iommu(f.nvme_group)), Errno::BUSY);
    assert_eq!(
        f.vfio.open_groups(),
        vec![VfioGroupKey::Iommu(f.nvme_group)]
    );
    drop(g);
    assert!(f.vfio.open_groups().is_empty());
    drop(f.open(f.nvme_group));

    // An mdev group is one per mdev, whatever its kind says.
    let m = f
        .vfio
        .open_group(VfioGroupKind::Emulated { uuid: EMULATED })
        .unwrap();
    let again = VfioGroupKind::IommuBackedMdev {
        uuid: EMULATED,
        iommu_device: f.nvme,
    };
    assert_eq!(f.open_err(again), Errno::BUSY);
    drop(m);

    // No such group; an iommu_device the IOMMU does not translate.
    assert_eq!(f.open_err(VfioGroupKind::Iommu(999)), Errno::NODEV);
    let nowhere = VfioGroupKind::IommuBackedMdev {
        uuid: 1,
        iommu_device: bdf("0000:0f:1f.7"),
    };
    assert_eq!(f.open_err(nowhere), Errno::NODEV);
}

#[test]
fn set_and_unset_container() {
    let f = Fixture::new();
    let c = f.vfio.open_container().unwrap();
    let g = f.open(f.nvme_group);
    assert_eq!(g.status(), VfioGroupStatus::VIABLE);
    assert_eq!(g.unset_container().unwrap_err().errno(), Errno::INVAL);
    g.set_container(&c).unwrap();
    assert_eq!(
        g.status(),
        VfioGroupStatus::VIABLE | VfioGroupStatus::CONTAINER_SET
    );
    // SET_CONTAINER claimed the group: it left its default domain.
    let group = f.sys.iommu.group(f.nvme_group).unwrap();
    assert_eq!(group.info().owner, Some(c.owner().id()));
    assert_eq!(group.domain().id(), group.blocking_domain().id());
    assert_eq!(g.set_container(&c).unwrap_err().errno(), Errno::INVAL);
    let other = f.vfio.open_container().unwrap();
    assert_eq!(g.set_container(&other).unwrap_err().errno(), Errno::INVAL);
    g.unset_container().unwrap();
    assert_eq!(group.info().owner, None);
    assert_eq!(group.domain().id(), group.default_domain().id());
    assert!(c.groups().is_empty());
}

#[test]
fn set_iommu_rules() {
    let f = Fixture::new();
    let c = f.vfio.open_container().unwrap();
    // The container is unprivileged until a group joins.
    assert_eq!(
        c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap_err().errno(),
        Errno::INVAL
    );
    let g = f.open(f.nvme_group);
    g.set_container(&c).unwrap();
    assert_eq!(
        c.set_iommu(VFIO_SPAPR_TCE_IOMMU).unwrap_err().errno(),
        Errno::NODEV
    );
    assert_eq!(c.set_iommu(77).unwrap_err().errno(), Errno::NODEV);
    assert_eq!(c.iommu_type(), None);
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    assert_eq!(
        c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(c.iommu_type(), Some(VFIO_TYPE1V2_IOMMU));
}

#[test]
fn type1_ioctls_need_an_iommu() {
    let f = Fixture::new();
    let (c, _g) = f.nvme_in_container();
    let buffer = f.buffer(1);
    assert_eq!(f.map(&c, &buffer, 0, IOVA, PAGE), Err(Errno::INVAL));
    assert_eq!(f.unmap(&c, IOVA, PAGE), Err(Errno::INVAL));
    let mut info = [0u8; 24];
    info[0] = 24;
    assert_eq!(
        c.iommu_get_info(&mut info).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(c.check_extension(VFIO_TYPE1_IOMMU).unwrap(), 1);
    assert_eq!(c.check_extension(VFIO_DMA_CC_IOMMU).unwrap(), 0);

    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    assert_eq!(c.check_extension(VFIO_DMA_CC_IOMMU).unwrap(), 1);
    f.map(&c, &buffer, 0, IOVA, PAGE).unwrap();
    let mut info = vec![0u8; 256];
    info[0] = 24;
    c.iommu_get_info(&mut info).unwrap();
    let argsz = u32::from_le_bytes(info[..4].try_into().unwrap());
    info.fill(0);
    info[..4].copy_from_slice(&argsz.to_le_bytes());
    c.iommu_get_info(&mut info).unwrap();
    let pgsizes = u64::from_le_bytes(info[8..16].try_into().unwrap());
    // VT-d second level: 4K, 2M, 1G.
    assert_eq!(pgsizes, (1 << 12) | (1 << 21) | (1 << 30));
    assert_eq!(
        u32::from_le_bytes(info[16..20].try_into().unwrap()),
        24,
        "cap_offset"
    );
    // The IOVA_RANGE capability (after DMA_AVAIL) spans the aperture minus
    // the device's reserved x86 MSI window (IOMMU_RESV_MSI).
    let aperture = f.sys.iommu.group(f.nvme_group).unwrap().domain().aperture();
    let cap_at = 24 + 16;
    let nr_iovas = u32::from_le_bytes(info[cap_at + 8..cap_at + 12].try_into().unwrap());
    assert_eq!(nr_iovas, 2);
    let range = |n: usize| {
        let at = cap_at + 16 + n * 16;
        (
            u64::from_le_bytes(info[at..at + 8].try_into().unwrap()),
            u64::from_le_bytes(info[at + 8..at + 16].try_into().unwrap()),
        )
    };
    assert_eq!(range(0), (aperture.0, 0xfedf_ffff));
    assert_eq!(range(1), (0xfef0_0000, aperture.1));
}

#[test]
fn device_fd_needs_a_container_with_an_iommu() {
    let f = Fixture::new();
    let name = f.nvme.to_string();
    let c = f.vfio.open_container().unwrap();
    let g = f.open(f.nvme_group);
    assert_eq!(g.device_names(), vec![name.clone()]);
    assert_eq!(
        g.get_device_fd("0000:05:00.1").unwrap_err().errno(),
        Errno::NODEV
    );
    assert_eq!(g.get_device_fd(&name).unwrap_err().errno(), Errno::INVAL);
    g.set_container(&c).unwrap();
    assert_eq!(g.get_device_fd(&name).unwrap_err().errno(), Errno::INVAL);
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    let fd = g.get_device_fd(&name).unwrap();
    assert_eq!(
        (fd.name(), fd.dma_rid(), fd.group()),
        (name.as_str(), Some(f.nvme), g.key())
    );

    // An open device keeps the group in its container.
    assert_eq!(g.unset_container().unwrap_err().errno(), Errno::BUSY);
    drop(fd);
    g.unset_container().unwrap();
}

/// A device fd pins the group file: closing the group handle first
/// releases nothing until the device fd goes too.
#[test]
fn device_fd_keeps_the_group_open() {
    let f = Fixture::new();
    let (c, g) = f.nvme_in_container();
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    let fd = g.get_device_fd(&f.nvme.to_string()).unwrap();
    drop(g);
    assert_eq!(c.groups(), vec![VfioGroupKey::Iommu(f.nvme_group)]);
    assert_eq!(f.open_err(VfioGroupKind::Iommu(f.nvme_group)), Errno::BUSY);
    drop(fd);
    assert!(c.groups().is_empty());
    assert_eq!(c.iommu_type(), None);
    drop(f.open(f.nvme_group));
}

/// Removing the last group deprivileges the container: the IOMMU and
/// every mapping go, and a new SET_IOMMU starts from nothing.
#[test]
fn last_group_takes_the_iommu_and_mappings() {
    let f = Fixture::new();
    let (c, g) = f.nvme_in_container();
    let buffer = f.buffer(1);
    c.set_iommu(VFIO_TYPE1_IOMMU).unwrap();
    f.map(&c, &buffer, 0, IOVA, PAGE).unwrap();
    g.unset_container().unwrap();
    assert_eq!(c.iommu_type(), None);
    assert_eq!(f.map(&c, &buffer, 0, IOVA, PAGE), Err(Errno::INVAL));

    g.set_container(&c).unwrap();
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    assert_eq!(f.unmap(&c, IOVA, PAGE), Ok(0));
    assert_eq!(f.dma_read(f.nvme, IOVA), None);
    // v1 left no trace: huge pages are back on.
    assert_eq!(c.ictx().option_huge_pages(c.ioas_id(), None).unwrap(), 1);
}

/// A group joining a container that has an IOMMU is attached at once, to
/// the container's existing domain; mappings made before are visible to it.
#[test]
fn late_group_joins_the_existing_domain() {
    let f = Fixture::new();
    let (c, _a) = f.nvme_in_container();
    let buffer = f.buffer(1);
    buffer.write(0, b"umdev!!!").unwrap();
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    f.map(&c, &buffer, 0, IOVA, PAGE).unwrap();
    let b = f.open(f.dsa_group);
    b.set_container(&c).unwrap();
    let backing = c.backing_groups();
    assert_eq!(backing.len(), 2);
    assert_eq!(backing[0].domain, backing[1].domain);
    assert_eq!(f.dma_read(f.dsa, IOVA), Some(*b"umdev!!!"));
    assert_eq!(f.dma_read(f.nvme, IOVA), Some(*b"umdev!!!"));
    // The DMA engine leaving (back to its identity default domain, where
    // this IOVA is unbacked) does not disturb the NVMe.
    b.unset_container().unwrap();
    assert_eq!(f.dma_read(f.dsa, IOVA), None);
    assert_eq!(f.dma_read(f.nvme, IOVA), Some(*b"umdev!!!"));
}

/// Two containers are two address spaces: the same IOVA reaches each
/// container's own memory.
#[test]
fn containers_isolate_dma() {
    let f = Fixture::new();
    let (c1, c2) = (
        f.vfio.open_container().unwrap(),
        f.vfio.open_container().unwrap(),
    );
    let (b1, b2) = (f.buffer(1), f.buffer(1));
    b1.write(0, b"first!!!").unwrap();
    b2.write(0, b"second!!").unwrap();
    let g1 = f.open(f.nvme_group);
    let g2 = f.open(f.dsa_group);
    g1.set_container(&c1).unwrap();
    g2.set_container(&c2).unwrap();
    c1.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    c2.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    f.map(&c1, &b1, 0, IOVA, PAGE).unwrap();
    f.map(&c2, &b2, 0, IOVA, PAGE).unwrap();
    assert_eq!(f.dma_read(f.nvme, IOVA), Some(*b"first!!!"));
    assert_eq!(f.dma_read(f.dsa, IOVA), Some(*b"second!!"));
    assert_eq!(f.unmap(&c1, IOVA, PAGE), Ok(PAGE));
    assert_eq!(f.dma_read(f.nvme, IOVA), None);
    assert_eq!(f.dma_read(f.dsa, IOVA), Some(*b"second!!"));
}

/// Type1 v1 through a container splits mappings; v2 does not.
#[test]
fn type1_versions_through_a_container() {
    for (version, split) in [(VFIO_TYPE1_IOMMU, true), (VFIO_TYPE1V2_IOMMU, false)] {
        let f = Fixture::new();
        let (c, _g) = f.nvme_in_container();
        let buffer = f.buffer(4);
        c.set_iommu(version).unwrap();
        f.map(&c, &buffer, 0, IOVA, 4 * PAGE).unwrap();
        let r = f.unmap(&c, IOVA + PAGE, PAGE);
        if split {
            assert_eq!(r, Ok(PAGE));
            assert_eq!(f.dma_read(f.nvme, IOVA + PAGE), None);
            assert!(f.dma_read(f.nvme, IOVA + 2 * PAGE).is_some());
        } else {
            assert_eq!(r, Err(Errno::NOENT));
            assert!(f.dma_read(f.nvme, IOVA + PAGE).is_some());
        }
    }
}

/// An mdev with vendor-defined isolation claims and attaches nothing: it
/// is always viable, may be the only group of a container with an IOMMU,
/// and its device has no requester ID of its own.
#[test]
fn emulated_mdev_group() {
    let f = Fixture::new();
    let c = f.vfio.open_container().unwrap();
    let g = f
        .vfio
        .open_group(VfioGroupKind::Emulated { uuid: EMULATED })
        .unwrap();
    assert_eq!(g.backing_group(), None);
    assert_eq!(g.status(), VfioGroupStatus::VIABLE);
    g.set_container(&c).unwrap();
    c.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    assert!(c.backing_groups().is_empty());
    let fd = g.get_device_fd(&uuid_string(EMULATED)).unwrap();
    assert_eq!(fd.dma_rid(), None);
    assert_eq!(fd.name(), "12345678-9abc-def0-1234-56789abcdef0");
    // A physical group can join it later and is attached then.
    let p = f.open(f.nvme_group);
    p.set_container(&c).unwrap();
    assert!(c.backing_groups()[0].domain.is_some());
}
