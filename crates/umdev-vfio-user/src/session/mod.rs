//! A session: one client connection = one consumer of the device. It owns
//! an iommufd context and IOAS, binds the device for as long as the
//! connection lives, turns DMA_MAP / DMA_UNMAP into IOAS map / unmap (so
//! the device's DMA reaches only what the client mapped), and answers the
//! client's commands in order. Dropping the session (disconnect, shutdown)
//! releases everything: the device is closed (its eventfds dropped) and
//! unbound, the maps are unmapped and their memory released, the context
//! closed. The device itself stays registered for the next client.

mod conn;
mod dispatch;
mod dma;
mod error;
mod info;
mod logging;
mod maps;
mod remote;

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use umdev_iommu::memory::HostMemory;
use umdev_iommufd::Ictx;
use umdev_vfio::registration::VfioDevice;

pub use conn::{Conn, QUEUE_DEPTH, REPLY_TIMEOUT, Reply};
pub use error::{CmdError, SessionError};
pub use remote::MAX_REMOTE_BYTES;

use crate::ServeContext;
use crate::proto::caps::ClientCaps;
use crate::proto::{Command, Limits, Message, ProtoError, decode, flags};
use logging::DirtyLog;
use maps::DmaMaps;

/// Counters of one session, readable while it runs.
#[derive(Debug, Default)]
pub struct SessionCounters {
    messages: AtomicU64,
    errors: AtomicU64,
    dma_maps: AtomicU64,
}

impl SessionCounters {
    /// A snapshot.
    pub fn snapshot(&self) -> SessionStats {
        SessionStats {
            messages: self.messages.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dma_maps: self.dma_maps.load(Ordering::Relaxed),
        }
    }
}

/// What a session has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Commands handled.
    pub messages: u64,
    /// Commands answered with an error (or dropped with one, NO_REPLY).
    pub errors: u64,
    /// DMA maps currently held.
    pub dma_maps: u64,
}

/// One client's hold on a device.
pub struct Session {
    device: Arc<VfioDevice>,
    ictx: Arc<Ictx>,
    ioas: u32,
    devid: u32,
    memory: Arc<HostMemory>,
    limits: Limits,
    caps: ClientCaps,
    maps: DmaMaps,
    logging: Option<DirtyLog>,
    counters: Arc<SessionCounters>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.device)
            .field("ioas", &self.ioas)
            .field("maps", &self.maps.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens the device for a new consumer: a fresh iommufd context, the
    /// device bound to it (DMA ownership claimed; EBUSY if someone else
    /// holds the device, the group rules' errno otherwise) and attached to
    /// a new, empty IOAS.
    pub fn open(ctx: &ServeContext, device: Arc<VfioDevice>) -> Result<Self, SessionError> {
        let ictx = Ictx::new(Arc::clone(&ctx.iommu));
        let devid = device.bind_iommufd(&ictx)?;
        let attached = ictx
            .ioas_alloc()
            .map_err(SessionError::from)
            .and_then(|ioas| Ok(device.attach_ioas(ioas).map(|_| ioas)?));
        let ioas = match attached {
            Ok(ioas) => ioas,
            Err(e) => {
                let _ = device.unbind();
                ictx.close();
                return Err(e);
            }
        };
        Ok(Self {
            device,
            ictx,
            ioas,
            devid,
            memory: Arc::clone(&ctx.memory),
            limits: ctx.limits,
            caps: ClientCaps::default(),
            maps: DmaMaps::default(),
            logging: None,
            counters: Arc::default(),
        })
    }

    /// The session's counters (shared; they stay readable after the end).
    pub fn counters(&self) -> Arc<SessionCounters> {
        Arc::clone(&self.counters)
    }

    /// Serves the client on `stream` until it disconnects, sends something
    /// unframeable, fails VERSION, or the stream is shut down from outside.
    /// Everything is released when this returns.
    pub fn run(self, stream: UnixStream) -> Result<(), SessionError> {
        let conn = Arc::new(Conn::new(stream));
        let (tx, rx) = conn::command_queue();
        let limits = self.limits;
        let reader = {
            let conn = Arc::clone(&conn);
            std::thread::Builder::new()
                .name("vfio-user-rx".into())
                .spawn(move || conn.read_loop(&limits, tx))
                .map_err(|e| {
                    SessionError::Transport(crate::transport::TransportError::Io(
                        rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::AGAIN),
                    ))
                })?
        };
        let mut session = self;
        let mut result = Ok(());
        for msg in rx.iter() {
            if let Err(e) = session.handle(&conn, msg) {
                result = Err(e);
                break;
            }
        }
        // The reader may be blocked on a full queue: let it go first.
        drop(rx);
        conn.close();
        let read = reader.join().unwrap_or(Ok(()));
        drop(session);
        result?;
        read.map_err(SessionError::from)
    }

    /// Handles one command: decode, dispatch, reply unless NO_REPLY. A
    /// failed VERSION ends the session after its error reply.
    pub fn handle(&mut self, conn: &Arc<Conn>, msg: Message) -> Result<(), SessionError> {
        let header = msg.header;
        let no_reply = header.flags & flags::NO_REPLY != 0;
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        let result = decode(msg, &self.limits)
            .map_err(CmdError::from)
            .and_then(|req| self.dispatch(conn, req));
        self.counters
            .dma_maps
            .store(self.maps.len() as u64, Ordering::Relaxed);
        let fatal = match &result {
            Err(CmdError::Proto(e @ ProtoError::BadVersion { .. })) => Some(e.clone()),
            _ => None,
        };
        if let Err(e) = &result {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(cmd = %Command(header.cmd), error = %e, "vfio-user: command failed");
        }
        if !no_reply {
            conn.reply(&header, result)?;
        }
        match fatal {
            Some(e) => Err(SessionError::Version(e)),
            None => Ok(()),
        }
    }

    /// Releases the maps and their memory (after the device is unbound,
    /// or on UNMAP_ALL).
    fn unmap_all(&mut self) -> Result<(), CmdError> {
        self.ictx.ioas_unmap(self.ioas, 0, u64::MAX)?;
        for m in self.maps.take_all() {
            self.memory.release(&m.memory);
            m.memory.drain();
        }
        Ok(())
    }
}

impl Drop for Session {
    /// Stops DMA logging, closes and unbinds the device (its interrupt
    /// eventfds go), unmaps everything and closes the context.
    fn drop(&mut self) {
        self.stop_logging();
        let _ = self.device.unbind();
        let _ = self.unmap_all();
        self.ictx.close();
    }
}
