//! VFIO groups (drivers/vfio/group.c): `/dev/vfio/$GROUP`, opened once,
//! set to a container, and the door to the group's device fds.
//!
//! [`Vfio`] is the registry of open groups (the kernel's global `vfio`
//! state). A [`VfioGroup`] is one open group fd; device fds
//! ([`VfioDeviceFd`]) hold a reference to it, so the group is released
//! (detached from its container, closed) only when the group handle and
//! every device fd are gone, as a device file pins the group file in
//! Linux.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_iommu::iommu::{Group, Iommu};
use umdev_pci::Bdf;

use super::error::{VfioError, VfioResult};
use super::{ClaimPath, VfioContainer};

/// Which vfio group: the IOMMU group number of a physical group, or the
/// UUID of an mdev (each mdev has a singleton group of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VfioGroupKey {
    /// `/dev/vfio/<n>` of IOMMU group `n`.
    Iommu(u32),
    /// The group of the mdev with this UUID.
    Mdev(u128),
}

impl fmt::Display for VfioGroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfioGroupKey::Iommu(n) => write!(f, "{n}"),
            VfioGroupKey::Mdev(uuid) => write!(f, "mdev {}", uuid_string(*uuid)),
        }
    }
}

/// What a vfio group stands for (`enum vfio_group_type`, plus the
/// IOMMU-backed mdev of v5.1–v5.15 that the seed 004 thread is about).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfioGroupKind {
    /// VFIO_IOMMU: physical IOMMU group `n` (vfio-pci devices).
    Iommu(u32),
    /// An mdev whose parent named an `iommu_device`
    /// (`mdev_set_iommu_device`): its DMA is translated as that physical
    /// function's, so the container must attach the function's IOMMU
    /// group, which may hold other devices.
    IommuBackedMdev {
        /// The mdev's UUID.
        uuid: u128,
        /// The physical function whose requester ID the mdev's DMA uses.
        iommu_device: Bdf,
    },
    /// VFIO_EMULATED_IOMMU: an mdev with vendor-defined isolation; no IOMMU
    /// group is claimed or attached, its driver pins and copies through
    /// the container's IOAS.
    Emulated {
        /// The mdev's UUID.
        uuid: u128,
    },
}

impl VfioGroupKind {
    /// The group's key.
    pub fn key(&self) -> VfioGroupKey {
        match *self {
            VfioGroupKind::Iommu(n) => VfioGroupKey::Iommu(n),
            VfioGroupKind::IommuBackedMdev { uuid, .. } | VfioGroupKind::Emulated { uuid } => {
                VfioGroupKey::Mdev(uuid)
            }
        }
    }
}

/// The canonical text form of a UUID (`8-4-4-4-12` lowercase hex), which
/// is an mdev's device name.
pub fn uuid_string(uuid: u128) -> String {
    let h = format!("{uuid:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

bitflags::bitflags! {
    /// `struct vfio_group_status` flags (VFIO_GROUP_GET_STATUS).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VfioGroupStatus: u32 {
        /// VFIO_GROUP_FLAGS_VIABLE: the group can be given to user space.
        const VIABLE = 1 << 0;
        /// VFIO_GROUP_FLAGS_CONTAINER_SET.
        const CONTAINER_SET = 1 << 1;
    }
}

/// The VFIO core over one IOMMU core: which groups are open.
pub struct Vfio {
    iommu: Arc<Iommu>,
    open: Mutex<BTreeSet<VfioGroupKey>>,
}

impl fmt::Debug for Vfio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vfio")
            .field("open", &*self.open.lock())
            .finish_non_exhaustive()
    }
}

impl Vfio {
    /// The VFIO core over `iommu`.
    pub fn new(iommu: Arc<Iommu>) -> Arc<Self> {
        Arc::new(Self {
            iommu,
            open: Mutex::new(BTreeSet::new()),
        })
    }

    /// The IOMMU core.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// Opens `/dev/vfio/vfio`: a new container with no group and no IOMMU.
    pub fn open_container(&self) -> VfioResult<Arc<VfioContainer>> {
        VfioContainer::new(Arc::clone(&self.iommu))
    }

