//! Mounting the tree: a pure-Rust `mount(2)` of a FUSE file system (root
//! needs no fusermount), unmounting, and cleaning up a mount left by a
//! crashed daemon.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use rustix::io::Errno;
use umdev_devices::host::Host;

use super::OnChange;
use super::fs::SysFs;
use crate::Tree;

/// Errors of mounting and unmounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The FUSE mount or its handshake failed.
    #[error("mounting the sysfs tree at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Unmounting failed (e.g. EBUSY while something is inside).
    #[error("unmounting the sysfs tree at {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl MountError {
    /// The errno of the failed system call (EIO if it had none).
    pub fn errno(&self) -> Errno {
        let (MountError::Mount { source, .. } | MountError::Unmount { source, .. }) = self;
        source
            .raw_os_error()
            .map_or(Errno::IO, Errno::from_raw_os_error)
    }
}

/// A mounted tree. Unmounted by [`MountHandle::unmount`] or on drop.
#[derive(Debug)]
pub struct MountHandle {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

/// Mounts the sysfs tree of `host` at `mountpoint`, an existing directory.
/// Returns once the FUSE handshake is done, so the tree can be used at
/// once. `on_change` is called after every successful write(2), before
/// the write returns to the writer, on the FUSE thread: it must not touch
/// the mount itself.
///
/// Mount options: `fsname=sysfs`, `subtype=umdev`, `default_permissions`,
/// `nodev`, `nosuid`, `noexec`, and as root `allow_other` (the mount is
/// reachable from other users and through bind mounts in other
/// namespaces).
pub fn mount(
    host: Arc<Host>,
    mountpoint: &Path,
    on_change: OnChange,
) -> Result<MountHandle, MountError> {
    let fs = SysFs::new(Tree::new(host), on_change);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("sysfs".to_owned()),
        MountOption::Subtype("umdev".to_owned()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
    ];
    // allow_other needs root (or user_allow_other in /etc/fuse.conf); an
    // unprivileged run serves its own user only (and mounts through
    // fusermount3, as fuser does without root).
    config.acl = if rustix::process::geteuid().is_root() {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    let session =
        fuser::spawn_mount(fs, mountpoint, &config).map_err(|source| MountError::Mount {
            path: mountpoint.to_owned(),
            source,
        })?;
    tracing::debug!(mountpoint = %mountpoint.display(), "sysfs tree mounted");
    Ok(MountHandle {
        session: Some(session),
        mountpoint: mountpoint.to_owned(),
    })
}

impl MountHandle {
    /// Where the tree is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts the tree and waits for the FUSE thread to end.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.unmount_now()
    }

    /// Unmounts and joins; if the mount is busy (a process has a file or
    /// its working directory in it), detaches it lazily instead: it is gone
    /// from the namespace at once, and the FUSE thread ends when its last
    /// user leaves.
    fn unmount_now(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let unmount_error = |source| MountError::Unmount {
            path: self.mountpoint.clone(),
            source,
        };
        match session.umount_and_join() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                detach(&self.mountpoint).map_err(unmount_error)?;
                tracing::warn!(
                    mountpoint = %self.mountpoint.display(),
                    "sysfs tree busy: detached lazily"
                );
                Ok(())
            }
            r => r.map_err(unmount_error),
        }
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_now() {
            tracing::warn!("{e}");
        }
    }
}

/// Detaches a stale FUSE mount at `mountpoint`: one whose server is gone,
/// so that any access fails with ENOTCONN ("Transport endpoint is not
/// connected"). A live mount or no mount is left alone. Returns whether a
/// stale mount was detached.
pub fn cleanup_stale_mount(mountpoint: &Path) -> Result<bool, MountError> {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
        _ => return Ok(false),
    }
    detach(mountpoint).map_err(|source| MountError::Unmount {
        path: mountpoint.to_owned(),
        source,
    })?;
    tracing::info!(mountpoint = %mountpoint.display(), "detached a stale sysfs mount");
    Ok(true)
}

/// `umount2(mountpoint, MNT_DETACH)`.
fn detach(mountpoint: &Path) -> io::Result<()> {
    let c_path = CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the
    // call; umount2 only reads it.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
