//! Serving one device on a listening socket: a listener thread accepts
//! clients; the first becomes the device's consumer in a session thread,
//! any other while it lasts is refused with an EBUSY error reply. A client
//! that hangs up releases the device and the next one is served.

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use umdev_iommu::iommu::Iommu;
use umdev_iommu::memory::HostMemory;
use umdev_iommu::system::System;
use umdev_vfio::device::EventFd;
use umdev_vfio::registration::VfioDevice;

use crate::proto::{Limits, flags, wire::Header};
use crate::session::{Session, SessionCounters, SessionStats};
use crate::transport::{recv_message, send_message};

/// How long a refused client has to send its first message before the
/// connection is dropped without a reply.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What sessions need from the model.
#[derive(Clone)]
pub struct ServeContext {
    /// The IOMMU core; every session makes its own iommufd context on it.
    pub iommu: Arc<Iommu>,
    /// The host address space where clients' DMA_MAP memory is placed.
    pub memory: Arc<HostMemory>,
    /// What the decoder accepts and the server advertises.
    pub limits: Limits,
}

impl std::fmt::Debug for ServeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeContext")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ServeContext {
    /// A context with the default limits.
    pub fn new(iommu: Arc<Iommu>, memory: Arc<HostMemory>) -> Self {
        Self {
            iommu,
            memory,
            limits: Limits::DEFAULT,
        }
    }

    /// The context of a running system (its IOMMU core and the VT-d
    /// unit's host memory).
    pub fn from_system(sys: &System) -> Self {
        Self::new(Arc::clone(&sys.iommu), Arc::clone(sys.vtd.memory()))
    }
}

/// Errors of starting a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket operation failed.
    #[error("{what}: {errno}")]
    Io {
        /// What failed.
        what: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// Someone is accepting on the path already, or it is not a socket:
    /// EADDRINUSE (what bind(2) says of a taken path).
    #[error("{path}: in use (a live socket, or not a socket)")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
}

impl ServerError {
    /// The errno of this error.
    pub fn errno(&self) -> Errno {
        match self {
            ServerError::Io { errno, .. } => *errno,
            ServerError::InUse { .. } => Errno::ADDRINUSE,
        }
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> ServerError {
    move |e| ServerError::Io {
        what,
        errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
    }
}

/// Counters of a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Sessions started (clients that became the consumer).
    pub sessions: u64,
    /// Connections refused (device busy or bind refused).
    pub refused: u64,
    /// The current session's counters, if a client is attached.
    pub current: Option<SessionStats>,
}

/// The running session of a server.
struct Active {
    thread: JoinHandle<()>,
    stream: UnixStream,
    counters: Arc<SessionCounters>,
    done: Arc<AtomicBool>,
}

impl Active {
    fn running(&self) -> bool {
        !self.done.load(Ordering::Acquire)
    }

    /// The client has hung up (its session is about to end).
    fn peer_gone(&self) -> bool {
        let mut fds = [PollFd::new(&self.stream, PollFlags::RDHUP)];
        let now = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR)
    }

    /// Disconnects the client and waits for the session to release
    /// everything.
    fn stop(self) {
        let _ = rustix::net::shutdown(&self.stream, rustix::net::Shutdown::Both);
        let _ = self.thread.join();
    }
}

struct Inner {
    ctx: ServeContext,
    device: Arc<VfioDevice>,
    active: Mutex<Option<Active>>,
    sessions: AtomicU64,
    refused: AtomicU64,
}

