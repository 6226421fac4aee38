//! What the fuzz targets and `tests/fuzz_regressions.rs` run on one input:
//! the framing + decoder choke point alone ([`decode`]), and a whole
//! session with the dispatcher over a socket ([`session`]). Both must never
//! panic, hang or leak, whatever the bytes.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use umdev_devices::host::Host;
use umdev_pci::Bdf;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio_user::ServeContext;
use umdev_vfio_user::proto::wire::{Header, Version};
use umdev_vfio_user::proto::{Command, Limits, Message, decode as decode_message, flags};
use umdev_vfio_user::session::Session;
use umdev_vfio_user::transport::recv_message;
use zerocopy::IntoBytes;

/// The model with two devices to serve: an mtty mdev and the DMA test
/// engine of the NVMe function through an mdev-pci pass-through.
pub struct Target {
    ctx: ServeContext,
    devices: [Arc<VfioDevice>; 2],
    /// Memory a DMA_MAP fd can name (64 KiB).
    memfd: OwnedFd,
    _host: Arc<Host>,
}

/// The one model the process fuzzes against.
pub fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let host = Host::default_platform().expect("default platform");
        let ctx = ServeContext::from_system(&host.system);
        let tty = host.mtty.mdev_type("mtty-1").expect("mtty type");
        let tty = tty
            .create("0bd1b2c4-8a51-4b6c-9a4e-2f1e3c5d7a91".parse().unwrap())
            .expect("mtty mdev");
        let tty = tty.registration().expect("mtty registration");
        let nvme: Bdf = "0000:05:00.0".parse().unwrap();
        let p = host.platform();
        p.unbind("nvme", nvme).expect("unbind nvme");
        p.set_driver_override(nvme, umdev_devices::mdev_pci::MdevPci::NAME)
            .expect("override");
        p.bind(umdev_devices::mdev_pci::MdevPci::NAME, nvme)
            .expect("bind mdev-pci");
        let parent = host.mdev_pci.parent(nvme).expect("mdev-pci parent");
        let mdev = parent.types()[0]
            .create("83b8f4f2-509f-382f-3c1e-e6bfe0fa1004".parse().unwrap())
            .expect("pass-through mdev");
        let pass = host
            .mdev_pci
            .vfio_device(&mdev)
            .expect("pass-through device");
        let memfd = rustix::fs::memfd_create("fuzz", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 64 << 10).unwrap();
        Target {
            ctx,
            devices: [tty, pass],
            memfd,
            _host: host,
        }
    })
}

impl Target {
    /// `n` duplicates of the memfd.
    fn fds(&self, n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| rustix::io::dup(&self.memfd).expect("dup"))
            .collect()
    }
}

/// Input of [`decode`]: byte 0 = fds attached (low 5 bits), bytes 1.. the
/// stream. Every message framed from the stream goes through the decoder.
pub fn decode(data: &[u8]) {
    let Some((&nfds, stream)) = data.split_first() else {
        return;
    };
    let t = target();
    let limits = Limits::DEFAULT;
    let (client, server) = UnixStream::pair().expect("socketpair");
    let fds = t.fds(usize::from(nfds & 0x1f));
    let writer = {
        let stream = stream.to_vec();
        std::thread::spawn(move || {
            send(&client, &stream, &fds);
        })
    };
    while let Ok(Some(msg)) = recv_message(server.as_fd(), &limits) {
        let size = msg.header.msg_size;
        assert_eq!(msg.payload.len() + 16, size as usize, "framing");
        let _ = decode_message(msg, &limits);
    }
    drop(server);
    writer.join().expect("writer");
    // Direct decoder calls, with the fd count as given (truncation too).
    let mut rest = stream;
    while rest.len() >= 16 {
        let (h, tail) = rest.split_at(16);
        let header: Header = zerocopy::FromBytes::read_from_bytes(h).unwrap();
        let n = (header.msg_size as usize)
            .saturating_sub(16)
            .min(tail.len());
        let msg = Message {
            header,
            payload: tail[..n].to_vec(),
            fds: t.fds(usize::from(nfds & 0x3)),
            fds_truncated: nfds & 0x80 != 0,
        };
        let _ = decode_message(msg, &limits);
        rest = &tail[n..];
    }
}