    /// Opens a vfio group: ENODEV if the IOMMU group (or the mdev's
    /// `iommu_device`'s group) does not exist, EBUSY if the group is open.
    pub fn open_group(self: &Arc<Self>, kind: VfioGroupKind) -> VfioResult<VfioGroup> {
        let backing = match kind {
            VfioGroupKind::Iommu(n) => {
                Some(self.iommu.group(n).ok_or(VfioError::NoIommuGroup {
                    what: format!("IOMMU group {n}"),
                })?)
            }
            VfioGroupKind::IommuBackedMdev { iommu_device, .. } => Some(
                self.iommu
                    .device_group(iommu_device)
                    .ok_or(VfioError::NoIommuGroup {
                        what: format!("iommu_device {iommu_device}"),
                    })?,
            ),
            VfioGroupKind::Emulated { .. } => None,
        };
        let key = kind.key();
        if !self.open.lock().insert(key) {
            return Err(VfioError::GroupOpen {
                group: key.to_string(),
            });
        }
        Ok(VfioGroup {
            file: Arc::new(GroupFile {
                vfio: Arc::clone(self),
                kind,
                backing,
                state: Mutex::new(GroupFileState::default()),
            }),
        })
    }

    /// The open groups.
    pub fn open_groups(&self) -> Vec<VfioGroupKey> {
        self.open.lock().iter().copied().collect()
    }
}

#[derive(Default)]
struct GroupFileState {
    container: Option<Arc<VfioContainer>>,
    /// Device fds open through this group (`container_users - 1`).
    devices_open: u32,
}

/// The open group file, shared by the group handle and its device fds.
struct GroupFile {
    vfio: Arc<Vfio>,
    kind: VfioGroupKind,
    backing: Option<Arc<Group>>,
    state: Mutex<GroupFileState>,
}

impl GroupFile {
    fn claim_path(&self) -> ClaimPath {
        match self.kind {
            VfioGroupKind::Iommu(_) => ClaimPath::Physical,
            _ => ClaimPath::IommuBacked,
        }
    }
}

impl Drop for GroupFile {
    /// `vfio_group_fops_release`: detaches the container and closes.
    fn drop(&mut self) {
        let key = self.kind.key();
        if let Some(container) = self.state.get_mut().container.take() {
            container.detach_group(key);
        }
        self.vfio.open.lock().remove(&key);
    }
}

/// An open vfio group fd.
pub struct VfioGroup {
    file: Arc<GroupFile>,
}

impl fmt::Debug for VfioGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioGroup")
            .field("kind", &self.file.kind)
            .finish_non_exhaustive()
    }
}

impl VfioGroup {
    /// The group's key.
    pub fn key(&self) -> VfioGroupKey {
        self.file.kind.key()
    }

    /// What the group stands for.
    pub fn kind(&self) -> VfioGroupKind {
        self.file.kind
    }

    /// The IOMMU group the group's DMA is translated by (none for an
    /// emulated mdev).
    pub fn backing_group(&self) -> Option<u32> {
        self.file.backing.as_ref().map(|g| g.id())
    }

    /// Names GET_DEVICE_FD accepts: the PCI functions of a physical group,
    /// the UUID of an mdev.
    pub fn device_names(&self) -> Vec<String> {
        match (self.file.kind, &self.file.backing) {
            (VfioGroupKind::Iommu(_), Some(group)) => {
                group.devices().iter().map(Bdf::to_string).collect()
            }
            (VfioGroupKind::IommuBackedMdev { uuid, .. } | VfioGroupKind::Emulated { uuid }, _) => {
                vec![uuid_string(uuid)]
            }
            (VfioGroupKind::Iommu(_), None) => Vec::new(),
        }
    }