impl Inner {
    /// Serves a new connection, or refuses it.
    fn accept(self: &Arc<Self>, stream: UnixStream) {
        let mut active = self.active.lock();
        if let Some(a) = active.take() {
            if a.running() && !a.peer_gone() {
                *active = Some(a);
                drop(active);
                self.refuse(stream, Errno::BUSY);
                return;
            }
            // Finished, or finishing: the client hung up. Let it release.
            a.stop();
        }
        let session = match Session::open(&self.ctx, Arc::clone(&self.device)) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(error = %e, "vfio-user: client refused");
                drop(active);
                self.refuse(stream, e.errno());
                return;
            }
        };
        let Ok(handle) = stream.try_clone() else {
            return;
        };
        let counters = session.counters();
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let spawned = std::thread::Builder::new()
            .name("vfio-user-session".into())
            .spawn(move || {
                if let Err(e) = session.run(stream) {
                    tracing::info!(error = %e, "vfio-user: session ended");
                }
                finished.store(true, Ordering::Release);
            });
        if let Ok(thread) = spawned {
            self.sessions.fetch_add(1, Ordering::Relaxed);
            *active = Some(Active {
                thread,
                stream: handle,
                counters,
                done,
            });
        }
    }

    /// Answers the client's first message with an error reply carrying
    /// `errno`, then closes, from a short-lived thread.
    fn refuse(&self, stream: UnixStream, errno: Errno) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let limits = self.ctx.limits;
        let _ = std::thread::Builder::new()
            .name("vfio-user-refuse".into())
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(REFUSE_TIMEOUT));
                if let Ok(Some(msg)) = recv_message(stream.as_fd(), &limits) {
                    let h = Header {
                        msg_id: msg.header.msg_id,
                        cmd: msg.header.cmd,
                        msg_size: size_of::<Header>() as u32,
                        flags: flags::TYPE_REPLY | flags::ERROR,
                        error_no: errno.raw_os_error() as u32,
                    };
                    let _ = send_message(stream.as_fd(), &h, &[], &[]);
                }
            });
    }

    fn listen(self: Arc<Self>, listener: UnixListener, stop: EventFd) {
        loop {
            let mut fds = [
                PollFd::new(&listener, PollFlags::IN),
                PollFd::new(&stop, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    tracing::error!(error = %e, "vfio-user: poll failed; listener stops");
                    return;
                }
            }
            if !fds[1].revents().is_empty() {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    self.accept(stream);
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "vfio-user: accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// Serves devices on sockets.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Listens at `path` and serves `device` from a listener thread. A
    /// stale socket file (nobody accepting) is replaced; a live one is
    /// EADDRINUSE. The device is bound only while a client is connected.
    pub fn serve(
        ctx: &ServeContext,
        path: &Path,
        device: Arc<VfioDevice>,
    ) -> Result<ServerHandle, ServerError> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            // Only a socket nobody accepts on is replaced; anything else
            // at the path is left alone.
            if !meta.file_type().is_socket() || UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(io_err("remove stale socket"))?;
        }
        let listener = UnixListener::bind(path).map_err(io_err("bind"))?;
        let mut handle = Self::serve_listener(ctx, listener, device)?;
        handle.path = Some(path.to_path_buf());
        Ok(handle)
    }

    /// Serves `device` on a listening socket someone else bound (e.g.
    /// passed as `--fd=N`); nothing is unlinked at shutdown.
    pub fn serve_listener(
        ctx: &ServeContext,
        listener: UnixListener,
        device: Arc<VfioDevice>,
    ) -> Result<ServerHandle, ServerError> {
        listener
            .set_nonblocking(true)
            .map_err(io_err("set non-blocking"))?;
        let stop = EventFd::new().map_err(|errno| ServerError::Io {
            what: "eventfd",
            errno,
        })?;
        let stop_rx = stop.try_clone().map_err(|errno| ServerError::Io {
            what: "eventfd",
            errno,
        })?;
        let inner = Arc::new(Inner {
            ctx: ctx.clone(),
            device,
            active: Mutex::new(None),
            sessions: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let listener_inner = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("vfio-user-listen".into())
            .spawn(move || listener_inner.listen(listener, stop_rx))
            .map_err(io_err("spawn"))?;
        Ok(ServerHandle {
            inner,
            stop,
            listener: Mutex::new(Some(thread)),
            path: None,
        })
    }
}

/// A device being served.
pub struct ServerHandle {
    inner: Arc<Inner>,
    stop: EventFd,
    listener: Mutex<Option<JoinHandle<()>>>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("path", &self.path)
            .field("device", &self.inner.device)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The socket path, when [`Server::serve`] created it.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The device served.
    pub fn device(&self) -> &Arc<VfioDevice> {
        &self.inner.device
    }

    /// A client is attached (its session is running).
    pub fn client_attached(&self) -> bool {
        self.inner
            .active
            .lock()
            .as_ref()
            .is_some_and(Active::running)
    }

    /// Counters of the server and of the current session.
    pub fn stats(&self) -> ServerStats {
        let current = self
            .inner
            .active
            .lock()
            .as_ref()
            .filter(|a| a.running())
            .map(|a| a.counters.snapshot());
        ServerStats {
            sessions: self.inner.sessions.load(Ordering::Relaxed),
            refused: self.inner.refused.load(Ordering::Relaxed),
            current,
        }
    }

    /// Stops accepting, disconnects the client (its session releases the
    /// device, maps and eventfds), joins the threads and removes the
    /// socket file [`Server::serve`] created. Idempotent.
    pub fn shutdown(&self) {
        let Some(listener) = self.listener.lock().take() else {
            return;
        };
        self.stop.signal();
        let _ = listener.join();
        if let Some(a) = self.inner.active.lock().take() {
            a.stop();
        }
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
