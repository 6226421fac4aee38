//! The preload's side of the protocol, driven by an unmodified C program
//! (`tests/c/client.c`) against a frame-level stand-in for the daemon.

mod support;

use std::io::Write;
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use support::{Answer, Daemon, Hand, Peer, value, values};
use umdev_uapi::frame::{Op, Request};

fn errno(e: Errno) -> String {
    e.raw_os_error().to_string()
}

/// A daemon that opens every node and answers ioctls with `ioctl`.
fn daemon(ioctl: impl Fn(Peer, &Request) -> Answer + Send + Sync + 'static) -> Daemon {
    Daemon::start(move |peer, req| match req.op {
        Op::OPEN => Answer::ret(0),
        _ => ioctl(peer, req),
    })
}

/// Answers an ioctl with its argument.
fn echo(_: Peer, req: &Request) -> Answer {
    Answer::ret(req.arg as i64)
}

/// A pipe's read end with `data` in it.
fn pipe_with(data: &[u8]) -> OwnedFd {
    let (r, mut w) = std::io::pipe().unwrap();
    w.write_all(data).unwrap();
    r.into()
}

#[test]
fn routed_open_is_a_daemon_socket() {
    let d = daemon(echo);
    let cases = [
        ("open", "/dev/iommu", libc::O_RDWR | libc::O_CLOEXEC),
        ("open64", "/dev/vfio/vfio", libc::O_RDWR),
        ("openat", "/dev/vfio/7", libc::O_RDWR | libc::O_CLOEXEC),
        ("openat64", "/dev/vfio/devices/vfio0", libc::O_RDONLY),
        ("__open_2", "/proc/self/task/42/fail-nth", libc::O_RDWR),
        (
            "__open64_2",
            "/proc/123/task/456/fail-nth",
            libc::O_WRONLY | libc::O_CLOEXEC,
        ),
        ("__openat_2", "/proc/thread-self/fail-nth", libc::O_RDWR),
        (
            "__openat64_2",
            "/dev/iommu",
            libc::O_RDWR | libc::O_NONBLOCK,
        ),
    ];
    for (i, (how, path, flags)) in cases.into_iter().enumerate() {
        let out = d.run(&["open", how, path, &flags.to_string()]);
        assert_eq!(value(&out, "errno"), "0", "{how}: {out}");
        assert!(
            value(&out, "fd").parse::<i32>().unwrap() >= 3,
            "{how}: {out}"
        );
        assert_eq!(value(&out, "sock"), "1", "{how}");
        let cloexec = flags & libc::O_CLOEXEC != 0;
        assert_eq!(
            value(&out, "cloexec"),
            if cloexec { "1" } else { "0" },
            "{how}"
        );
        let seen = d.seen();
        assert_eq!(seen.len(), i + 1, "{how}: one OPEN a run");
        let open = &seen[i];
        assert_eq!(open.req.op, Op::OPEN, "{how}");
        assert_eq!(open.req.cmd, flags as u32, "{how}: the open flags");
        assert_eq!(open.data, path.as_bytes(), "{how}: the path in the client");
        assert_eq!(
            open.req.tid.to_string(),
            value(&out, "pid"),
            "{how}: the caller's tid"
        );
    }
}

#[test]
fn open_failure_is_the_daemons_errno() {
    let d = Daemon::start(|_, _| Answer::ret(-i64::from(Errno::BUSY.raw_os_error())));
    let out = d.run(&["open", "open", "/dev/vfio/3", "2"]);
    assert_eq!(value(&out, "fd"), "-1");
    assert_eq!(value(&out, "errno"), errno(Errno::BUSY));
}

#[test]
fn no_daemon_is_enoent_and_a_dead_one_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let out = support::run_client(&missing, &["open", "open", "/dev/iommu", "2"]);
    assert_eq!(value(&out, "fd"), "-1");
    assert_eq!(value(&out, "errno"), errno(Errno::NOENT));

    // A socket file nobody listens on: the connect's own errno.
    let stale = dir.path().join("stale.sock");
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        None,
    )
    .unwrap();
    rustix::net::bind(&sock, &rustix::net::SocketAddrUnix::new(&stale).unwrap()).unwrap();
    drop(sock);
    let out = support::run_client(&stale, &["open", "openat", "/dev/iommu", "2"]);
    assert_eq!(value(&out, "fd"), "-1");
    assert_eq!(value(&out, "errno"), errno(Errno::CONNREFUSED));
}

