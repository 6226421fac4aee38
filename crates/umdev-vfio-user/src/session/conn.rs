//! One connection's two directions: replies (and server-initiated
//! commands) go out through one locked writer; a reader thread takes every
//! incoming message, hands commands to the session's worker in order and
//! routes replies to whoever is waiting for them (message-based DMA issued
//! by the device while the worker is inside a REGION_WRITE).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::Duration;

use parking_lot::Mutex;
use rustix::io::Errno;

use super::error::CmdError;
use crate::proto::wire::Header;
use crate::proto::{Command, Limits, Message, flags};
use crate::transport::{TransportError, recv_message, send_message};

/// How many commands may wait for the worker before the reader stops
/// reading (back-pressure on a client that floods).
pub const QUEUE_DEPTH: usize = 256;

/// How long a server-initiated command waits for its reply (QEMU's
/// default `x-msg-timeout` is 5 s).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply payload and the fds that go with it.
#[derive(Debug, Default)]
pub struct Reply {
    /// Payload after the header.
    pub payload: Vec<u8>,
    /// fds attached to the reply.
    pub fds: Vec<OwnedFd>,
}

impl Reply {
    /// A reply with only a header.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A reply with `payload`.
    pub fn data(payload: Vec<u8>) -> Self {
        Self {
            payload,
            fds: Vec::new(),
        }
    }
}

/// The shared state of a connection.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    writer: Mutex<()>,
    pending: Mutex<HashMap<u16, Sender<Message>>>,
    next_id: AtomicU16,
    closed: AtomicBool,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            writer: Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU16::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The stream (for a shutdown from outside).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends one message under the writer lock.
    pub fn send(
        &self,
        header: &Header,
        payload: &[u8],
        fds: &[OwnedFd],
    ) -> Result<(), TransportError> {
        let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        let _w = self.writer.lock();
        send_message(self.stream.as_fd(), header, &[payload], &fds)
    }

    /// Answers the command `req` with `result`: a reply with the same id
    /// and command, or a header-only error reply with the errno.
    pub fn reply(
        &self,
        req: &Header,
        result: Result<Reply, CmdError>,
    ) -> Result<(), TransportError> {
        let mut h = Header {
            msg_id: req.msg_id,
            cmd: req.cmd,
            msg_size: size_of::<Header>() as u32,
            flags: flags::TYPE_REPLY,
            error_no: 0,
        };
        match result {
            Ok(r) => {
                h.msg_size += u32::try_from(r.payload.len()).expect("replies are bounded");
                self.send(&h, &r.payload, &r.fds)
            }
            Err(e) => {
                h.flags |= flags::ERROR;
                h.error_no = e.errno().raw_os_error() as u32;
                self.send(&h, &[], &[])
            }
        }
    }

    /// Sends a server-initiated command and waits for its reply (at most
    /// [`REPLY_TIMEOUT`]). An error reply is returned as its errno.
    pub fn request(&self, cmd: Command, payload: &[u8]) -> Result<Message, CmdError> {
        let fail = |what, errno| CmdError::RemoteDma { what, errno };
        if self.closed.load(Ordering::Acquire) {
            return Err(fail("client gone", Errno::NOTCONN));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        self.pending.lock().insert(id, tx);
        let h = Header {
            msg_id: id,
            cmd: cmd.0,
            msg_size: (size_of::<Header>() + payload.len()) as u32,
            flags: flags::TYPE_COMMAND,
            error_no: 0,
        };
        if let Err(e) = self.send(&h, payload, &[]) {
            self.pending.lock().remove(&id);
            return Err(fail("send", e.errno()));
        }
        let reply = rx.recv_timeout(REPLY_TIMEOUT);
        self.pending.lock().remove(&id);
        let reply = match reply {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Err(fail("no reply", Errno::TIMEDOUT)),
            Err(RecvTimeoutError::Disconnected) => return Err(fail("client gone", Errno::NOTCONN)),
        };
        if reply.header.flags & flags::ERROR != 0 || reply.header.cmd != cmd.0 {
            let errno = match reply.header.error_no {
                0 => Errno::IO,
                n => Errno::from_raw_os_error(n as i32),
            };
            return Err(fail("error reply", errno));
        }
        Ok(reply)
    }

    /// The reader loop: commands go to `commands` in order, replies to
    /// their waiters (a reply nobody waits for is dropped). Returns at the
    /// end of the stream or on a framing error; either way the connection
    /// is marked closed and every waiter wakes.
    pub fn read_loop(
        &self,
        limits: &Limits,
        commands: SyncSender<Message>,
    ) -> Result<(), TransportError> {
        let r = loop {
            let msg = match recv_message(self.stream.as_fd(), limits) {
                Ok(Some(m)) => m,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if msg.header.flags & flags::TYPE_MASK == flags::TYPE_REPLY {
                let id = msg.header.msg_id;
                let waiter = self.pending.lock().remove(&id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(msg);
                    }
                    None => tracing::warn!(id, "vfio-user: unexpected reply dropped"),
                }
                continue;
            }
            if commands.send(msg).is_err() {
                break Ok(());
            }
        };
        self.close();
        r
    }

    /// Marks the connection closed: waiters get "client gone" and the
    /// stream is shut down both ways (the reader and a blocked writer
    /// return).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pending.lock().clear();
        let _ = rustix::net::shutdown(&self.stream, rustix::net::Shutdown::Both);
    }
}

/// A bounded command queue between the reader and the worker.
pub fn command_queue() -> (SyncSender<Message>, Receiver<Message>) {
    mpsc::sync_channel(QUEUE_DEPTH)
}
