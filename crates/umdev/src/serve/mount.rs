//! The sysfs face: the FUSE tree at `<root>/sys`, whose writes commit
//! through the daemon before they return.

use std::path::Path;
use std::sync::Arc;

use umdev_sysfs::{MountError, MountHandle, OnChange};

use super::daemon::Daemon;

/// Mounts the tree of `daemon`'s model at `mountpoint`. Every successful
/// attribute write commits (saves the state, reconciles the sockets)
/// before the writer's write(2) returns.
pub fn mount(daemon: &Arc<Daemon>, mountpoint: &Path) -> Result<MountHandle, MountError> {
    let weak = Arc::downgrade(daemon);
    let on_change: OnChange = Arc::new(move || {
        if let Some(daemon) = weak.upgrade() {
            daemon.changed_through_sysfs();
        }
    });
    umdev_sysfs::mount(daemon.host().clone(), mountpoint, on_change)
}

/// Detaches a mount a crashed daemon left at `mountpoint`, saying so.
pub fn clean_stale(mountpoint: &Path) -> Result<(), MountError> {
    if umdev_sysfs::cleanup_stale_mount(mountpoint)? {
        tracing::warn!(
            mountpoint = %mountpoint.display(),
            "detached a stale sysfs mount left by a crashed daemon"
        );
    }
    Ok(())
}
