//! The object table of an iommufd context (main.c: the `objects` xarray
//! with XA_FLAGS_ALLOC1 and per-object `users` refcounts).
//!
//! Every object starts with one user: the table's own reference. Other
//! objects that depend on it hold more ([`ObjRef`]), and DESTROY succeeds
//! only while the table's is the last (`iommufd_object_remove`: EBUSY
//! otherwise). Devices and accesses hold a driver reference on themselves,
//! so user space can never DESTROY them.
//!
//! The table is generic over what it holds: the object kinds
//! (`crate::private::Object`) are defined with the shared structs, so this
//! module names none of them.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{IommufdError, Result};

/// Id and refcount every object carries (`struct iommufd_object`).
#[derive(Debug)]
pub struct ObjHeader {
    id: AtomicU32,
    users: AtomicU32,
}

impl ObjHeader {
    /// A header with the table's reference and no id yet.
    pub(crate) fn new() -> Self {
        Self {
            id: AtomicU32::new(0),
            users: AtomicU32::new(1),
        }
    }

    /// The object's id (0 until it is in the table).
    pub fn id(&self) -> u32 {
        self.id.load(Ordering::Acquire)
    }

    /// Current number of users, the table's included.
    pub fn users(&self) -> u32 {
        self.users.load(Ordering::Acquire)
    }

    pub(crate) fn get(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn put(&self) {
        let prev = self.users.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev > 1, "the table's reference is dropped only by removal");
    }
}

/// Anything that lives in the table.
pub trait HasHeader: Send + Sync {
    /// The object's header.
    fn header(&self) -> &ObjHeader;
}

/// A counted reference from one object (or attachment) to another.
#[derive(Debug)]
pub struct ObjRef<T: HasHeader>(Arc<T>);

impl<T: HasHeader> ObjRef<T> {
    /// Takes a user reference on `obj`.
    pub(crate) fn new(obj: &Arc<T>) -> Self {
        obj.header().get();
        Self(Arc::clone(obj))
    }

    /// The shared object.
    pub fn arc(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: HasHeader> Clone for ObjRef<T> {
    fn clone(&self) -> Self {
        Self::new(&self.0)
    }
}

impl<T: HasHeader> Deref for ObjRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: HasHeader> Drop for ObjRef<T> {
    fn drop(&mut self) {
        self.0.header().put();
    }
}

/// The table: ids from 1, lowest free first, as `xa_alloc` with
/// XA_FLAGS_ALLOC1 hands them out.
#[derive(Debug)]
pub(crate) struct ObjTable<O> {
    objects: BTreeMap<u32, O>,
}

impl<O> Default for ObjTable<O> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
        }
    }
}

impl<O: HasHeader + Clone> ObjTable<O> {
    /// Inserts a finished object and gives it its id. ENOMEM when the id
    /// cannot be allocated (`xa_alloc`; only under fault injection here).
    pub(crate) fn insert(&mut self, obj: O) -> Result<u32> {
        if umdev_iommu::failpoint::should_fail("iommufd: object id") {
            return Err(IommufdError::Errno {
                what: "object id allocation",
                errno: rustix::io::Errno::NOMEM,
            });
        }
        let mut id = 1u32;
        for &used in self.objects.keys() {
            if used != id {
                break;
            }
            id += 1;
        }
        obj.header().id.store(id, Ordering::Release);
        self.objects.insert(id, obj);
        Ok(id)
    }

    /// Looks an object up: ENOENT when absent.
    pub(crate) fn get(&self, id: u32) -> Result<O> {
        self.objects
            .get(&id)
            .cloned()
            .ok_or(IommufdError::NoObject { id })
    }

    /// Removes the object if the table holds its only reference
    /// (`iommufd_object_remove`): ENOENT / EBUSY otherwise.
    pub(crate) fn remove_unused(&mut self, id: u32) -> Result<O> {
        let obj = self.objects.get(&id).ok_or(IommufdError::NoObject { id })?;
        if obj.header().users() != 1 {
            return Err(IommufdError::ObjectBusy { id });
        }
        Ok(self.objects.remove(&id).expect("present"))
    }

    /// Removes the object whatever its users (the final release of a
    /// context, for objects only open fds still hold).
    pub(crate) fn remove(&mut self, id: u32) -> Option<O> {
        self.objects.remove(&id)
    }

    /// Ids of objects only the table references (candidates for the
    /// leaf-first teardown on close).
    pub(crate) fn unused_ids(&self) -> Vec<u32> {
        self.objects
            .iter()
            .filter(|(_, o)| o.header().users() == 1)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Every object.
    pub(crate) fn all(&self) -> Vec<(u32, O)> {
        self.objects
            .iter()
            .map(|(&id, o)| (id, o.clone()))
            .collect()
    }

    /// Number of objects.
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the table holds no object.
    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
