//! The vfio-user sockets: one server per servable device, at
//! `<root>/run/umdev/<name>.sock`, kept equal to the model's servable set
//! by [`Sockets::reconcile`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use umdev_devices::host::Host;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio_user::{ServeContext, Server, ServerHandle};

use super::inspect::{SocketInfo, SocketMap};
use crate::paths::Layout;

struct Entry {
    device: Arc<VfioDevice>,
    handle: ServerHandle,
}

/// The running vfio-user servers, by device name.
pub struct Sockets {
    layout: Layout,
    ctx: ServeContext,
    servers: Mutex<BTreeMap<String, Entry>>,
    /// Devices that could not be served (warned about once each).
    failed: Mutex<BTreeSet<String>>,
}

impl Sockets {
    /// No server yet, for devices of `host`, under `layout`'s run
    /// directory.
    pub fn new(host: &Host, layout: Layout) -> Self {
        Self {
            layout,
            ctx: ServeContext::from_system(&host.system),
            servers: Mutex::new(BTreeMap::new()),
            failed: Mutex::new(BTreeSet::new()),
        }
    }

    /// Starts a server for every servable device without one, and stops
    /// (removing its socket) every server whose device is gone or was
    /// registered again (a rebind makes a new registration). A device
    /// that cannot be served is logged and retried on the next call.
    pub fn reconcile(&self, host: &Host) {
        let wanted: BTreeMap<String, Arc<VfioDevice>> = host
            .servable()
            .into_iter()
            .map(|s| (s.name, s.device))
            .collect();
        let mut servers = self.servers.lock();
        let stale: Vec<String> = servers
            .iter()
            .filter(|(name, e)| wanted.get(*name).is_none_or(|d| !Arc::ptr_eq(d, &e.device)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(e) = servers.remove(&name) {
                e.handle.shutdown();
                tracing::info!(device = %name, "vfio-user socket removed");
            }
        }
        let mut failed = self.failed.lock();
        failed.retain(|name| wanted.contains_key(name));
        for (name, device) in wanted {
            if servers.contains_key(&name) {
                continue;
            }
            let path = self.layout.device_socket(&name);
            match Server::serve(&self.ctx, &path, device.clone()) {
                Ok(handle) => {
                    tracing::info!(device = %name, socket = %path.display(), "serving over vfio-user");
                    failed.remove(&name);
                    servers.insert(name, Entry { device, handle });
                }
                Err(e) if failed.insert(name.clone()) => {
                    tracing::warn!(device = %name, socket = %path.display(), "cannot serve (retrying every change and tick): {e}");
                }
                Err(e) => tracing::debug!(device = %name, "still cannot serve: {e}"),
            }
        }
    }

    /// What each socket is doing.
    pub fn info(&self) -> SocketMap {
        self.servers
            .lock()
            .iter()
            .map(|(name, e)| {
                let stats = e.handle.stats();
                let info = SocketInfo {
                    path: self.layout.device_socket(name),
                    attached: e.handle.client_attached(),
                    sessions: stats.sessions,
                    messages: stats.current.as_ref().map(|c| c.messages),
                    dma_maps: stats.current.as_ref().map(|c| c.dma_maps),
                };
                (name.clone(), info)
            })
            .collect()
    }

    /// Stops every server (disconnecting its client) and removes the
    /// socket files.
    pub fn shutdown(&self) {
        let servers = std::mem::take(&mut *self.servers.lock());
        for (_, e) in servers {
            e.handle.shutdown();
        }
    }
}