    /// VFIO_GROUP_GET_STATUS (`vfio_group_ioctl_get_status`): a group with
    /// a container is CONTAINER_SET and VIABLE; otherwise it is VIABLE
    /// while nobody claims its (backing) group's DMA, i.e. no member is
    /// bound to a kernel DMA-API driver and no other user owns it. An
    /// emulated mdev is always viable.
    pub fn status(&self) -> VfioGroupStatus {
        if self.file.state.lock().container.is_some() {
            return VfioGroupStatus::VIABLE | VfioGroupStatus::CONTAINER_SET;
        }
        match &self.file.backing {
            Some(group) if group.dma_owner_claimed() => VfioGroupStatus::empty(),
            _ => VfioGroupStatus::VIABLE,
        }
    }

    /// VFIO_GROUP_SET_CONTAINER: EINVAL if the group already has one (or
    /// the container belongs to another IOMMU core). Claims the backing
    /// group's DMA ownership unless the container already holds it for
    /// another vfio group (see [`VfioContainer`]), and attaches it if the
    /// container has an IOMMU.
    pub fn set_container(&self, container: &Arc<VfioContainer>) -> VfioResult<()> {
        let mut state = self.file.state.lock();
        if state.container.is_some() {
            return Err(VfioError::ContainerState {
                what: "the group already has a container",
            });
        }
        if !Arc::ptr_eq(container.iommu(), self.file.vfio.iommu()) {
            return Err(VfioError::ContainerState {
                what: "the container belongs to another IOMMU",
            });
        }
        let backing = self
            .file
            .backing
            .as_ref()
            .map(|g| (g, self.file.claim_path()));
        container.attach_group(self.key(), backing)?;
        state.container = Some(Arc::clone(container));
        Ok(())
    }

    /// VFIO_GROUP_UNSET_CONTAINER: EINVAL without a container, EBUSY while
    /// device fds are open.
    pub fn unset_container(&self) -> VfioResult<()> {
        let mut state = self.file.state.lock();
        if state.container.is_none() {
            return Err(VfioError::ContainerState {
                what: "the group has no container",
            });
        }
        if state.devices_open != 0 {
            return Err(VfioError::DevicesOpen {
                open: state.devices_open,
            });
        }
        let container = state.container.take().expect("checked above");
        container.detach_group(self.key());
        Ok(())
    }

    /// VFIO_GROUP_GET_DEVICE_FD: ENODEV for a name no device of the group
    /// has; EINVAL unless the group's container has an IOMMU set.
    pub fn get_device_fd(&self, name: &str) -> VfioResult<VfioDeviceFd> {
        if !self.device_names().iter().any(|n| n == name) {
            return Err(VfioError::NoDevice {
                name: name.to_owned(),
            });
        }
        let mut state = self.file.state.lock();
        if !state.container.as_ref().is_some_and(|c| c.has_iommu()) {
            return Err(VfioError::ContainerState {
                what: "a device fd needs a container with an IOMMU",
            });
        }
        state.devices_open += 1;
        let dma_rid = match self.file.kind {
            VfioGroupKind::Iommu(_) => name.parse().ok(),
            VfioGroupKind::IommuBackedMdev { iommu_device, .. } => Some(iommu_device),
            VfioGroupKind::Emulated { .. } => None,
        };
        Ok(VfioDeviceFd {
            file: Arc::clone(&self.file),
            name: name.to_owned(),
            dma_rid,
        })
    }
}

/// An open device fd of a vfio group. While it lives the group cannot
/// leave its container.
pub struct VfioDeviceFd {
    file: Arc<GroupFile>,
    name: String,
    dma_rid: Option<Bdf>,
}

impl fmt::Debug for VfioDeviceFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioDeviceFd")
            .field("name", &self.name)
            .field("dma_rid", &self.dma_rid)
            .finish_non_exhaustive()
    }
}

impl VfioDeviceFd {
    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requester ID its DMA carries: the function itself, or an
    /// IOMMU-backed mdev's `iommu_device`; `None` for an emulated mdev.
    pub fn dma_rid(&self) -> Option<Bdf> {
        self.dma_rid
    }

    /// The group it was opened through.
    pub fn group(&self) -> VfioGroupKey {
        self.file.kind.key()
    }
}

impl Drop for VfioDeviceFd {
    fn drop(&mut self) {
        let mut state = self.file.state.lock();
        state.devices_open = state.devices_open.saturating_sub(1);
    }
}