#[test]
fn ioctl_errno_and_value_are_exact() {
    let d = daemon(|_, req| {
        Answer::ret(match req.cmd {
            0x3b80 => -i64::from(Errno::NOTTY.raw_os_error()),
            0x3b81 => -i64::from(Errno::INVAL.raw_os_error()),
            0x3b82 => -i64::from(Errno::OPNOTSUPP.raw_os_error()),
            _ => 5,
        })
    });
    let out = d.run(&[
        "ioctl",
        "/dev/iommu",
        "0x3b80",
        "1",
        "0x3b81",
        "2",
        "0x3b82",
        "3",
        "0x100003b84",
        "4",
    ]);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("ret=-1 errno={}", errno(Errno::NOTTY)),
            format!("ret=-1 errno={}", errno(Errno::INVAL)),
            format!("ret=-1 errno={}", errno(Errno::OPNOTSUPP)),
            "ret=5 errno=0".to_string(),
        ]
    );
    let ioctls: Vec<_> = d
        .seen()
        .iter()
        .skip(1)
        .map(|s| (s.req.op, s.req.cmd, s.req.arg))
        .collect();
    // The request number is the kernel's `unsigned int cmd`.
    assert_eq!(
        ioctls,
        [
            (Op::IOCTL, 0x3b80, 1),
            (Op::IOCTL, 0x3b81, 2),
            (Op::IOCTL, 0x3b82, 3),
            (Op::IOCTL, 0x3b84, 4)
        ]
    );
}

#[test]
fn fd_in_a_slot_is_installed_and_its_number_stored() {
    let d = daemon(|_, req| match req.cmd {
        // The slot: `out_fd`, 4 bytes into the client's struct.
        0x3b90 => Answer {
            ret: 0,
            fds: vec![(Hand::Fd(pipe_with(b"from-slot")), req.arg + 4)],
        },
        // An unmapped slot: the fd is not installed, EFAULT.
        _ => Answer {
            ret: 0,
            fds: vec![(Hand::Fd(pipe_with(b"lost")), 8)],
        },
    });
    let out = d.run(&["slot", "/dev/iommu", "0x3b90"]);
    assert_eq!(value(&out, "ret"), "0", "{out}");
    assert!(value(&out, "out_fd").parse::<i32>().unwrap() >= 3, "{out}");
    assert_eq!(value(&out, "out_data"), "from-slot");
    assert_eq!(value(&out, "out_cloexec"), "1", "MSG_CMSG_CLOEXEC");
    assert_eq!(d.seen()[1].req.arg.to_string(), value(&out, "arg"));

    let out = d.run(&["slot", "/dev/iommu", "0x3b91"]);
    assert_eq!(value(&out, "ret"), "-1");
    assert_eq!(value(&out, "errno"), errno(Errno::FAULT));
    assert_eq!(value(&out, "out_fd"), "-1", "untouched");
}

#[test]
fn fd_in_slot_zero_is_the_return_value() {
    let d = daemon(|_, _| Answer {
        ret: 0,
        fds: vec![(Hand::Fd(pipe_with(b"from-ret")), 0)],
    });
    let out = d.run(&["slot", "/dev/iommu", "0x3b90"]);
    assert!(value(&out, "ret").parse::<i32>().unwrap() >= 3, "{out}");
    assert_eq!(value(&out, "ret_data"), "from-ret");
    assert_eq!(value(&out, "out_fd"), "-1", "no slot written");
}

#[test]
fn a_handed_back_file_is_served_through_dup() {
    let d = daemon(|_, req| match req.cmd {
        0x3b90 => Answer {
            ret: 0,
            fds: vec![(Hand::Served, req.arg + 4)],
        },
        _ => Answer::ret(100 + req.arg as i64),
    });
    let out = d.run(&["served", "/dev/iommu", "0x3b90", "0x3b92"]);
    assert_eq!(value(&out, "ret"), "0", "{out}");
    assert_eq!(
        values(&out, "ret").collect::<Vec<_>>(),
        ["0", "111", "112"],
        "{out}"
    );
    let on_file: Vec<_> = d
        .seen()
        .into_iter()
        .filter(|s| s.req.cmd == 0x3b92)
        .collect();
    assert_eq!(on_file.len(), 2);
    assert!(
        on_file.iter().all(|s| s.conn == 1),
        "the handed-back connection"
    );
}

