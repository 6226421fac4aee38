//! The uAPI socket: one listener, one connection per open file
//! description, one thread per connection.
//!
//! A connection accepted on the listener is a node being opened: its first
//! request is [`Op::OPEN`]. A file an ioctl hands back (a fault queue, an
//! access) is a `socketpair` whose client end is bound to an abstract name
//! under [`SERVED_NAME_PREFIX`] and sent with the reply; the daemon serves
//! the other end. Every request is answered in order; a protocol error
//! closes the connection. When the client's last fd on a connection goes
//! (close, exit, kill), the daemon sees the end of the stream and calls
//! the file's `release`, as the kernel's last `fput` does.
//!
//! The caller of each request is the process the kernel names in its
//! credentials (SO_PASSCRED), or the connection's SO_PEERCRED: a client
//! cannot name another process. Connections are bounded by
//! [`MAX_CONNECTIONS`]: past it an open fails with ENFILE.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, Shutdown, SocketAddrUnix, SocketFlags, SocketType,
};
use zerocopy::IntoBytes;

use crate::file::{FileId, FileOps, NewFile, NewFiles};
use crate::frame::{MAX_FDS, MAX_PATH, Op, REQUEST_LEN, Reply, Request, SERVED_NAME_PREFIX};
use crate::node::Nodes;
use crate::user::Peer;

/// Open connections at most, over all clients.
pub const MAX_CONNECTIONS: usize = 1024;

/// Stack of a connection thread: handlers keep their buffers on the heap.
const CONNECTION_STACK: usize = 256 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket could not be created, bound or listened on.
    #[error("uAPI socket {path}: {source}")]
    Socket {
        /// Its path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    nodes: Nodes,
    live: AtomicUsize,
    served: AtomicU64,
}

