//! Mount life cycle: unmount (also when busy), drop, and cleaning up a
//! stale mount left by a dead server.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use umdev_devices::host::Host;
use umdev_sysfs::{cleanup_stale_mount, mount};
use umdev_testkit::sysfs::Rig;

/// Whether `/proc/self/mountinfo` lists a mount at `path`.
fn is_mount_point(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
fn unmount_and_drop_remove_the_mount() {
    let mut m = Rig::new();
    let sys = m.sys();
    assert!(is_mount_point(&sys));
    m.handle.take().unwrap().unmount().unwrap();
    assert!(!is_mount_point(&sys));
    assert_eq!(std::fs::read_dir(&sys).unwrap().count(), 0);

    let host = Host::default_platform().unwrap();
    let handle = mount(host, &sys, Arc::new(|| {})).unwrap();
    assert_eq!(handle.mountpoint(), sys);
    assert!(sys.join("bus/pci/devices").is_dir());
    drop(handle);
    assert!(!is_mount_point(&sys));
}

#[test]
fn a_busy_mount_is_detached() {
    let mut m = Rig::new();
    let sys = m.sys();
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .current_dir(sys.join("bus/pci"))
        .spawn()
        .unwrap();
    let r = m.handle.take().unwrap().unmount();
    let gone = !is_mount_point(&sys);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    r.unwrap();
    assert!(gone, "the mount left the namespace while busy");
}

#[test]
fn a_stale_mount_is_cleaned_up_and_a_live_one_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("sys");
    std::fs::create_dir(&stale).unwrap();
    // A FUSE mount whose server (this shell's /dev/fuse fd) is gone; `-i`
    // keeps mount(8) from calling fuse3's mount.fuse helper.
    let ok = Command::new("bash")
        .arg("-c")
        .arg(
            "exec 3<>/dev/fuse && \
             mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 stale \"$0\"",
        )
        .arg(&stale)
        .status()
        .unwrap()
        .success();
    assert!(ok, "could not make a stale FUSE mount");
    let e = std::fs::metadata(&stale).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN));

    assert!(cleanup_stale_mount(&stale).unwrap());
    assert!(!is_mount_point(&stale));
    assert!(
        !cleanup_stale_mount(&stale).unwrap(),
        "nothing left to clean"
    );

    // Mounting there works now, and a live mount is not touched.
    let handle = mount(Host::default_platform().unwrap(), &stale, Arc::new(|| {})).unwrap();
    assert!(!cleanup_stale_mount(&stale).unwrap());
    assert!(stale.join("class/mdev_bus/mtty").exists());
    handle.unmount().unwrap();
}
