//! What the fuzz target and `tests/fuzz_regressions.rs` run on one input:
//! a connection to the real uAPI server (with the selftest mock) carrying
//! arbitrary frames, on behalf of a sacrificial child process whose memory
//! the frames' user pointers name. The daemon must answer or close, never
//! panic or hang, whatever the bytes.
//!
//! The harness sends each frame with SCM_CREDENTIALS naming the child
//! (root may), so every `copy_to_user` lands in the child, never in the
//! fuzzer. An input is a sequence of records:
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | `n`: bytes of user memory that follow (0–255) |
//! | `n` | written at the child's scratch page before the frame is sent |
//! | 1 | frame length `m` (0–255; 40 is a whole request) |
//! | `m` | the frame; a request's `arg`, unless its top bit is set, is rebased into the scratch page |
//!
//! The connection is opened on `/dev/iommu` first (the path lives in the
//! child's memory).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketAddrUnix, SocketFlags, SocketType, UCred,
};
use umdev_iommufd::selftest::MockBus;
use umdev_uapi::frame::{Op, REPLY_LEN, REQUEST_LEN, Request};
use umdev_uapi::node::Nodes;
use umdev_uapi::server::Server;
use zerocopy::{FromBytes, IntoBytes};

const SCRATCH: usize = 4096;
const PATH: &[u8] = b"/dev/iommu";

/// The server and the child whose memory the frames name.
pub struct Target {
    _server: Server,
    socket: PathBuf,
    child: i32,
    scratch: u64,
    path: u64,
}

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether any thread (a daemon connection thread among them) panicked
/// since the target started: a panic there only closes that connection,
/// so the harness records it.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// The one server the process fuzzes.
pub fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
        // The child's copy of these pages is what the frames point into.
        let page: &'static mut [u8] = Box::leak(vec![0u8; SCRATCH + PATH.len()].into_boxed_slice());
        page[SCRATCH..].copy_from_slice(PATH);
        let base = page.as_ptr() as u64;
        // SAFETY: the child only blocks in pause(2) until it is killed
        // (async-signal-safe calls only after fork).
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork");
        if child == 0 {
            // SAFETY: prctl and pause are async-signal-safe.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                loop {
                    libc::pause();
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("umdev-uapi-fuzz.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("uapi.sock");
        let bus = MockBus::new();
        let server = Server::start(&socket, Nodes::new(bus.iommu().clone(), Some(bus))).unwrap();
        Target {
            _server: server,
            socket,
            child,
            scratch: base,
            path: base + SCRATCH as u64,
        }
    })
}

impl Target {
    fn poke(&self, data: &[u8]) {
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: self.scratch as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: `local` describes `data`, only read; the remote range is
        // the child's copy of the scratch page.
        unsafe { libc::process_vm_writev(self.child, &local, 1, &remote, 1, 0) };
    }

    fn connect(&self) -> OwnedFd {
        let s = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::connect(&s, &SocketAddrUnix::new(&self.socket).unwrap()).unwrap();
        rustix::net::sockopt::set_socket_timeout(
            &s,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(10)),
        )
        .unwrap();
        s
    }

    /// Sends `frame` as the child; false once the daemon closed.
    fn send(&self, s: &OwnedFd, frame: &[u8]) -> bool {
        let cred = UCred {
            pid: rustix::process::Pid::from_raw(self.child).unwrap(),
            uid: rustix::process::getuid(),
            gid: rustix::process::getgid(),
        };
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmCredentials(cred));
        if rustix::net::sendmsg(s, &[IoSlice::new(frame)], &mut control, SendFlags::NOSIGNAL)
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; REPLY_LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        loop {
            match rustix::net::recvmsg(
                s,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                // Received fds close when `control` drains on drop.
                Ok(m) => return m.bytes > 0,
                // libFuzzer's timer signal.
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => panic!("the daemon neither answered nor closed: {e}"),
            }
        }
    }
}

/// One input: see the module doc.
pub fn frames(mut data: &[u8]) {
    let t = target();
    let s = t.connect();
    let open = Request::new(Op::OPEN, 2, t.path, PATH.len() as u64, -1, 1);
    assert!(t.send(&s, open.as_bytes()), "open /dev/iommu");
    while let Some((&n, rest)) = data.split_first() {
        let (mem, rest) = rest.split_at(usize::from(n).min(rest.len()));
        t.poke(mem);
        let Some((&m, rest)) = rest.split_first() else {
            break;
        };
        let (frame, rest) = rest.split_at(usize::from(m).min(rest.len()));
        data = rest;
        let mut frame = frame.to_vec();
        if frame.len() == REQUEST_LEN
            && let Ok((mut req, _)) = Request::read_from_prefix(&frame)
            && req.arg >> 63 == 0
        {
            req.arg = t.scratch + req.arg % SCRATCH as u64;
            frame = req.as_bytes().to_vec();
        }
        if !t.send(&s, &frame) {
            break;
        }
    }
    assert!(!panicked(), "a daemon thread panicked");
}
