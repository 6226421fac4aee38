//! The uAPI socket server with this process as its client, speaking the
//! frame format directly: opens by path, ioctls with the kernel's errnos,
//! per-open isolation, fail-nth per calling thread, and bad frames
//! closing the connection without harming the daemon.

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use umdev_iommufd::selftest::MockBus;
use umdev_uapi::frame::{Op, REPLY_LEN, Reply, Request};
use umdev_uapi::ioctl::nr;
use umdev_uapi::node::Nodes;
use umdev_uapi::server::Server;
use umdev_uapi::uapi::{IommuDestroy, IommuIoasAlloc, iommufd_io};
use zerocopy::{FromBytes, IntoBytes};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let bus = MockBus::new();
    let nodes = Nodes::new(bus.iommu().clone(), Some(bus));
    let server = Server::start(&dir.path().join("uapi.sock"), nodes).unwrap();
    (dir, server)
}

fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn connect(server: &Server) -> OwnedFd {
    let s = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::connect(&s, &SocketAddrUnix::new(server.path()).unwrap()).unwrap();
    s
}

/// One request and its reply; `None` if the daemon closed the connection.
fn call(s: &OwnedFd, req: &Request) -> Option<i64> {
    rustix::io::write(s, req.as_bytes()).ok()?;
    let mut buf = [0u8; REPLY_LEN];
    let n = rustix::io::read(s, &mut buf).ok()?;
    if n == 0 {
        return None;
    }
    Some(Reply::read_from_bytes(&buf[..n]).unwrap().ret)
}

fn errno(e: Errno) -> i64 {
    -i64::from(e.raw_os_error())
}

fn open(server: &Server, path: &str) -> (OwnedFd, i64) {
    let s = connect(server);
    let req = Request::new(
        Op::OPEN,
        libc::O_RDWR as u32,
        path.as_ptr() as u64,
        path.len() as u64,
        -1,
        tid(),
    );
    let ret = call(&s, &req).expect("an open is answered");
    (s, ret)
}

fn ioctl<T: IntoBytes>(s: &OwnedFd, nr: u32, arg: &mut T) -> Option<i64> {
    call(
        s,
        &Request::ioctl(iommufd_io(nr), arg as *mut T as u64, tid()),
    )
}

fn ioas_alloc(s: &OwnedFd) -> (i64, u32) {
    let mut a = IommuIoasAlloc {
        size: 12,
        ..Default::default()
    };
    let ret = ioctl(s, nr::IOAS_ALLOC, &mut a).unwrap();
    (ret, a.out_ioas_id)
}

fn destroy(s: &OwnedFd, id: u32) -> i64 {
    let mut d = IommuDestroy { size: 8, id };
    ioctl(s, nr::DESTROY, &mut d).unwrap()
}

#[test]
fn open_ioctl_and_isolation() {
    let (_dir, server) = start();
    let (a, ret) = open(&server, "/dev/iommu");
    assert_eq!(ret, 0);
    let (ret, id) = ioas_alloc(&a);
    assert_eq!(ret, 0);
    assert_ne!(id, 0);
    // A second open is a second context: the id means nothing there.
    let (b, _) = open(&server, "/dev/iommu");
    assert_eq!(destroy(&b, id), errno(Errno::NOENT));
    assert_eq!(destroy(&a, id), 0);
    assert_eq!(destroy(&a, id), errno(Errno::NOENT));
    // Unknown ioctl: ENOTTY; a bad user pointer: EFAULT.
    assert_eq!(
        call(&a, &Request::ioctl(0x1234, 0, tid())),
        Some(errno(Errno::NOTTY))
    );
    assert_eq!(
        call(&a, &Request::ioctl(iommufd_io(nr::IOAS_ALLOC), 8, tid())),
        Some(errno(Errno::FAULT))
    );
    // read/write on /dev/iommu: EINVAL (no such file_operations).
    let mut buf = [0u8; 8];
    assert_eq!(
        call(
            &a,
            &Request::new(Op::READ, 0, buf.as_mut_ptr() as u64, 8, -1, tid())
        ),
        Some(errno(Errno::INVAL))
    );
}

