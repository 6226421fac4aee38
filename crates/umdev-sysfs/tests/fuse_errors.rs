//! Through a real FUSE mount: the errno of every refusal reaches the
//! writer, attribute files behave as sysfs's (direct I/O, page size,
//! harmless truncation, a `show` snapshot per open), links resolve with
//! `realpath`, and the tree follows the model without caching.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};

use rustix::io::Errno;
use umdev_testkit::sysfs::Rig;

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";
const MTTY1: &str = "class/mdev_bus/mtty/mdev_supported_types/mtty-1";
const MTTY2: &str = "class/mdev_bus/mtty/mdev_supported_types/mtty-2";

fn os_errno(e: std::io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().expect("an OS error"))
}

/// `fs::write` as mdevctl does: open(O_WRONLY|O_CREAT|O_TRUNC), one write.
fn write(m: &Rig, path: &str, data: &str) -> Result<(), Errno> {
    fs::write(m.sys().join(path), data).map_err(os_errno)
}

fn read(m: &Rig, path: &str) -> Result<String, Errno> {
    fs::read_to_string(m.sys().join(path)).map_err(os_errno)
}

#[test]
fn create_and_remove_errors_reach_the_writer() {
    let m = Rig::new();
    write(&m, &format!("{MTTY1}/create"), U1).unwrap();
    let changes = m.changes();
    assert_eq!(write(&m, &format!("{MTTY2}/create"), U1), Err(Errno::EXIST));
    assert_eq!(
        write(&m, &format!("{MTTY1}/create"), "not-a-uuid"),
        Err(Errno::INVAL)
    );
    assert_eq!(
        write(&m, &format!("{MTTY1}/create"), &format!("{U2}\n\n")),
        Err(Errno::INVAL)
    );
    assert_eq!(
        write(&m, &format!("bus/mdev/devices/{U1}/remove"), "please"),
        Err(Errno::INVAL)
    );
    assert_eq!(m.changes(), changes, "failed writes are not changes");

    // No instance left: the parent driver's own errno (mdev-pci: ENOSPC).
    m.bash_ok(
        "echo 0000:05:00.0 > bus/pci/devices/0000:05:00.0/driver/unbind && \
         echo 8086 0953 > bus/pci/drivers/mdev-pci/new_id",
    );
    let types = m
        .sys()
        .join("bus/pci/devices/0000:05:00.0/mdev_supported_types");
    let t = fs::read_dir(&types)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let t = format!(
        "bus/pci/devices/0000:05:00.0/mdev_supported_types/{}",
        t.to_str().unwrap()
    );
    write(&m, &format!("{t}/create"), U2).unwrap();
    let third = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003";
    let through_fs = write(&m, &format!("{t}/create"), third).unwrap_err();
    let parent = m
        .host
        .mdev_pci
        .parent("0000:05:00.0".parse().unwrap())
        .unwrap();
    let through_model = parent.types()[0]
        .create(third.parse().unwrap())
        .unwrap_err();
    assert_eq!(through_fs, through_model.errno());
    assert_eq!(through_fs, Errno::NOSPC);

    // bash reports the errno's text (dash would say only "I/O error").
    let out = m.bash(&format!("echo {U1} > {MTTY1}/create"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("File exists"));
    let out = m.bash(&format!("echo bogus > {MTTY1}/create"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid argument"));
}

#[test]
fn permissions_and_namespace_operations_as_sysfs() {
    let m = Rig::new();
    let vendor = m.sys().join("bus/pci/devices/0000:01:00.0/vendor");
    // kernfs_fop_open: EACCES even for root.
    let e = OpenOptions::new().write(true).open(&vendor).unwrap_err();
    assert_eq!(os_errno(e), Errno::ACCESS);
    assert_eq!(read(&m, &format!("{MTTY1}/create")), Err(Errno::ACCESS));
    let out = m.bash("echo 1 > bus/pci/devices/0000:01:00.0/vendor");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // No new names, no removals, no renames.
    assert_eq!(write(&m, "bus/pci/newfile", "x"), Err(Errno::ACCESS));
    assert_eq!(
        fs::create_dir(m.sys().join("bus/pci/newdir")).map_err(os_errno),
        Err(Errno::PERM)
    );
    assert_eq!(fs::remove_file(&vendor).map_err(os_errno), Err(Errno::PERM));
    assert_eq!(
        std::os::unix::fs::symlink("x", m.sys().join("bus/link")).map_err(os_errno),
        Err(Errno::PERM)
    );
    assert_eq!(
        fs::rename(&vendor, m.sys().join("bus/pci/devices/0000:01:00.0/v2")).map_err(os_errno),
        Err(Errno::PERM)
    );
    // Modes and sizes as sysfs reports them.
    let meta = fs::metadata(&vendor).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o444);
    assert_eq!(meta.len(), 4096);
    let create = fs::metadata(m.sys().join(format!("{MTTY1}/create"))).unwrap();
    assert_eq!(create.permissions().mode() & 0o7777, 0o200);
    assert!(
        fs::symlink_metadata(m.sys().join("class/mdev_bus/mtty"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Truncation is accepted and changes nothing.
    m.bash_ok(&format!(
        "truncate -s 0 {MTTY1}/create && : > {MTTY1}/create"
    ));
    assert_eq!(
        read(&m, &format!("{MTTY1}/available_instances")).unwrap(),
        "24\n"
    );
}

#[test]
fn links_resolve_with_realpath() {
    let m = Rig::new();
    write(&m, &format!("{MTTY1}/create"), U1).unwrap();
    let dev = m.sys().join(format!("devices/virtual/mtty/mtty/{U1}"));
    assert_eq!(
        fs::canonicalize(m.sys().join(format!("bus/mdev/devices/{U1}"))).unwrap(),
        dev
    );
    assert_eq!(
        fs::canonicalize(dev.join("mdev_type")).unwrap(),
        m.sys()
            .join("devices/virtual/mtty/mtty/mdev_supported_types/mtty-1")
    );
    let out = m.bash_ok(&format!(
        "realpath bus/mdev/devices/{U1}/driver; readlink -f bus/pci/devices/0000:04:00.1/iommu_group; \
         readlink bus/pci/devices/0000:04:00.1"
    ));
    let sys = m.sys();
    let sys = sys.to_str().unwrap();
    assert_eq!(
        out,
        format!(
            "{sys}/bus/mdev/drivers/mtty\n{sys}/kernel/iommu_groups/7\n\
             ../../../devices/pci0000:00/0000:00:02.0/0000:02:00.0/0000:03:00.0/0000:04:00.1\n"
        )
    );
}

#[test]
fn reads_are_direct_and_snapshot_per_open() {
    let m = Rig::new();
    let avail = m.sys().join(format!("{MTTY1}/available_instances"));
    let mut f = fs::File::open(&avail).unwrap();
    let mut first = [0u8; 1];
    f.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"2");
    // The model changes under the open file: like seq_file, the rest of
    // this read comes from the snapshot taken at offset 0 ...
    m.host
        .mtty
        .mdev_type("mtty-1")
        .unwrap()
        .create(U1.parse().unwrap())
        .unwrap();
    let mut rest = String::new();
    f.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "4\n");
    // ... and reading from offset 0 again shows it.
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut again = String::new();
    f.read_to_string(&mut again).unwrap();
    assert_eq!(again, "23\n");
    // New entries show at once (no entry or attribute caching).
    let names: Vec<String> = fs::read_dir(m.sys().join("bus/mdev/devices"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [U1]);
    // Binary config space at an offset.
    let config = fs::File::open(m.sys().join("bus/pci/devices/0000:07:00.0/config")).unwrap();
    let mut ids = [0u8; 4];
    config.read_exact_at(&mut ids, 0).unwrap();
    assert_eq!(ids, [0x86, 0x80, 0x72, 0x15]);
    let mut all = Vec::new();
    (&config).read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), 4096);
}

#[test]
fn inode_numbers_are_stable_per_path() {
    let m = Rig::new();
    let ino = |p: &str| fs::symlink_metadata(m.sys().join(p)).unwrap().ino();
    let a = ino("bus/pci/devices/0000:01:00.0");
    assert_eq!(ino("bus/pci/devices/0000:01:00.0"), a);
    assert_ne!(ino("bus/pci/devices/0000:04:00.0"), a);
    write(&m, &format!("{MTTY1}/create"), U1).unwrap();
    let dev = format!("devices/virtual/mtty/mtty/{U1}");
    let before = ino(&dev);
    write(&m, &format!("{dev}/remove"), "1").unwrap();
    assert!(!m.sys().join(&dev).exists());
    write(&m, &format!("{MTTY1}/create"), U1).unwrap();
    assert_eq!(ino(&dev), before);
    // A write through an open file handle after the entry went away fails.
    let mut f = OpenOptions::new()
        .write(true)
        .open(m.sys().join(format!("{dev}/remove")))
        .unwrap();
    f.write_all(b"1").unwrap();
    assert_eq!(f.write(b"1").map_err(os_errno), Err(Errno::NOENT));
}

#[test]
fn other_users_read_but_cannot_store() {
    let m = Rig::new();
    // tempfile makes its directory 0700; let `nobody` through to the mount.
    fs::set_permissions(m.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |script: &str| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["bash", "-c", script])
            .current_dir(m.sys())
            .output()
            .unwrap()
    };
    // allow_other: the mount serves other users.
    let out = as_nobody("cat bus/pci/devices/0000:01:00.0/vendor");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"0x8086\n");
    // pci_read_config: 64 bytes of config space without CAP_SYS_ADMIN.
    let out = as_nobody("wc -c < bus/pci/devices/0000:01:00.0/config");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "64");
    // default_permissions: root-only stores are refused by the VFS.
    let out = as_nobody(&format!("echo {U1} > {MTTY1}/create"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert!(m.host.bus.devices().is_empty());
}

#[test]
fn a_kept_directory_never_shows_a_moved_mdev() {
    use rustix::fs::{Mode, OFlags, openat};
    let m = Rig::new();
    write(&m, &format!("{MTTY1}/create"), U1).unwrap();
    let dir = fs::File::open(m.sys().join(format!("devices/virtual/mtty/mtty/{U1}"))).unwrap();
    assert!(openat(&dir, "remove", OFlags::WRONLY, Mode::empty()).is_ok());
    // The same UUID goes to another parent while the directory is held.
    let u1 = U1.parse().unwrap();
    m.host.bus.find(u1).unwrap().remove().unwrap();
    m.bash_ok(
        "echo 0000:05:00.0 > bus/pci/devices/0000:05:00.0/driver/unbind && \
         echo 8086 0953 > bus/pci/drivers/mdev-pci/new_id",
    );
    let parent = m
        .host
        .mdev_pci
        .parent("0000:05:00.0".parse().unwrap())
        .unwrap();
    parent.types()[0].create(u1).unwrap();
    assert_eq!(
        openat(&dir, "remove", OFlags::WRONLY, Mode::empty()).map(drop),
        Err(Errno::NOENT)
    );
    assert!(
        m.sys()
            .join(format!("bus/pci/devices/0000:05:00.0/{U1}/remove"))
            .exists()
    );
}
