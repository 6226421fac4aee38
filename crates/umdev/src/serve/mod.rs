//! `umdev serve`: the daemon.
//!
//! Start-up, in order: the root's directories; the lock (a second daemon
//! on the root is refused); what a crashed daemon left (socket files, a
//! dead FUSE mount, a half-written state file) cleaned up with a message;
//! the model brought up and the saved state applied; the sysfs tree
//! mounted; the control socket opened; the state saved and the devices
//! served; one ready line on stdout. Then it runs until SIGINT or
//! SIGTERM, reconciling the sockets on every change and once a second.
//! Shutdown: control socket closed, tree unmounted, state saved, sockets
//! closed and removed.

mod control;
mod daemon;
mod error;
mod inspect;
mod lock;
mod mount;
mod ops;
mod sockets;
mod state;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use umdev_devices::host::Host;
use umdev_iommufd::selftest::MockBus;
use umdev_pci::Platform;
use umdev_sysfs::MountHandle;
use umdev_uapi::node::Nodes;
use umdev_uapi::server::Server;

use crate::paths::{Layout, SOCKET_SUFFIX};
use control::ControlServer;
use daemon::Daemon;
use lock::DaemonLock;
pub use lock::LockError;
use state::StateStore;

/// How often the sockets are reconciled without a change reported.
const TICK: Duration = Duration::from_secs(1);

/// What `umdev serve` was asked.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Platform file; the embedded default if `None`.
    pub platform: Option<PathBuf>,
    /// The root's layout.
    pub layout: Layout,
    /// Do not mount the sysfs tree.
    pub no_sysfs: bool,
    /// `/dev/iommu` on the iommufd selftest mock.
    pub iommufd_test: bool,
}

/// The faces of a running daemon, stopped in order on drop.
struct Running {
    daemon: Arc<Daemon>,
    control: Option<ControlServer>,
    uapi: Option<umdev_uapi::server::Server>,
    mount: Option<MountHandle>,
}

impl Running {
    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut control) = self.control.take() {
            control.shutdown();
        }
        self.uapi.take();
        if let Some(mount) = self.mount.take() {
            mount.unmount()?;
        }
        self.daemon.shutdown()?;
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!("shutdown: {e:#}");
        }
    }
}

fn create_dirs(layout: &Layout) -> anyhow::Result<()> {
    let mut dirs = vec![layout.run_dir(), layout.state_dir()];
    dirs.extend(layout.mdevctl_dirs());
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Removes the socket files and the temporary state file a crashed
/// daemon left, saying so. Called with the lock held: no live daemon
/// owns them.
fn clean_stale_files(layout: &Layout, store_temp: &Path) -> anyhow::Result<()> {
    let run = layout.run_dir();
    for entry in std::fs::read_dir(&run).with_context(|| format!("reading {}", run.display()))? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(SOCKET_SUFFIX) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
            tracing::warn!(socket = %path.display(), "removed a stale socket left by a crashed daemon");
        }
    }
    match std::fs::remove_file(store_temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", store_temp.display()))
        }
        _ => Ok(()),
    }
}

/// Applies the saved state to the fresh model. An unreadable file is
/// moved aside; entries that fail are logged.
fn restore(daemon: &Daemon) -> anyhow::Result<()> {
    let store = daemon.store();
    let state = match store.load() {
        Ok(Some(state)) => state,
        Ok(None) => {
            tracing::info!(state = %store.path().display(), "no saved state: starting fresh");
            return Ok(());
        }
        Err(e) => {
            let aside = store.quarantine()?;
            tracing::error!("{e}; moved to {} and starting fresh", aside.display());
            return Ok(());
        }
    };
    let origin = daemon.host().platform().origin();
    if state.platform != origin {
        tracing::warn!(
            "the saved state was made on platform {}, this daemon runs {origin}: applying what fits",
            state.platform
        );
    }
    let failures = state.apply(daemon.host());
    for failure in &failures {
        tracing::warn!("saved state not restored: {failure}");
    }
    tracing::info!(
        functions = state.functions.len(),
        mdevs = state.mdevs.len(),
        failed = failures.len(),
        "state restored"
    );
    Ok(())
}

