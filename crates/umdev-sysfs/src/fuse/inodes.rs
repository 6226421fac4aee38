//! Inode numbers: one per tree path, fixed for the life of the mount.
//! Numbers are never reused, so a path that goes away and comes back (an
//! mdev removed and created again) gets its old number, and a stale
//! number never names another path. Each inode keeps its parent and the
//! node it named when last looked up, so an access resolves one directory
//! level, not the whole path (directory nodes list nothing once their
//! object is gone, so a kept node never shows stale entries).

use std::collections::HashMap;

use crate::node::{Dir, Node};

/// The root's inode number (`FUSE_ROOT_ID`).
pub(crate) const ROOT_INO: u64 = 1;

/// One inode.
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    /// Its tree path.
    pub(crate) path: String,
    /// The directory holding it (the root holds itself).
    pub(crate) parent: u64,
    /// Its name in `parent`.
    pub(crate) name: String,
    /// What it named at its last lookup.
    pub(crate) node: Node,
}

/// Path ↔ inode.
#[derive(Debug)]
pub(crate) struct Inodes {
    by_path: HashMap<String, u64>,
    /// `inodes[ino - 1]`.
    inodes: Vec<Inode>,
}

impl Inodes {
    /// Only the root ("", [`ROOT_INO`]).
    pub(crate) fn new() -> Self {
        Self {
            by_path: HashMap::from([(String::new(), ROOT_INO)]),
            inodes: vec![Inode {
                path: String::new(),
                parent: ROOT_INO,
                name: String::new(),
                node: Node::Dir(Dir::Root),
            }],
        }
    }

    /// The number of `path` (entry `name` of directory `parent`), given
    /// one on first use; records `node` as what it names now.
    pub(crate) fn ino(&mut self, parent: u64, name: &str, path: &str, node: Node) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            self.inodes[(ino - 1) as usize].node = node;
            return ino;
        }
        self.inodes.push(Inode {
            path: path.to_owned(),
            parent,
            name: name.to_owned(),
            node,
        });
        let ino = self.inodes.len() as u64;
        self.by_path.insert(path.to_owned(), ino);
        ino
    }

    /// The inode `ino`.
    pub(crate) fn get(&self, ino: u64) -> Option<&Inode> {
        let i = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.inodes.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_unique() {
        let mut i = Inodes::new();
        let dir = |d: Dir| Node::Dir(d);
        let a = i.ino(ROOT_INO, "bus", "bus", dir(Dir::Bus));
        let b = i.ino(a, "pci", "bus/pci", dir(Dir::BusPci));
        assert_ne!(a, b);
        assert_ne!(a, ROOT_INO);
        assert_eq!(i.ino(ROOT_INO, "bus", "bus", dir(Dir::Bus)), a);
        let pci = i.get(b).unwrap();
        assert_eq!(
            (pci.path.as_str(), pci.parent, pci.name.as_str()),
            ("bus/pci", a, "pci")
        );
        assert_eq!(i.get(ROOT_INO).unwrap().node, dir(Dir::Root));
        assert!(i.get(0).is_none());
        assert!(i.get(99).is_none());
    }
}
