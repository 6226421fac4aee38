//! Where a daemon's files live under its root directory. The layout
//! mirrors a Linux root, so parts of it can be bind-mounted over the real
//! ones (`<root>/sys` over `/sys` for mdevctl):
//!
//! ```text
//! <root>/sys/                      the sysfs tree (FUSE)
//! <root>/run/umdev/control.sock    the control socket
//! <root>/run/umdev/uapi.sock       the uAPI socket (/dev/iommu for `umdev run`)
//! <root>/run/umdev/<name>.sock     one vfio-user socket per served device
//! <root>/run/umdev/daemon.lock     held (flock) while a daemon runs
//! <root>/var/lib/umdev/state.json  the saved state
//! <root>/etc/mdevctl.d/            mdevctl's definitions (for a bind mount)
//! ```

use std::path::{Path, PathBuf};

/// The root used when neither `--root` nor `UMDEV_ROOT` is given.
pub const DEFAULT_ROOT: &str = "/run/umdev-root";

/// Environment variable naming the root (overridden by `--root`).
pub const ROOT_ENV: &str = "UMDEV_ROOT";

/// Suffix of every socket file in the run directory.
pub const SOCKET_SUFFIX: &str = ".sock";

/// The paths of one root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `--root`, else `$UMDEV_ROOT`, else [`DEFAULT_ROOT`].
    pub fn resolve(root: Option<PathBuf>) -> Self {
        let root = root
            .or_else(|| std::env::var_os(ROOT_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Self::new(root)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Mount point of the sysfs tree.
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// Directory of the sockets and the lock.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run/umdev")
    }

    /// The control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.run_dir().join(format!("control{SOCKET_SUFFIX}"))
    }

    /// The vfio-user socket of the device named `name` (a PCI address or
    /// an mdev UUID).
    pub fn device_socket(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}{SOCKET_SUFFIX}"))
    }

    /// The uAPI socket: what the preload connects `/dev/iommu` to.
    pub fn uapi_socket(&self) -> PathBuf {
        self.run_dir().join(format!("uapi{SOCKET_SUFFIX}"))
    }

    /// The lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.run_dir().join("daemon.lock")
    }

    /// Directory of the state file.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/umdev")
    }

    /// The state file.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    /// Directories mdevctl (1.2 under a bind mount, 1.3+ with
    /// `MDEVCTL_ENV_ROOT=<root>`) requires to exist.
    pub fn mdevctl_dirs(&self) -> Vec<PathBuf> {
        [
            "etc/mdevctl.d/scripts.d/callouts",
            "etc/mdevctl.d/scripts.d/notifiers",
            "usr/lib/mdevctl/scripts.d/callouts",
            "usr/lib/mdevctl/scripts.d/notifiers",
        ]
        .iter()
        .map(|d| self.root.join(d))
        .collect()
    }
}
