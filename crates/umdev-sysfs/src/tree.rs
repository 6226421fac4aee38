//! The tree: path resolution by walking the directories' entries (so
//! `lookup` and `readdir` cannot disagree), and the file operations on
//! what a path names.

use std::sync::Arc;

use umdev_devices::host::Host;
use umdev_pci::Platform;
use umdev_vfio::mdev::{Mdev, MdevParent, MdevUuid, ParentId};

use crate::SysfsError;
use crate::entries::Entries;
use crate::node::{Attr, Dir, Node, NodeKind, Stat};
use crate::path::{components, dirname, join, normalize, relative};

/// The sysfs tree of a [`Host`]. Paths are relative to the mount root
/// ("bus/pci/devices/0000:01:00.0/vendor"; a leading '/' is allowed).
/// Nothing is cached: every call reads the model.
///
/// Seed 004's recipe, steps c and d, as the FUSE face runs it (each write
/// is the `write(2)` of a shell `echo`, and its errno the model's):
///
/// ```
/// use umdev_devices::host::Host;
/// use umdev_sysfs::Tree;
///
/// let tree = Tree::new(Host::default_platform()?);
/// assert_eq!(tree.read("bus/pci/devices/0000:05:00.0/vendor")?, b"0x8086\n");
/// let create = "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create";
/// let uuid = b"83b8f4f2-509f-382f-3c1e-e6bfe0fa1003\n";
/// tree.write(create, 0, uuid)?;
/// assert_eq!(
///     tree.readlink("bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1003/mdev_type")?,
///     "../mdev_supported_types/mtty-2"
/// );
/// // The same UUID again: EEXIST, and nothing changed.
/// assert_eq!(tree.write(create, 0, uuid).unwrap_err().errno(), rustix::io::Errno::EXIST);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tree {
    host: Arc<Host>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").finish_non_exhaustive()
    }
}

impl Tree {
    /// The tree of `host`.
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub(crate) fn platform(&self) -> &Platform {
        self.host.platform()
    }

    /// The registered parent of device `id`.
    pub(crate) fn parent(&self, id: &ParentId) -> Option<Arc<MdevParent>> {
        self.host
            .bus
            .parents()
            .into_iter()
            .find(|p| &p.device().id == id)
    }

    /// The mdev named `uuid`.
    pub(crate) fn mdev(&self, uuid: MdevUuid) -> Option<Arc<Mdev>> {
        self.host.bus.find(uuid)
    }

    /// What `path` names, with its canonical path (the path without links
    /// on the way, which relative link targets start from). ENOENT if
    /// nothing, ENOTDIR if a component on the way is not a directory.
    fn resolve(&self, path: &str) -> Result<(String, Node), SysfsError> {
        let mut canonical = String::new();
        let mut node = Node::Dir(Dir::Root);
        for name in components(path) {
            // A link on the way is followed, as the VFS does (FUSE never
            // sends such paths: it looks names up in directories only).
            if let Node::Link(target) = &node {
                (canonical, node) = self.resolve(target)?;
            }
            node = self.child(&node, name, path)?;
            canonical = join(&canonical, name);
        }
        Ok((canonical, node))
    }

    /// The entry `name` of directory `dir`, as the model has it now
    /// (`path` names it in errors).
    pub(crate) fn child(&self, dir: &Node, name: &str, path: &str) -> Result<Node, SysfsError> {
        let Node::Dir(dir) = dir else {
            return Err(SysfsError::NotDir {
                path: normalize(path),
            });
        };
        self.entries(dir)
            .into_iter()
            .find_map(|(n, child)| (n == name).then_some(child))
            .ok_or_else(|| SysfsError::NotFound {
                path: normalize(path),
            })
    }

    /// `stat` of `path` (links are not followed).
    pub fn stat(&self, path: &str) -> Result<Stat, SysfsError> {
        let (canonical, node) = self.resolve(path)?;
        Ok(stat_of(&canonical, &node))
    }

    /// The entries of directory `path`, without "." and "..".
    pub fn readdir(&self, path: &str) -> Result<Vec<(String, NodeKind)>, SysfsError> {
        let (_, node) = self.resolve(path)?;
        Ok(self
            .list(&node, path)?
            .into_iter()
            .map(|(name, node)| (name, node.kind()))
            .collect())
    }

    /// The entries of directory node `dir`.
    pub(crate) fn list(&self, dir: &Node, path: &str) -> Result<Entries, SysfsError> {
        match dir {
            Node::Dir(dir) => Ok(self.entries(dir)),
            _ => Err(SysfsError::NotDir {
                path: normalize(path),
            }),
        }
    }

    /// The target of link `path`, relative as sysfs writes it.
    pub fn readlink(&self, path: &str) -> Result<String, SysfsError> {
        let (canonical, node) = self.resolve(path)?;
        link_text(&canonical, &node).ok_or_else(|| SysfsError::NotLink {
            path: normalize(path),
        })
    }

