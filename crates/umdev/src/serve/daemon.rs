//! The daemon's core: the model, the saved state and the vfio-user
//! sockets, and the rule that keeps them in step. Every change (a control
//! request, a sysfs write) is followed, before it is acknowledged, by
//! [`Daemon::commit`]: the state is captured from the model and saved,
//! then the sockets are reconciled with the servable devices. Commits are
//! serialized, so saves happen in order and each one reflects every
//! change made before it started.
//!
//! Lock order: the commit lock → the model's own locks (a control change
//! runs under the commit lock) → the sockets' table. A sysfs write runs
//! in the model without the commit lock and takes it afterwards (in the
//! FUSE `on_change` hook); vfio-user sessions never take it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use umdev_devices::host::Host;
use umdev_pci::PciError;

use super::error::OpError;
use super::inspect;
use super::ops;
use super::sockets::Sockets;
use super::state::{State, StateError, StateStore};
use crate::paths::Layout;
use crate::proto::{Op, PROTOCOL_VERSION};
use crate::views::Hello;

/// The running daemon.
pub struct Daemon {
    host: Arc<Host>,
    layout: Layout,
    store: StateStore,
    sockets: Sockets,
    /// Serializes change → save → reconcile; holds the state last saved
    /// (a commit that finds the model unchanged writes nothing).
    commit_lock: Mutex<Option<State>>,
    /// Where the sysfs tree is mounted, once it is.
    sys: Mutex<Option<PathBuf>>,
    /// Shut down: no socket is started any more.
    closed: AtomicBool,
}

impl Daemon {
    /// A daemon over `host` with its files under `layout`.
    pub fn new(host: Arc<Host>, layout: Layout) -> Self {
        Self {
            store: StateStore::new(layout.state_file()),
            sockets: Sockets::new(&host, layout.clone()),
            host,
            layout,
            commit_lock: Mutex::new(None),
            sys: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// The model.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Records where the sysfs tree is mounted (for `hello`).
    pub fn set_sys(&self, sys: Option<PathBuf>) {
        *self.sys.lock() = sys;
    }

    /// Saves the model's state, then brings the sockets in line. Called
    /// after every change, before the change is acknowledged.
    pub fn commit(&self) -> Result<(), StateError> {
        let mut saved = self.commit_lock.lock();
        self.commit_locked(&mut saved)
    }

    fn commit_locked(&self, saved: &mut Option<State>) -> Result<(), StateError> {
        let result = self.save_locked(saved);
        if !self.closed.load(Ordering::SeqCst) {
            self.sockets.reconcile(&self.host);
        }
        result
    }

    /// Saves the model's state unless it is what was saved last.
    fn save_locked(&self, saved: &mut Option<State>) -> Result<(), StateError> {
        let state = State::capture(&self.host);
        if saved.as_ref() != Some(&state) {
            self.store.save(&state)?;
            *saved = Some(state);
        }
        Ok(())
    }

    /// A change made through sysfs: commit, logging a failed save (the
    /// write itself succeeded and cannot be taken back).
    pub fn changed_through_sysfs(&self) {
        if let Err(e) = self.commit() {
            tracing::error!("state not saved after a sysfs write: {e}");
        }
    }

    /// The periodic tick: catch up with changes no hook reported (a
    /// failed sysfs write that still bound devices, a parent driver
    /// removing mdevs on its own).
    pub fn tick(&self) {
        let mut saved = self.commit_lock.lock();
        if let Err(e) = self.commit_locked(&mut saved) {
            tracing::error!("state not saved: {e}");
        }
    }

    /// Runs one request. A change holds the commit lock from before it
    /// touches the model until its state is saved, and commits even when
    /// it failed (a failed `new_id` may still have bound devices).
    pub fn handle(&self, op: &Op) -> Result<Value, OpError> {
        let host = &self.host;
        let platform = host.platform();
        match op {
            Op::Hello => value(&self.hello()),
            Op::List => value(&inspect::list(host, &self.sockets.info())),
            Op::Groups => value(&inspect::groups(host)),
            Op::Topology => value(&inspect::topology(host, &self.sockets.info())),
            Op::Stats => value(&inspect::stats(host, &self.sockets.info())),
            Op::Faults => value(&inspect::faults(host)),
            Op::Create {
                parent,
                mdev_type,
                uuid,
            } => self.change(op, || ops::create(host, parent, mdev_type, uuid.as_deref())),
            Op::Remove { uuid } => self.change(op, || ops::remove(host, uuid)),
            Op::Unbind { bdf, driver } => {
                self.change(op, || ops::unbind(host, bdf, driver.as_deref()))
            }
            Op::Bind { driver, bdf } => {
                self.change(op, || done(platform.bind(driver, ops::bdf(bdf)?)))
            }
            Op::DriverOverride { bdf, value } => self.change(op, || {
                done(platform.set_driver_override(ops::bdf(bdf)?, value))
            }),
            Op::NewId { driver, id } => self.change(op, || done(platform.new_id(driver, id))),
            Op::RemoveId { driver, id } => self.change(op, || done(platform.remove_id(driver, id))),
            Op::SriovNumvfs { bdf, num_vfs } => self.change(op, || {
                done(platform.set_sriov_numvfs(ops::bdf(bdf)?, *num_vfs))
            }),
        }
    }

    fn change(
        &self,
        op: &Op,
        f: impl FnOnce() -> Result<Value, OpError>,
    ) -> Result<Value, OpError> {
        let mut saved = self.commit_lock.lock();
        let result = f();
        match &result {
            Ok(_) => tracing::info!(?op, "changed through the control socket"),
            Err(e) => tracing::info!(?op, errno = e.errno().raw_os_error(), "refused: {e}"),
        }
        self.commit_locked(&mut saved)?;
        result
    }

    fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            daemon: env!("CARGO_PKG_VERSION").to_owned(),
            root: self.layout.root().display().to_string(),
            pid: std::process::id(),
            platform: self.host.platform().origin().to_owned(),
            sys: self.sys.lock().as_ref().map(|p| p.display().to_string()),
        }
    }

    /// Final save, then every vfio-user server stopped (its client
    /// disconnected, its socket removed). Later changes (a request still
    /// in flight) are still saved but start no socket.
    pub fn shutdown(&self) -> Result<(), StateError> {
        let mut saved = self.commit_lock.lock();
        self.closed.store(true, Ordering::SeqCst);
        let result = self.save_locked(&mut saved);
        self.sockets.shutdown();
        result
    }
}

/// A view as the reply's result.
fn value(view: &impl Serialize) -> Result<Value, OpError> {
    serde_json::to_value(view).map_err(|e| OpError::Internal {
        reason: e.to_string(),
    })
}

/// A platform call's outcome as a reply.
fn done(result: Result<(), PciError>) -> Result<Value, OpError> {
    result.map(|()| json!({})).map_err(OpError::from)
}