fn start(opts: &ServeOptions) -> anyhow::Result<Running> {
    let layout = &opts.layout;
    let platform = match &opts.platform {
        Some(p) => Platform::from_file(p)?,
        None => Platform::default_platform().context("the embedded default platform")?,
    };
    let host = Host::start(platform).context("bringing the platform up")?;
    let daemon = Arc::new(Daemon::new(host, layout.clone()));
    restore(&daemon)?;
    let mut running = Running {
        daemon: daemon.clone(),
        control: None,
        uapi: None,
        mount: None,
    };
    if !opts.no_sysfs {
        running.mount = Some(mount::mount(&daemon, &layout.sys())?);
        daemon.set_sys(Some(layout.sys()));
    }
    running.control = Some(
        ControlServer::start(daemon.clone(), &layout.control_socket())
            .with_context(|| format!("control socket {}", layout.control_socket().display()))?,
    );
    let mock = opts.iommufd_test.then(MockBus::new);
    let nodes = Nodes::new(daemon.host().system.iommu.clone(), mock);
    running.uapi = Some(Server::start(&layout.uapi_socket(), nodes)?);
    daemon.commit().context("saving the state")?;
    Ok(running)
}

/// `sun_path` holds 108 bytes with the terminating NUL (unix(7)).
const SUN_PATH_MAX: usize = 107;

/// Refuses a root whose device sockets could not be bound.
fn check_socket_paths(layout: &Layout) -> anyhow::Result<()> {
    let longest = layout.device_socket(&"0".repeat(36));
    let len = longest.as_os_str().len();
    anyhow::ensure!(
        len <= SUN_PATH_MAX,
        "root {} is too long: its socket paths ({len} bytes, e.g. {}) exceed the {SUN_PATH_MAX} bytes of a UNIX socket address",
        layout.root().display(),
        longest.display()
    );
    Ok(())
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(opts: &ServeOptions) -> anyhow::Result<()> {
    let layout = &opts.layout;
    check_socket_paths(layout)?;
    create_dirs(layout)?;
    let _lock = DaemonLock::acquire(&layout.lock_file())?;
    clean_stale_files(layout, &StateStore::new(layout.state_file()).temp_path())?;
    // A dead mount fails even stat(2) (ENOTCONN): detach it first.
    mount::clean_stale(&layout.sys())?;
    std::fs::create_dir_all(layout.sys())
        .with_context(|| format!("creating {}", layout.sys().display()))?;
    let (tx, rx) = mpsc::channel();
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("umdev-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = tx.send(signal);
            }
        })?;
    let mut running = start(opts)?;
    let sys = match &running.mount {
        Some(m) => m.mountpoint().display().to_string(),
        None => "-".to_owned(),
    };
    // Not println!: a reader that went away must not take the daemon down.
    let mut stdout = std::io::stdout();
    let ready = writeln!(
        stdout,
        "umdev: ready root={} sys={sys} control={} state={} pid={}",
        layout.root().display(),
        layout.control_socket().display(),
        layout.state_file().display(),
        std::process::id()
    )
    .and_then(|()| stdout.flush());
    if let Err(e) = ready {
        tracing::warn!("cannot print the ready line: {e}");
    }
    tracing::info!(root = %layout.root().display(), "ready");
    let signal = loop {
        match rx.recv_timeout(TICK) {
            Ok(signal) => break signal,
            Err(mpsc::RecvTimeoutError::Timeout) => running.daemon.tick(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break SIGTERM,
        }
    };
    tracing::info!(signal, "shutting down");
    running.stop()?;
    tracing::info!("stopped");
    Ok(())
}
