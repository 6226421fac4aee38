//! Shared by the FUSE tests: a host with its tree mounted in a temporary
//! directory, and a shell to run commands in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use umdev_devices::host::Host;
use umdev_sysfs::{MountHandle, mount};

/// A mounted tree of a fresh default host.
pub struct Rig {
    /// The model.
    pub host: Arc<Host>,
    /// Successful writes seen by `on_change`.
    pub changes: Arc<AtomicUsize>,
    /// The mount (dropped before `dir`).
    pub handle: Option<MountHandle>,
    /// Holds the mount point.
    pub dir: tempfile::TempDir,
}

crate::default_is_new!(Rig);

impl Rig {
    /// Mounts the default host's tree at `<tempdir>/sys`.
    pub fn new() -> Self {
        let host = Host::default_platform().expect("default host");
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).expect("mkdir sys");
        let changes = Arc::new(AtomicUsize::new(0));
        let counter = changes.clone();
        let handle = mount(
            host.clone(),
            &sys,
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .expect("mount (needs root and /dev/fuse)");
        Self {
            host,
            changes,
            handle: Some(handle),
            dir,
        }
    }

    /// The mount point.
    pub fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    /// The root holding `sys/`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Successful writes so far.
    pub fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }

    /// Runs `script` with bash in the mount point (`$SYS` is set too).
    pub fn bash(&self, script: &str) -> Output {
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(self.sys())
            .env("SYS", self.sys())
            .output()
            .expect("run bash")
    }

    /// Runs `script`, asserting success; returns its stdout.
    pub fn bash_ok(&self, script: &str) -> String {
        let out = self.bash(script);
        assert!(
            out.status.success(),
            "script failed ({}):\n{script}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.unmount().expect("unmount");
        }
    }
}