/// Sends `bytes` with `fds` on the first byte; stops quietly when the
/// peer is gone.
fn send(stream: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) {
    if bytes.is_empty() {
        return;
    }
    let (first, rest) = bytes.split_at(1);
    let h = first.to_vec();
    let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(32))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    }
    let iov = [std::io::IoSlice::new(&h)];
    if rustix::net::sendmsg(stream, &iov, &mut control, rustix::net::SendFlags::NOSIGNAL).is_err() {
        return;
    }
    let _ = (&*stream).write_all(rest);
}

/// How long a session may take to end after its input before the client
/// hangs up anyway (only a server waiting for DMA replies takes long).
const END_WAIT: Duration = Duration::from_secs(20);

/// Zero bytes that complete the message the stream `s` ends inside, as
/// the server frames it (one header, then `msg_size - 16` bytes), so that
/// what follows is read as a message of its own. Empty when the stream
/// ends on a message boundary or at a header the server refuses.
fn completion(s: &[u8], limits: &Limits) -> Vec<u8> {
    let mut s = s.to_vec();
    let start = s.len();
    let mut at = 0;
    loop {
        let rest = s.len() - at;
        if rest == 0 {
            break;
        }
        if rest < 16 {
            s.resize(at + 16, 0);
            continue;
        }
        let size = u32::from_le_bytes(s[at + 4..at + 8].try_into().unwrap());
        if size < 16 || size > limits.max_msg_size() {
            break;
        }
        let end = at + size as usize;
        if end > s.len() {
            s.resize(end, 0);
        }
        at = end;
    }
    s.split_off(start)
}

/// Input of [`session`]: byte 0 bit 0 selects the device; then records of
/// `[fds: u8][len: u8][len bytes]`, each sent with one `sendmsg` carrying
/// `fds & 3` memfd duplicates; the records concatenated are the stream a
/// client sends. Zeros complete a message left half-sent, then a VERSION
/// with a bad major ends the session. The session must end, release the device and answer
/// nothing it should not.
pub fn session(data: &[u8]) {
    let Some((&select, mut records)) = data.split_first() else {
        return;
    };
    let t = target();
    let device = &t.devices[usize::from(select & 1)];
    let (client, server) = UnixStream::pair().expect("socketpair");
    let session = Session::open(&t.ctx, Arc::clone(device)).expect("the device is free");
    let served = std::thread::spawn(move || {
        let _ = session.run(server);
    });
    let (eof_tx, eof) = mpsc::channel();
    let drain = {
        let mut c = client.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        })
    };
    let mut stream = Vec::new();
    while let [nfds, len, rest @ ..] = records {
        let n = usize::from(*len).min(rest.len());
        send(&client, &rest[..n], &t.fds(usize::from(nfds & 3)));
        stream.extend_from_slice(&rest[..n]);
        records = &rest[n..];
    }
    let _ = (&client).write_all(&completion(&stream, &t.ctx.limits));
    let mut end = Version {
        major: 0xffff,
        minor: 0,
    }
    .as_bytes()
    .to_vec();
    let h = Header {
        msg_id: 0xffff,
        cmd: Command::VERSION.0,
        msg_size: 16 + end.len() as u32,
        flags: flags::TYPE_COMMAND,
        error_no: 0,
    };
    end.splice(0..0, h.as_bytes().iter().copied());
    let _ = (&client).write_all(&end);
    if eof.recv_timeout(END_WAIT).is_err() {
        let _ = client.shutdown(std::net::Shutdown::Write);
    }
    if let Err(panic) = served.join() {
        std::panic::resume_unwind(panic);
    }
    drop(client);
    drain.join().expect("drain");
    assert!(device.devid().is_none(), "the session released the device");
}
