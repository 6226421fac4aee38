//! The legacy group-centric VFIO model (drivers/vfio/group.c, container.c
//! and vfio_iommu_type1.c): a container (`/dev/vfio/vfio`) collects vfio
//! groups, each of which claims its IOMMU group's DMA exclusively; SET_IOMMU
//! picks type1 and attaches every group to the container's domains; device
//! fds open only once an IOMMU is set.
//!
//! Design: the container's DMA state is an IOAS of a private iommufd
//! context, driven by the VFIO compat ioctls of
//! [`umdev_iommufd::vfio_compat`] (iommufd's vfio_compat.c, which stays in
//! umdev-iommufd; Linux uses it with CONFIG_IOMMUFD_VFIO_CONTAINER), so
//! MAP/UNMAP/GET_INFO, v1 splitting and the mirroring of mappings into
//! every domain follow the iommufd rules (a v2 partial unmap is ENOENT, as through iommufd's
//! `/dev/vfio/vfio`, where vfio_iommu_type1.c said EINVAL). The group side
//! is type1's: whole IOMMU groups are attached with `iommu_attach_group`
//! to paging HWPTs over that IOAS, and the container records each
//! *backing* IOMMU group it attached, reference-counted by the vfio groups
//! using it ([`BackingInfo`]). That record is what lets a vfio-pci group
//! and an IOMMU-backed mdev wrapping another function of the same
//! non-singleton group share one attach, which the seed 004 thread could
//! not express.
//!
//! Lock order: a vfio group's state → the container's state → the IOAS →
//! the IOMMU core.

mod backing;
pub mod error;
pub mod group;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::iommu::{Group, Iommu, OwnerCookie};
use umdev_iommu::memory::HostMemory;
use umdev_iommufd::vfio_compat::{
    VFIO_API_VERSION, VFIO_TYPE1_IOMMU, VFIO_TYPE1V2_IOMMU, VFIO_UNMAP_ALL, VfioDmaMap,
    VfioDmaUnmap, VfioDmaUnmapFlags,
};
use umdev_iommufd::{Ictx, VfioIoasOp};

pub use backing::BackingInfo;
use backing::BackingTable;
pub use error::{VfioError, VfioResult};
pub use group::{
    Vfio, VfioDeviceFd, VfioGroup, VfioGroupKey, VfioGroupKind, VfioGroupStatus, uuid_string,
};

/// How a vfio group reaches the backing group, which decides the errno of
/// a refused ownership claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimPath {
    /// A vfio-pci group claims its own IOMMU group exclusively
    /// (container.c `vfio_container_attach_group` →
    /// `iommu_group_claim_dma_owner`): any other owner is EPERM.
    Physical,
    /// An IOMMU-backed mdev uses its parent's group: a group another
    /// container or context already owns is EBUSY (the seed 004 outcome of
    /// `__iommu_attach_group`); one kernel DMA-API drivers use is EPERM
    /// (not viable).
    IommuBacked,
}

#[derive(Default)]
struct ContainerState {
    /// The type SET_IOMMU chose (`container->iommu_driver`).
    iommu_type: Option<u64>,
    /// `group_list`: each vfio group with the backing group it uses.
    groups: BTreeMap<VfioGroupKey, Option<u32>>,
    backing: BackingTable,
}

/// A VFIO container.
pub struct VfioContainer {
    iommu: Arc<Iommu>,
    ictx: Arc<Ictx>,
    ioas_id: u32,
    /// The DMA owner of every backing group the container holds.
    owner: OwnerCookie,
    state: Mutex<ContainerState>,
}

impl fmt::Debug for VfioContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("VfioContainer")
            .field("iommu_type", &state.iommu_type)
            .field("groups", &state.groups)
            .field("backing", &state.backing.info())
            .finish_non_exhaustive()
    }
}

impl VfioContainer {
    /// An empty container over `iommu` (see [`Vfio::open_container`]).
    pub(crate) fn new(iommu: Arc<Iommu>) -> VfioResult<Arc<Self>> {
        let ictx = Ictx::new(Arc::clone(&iommu));
        let ioas_id = ictx.ioas_alloc()?;
        ictx.vfio_ioas(VfioIoasOp::Set(ioas_id))?;
        Ok(Arc::new(Self {
            iommu,
            ictx,
            ioas_id,
            owner: OwnerCookie::new(),
            state: Mutex::new(ContainerState::default()),
        }))
    }

    /// The IOMMU core.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The private context holding the container's IOAS; in-kernel users
    /// (emulated mdevs) create their accesses on it.
    pub fn ictx(&self) -> &Arc<Ictx> {
        &self.ictx
    }

    /// The id of the container's IOAS in [`Self::ictx`].
    pub fn ioas_id(&self) -> u32 {
        self.ioas_id
    }

    /// The DMA-ownership cookie the container claims backing groups with.
    pub fn owner(&self) -> &OwnerCookie {
        &self.owner
    }

    /// The type set by [`Self::set_iommu`], if any.
    pub fn iommu_type(&self) -> Option<u64> {
        self.state.lock().iommu_type
    }

    pub(crate) fn has_iommu(&self) -> bool {
        self.iommu_type().is_some()
    }

    /// The vfio groups set to this container.
    pub fn groups(&self) -> Vec<VfioGroupKey> {
        self.state.lock().groups.keys().copied().collect()
    }

    /// The backing IOMMU groups the container holds, with their users and
    /// the domain each is attached to.
    pub fn backing_groups(&self) -> Vec<BackingInfo> {
        self.state.lock().backing.info()
    }

