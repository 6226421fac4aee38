//! The group cases of the seed 004 thread ("vfio_pci: wrap pci device as a
//! mediated device", Liu Yi L / Alex Williamson, 2019–2020), on the real
//! default platform and the VT-d driver.
//!
//! The platform puts the two functions of a NIC (04:00.0, 04:00.1) and the
//! switch downstream port above them (03:00.0, no ACS) in one
//! non-singleton IOMMU group. One function is used through vfio-pci (its
//! physical vfio group), the other is wrapped as an IOMMU-backed mdev
//! whose `iommu_device` is that function: two vfio groups, one backing
//! IOMMU group.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::system::System;
use umdev_iommufd::Ictx;
use umdev_iommufd::vfio_compat::{VFIO_TYPE1V2_IOMMU, VfioDmaMap, VfioDmaMapFlags};
use umdev_pci::Bdf;
use umdev_vfio::container::{
    BackingInfo, Vfio, VfioContainer, VfioGroup, VfioGroupKey, VfioGroupKind, VfioGroupStatus,
    uuid_string,
};

const MDEV_A: u128 = 0x8fd6_4f0f_6b8e_4b5e_9c1a_0000_0000_0001;
const MDEV_B: u128 = 0x8fd6_4f0f_6b8e_4b5e_9c1a_0000_0000_0002;
const IOVA: u64 = 0x10_0000;
const LEN: u64 = 0x4000;

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

struct Fixture {
    sys: System,
    vfio: Arc<Vfio>,
    port: Bdf,
    nic0: Bdf,
    nic1: Bdf,
    /// The NIC's IOMMU group.
    group: u32,
    buffer: Arc<MemoryObject>,
}

impl Fixture {
    fn new() -> Self {
        let sys = System::default_platform().unwrap();
        let vfio = Vfio::new(sys.iommu.clone());
        let (port, nic0, nic1) = (
            bdf("0000:03:00.0"),
            bdf("0000:04:00.0"),
            bdf("0000:04:00.1"),
        );
        let group = sys.platform.iommu_group(nic0).unwrap();
        assert_eq!(
            sys.iommu.group(group).unwrap().devices(),
            vec![port, nic0, nic1]
        );
        let buffer = sys.vtd.memory().alloc_anonymous(LEN).unwrap();
        Self {
            sys,
            vfio,
            port,
            nic0,
            nic1,
            group,
            buffer,
        }
    }

    /// Takes the NIC functions away from their kernel DMA-API driver.
    fn unbind_igb(&self) {
        for f in [self.nic0, self.nic1] {
            self.sys.platform.unbind("igb", f).unwrap();
        }
    }

    fn physical(&self) -> VfioGroup {
        self.vfio
            .open_group(VfioGroupKind::Iommu(self.group))
            .unwrap()
    }

    fn mdev(&self, uuid: u128, parent: Bdf) -> VfioGroup {
        self.vfio
            .open_group(VfioGroupKind::IommuBackedMdev {
                uuid,
                iommu_device: parent,
            })
            .unwrap()
    }

    fn map(&self, container: &VfioContainer) {
        let map = VfioDmaMap::new(
            VfioDmaMapFlags::READ | VfioDmaMapFlags::WRITE,
            self.buffer.base(),
            IOVA,
            LEN,
        );
        container.map_dma(self.sys.vtd.memory(), &map).unwrap();
    }

    /// A DMA write by `rid` at IOVA lands in the buffer.
    fn dma_reaches_buffer(&self, rid: Bdf, byte: u8) -> bool {
        let port = self.sys.dma_for(rid).unwrap();
        if port.write(None, IOVA + 0x10, &[byte; 8]).is_err() {
            return false;
        }
        let mut got = [0u8; 8];
        self.buffer.read(0x10, &mut got).unwrap();
        got == [byte; 8]
    }

    fn group_domain(&self) -> u64 {
        self.sys.iommu.group(self.group).unwrap().domain().id()
    }

    fn group_default_domain(&self) -> u64 {
        self.sys
            .iommu
            .group(self.group)
            .unwrap()
            .default_domain()
            .id()
    }
}