#[test]
fn missing_nodes_and_bad_opens() {
    let (_dir, server) = start();
    assert_eq!(open(&server, "/dev/iommu0").1, errno(Errno::NOENT));
    assert_eq!(open(&server, "/dev/null").1, errno(Errno::NOENT));
    // A path the client's memory does not hold: EFAULT.
    let s = connect(&server);
    let req = Request::new(Op::OPEN, 0, 8, 10, -1, tid());
    assert_eq!(call(&s, &req), Some(errno(Errno::FAULT)));
    // An over-long path: ENAMETOOLONG, before reading it.
    let s = connect(&server);
    let req = Request::new(Op::OPEN, 0, 8, 1 << 20, -1, tid());
    assert_eq!(call(&s, &req), Some(errno(Errno::NAMETOOLONG)));
}

#[test]
fn bad_frames_close_the_connection_only() {
    let (_dir, server) = start();
    // An ioctl before any open, a short frame, a bad magic, an unknown op,
    // a second open: each closes that connection.
    let s = connect(&server);
    assert_eq!(
        call(&s, &Request::ioctl(iommufd_io(nr::IOAS_ALLOC), 0, 0)),
        None
    );
    let s = connect(&server);
    rustix::io::write(&s, &[1, 2, 3]).unwrap();
    assert_eq!(rustix::io::read(&s, &mut [0u8; 64]).unwrap(), 0);
    let (s, _) = open(&server, "/dev/iommu");
    let mut bad = Request::ioctl(0, 0, 0);
    bad.magic ^= 1;
    assert_eq!(call(&s, &bad), None);
    let (s, _) = open(&server, "/dev/iommu");
    bad = Request::ioctl(0, 0, 0);
    bad.op = Op(77);
    assert_eq!(call(&s, &bad), None);
    let (s, _) = open(&server, "/dev/iommu");
    let path = "/dev/iommu";
    let again = Request::new(Op::OPEN, 0, path.as_ptr() as u64, 10, -1, tid());
    assert_eq!(call(&s, &again), None);
    // The daemon still serves everyone else.
    let (s, ret) = open(&server, "/dev/iommu");
    assert_eq!(ret, 0);
    assert_eq!(ioas_alloc(&s).0, 0);
}

#[test]
fn fail_nth_fails_the_nth_step_of_this_thread() {
    let (_dir, server) = start();
    let (iommu, _) = open(&server, "/dev/iommu");
    let (nth, ret) = open(&server, &format!("/proc/self/task/{}/fail-nth", tid()));
    assert_eq!(ret, 0);
    let pwrite = |text: &str| {
        call(
            &nth,
            &Request::new(
                Op::WRITE,
                0,
                text.as_ptr() as u64,
                text.len() as u64,
                0,
                tid(),
            ),
        )
    };
    let pread = || {
        let mut buf = [0u8; 16];
        let n = call(
            &nth,
            &Request::new(Op::READ, 0, buf.as_mut_ptr() as u64, 16, 0, tid()),
        )
        .unwrap();
        String::from_utf8(buf[..n as usize].to_vec()).unwrap()
    };
    assert_eq!(pread(), "0\n");
    // IOAS_ALLOC's first fallible step (the object id) fails: ENOMEM, and
    // the count reads 0 once it fired.
    assert_eq!(pwrite("1"), Some(1));
    assert_eq!(pread(), "1\n");
    assert_eq!(ioas_alloc(&iommu).0, errno(Errno::NOMEM));
    assert_eq!(pread(), "0\n");
    assert_eq!(ioas_alloc(&iommu).0, 0);
    // Armed for a later step than IOAS_ALLOC takes: it succeeds and the
    // count went down by the steps it took.
    assert_eq!(pwrite("1000"), Some(4));
    assert_eq!(ioas_alloc(&iommu).0, 0);
    let left: u32 = pread().trim().parse().unwrap();
    assert!(left < 1000 && left > 0, "{left}");
    assert_eq!(pwrite("0"), Some(1));
    assert_eq!(pwrite("x"), Some(errno(Errno::INVAL)));
}
