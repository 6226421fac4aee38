//! The global mdev registry: the list of every mdev of every parent
//! (mdev_core.c `mdev_list` under `mdev_list_lock`) and the registered
//! parents (`/sys/class/mdev_bus`).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};

use super::{
    Mdev, MdevDriver, MdevError, MdevParent, MdevTypeDesc, MdevUuid, ParentDevice, ParentId,
    SingletonGroups,
};

/// Life-cycle state of a listed mdev (`mdev->active` plus whether a remover
/// has claimed it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MdevState {
    /// Listed, the parent driver's create is running: not active.
    Creating,
    /// Created: `mdev->active`.
    Active,
    /// A remover cleared `active` and is removing it.
    Removing,
}

/// A listed mdev.
pub(super) struct Entry {
    pub(super) mdev: Arc<Mdev>,
    pub(super) state: MdevState,
}

/// The mdev bus: every parent and every mdev of one model instance, and
/// the group numbers of the mdevs. The UUID namespace is global to it.
///
/// # Locking
/// Lock order: **parent unregistration lock → mdev list → group
/// allocator**. The list lock is held only for lookups and state changes,
/// never across a parent driver callback.
pub struct MdevBus {
    list: Mutex<BTreeMap<MdevUuid, Entry>>,
    /// Registered parents by device. Never upgraded under the lock, so a
    /// parent's last reference is never dropped (and unregistered) here.
    parents: Mutex<Vec<(ParentId, Weak<MdevParent>)>>,
    groups: Arc<SingletonGroups>,
}

impl MdevBus {
    /// An empty bus numbering mdev groups from the process-wide
    /// [`SingletonGroups::global`], which emulated VFIO devices share.
    pub fn new() -> Arc<Self> {
        Self::with_groups(SingletonGroups::global().clone())
    }

    /// An empty bus numbering mdev groups from `groups`, which may be
    /// shared with other owners of singleton groups.
    pub fn with_groups(groups: Arc<SingletonGroups>) -> Arc<Self> {
        Arc::new(Self {
            list: Mutex::new(BTreeMap::new()),
            parents: Mutex::new(Vec::new()),
            groups,
        })
    }

    /// `mdev_register_parent(parent, dev, mdev_driver, types)`: `dev`
    /// becomes an mdev parent with these types; the parent's instance
    /// counter starts at `max_instances`. EEXIST if `dev` is already a
    /// registered parent. The returned handle is the registration: it is
    /// unregistered by [`MdevParent::unregister`] or when dropped.
    pub fn register_parent(
        self: &Arc<Self>,
        dev: ParentDevice,
        driver: Arc<dyn MdevDriver>,
        types: Vec<MdevTypeDesc>,
    ) -> Result<Arc<MdevParent>, MdevError> {
        let mut parents = self.parents.lock();
        if parents.iter().any(|(id, _)| *id == dev.id) {
            return Err(MdevError::ParentExists {
                parent: dev.id.to_string(),
            });
        }
        let id = dev.id.clone();
        let parent = MdevParent::new(self.clone(), dev, driver, types);
        parents.push((id, Arc::downgrade(&parent)));
        Ok(parent)
    }

    /// The registered parents (`/sys/class/mdev_bus`).
    pub fn parents(&self) -> Vec<Arc<MdevParent>> {
        let all: Vec<Arc<MdevParent>> = self
            .parents
            .lock()
            .iter()
            .filter_map(|(_, p)| p.upgrade())
            .collect();
        all.into_iter().filter(|p| p.is_registered()).collect()
    }

    /// The mdev named `uuid` (`/sys/bus/mdev/devices/<uuid>`), once its
    /// creation has completed.
    pub fn find(&self, uuid: MdevUuid) -> Option<Arc<Mdev>> {
        self.list
            .lock()
            .get(&uuid)
            .filter(|e| e.state != MdevState::Creating)
            .map(|e| e.mdev.clone())
    }

    /// Every created mdev, in UUID order.
    pub fn devices(&self) -> Vec<Arc<Mdev>> {
        self.list
            .lock()
            .values()
            .filter(|e| e.state != MdevState::Creating)
            .map(|e| e.mdev.clone())
            .collect()
    }

    /// The group-number allocator.
    pub fn groups(&self) -> &Arc<SingletonGroups> {
        &self.groups
    }

    pub(super) fn list(&self) -> MutexGuard<'_, BTreeMap<MdevUuid, Entry>> {
        self.list.lock()
    }

    pub(super) fn forget_parent(&self, parent: &MdevParent) {
        self.parents
            .lock()
            .retain(|(_, p)| !std::ptr::eq(p.as_ptr(), parent));
    }
}