/// A vfio-pci group and an IOMMU-backed mdev over another function of the
/// same non-singleton group share one attach in one container: one record
/// keyed by the backing group, counted by both vfio groups; detaching
/// either keeps the attach for the other; the last detach is the real one.
#[test]
fn shared_backing_group_attached_once() {
    for mdev_first in [false, true] {
        let f = Fixture::new();
        f.unbind_igb();
        let container = f.vfio.open_container().unwrap();
        let pci = f.physical();
        let mdev = f.mdev(MDEV_A, f.nic1);
        assert_eq!(mdev.backing_group(), Some(f.group));
        let (first, second) = if mdev_first {
            (&mdev, &pci)
        } else {
            (&pci, &mdev)
        };
        first.set_container(&container).unwrap();
        second.set_container(&container).unwrap();
        container.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();

        let backing = container.backing_groups();
        let domain = backing[0].domain.expect("attached");
        assert_eq!(
            backing,
            vec![BackingInfo {
                group: f.group,
                users: vec![VfioGroupKey::Iommu(f.group), VfioGroupKey::Mdev(MDEV_A)],
                domain: Some(domain),
            }]
        );
        assert_eq!(f.group_domain(), domain);

        // Both devices DMA through the container's mappings: the vfio-pci
        // function with its own RID, the mdev with its iommu_device's.
        f.map(&container);
        let pci_fd = pci.get_device_fd(&f.nic0.to_string()).unwrap();
        let mdev_fd = mdev.get_device_fd(&uuid_string(MDEV_A)).unwrap();
        assert_eq!(mdev_fd.dma_rid(), Some(f.nic1));
        assert!(f.dma_reaches_buffer(f.nic0, 0x11));
        assert!(f.dma_reaches_buffer(f.nic1, 0x22));

        // Detaching one keeps the attach for the other.
        drop(pci_fd);
        drop(mdev_fd);
        first.unset_container().unwrap();
        let left = if mdev_first {
            VfioGroupKey::Iommu(f.group)
        } else {
            VfioGroupKey::Mdev(MDEV_A)
        };
        assert_eq!(
            container.backing_groups(),
            vec![BackingInfo {
                group: f.group,
                users: vec![left],
                domain: Some(domain),
            }]
        );
        assert_eq!(f.group_domain(), domain);
        assert!(f.dma_reaches_buffer(f.nic0, 0x33));
        assert!(f.dma_reaches_buffer(f.nic1, 0x44));

        // The last detach is the real one: the group leaves the domain and
        // its ownership is released, back to the default domain.
        second.unset_container().unwrap();
        assert!(container.backing_groups().is_empty());
        let info = f.sys.iommu.group(f.group).unwrap().info();
        assert_eq!((info.owner, info.owner_cnt), (None, 0));
        assert_eq!(f.group_domain(), f.group_default_domain());
    }
}