    /// The whole content of attribute `path`, as the kernel's `show`
    /// prints it (or the whole binary attribute), read with
    /// `CAP_SYS_ADMIN`. EACCES if it has no `show` (mode without read
    /// bits), EISDIR for a directory.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, SysfsError> {
        self.read_as(path, true)
    }

    /// [`Tree::read`] by a reader with (`privileged`) or without
    /// `CAP_SYS_ADMIN`; only `config` differs: without it, the first 64
    /// bytes (drivers/pci/pci-sysfs.c `pci_read_config`, "Several chips
    /// lock up trying to read undefined config space").
    pub fn read_as(&self, path: &str, privileged: bool) -> Result<Vec<u8>, SysfsError> {
        let (_, node) = self.resolve(path)?;
        self.read_node(&node, path, privileged)
    }

    /// [`Tree::read_as`] of a resolved node.
    pub(crate) fn read_node(
        &self,
        node: &Node,
        path: &str,
        privileged: bool,
    ) -> Result<Vec<u8>, SysfsError> {
        let attr = self.attr(node, path)?;
        if attr.mode() & 0o444 == 0 {
            return Err(SysfsError::Access {
                path: normalize(path),
            });
        }
        self.show(&attr, &normalize(path), privileged)
    }

    /// One write(2) of `data` at `offset` to attribute `path`: one call of
    /// the attribute's `store` (the offset matters only to the binary
    /// `config`). Returns the bytes consumed. EACCES if the attribute has
    /// no `store`; otherwise the model's errno.
    pub fn write(&self, path: &str, offset: u64, data: &[u8]) -> Result<usize, SysfsError> {
        let (_, node) = self.resolve(path)?;
        self.write_node(&node, path, offset, data)
    }

    /// [`Tree::write`] to a resolved node.
    pub(crate) fn write_node(
        &self,
        node: &Node,
        path: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, SysfsError> {
        let attr = self.attr(node, path)?;
        let path = normalize(path);
        if attr.mode() & 0o222 == 0 {
            return Err(SysfsError::Access { path });
        }
        self.store(&attr, &path, offset, data)
    }

    /// The attribute `node` is (following a final link, as the VFS does
    /// before reading or writing).
    fn attr(&self, node: &Node, path: &str) -> Result<Attr, SysfsError> {
        match node {
            Node::Attr(a) => Ok(a.clone()),
            Node::Dir(_) => Err(SysfsError::IsDir {
                path: normalize(path),
            }),
            Node::Link(target) => self.attr(&self.resolve(target)?.1, path),
        }
    }
}

/// The text of `node` at canonical path `canonical` if it is a link.
pub(crate) fn link_text(canonical: &str, node: &Node) -> Option<String> {
    match node {
        Node::Link(target) => Some(relative(dirname(canonical), target)),
        _ => None,
    }
}

/// `stat` of `node` at canonical path `canonical`.
pub(crate) fn stat_of(canonical: &str, node: &Node) -> Stat {
    node.stat(|| link_text(canonical, node).map_or(0, |t| t.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory node kept from an earlier lookup lists nothing once its
    /// object is gone, even if an object of the same name lives elsewhere.
    #[test]
    fn kept_directory_nodes_do_not_go_stale() {
        let t = Tree::new(Host::default_platform().unwrap());
        let u: MdevUuid = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001".parse().unwrap();
        t.host.mtty.mdev_type("mtty-1").unwrap().create(u).unwrap();
        let dir = t
            .resolve(&format!("devices/virtual/mtty/mtty/{u}"))
            .unwrap()
            .1;
        assert!(t.child(&dir, "remove", "remove").is_ok());
        t.host.bus.find(u).unwrap().remove().unwrap();
        assert!(t.child(&dir, "remove", "remove").is_err());
        // The UUID comes back under another parent.
        let platform = t.platform();
        let nvme = "0000:05:00.0".parse().unwrap();
        platform.unbind("nvme", nvme).unwrap();
        platform.set_driver_override(nvme, "mdev-pci").unwrap();
        platform.bind("mdev-pci", nvme).unwrap();
        let parent = t.host.mdev_pci.parent(nvme).unwrap();
        parent.types()[0].create(u).unwrap();
        assert!(t.child(&dir, "remove", "remove").is_err());
        let group = t.host.bus.find(u).unwrap().group();
        let group_dir = t
            .resolve(&format!("kernel/iommu_groups/{group}"))
            .unwrap()
            .1;
        t.host.bus.find(u).unwrap().remove().unwrap();
        assert!(t.child(&group_dir, "devices", "devices").is_err());
        let drv = t.resolve("bus/pci/drivers/mdev-pci").unwrap().1;
        platform.unregister_driver("mdev-pci").unwrap();
        assert!(t.child(&drv, "bind", "bind").is_err());
    }
}