    /// VFIO_GET_API_VERSION.
    pub fn get_api_version(&self) -> u32 {
        VFIO_API_VERSION
    }

    /// VFIO_CHECK_EXTENSION: without an IOMMU, what the type1 driver
    /// offers (TYPE1, TYPE1v2, UNMAP_ALL); with one, the compat answer
    /// ([`Ictx::vfio_check_extension`]).
    pub fn check_extension(&self, extension: u64) -> VfioResult<u32> {
        if self.has_iommu() {
            return Ok(self.ictx.vfio_check_extension(extension)?);
        }
        Ok(u32::from(matches!(
            extension,
            VFIO_TYPE1_IOMMU | VFIO_TYPE1V2_IOMMU | VFIO_UNMAP_ALL
        )))
    }

    /// VFIO_SET_IOMMU (`vfio_ioctl_set_iommu`): EINVAL without a group or
    /// with an IOMMU already set, ENODEV for a type other than TYPE1 /
    /// TYPE1v2. Attaches every backing group; if one fails, the others are
    /// detached again and the container stays without an IOMMU.
    pub fn set_iommu(&self, iommu_type: u64) -> VfioResult<()> {
        let mut state = self.state.lock();
        if state.groups.is_empty() || state.iommu_type.is_some() {
            return Err(VfioError::IommuState {
                what: "SET_IOMMU needs a group and no IOMMU set",
            });
        }
        if iommu_type != VFIO_TYPE1_IOMMU && iommu_type != VFIO_TYPE1V2_IOMMU {
            return Err(VfioError::UnsupportedIommuType { iommu_type });
        }
        self.ictx.vfio_set_iommu(iommu_type)?;
        let ioas = self.ictx.ioas(self.ioas_id)?;
        if let Err(e) = state.backing.attach_all(&self.iommu, &ioas) {
            self.release_iommu();
            return Err(e);
        }
        state.iommu_type = Some(iommu_type);
        Ok(())
    }

    /// Checks that an IOMMU is set: the container passes the type1 ioctls
    /// on only then (container.c `vfio_fops_unl_ioctl`: EINVAL).
    fn require_iommu(&self) -> VfioResult<()> {
        if self.has_iommu() {
            Ok(())
        } else {
            Err(VfioError::IommuState {
                what: "no IOMMU set",
            })
        }
    }

    /// VFIO_IOMMU_MAP_DMA: EINVAL without an IOMMU, then
    /// [`Ictx::vfio_map_dma`].
    pub fn map_dma(&self, mem: &HostMemory, map: &VfioDmaMap) -> VfioResult<()> {
        self.require_iommu()?;
        Ok(self.ictx.vfio_map_dma(mem, map)?)
    }

    /// VFIO_IOMMU_UNMAP_DMA: EINVAL without an IOMMU, then
    /// [`Ictx::vfio_unmap_dma`].
    pub fn unmap_dma(&self, unmap: &mut VfioDmaUnmap) -> VfioResult<()> {
        self.require_iommu()?;
        Ok(self.ictx.vfio_unmap_dma(unmap)?)
    }

    /// VFIO_IOMMU_GET_INFO: EINVAL without an IOMMU, then
    /// [`Ictx::vfio_iommu_get_info`].
    pub fn iommu_get_info(&self, buf: &mut [u8]) -> VfioResult<()> {
        self.require_iommu()?;
        Ok(self.ictx.vfio_iommu_get_info(buf)?)
    }

    /// `vfio_container_attach_group`: records vfio group `key`, claiming
    /// its backing group (or joining the record another vfio group of this
    /// container made), and attaches it if an IOMMU is set.
    pub(crate) fn attach_group(
        &self,
        key: VfioGroupKey,
        backing: Option<(&Arc<Group>, ClaimPath)>,
    ) -> VfioResult<()> {
        let mut state = self.state.lock();
        if let Some((group, path)) = backing {
            state
                .backing
                .get(&self.iommu, &self.owner, group, key, path)?;
            if state.iommu_type.is_some() {
                let attached = self
                    .ictx
                    .ioas(self.ioas_id)
                    .map_err(VfioError::from)
                    .and_then(|ioas| state.backing.attach(&self.iommu, &ioas, group.id()));
                if let Err(e) = attached {
                    state.backing.put(&self.iommu, &self.owner, group.id(), key);
                    return Err(e);
                }
            }
        }
        state.groups.insert(key, backing.map(|(g, _)| g.id()));
        Ok(())
    }

    /// `vfio_group_detach_container`: drops vfio group `key`; the last user
    /// of a backing group detaches and releases it, and the last group
    /// takes the IOMMU away (every mapping goes with it).
    pub(crate) fn detach_group(&self, key: VfioGroupKey) {
        let mut state = self.state.lock();
        let Some(backing) = state.groups.remove(&key) else {
            return;
        };
        if let Some(group_id) = backing {
            state.backing.put(&self.iommu, &self.owner, group_id, key);
        }
        if state.groups.is_empty() && state.iommu_type.take().is_some() {
            self.release_iommu();
        }
    }

    /// The type1 driver's release: every mapping is unmapped and huge pages
    /// come back, so a later SET_IOMMU starts afresh.
    fn release_iommu(&self) {
        // Neither can fail on the container's own IOAS with no domain left.
        let mut all = VfioDmaUnmap::new(VfioDmaUnmapFlags::ALL, 0, 0);
        let _ = self.ictx.vfio_unmap_dma(&mut all);
        let _ = self.ictx.option_huge_pages(self.ioas_id, Some(1));
    }
}

impl Drop for VfioContainer {
    fn drop(&mut self) {
        self.ictx.close();
    }
}