/// Once a container holds the backing group, a second container wanting it
/// through another IOMMU-backed mdev gets EBUSY, and so does a second
/// open of the physical vfio group; an iommufd context cannot bind a member
/// (EPERM: `iommu_device_claim_dma_owner` sees another owner).
#[test]
fn second_consumer_gets_ebusy() {
    let f = Fixture::new();
    f.unbind_igb();
    let a = f.vfio.open_container().unwrap();
    let pci = f.physical();
    pci.set_container(&a).unwrap();
    a.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    f.map(&a);
    let before = a.backing_groups();

    let b = f.vfio.open_container().unwrap();
    let other = f.mdev(MDEV_B, f.nic0);
    assert_eq!(other.set_container(&b).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(other.status(), VfioGroupStatus::empty());
    assert!(b.groups().is_empty());
    assert_eq!(
        f.vfio
            .open_group(VfioGroupKind::Iommu(f.group))
            .unwrap_err()
            .errno(),
        Errno::BUSY
    );

    let ictx = Ictx::new(f.sys.iommu.clone());
    assert_eq!(ictx.device_bind(f.nic0).unwrap_err().errno(), Errno::PERM);

    // Nothing changed for the first container.
    assert_eq!(a.backing_groups(), before);
    assert!(f.dma_reaches_buffer(f.nic0, 0x55));

    // With the first consumer gone, the second one gets the group.
    drop(pci);
    other.set_container(&b).unwrap();
    b.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();
    assert_eq!(
        b.backing_groups()[0].users,
        vec![VfioGroupKey::Mdev(MDEV_B)]
    );
}

/// The other way round: an iommufd context owns the group (a bound,
/// attached member), so a container wanting it through an IOMMU-backed
/// mdev gets EBUSY, and through the physical vfio group EPERM
/// (`iommu_group_claim_dma_owner`).
#[test]
fn group_owned_by_iommufd_context_is_busy_for_containers() {
    let f = Fixture::new();
    f.unbind_igb();
    let ictx = Ictx::new(f.sys.iommu.clone());
    let dev = ictx.device_bind(f.nic0).unwrap();
    let ioas = ictx.ioas_alloc().unwrap();
    ictx.device_attach(dev, 0, ioas).unwrap();

    let container = f.vfio.open_container().unwrap();
    let mdev = f.mdev(MDEV_A, f.nic1);
    assert_eq!(
        mdev.set_container(&container).unwrap_err().errno(),
        Errno::BUSY
    );
    let pci = f.physical();
    assert_eq!(
        pci.set_container(&container).unwrap_err().errno(),
        Errno::PERM
    );
    assert!(container.backing_groups().is_empty());

    ictx.device_unbind(dev).unwrap();
    mdev.set_container(&container).unwrap();
}

/// A group with a member bound to a kernel DMA-API driver is not viable:
/// no status flag, and SET_CONTAINER fails with EPERM whether it comes
/// through the physical group or an IOMMU-backed mdev of another member.
/// The switch port's pcieport driver does no DMA and does not count.
#[test]
fn dma_api_member_makes_group_not_viable() {
    let f = Fixture::new();
    let container = f.vfio.open_container().unwrap();
    let pci = f.physical();
    let mdev = f.mdev(MDEV_A, f.nic1);
    let group = f.sys.iommu.group(f.group).unwrap();

    // Both NIC functions on igb.
    assert_eq!(pci.status(), VfioGroupStatus::empty());
    assert!(!f.sys.iommu.group_viable(&group));
    assert_eq!(
        pci.set_container(&container).unwrap_err().errno(),
        Errno::PERM
    );

    // The wrapped function leaves igb; its sibling still uses the DMA API.
    f.sys.platform.unbind("igb", f.nic1).unwrap();
    assert_eq!(mdev.status(), VfioGroupStatus::empty());
    assert_eq!(
        mdev.set_container(&container).unwrap_err().errno(),
        Errno::PERM
    );
    assert_eq!(
        pci.set_container(&container).unwrap_err().errno(),
        Errno::PERM
    );

    // Only driver_managed_dma drivers (pcieport on the port) remain.
    f.sys.platform.unbind("igb", f.nic0).unwrap();
    assert_eq!(f.sys.platform.driver_of(f.port).unwrap().name, "pcieport");
    assert!(f.sys.iommu.group_viable(&group));
    assert_eq!(pci.status(), VfioGroupStatus::VIABLE);
    assert_eq!(mdev.status(), VfioGroupStatus::VIABLE);
    mdev.set_container(&container).unwrap();
    assert_eq!(
        mdev.status(),
        VfioGroupStatus::VIABLE | VfioGroupStatus::CONTAINER_SET
    );
    pci.set_container(&container).unwrap();
}

/// Binding a kernel DMA-API driver to a member of a group user space owns
/// fails with EBUSY (`iommu_device_use_default_domain`), whichever vfio
/// group holds it; a driver_managed_dma driver may bind; once the group is
/// released the DMA-API driver binds again.
#[test]
fn dma_api_bind_to_user_owned_group_fails() {
    let f = Fixture::new();
    f.unbind_igb();
    let container = f.vfio.open_container().unwrap();
    let mdev = f.mdev(MDEV_A, f.nic1);
    mdev.set_container(&container).unwrap();
    container.set_iommu(VFIO_TYPE1V2_IOMMU).unwrap();

    for nic in [f.nic0, f.nic1] {
        let err = f.sys.platform.bind("igb", nic).unwrap_err();
        assert_eq!(err.errno(), Errno::BUSY, "{nic}: {err}");
        assert!(f.sys.platform.driver_of(nic).is_none());
    }
    f.sys
        .platform
        .set_driver_override(f.nic0, "pci-stub")
        .unwrap();
    f.sys.platform.bind("pci-stub", f.nic0).unwrap();

    // Released: the group is the kernel's again.
    drop(mdev);
    assert!(container.backing_groups().is_empty());
    f.sys.platform.unbind("pci-stub", f.nic0).unwrap();
    f.sys.platform.set_driver_override(f.nic0, "").unwrap();
    f.sys.platform.bind("igb", f.nic0).unwrap();
    f.sys.platform.bind("igb", f.nic1).unwrap();
    assert_eq!(f.physical().status(), VfioGroupStatus::empty());
}