#[test]
fn read_write_carry_buffer_count_and_offset() {
    let d = daemon(|peer, req| match req.op {
        Op::READ => {
            let text = format!("off={}", req.offset);
            let n = text.len().min(req.len as usize);
            peer.write(req.arg, &text.as_bytes()[..n]);
            Answer::ret(n as i64)
        }
        _ if req.offset == 0x5000 => Answer::ret(-i64::from(Errno::NOSPC.raw_os_error())),
        _ => Answer::ret(req.len as i64),
    });
    let out = d.run(&["rw", "/dev/iommu"]);
    assert_eq!(value(&out, "pread"), "8");
    assert_eq!(
        values(&out, "data").collect::<Vec<_>>(),
        ["off=4096", "off=-1", "off="]
    );
    assert_eq!(value(&out, "pwrite"), "5");
    assert_eq!(value(&out, "read"), "6");
    assert_eq!(value(&out, "write"), "3");
    assert_eq!(value(&out, "pread64"), "4");
    assert_eq!(value(&out, "pwrite64"), "2");
    assert_eq!(value(&out, "pwrite_fail"), "-1");
    assert_eq!(value(&out, "errno"), errno(Errno::NOSPC));
    let calls: Vec<_> = d
        .seen()
        .into_iter()
        .skip(1)
        .map(|s| (s.req.op, s.req.len, s.req.offset, s.data))
        .collect();
    assert_eq!(
        calls,
        [
            (Op::READ, 16, 0x1000, vec![]),
            (Op::WRITE, 5, 0x2000, b"hello".to_vec()),
            (Op::READ, 8, -1, vec![]),
            (Op::WRITE, 3, -1, b"abc".to_vec()),
            (Op::READ, 4, 0x3000, vec![]),
            (Op::WRITE, 2, 0x4000, b"xy".to_vec()),
            (Op::WRITE, 1, 0x5000, b"z".to_vec()),
        ]
    );
}

#[test]
fn other_files_pass_through_unchanged() {
    let d = daemon(echo);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    let out = d.run(&["pass", file.to_str().unwrap()]);
    for (key, want) in [
        ("null_sock", "0"),
        ("null_write", "3"),
        ("null_read", "0"),
        ("null_tcgets", "-1"),
        ("errno", &errno(Errno::NOTTY)),
        ("tmp_mode", "640"),
        ("tmp_pwrite", "3"),
        ("tmp_pread", "3"),
        ("tmp_data", "xyz"),
        ("tmp_openat_sock", "0"),
        ("fionread", "5"),
        ("errno_kept", "1"),
        ("pipe_read_errno_kept", "1"),
        ("socketpair_fionread", "4"),
    ] {
        assert_eq!(value(&out, key), want, "{key} in:\n{out}");
    }
    assert_eq!(
        values(&out, "look_alike_sock").collect::<Vec<_>>(),
        ["0"; 6]
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"\0\0xyz");
    assert_eq!(d.connections(), 0, "nothing reached the daemon");
}

#[test]
fn a_forked_child_uses_the_parents_fd() {
    let d = daemon(echo);
    let out = d.run(&["fork", "/dev/iommu", "0x3b93"]);
    let child: u64 = value(&out, "pid").parse().unwrap();
    assert_eq!(value(&out, "ret"), (1000 + child).to_string(), "{out}");
    assert_eq!(
        values(&out, "ret").nth(1),
        Some("7"),
        "the parent after: {out}"
    );
    let seen = d.seen();
    assert_eq!(d.connections(), 1, "one open file, shared");
    assert_eq!(u64::from(seen[1].req.tid), child);
    assert_eq!(seen[1].req.arg, 1000 + child);
    assert_eq!(seen[2].req.arg, 7);
}

#[test]
fn threads_on_one_fd_get_their_own_replies() {
    let d = daemon(echo);
    let out = d.run(&["threads", "/dev/iommu", "0x3b93"]);
    assert_eq!(value(&out, "mismatches"), "0");
    assert_eq!(d.seen().len(), 1 + 4 * 300);
}
