//! The FUSE file system over a [`Tree`]: inode numbers by path, attribute
//! files opened with direct I/O and a per-open buffer filled by `show` at
//! offset 0 (as sysfs's seq_file), one store per write(2), truncation
//! accepted as a no-op, no caching of entries or attributes (TTL 0), and
//! the errno of every refusal passed through.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use super::OnChange;
use super::inodes::{Inode, Inodes, ROOT_INO};
use crate::node::{Node, NodeKind, Stat};
use crate::path::join;
use crate::tree::{link_text, stat_of};
use crate::{SysfsError, Tree};

/// Nothing is cached by the kernel: every access asks the model.
const TTL: Duration = Duration::ZERO;

/// An open attribute file: the content `show` gave at offset 0, and
/// whether the opener is privileged (root standing in for
/// `CAP_SYS_ADMIN`, which sysfs checks against the opener's credentials).
struct OpenFile {
    content: Option<Vec<u8>>,
    privileged: bool,
}

/// The file system.
pub(crate) struct SysFs {
    tree: Tree,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, OpenFile>>,
    next_fh: AtomicU64,
    on_change: OnChange,
    /// Time stamp of every inode (sysfs inodes keep their creation time).
    epoch: SystemTime,
}

fn errno(e: &SysfsError) -> Errno {
    Errno::from_i32(e.errno().raw_os_error())
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

impl SysFs {
    pub(crate) fn new(tree: Tree, on_change: OnChange) -> Self {
        Self {
            tree,
            inodes: Mutex::new(Inodes::new()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            on_change,
            epoch: SystemTime::now(),
        }
    }

    /// The inode `ino` as recorded (path and last node).
    fn inode(&self, ino: INodeNo) -> Result<Inode, Errno> {
        self.inodes.lock().get(ino.0).cloned().ok_or(Errno::ENOENT)
    }

    /// The path of `ino` and what it names now: its entry looked up again
    /// in its parent's recorded node. ENOENT once it is gone.
    fn current(&self, ino: INodeNo) -> Result<(String, Node), Errno> {
        let inode = self.inode(ino)?;
        if ino.0 == ROOT_INO {
            return Ok((inode.path, inode.node));
        }
        let parent = self.inode(INodeNo(inode.parent))?;
        let node = self
            .tree
            .child(&parent.node, &inode.name, &inode.path)
            .map_err(|e| errno(&e))?;
        Ok((inode.path, node))
    }

    fn file_attr(&self, ino: u64, stat: Stat) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: stat.size,
            blocks: 0,
            atime: self.epoch,
            mtime: self.epoch,
            ctime: self.epoch,
            crtime: self.epoch,
            kind: file_type(stat.kind),
            perm: stat.mode,
            nlink: if stat.kind == NodeKind::Dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// The path, node and `stat` of `ino`.
    fn stat(&self, ino: INodeNo) -> Result<(String, Node, Stat), Errno> {
        let (path, node) = self.current(ino)?;
        let stat = stat_of(&path, &node);
        Ok((path, node, stat))
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags, uid: u32) -> Result<u64, Errno> {
        let (_, _, stat) = self.stat(ino)?;
        match stat.kind {
            NodeKind::Dir => return Err(Errno::EISDIR),
            // The VFS follows links before opening.
            NodeKind::Symlink => return Err(Errno::ELOOP),
            NodeKind::File => {}
        }
        // fs/kernfs/file.c `kernfs_fop_open`: EACCES, even for root, when
        // the mode (which says whether show / store exist) does not allow
        // the access.
        let (read, write) = match flags.acc_mode() {
            OpenAccMode::O_RDONLY => (true, false),
            OpenAccMode::O_WRONLY => (false, true),
            OpenAccMode::O_RDWR => (true, true),
        };
        if (write && stat.mode & 0o222 == 0) || (read && stat.mode & 0o444 == 0) {
            return Err(Errno::EACCES);
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.files.lock().insert(
            fh,
            OpenFile {
                content: None,
                privileged: uid == 0,
            },
        );
        Ok(fh)
    }

    fn do_read(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        let (path, node) = self.current(ino)?;
        let mut files = self.files.lock();
        let file = files.get_mut(&fh.0).ok_or(Errno::EBADF)?;
        // seq_file: `show` runs for a read at offset 0 (and the first read
        // of an open file); later reads continue in that snapshot.
        if offset == 0 || file.content.is_none() {
            let content = self.tree.read_node(&node, &path, file.privileged);
            file.content = Some(content.map_err(|e| errno(&e))?);
        }
        let content = file.content.as_deref().unwrap_or_default();
        let start = usize::try_from(offset).map_or(content.len(), |o| o.min(content.len()));
        let end = start.saturating_add(size as usize).min(content.len());
        Ok(content[start..end].to_vec())
    }

    fn do_write(&self, ino: INodeNo, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let (path, node) = self.current(ino)?;
        let n = self
            .tree
            .write_node(&node, &path, offset, data)
            .map_err(|e| errno(&e))?;
        if n > 0 {
            // The daemon persists and serves the change before the writer
            // sees the write complete.
            (self.on_change)();
        }
        Ok(n as u32)
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        let dir = self.inode(parent)?;
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        let path = join(&dir.path, name);
        let node = self
            .tree
            .child(&dir.node, name, &path)
            .map_err(|e| errno(&e))?;
        let stat = stat_of(&path, &node);
        let ino = self.inodes.lock().ino(parent.0, name, &path, node);
        Ok(self.file_attr(ino, stat))
    }

    fn do_readdir(&self, ino: INodeNo) -> Result<Vec<(u64, FileType, String)>, Errno> {
        let (path, node) = self.current(ino)?;
        let children = self.tree.list(&node, &path).map_err(|e| errno(&e))?;
        let mut inodes = self.inodes.lock();
        let parent = inodes.get(ino.0).map_or(ROOT_INO, |i| i.parent);
        let mut out = vec![
            (ino.0, FileType::Directory, ".".to_owned()),
            (parent, FileType::Directory, "..".to_owned()),
        ];
        for (name, child) in children {
            let kind = file_type(child.kind());
            let child_ino = inodes.ino(ino.0, &name, &join(&path, &name), child);
            out.push((child_ino, kind, name));
        }
        Ok(out)
    }
}

impl Filesystem for SysFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.stat(ino) {
            Ok((_, _, stat)) => reply.attr(&TTL, &self.file_attr(ino.0, stat)),
            Err(e) => reply.error(e),
        }
    }

    /// Truncation (`O_TRUNC`, `truncate(2)`) of an attribute is accepted
    /// and changes nothing, as on sysfs; time updates are ignored; owner
    /// and mode changes are refused.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let (_, _, stat) = match self.stat(ino) {
            Ok(s) => s,
            Err(e) => return reply.error(e),
        };
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(Errno::EPERM);
        }
        if size.is_some() && stat.kind == NodeKind::Dir {
            return reply.error(Errno::EISDIR);
        }
        reply.attr(&TTL, &self.file_attr(ino.0, stat));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.current(ino) {
            Ok((path, node)) => match link_text(&path, &node) {
                Some(t) => reply.data(t.as_bytes()),
                None => reply.error(Errno::EINVAL),
            },
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    /// kernfs `kernfs_iop_mkdir` without a `mkdir` syscall op: EPERM.
    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    /// fs/namei.c `vfs_unlink`: no `unlink` inode op, EPERM.
    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EPERM);
    }

    /// fs/namei.c `lookup_open`: creating a new name in a directory without
    /// a `create` op is EACCES.
    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EACCES);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(ino, flags, req.uid()) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(ino, fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.do_write(ino, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.stat(ino) {
            Ok((_, _, stat)) if stat.kind == NodeKind::Dir => {
                reply.opened(FileHandle(0), FopenFlags::empty())
            }
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.do_readdir(ino) {
            Ok(e) => e,
            Err(e) => return reply.error(e),
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// No extended attributes.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }
}