/// A running uAPI server; stops accepting on drop (connections already
/// open keep being served until their clients close them).
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    listener: Arc<OwnedFd>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path` (replacing a stale socket file) and serves
    /// `nodes`.
    pub fn start(path: &Path, nodes: Nodes) -> Result<Self, ServerError> {
        let err = |source: Errno| ServerError::Socket {
            path: path.to_owned(),
            source: source.into(),
        };
        let _ = std::fs::remove_file(path);
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(err)?;
        rustix::net::bind(&listener, &SocketAddrUnix::new(path).map_err(err)?).map_err(err)?;
        rustix::net::sockopt::set_socket_passcred(&listener, true).map_err(err)?;
        rustix::net::listen(&listener, 128).map_err(err)?;
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared {
            nodes,
            live: AtomicUsize::new(0),
            served: AtomicU64::new(0),
        });
        let l = listener.clone();
        let accept = std::thread::Builder::new()
            .name("uapi-accept".into())
            .spawn(move || accept_loop(&l, &shared))
            .map_err(|e| ServerError::Socket {
                path: path.to_owned(),
                source: e,
            })?;
        Ok(Self {
            path: path.to_owned(),
            listener,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // shutdown(2) on a listening socket wakes its accept with EINVAL.
        let _ = rustix::net::shutdown(&*self.listener, Shutdown::Both);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &OwnedFd, shared: &Arc<Shared>) {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Ok(conn) => spawn_connection(shared, conn, None),
            Err(Errno::INTR | Errno::CONNABORTED) => {}
            Err(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
                tracing::warn!("uAPI: out of fds or memory accepting a connection");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(_) => return,
        }
    }
}

/// Serves `conn` on its own thread; `file` is `None` for a connection that
/// has yet to open a node. Past [`MAX_CONNECTIONS`], or when no thread can
/// be made, an opening connection is answered ENFILE and a served file
/// is dropped (the client sees its fd hang up).
fn spawn_connection(shared: &Arc<Shared>, conn: OwnedFd, file: Option<Box<dyn FileOps>>) {
    if shared.live.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        shared.live.fetch_sub(1, Ordering::AcqRel);
        refuse(&conn, file);
        return;
    }
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("uapi-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            Connection { shared: &s, file }.serve(&conn);
            s.live.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        shared.live.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("uAPI: no thread for a connection");
    }
}

fn refuse(conn: &OwnedFd, file: Option<Box<dyn FileOps>>) {
    if let Some(f) = file {
        f.release();
        return;
    }
    // Answer the OPEN that is (or will be) waiting, then close.
    if recv_request(conn.as_fd()).is_ok() {
        let _ = send_reply(
            conn.as_fd(),
            &Reply::new(-i64::from(Errno::NFILE.raw_os_error())),
            &[],
        );
    }
}

/// One open file description being served.
struct Connection<'a> {
    shared: &'a Arc<Shared>,
    file: Option<Box<dyn FileOps>>,
}

impl Connection<'_> {
    fn serve(mut self, conn: &OwnedFd) {
        let fallback = rustix::net::sockopt::socket_peercred(conn)
            .ok()
            .map(|c| c.pid.as_raw_nonzero().get());
        while let Ok((req, pid)) = recv_request(conn.as_fd()) {
            let Some(pid) = pid.or(fallback) else {
                break;
            };
            let peer = Peer::new(pid);
            let mut out = NewFiles::default();
            let ret = match self.call(peer, &req, &mut out) {
                Some(ret) => ret,
                None => break,
            };
            let mut reply = Reply::new(match ret {
                Ok(v) => v,
                Err(e) => -i64::from(e.raw_os_error()),
            });
            let mut fds = Vec::new();
            for (i, (file, slot)) in out.take().into_iter().enumerate() {
                let fd = match file {
                    NewFile::Fd(fd) => fd,
                    NewFile::Served(f) => match self.serve_new(f) {
                        Ok(fd) => fd,
                        Err(e) => {
                            reply = Reply::new(-i64::from(e.raw_os_error()));
                            fds.clear();
                            break;
                        }
                    },
                };
                reply.fd_slots[i] = slot.encode();
                fds.push(fd);
            }
            reply.nfds = fds.len() as u32;
            if send_reply(conn.as_fd(), &reply, &fds).is_err() {
                break;
            }
        }
        if let Some(f) = self.file.take() {
            f.release();
        }
    }

    /// One request; `None` is a protocol error.
    fn call(
        &mut self,
        peer: Peer,
        req: &Request,
        out: &mut NewFiles,
    ) -> Option<Result<i64, Errno>> {
        let offset = u64::try_from(req.offset).ok();
        let Some(file) = &self.file else {
            if req.op != Op::OPEN {
                return None;
            }
            return Some(self.open(peer, req));
        };
        // Decoding refused unknown ops; a second OPEN is a protocol error.
        if req.op == Op::OPEN {
            return None;
        }
        let mut call = || match req.op {
            Op::IOCTL => file.ioctl(peer, req.cmd, req.arg, out),
            Op::READ => file.read(peer, req.arg, req.len, offset),
            _ => file.write(peer, req.arg, req.len, offset),
        };
        Some(if file.injects_faults() {
            self.shared.nodes.fail_nth().run(peer, req.tid, call)
        } else {
            call()
        })
    }

    fn open(&mut self, peer: Peer, req: &Request) -> Result<i64, Errno> {
        if req.len == 0 || req.len > MAX_PATH {
            return Err(Errno::NAMETOOLONG);
        }
        let mut path = vec![0u8; req.len as usize];
        peer.read(req.arg, &mut path).map_err(|e| e.errno())?;
        let path = String::from_utf8(path).map_err(|_| Errno::NOENT)?;
        self.file = Some(self.shared.nodes.open(peer, req.tid, &path)?);
        Ok(0)
    }

    /// A socketpair for `file`: the daemon serves one end, the other,
    /// bound to a name under [`SERVED_NAME_PREFIX`], goes to the client.
    fn serve_new(&self, file: Box<dyn FileOps>) -> Result<OwnedFd, Errno> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let n = self.shared.served.fetch_add(1, Ordering::Relaxed);
        // The prefix is the name as `sun_path` holds it; rustix adds the
        // leading NUL of an abstract name itself.
        let mut name = SERVED_NAME_PREFIX[1..].to_vec();
        name.extend_from_slice(format!("{}/{n}", std::process::id()).as_bytes());
        rustix::net::bind(&theirs, &SocketAddrUnix::new_abstract_name(&name)?)?;
        file.installed(FileId::of(&theirs)?);
        rustix::net::sockopt::set_socket_passcred(&ours, true)?;
        spawn_connection(self.shared, ours, Some(file));
        Ok(theirs)
    }
}

/// Receives one request and the pid its credentials name; `Err` at the
/// end of the stream or on a protocol error (a frame of the wrong size,
/// fds attached).
fn recv_request(conn: BorrowedFd<'_>) -> Result<(Request, Option<i32>), ()> {
    let mut buf = [0u8; REQUEST_LEN + 1];
    let mut space =
        [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS), ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => continue,
            r => break r.map_err(|_| ())?,
        }
    };
    let mut pid = None;
    let mut fds = false;
    for m in control.drain() {
        match m {
            RecvAncillaryMessage::ScmCredentials(c) => pid = Some(c.pid.as_raw_nonzero().get()),
            RecvAncillaryMessage::ScmRights(r) => fds |= r.count() > 0,
            _ => {}
        }
    }
    if msg.bytes == 0 || fds {
        return Err(());
    }
    let req = Request::decode(&buf[..msg.bytes]).map_err(|e| {
        tracing::debug!("uAPI: closing a connection: {e}");
    })?;
    Ok((req, pid))
}

fn send_reply(conn: BorrowedFd<'_>, reply: &Reply, fds: &[OwnedFd]) -> Result<(), Errno> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(&borrowed));
    }
    loop {
        match rustix::net::sendmsg(
            conn,
            &[IoSlice::new(reply.as_bytes())],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(Errno::INTR) => continue,
            r => return r.map(|_| ()),
        }
    }
}
