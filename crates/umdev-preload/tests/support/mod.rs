//! Test support: a frame-level stand-in for the daemon, and the C client
//! run under the preload.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use umdev_uapi::frame::{MAX_FDS, Op, REQUEST_LEN, Reply, Request, SERVED_NAME_PREFIX};
use zerocopy::IntoBytes;

/// A request as the daemon saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Which connection (0, 1, … in accept and hand-back order).
    pub conn: usize,
    /// The frame.
    pub req: Request,
    /// OPEN: the path read from the client; WRITE: the bytes written.
    pub data: Vec<u8>,
}

/// An fd a reply carries.
pub enum Hand {
    /// This fd as it is.
    Fd(OwnedFd),
    /// A new served file: a socketpair end bound to a served name, the
    /// other end answered by the same handler.
    Served,
}

/// What the daemon answers.
pub struct Answer {
    /// The return value, or −errno.
    pub ret: i64,
    /// Fds with their slots.
    pub fds: Vec<(Hand, u64)>,
}

impl Answer {
    /// A plain return value.
    pub fn ret(ret: i64) -> Self {
        Self {
            ret,
            fds: Vec::new(),
        }
    }
}

/// The client process a connection came from.
#[derive(Clone, Copy)]
pub struct Peer(pub i32);

impl Peer {
    /// `len` bytes at `addr` in the client.
    pub fn read(self, addr: u64, len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; len as usize];
        self.copy(addr, buf.as_mut_ptr(), buf.len(), false);
        buf
    }

    /// Writes `bytes` at `addr` in the client.
    pub fn write(self, addr: u64, bytes: &[u8]) {
        self.copy(addr, bytes.as_ptr().cast_mut(), bytes.len(), true);
    }

    /// `process_vm_readv`/`writev` of `len` bytes between `local` and the
    /// client's `addr`; the client must take all of them.
    fn copy(self, addr: u64, local: *mut u8, len: usize, to_client: bool) {
        let local = libc::iovec {
            iov_base: local.cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: `local` is a live buffer of `len` bytes, only read when
        // writing to the client; the client's side is the kernel's to check.
        let n = unsafe {
            if to_client {
                libc::process_vm_writev(self.0, &local, 1, &remote, 1, 0)
            } else {
                libc::process_vm_readv(self.0, &local, 1, &remote, 1, 0)
            }
        };
        assert_eq!(n, len as isize, "process_vm_*v of the client");
    }
}

type Handler = dyn Fn(Peer, &Request) -> Answer + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    seen: Mutex<Vec<Seen>>,
    conns: AtomicUsize,
}

/// The stand-in daemon: listens on a socket in a temporary directory and
/// answers every connection with one handler.
pub struct Daemon {
    dir: tempfile::TempDir,
    shared: Arc<Shared>,
}

impl Daemon {
    /// Starts serving with `handler`.
    pub fn start(handler: impl Fn(Peer, &Request) -> Answer + Send + Sync + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let path = dir.path().join("uapi.sock");
        rustix::net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
        rustix::net::listen(&listener, 16).unwrap();
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            seen: Mutex::new(Vec::new()),
            conns: AtomicUsize::new(0),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            while let Ok(conn) = rustix::net::accept(&listener) {
                let pid = rustix::net::sockopt::socket_peercred(&conn).unwrap().pid;
                let index = accepting.conns.fetch_add(1, Ordering::SeqCst);
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    serve(&shared, conn, Peer(pid.as_raw_nonzero().get()), index)
                });
            }
        });
        Self { dir, shared }
    }

    /// The socket path (`UMDEV_UAPI_SOCKET`).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("uapi.sock")
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Connections accepted or handed back so far.
    pub fn connections(&self) -> usize {
        self.shared.conns.load(Ordering::SeqCst)
    }

    /// Runs the client with `args` under the preload, talking to this
    /// daemon; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        run_client(&self.socket(), args)
    }
}

fn serve(shared: &Arc<Shared>, conn: OwnedFd, peer: Peer, index: usize) {
    loop {
        let mut bytes = [0u8; REQUEST_LEN + 1];
        let mut space = [MaybeUninit::<u8>::uninit(); 64];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let Ok(msg) = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut control,
            RecvFlags::empty(),
        ) else {
            return;
        };
        if msg.bytes == 0 {
            return;
        }
        let req = Request::decode(&bytes[..msg.bytes.min(bytes.len())]).expect("a request frame");
        let data = match req.op {
            Op::OPEN => peer.read(req.arg, req.len),
            Op::WRITE => peer.read(req.arg, req.len),
            _ => Vec::new(),
        };
        shared.seen.lock().unwrap().push(Seen {
            conn: index,
            req,
            data,
        });
        let answer = (shared.handler)(peer, &req);
        let mut reply = Reply::new(answer.ret);
        let mut fds = Vec::new();
        for (i, (hand, slot)) in answer.fds.into_iter().enumerate() {
            assert!(i < MAX_FDS);
            reply.fd_slots[i] = slot;
            fds.push(match hand {
                Hand::Fd(fd) => fd,
                Hand::Served => hand_back(shared, peer),
            });
        }
        reply.nfds = fds.len() as u32;
        let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
        rustix::net::sendmsg(
            &conn,
            &[IoSlice::new(reply.as_bytes())],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .unwrap();
    }
}

/// A new served file, as the daemon makes one: the end it sends is bound
/// to `"\0umdev-uapi/<pid>/<n>"`, the other served on a new thread.
fn hand_back(shared: &Arc<Shared>, peer: Peer) -> OwnedFd {
    let (sent, kept) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let index = shared.conns.fetch_add(1, Ordering::SeqCst);
    let mut name = SERVED_NAME_PREFIX[1..].to_vec();
    name.extend_from_slice(format!("{}/{index}", std::process::id()).as_bytes());
    rustix::net::bind(&sent, &SocketAddrUnix::new_abstract_name(&name).unwrap()).unwrap();
    let shared = shared.clone();
    std::thread::spawn(move || serve(&shared, kept, peer, index));
    sent
}

/// Runs the client under the preload with `UMDEV_UAPI_SOCKET=socket`.
pub fn run_client(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(client())
        .args(args)
        .env("LD_PRELOAD", preload())
        .env("UMDEV_UAPI_SOCKET", socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client {args:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `key=` in the client's output (the first on its line,
/// or the first line having it).
pub fn value<'a>(out: &'a str, key: &'a str) -> &'a str {
    values(out, key)
        .next()
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
}

/// Every value of `key=`, in order.
pub fn values<'a>(out: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    out.lines()
        .flat_map(|l| l.split_whitespace())
        .filter_map(move |w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// `libumdev_preload.so`, built now: `cargo test` does not build a
/// cdylib-only crate for its own integration tests, and an existing copy
/// may be stale. It goes where the test binary's profile puts it
/// (`target/<profile>/`).
pub fn preload() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "umdev-preload",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(profile_dir.parent().unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p umdev-preload");
        let so = profile_dir.join("libumdev_preload.so");
        assert!(so.exists(), "{} missing", so.display());
        so
    })
}

/// The C client (`tests/c/client.c`), compiled once.
fn client() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/client.c");
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("umdev-preload-client");
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-O1", "-pthread", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success(), "cc {}", src.display());
        bin
    })
}
