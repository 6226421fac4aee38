//! The vfio-user face under test: the model brought up with a pass-through
//! mdev (mdev-pci over the NVMe function, whose DMA test engine does RID
//! DMA) and an mtty mdev, a served socket, timeouts around every peer call,
//! memfds, and a raw client for what the third-party client cannot do.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use umdev_devices::dmatest::DmaTest;
use umdev_devices::host::Host;
use umdev_devices::mdev_pci::MdevPci;
use umdev_vfio::mdev::Mdev;
use umdev_vfio::registration::VfioDevice;
use umdev_vfio_user::proto::wire::{self, Header};
use umdev_vfio_user::proto::{Command, Limits, Message, flags};
use umdev_vfio_user::transport::{recv_message, send_message};
use umdev_vfio_user::{ServeContext, Server, ServerHandle};
use zerocopy::{FromBytes, IntoBytes};

use crate::irq::ToVfio;
use crate::pci::nvme;

/// Every peer call is bounded: the third-party client can block forever.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread; panics if it does not finish in time.
pub fn timed<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(CALL_TIMEOUT)
        .expect("peer call did not finish in time")
}

/// The model with devices to serve.
pub struct Rig {
    /// The model.
    pub host: Arc<Host>,
    /// What the servers share.
    pub ctx: ServeContext,
    /// Where the sockets are.
    pub dir: tempfile::TempDir,
}

crate::default_is_new!(Rig);

impl Rig {
    /// The default host, nothing served yet.
    pub fn new() -> Self {
        let host = Host::default_platform().unwrap();
        let ctx = ServeContext::from_system(&host.system);
        Self {
            host,
            ctx,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The path of socket `name`.
    pub fn sock(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// mdev-pci bound to the NVMe function by driver_override, one mdev
    /// created, the engine's interrupts wired to it.
    pub fn pass_through(&self) -> (Arc<Mdev>, Arc<VfioDevice>) {
        let p = self.host.platform();
        p.unbind("nvme", nvme()).unwrap();
        p.set_driver_override(nvme(), MdevPci::NAME).unwrap();
        p.bind(MdevPci::NAME, nvme()).unwrap();
        let parent = self.host.mdev_pci.parent(nvme()).unwrap();
        let ty = parent.types()[0].clone();
        let mdev = ty
            .create("83b8f4f2-509f-382f-3c1e-e6bfe0fa1003".parse().unwrap())
            .unwrap();
        let vfio = self.host.mdev_pci.vfio_device(&mdev).unwrap();
        let pci = self.host.mdev_pci.pci_device(&mdev).unwrap();
        self.engine().set_interrupts(Some(Arc::new(ToVfio(pci))));
        (mdev, vfio)
    }

    /// The DMA test engine behind the NVMe function.
    pub fn engine(&self) -> Arc<DmaTest> {
        self.host
            .dmatest
            .iter()
            .find(|m| m.bdf() == nvme())
            .unwrap()
            .clone()
    }

    /// An mtty mdev with one port.
    pub fn mtty(&self) -> (Arc<Mdev>, Arc<VfioDevice>) {
        let ty = self.host.mtty.mdev_type("mtty-1").unwrap();
        let mdev = ty
            .create("0bd1b2c4-8a51-4b6c-9a4e-2f1e3c5d7a90".parse().unwrap())
            .unwrap();
        let vfio = mdev.registration().unwrap();
        (mdev, vfio)
    }

    /// Serves `device` on socket `name`.
    pub fn serve(&self, name: &str, device: Arc<VfioDevice>) -> (ServerHandle, PathBuf) {
        let path = self.sock(name);
        let h = Server::serve(&self.ctx, &path, device).unwrap();
        (h, path)
    }
}

/// A memfd of `size` bytes.
pub fn memfd(size: u64) -> File {
    let fd = rustix::fs::memfd_create("guest", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, size).unwrap();
    File::from(fd)
}

/// A hand-written client speaking the wire format directly.
pub struct RawClient {
    /// The connection.
    pub stream: UnixStream,
    next_id: u16,
}

impl RawClient {
    /// Connects to the socket at `path` (reads time out).
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
        Self { stream, next_id: 0 }
    }

    /// Sends a command; returns its id.
    pub fn send(&mut self, cmd: u16, hflags: u32, payload: &[u8], fds: &[OwnedFd]) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send_with_id(id, cmd, hflags, payload, fds);
        id
    }

    /// Sends a command with a chosen message id.
    pub fn send_with_id(
        &mut self,
        id: u16,
        cmd: u16,
        hflags: u32,
        payload: &[u8],
        fds: &[OwnedFd],
    ) {
        let h = Header {
            msg_id: id,
            cmd,
            msg_size: (16 + payload.len()) as u32,
            flags: hflags,
            error_no: 0,
        };
        let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        send_message(self.stream.as_fd(), &h, &[payload], &fds).unwrap();
    }

    /// The next message from the server.
    pub fn recv(&mut self) -> Message {
        let limits = Limits {
            max_data_xfer_size: 64 << 20,
            ..Limits::DEFAULT
        };
        recv_message(self.stream.as_fd(), &limits)
            .unwrap()
            .expect("server closed the connection")
    }

    /// Sends a command and returns its reply (which must come next).
    pub fn call(&mut self, cmd: u16, payload: &[u8], fds: &[OwnedFd]) -> Message {
        let id = self.send(cmd, flags::TYPE_COMMAND, payload, fds);
        let m = self.recv();
        assert_eq!(m.header.flags & flags::TYPE_MASK, flags::TYPE_REPLY);
        assert_eq!({ m.header.msg_id }, id);
        assert_eq!({ m.header.cmd }, cmd);
        m
    }

    /// The errno of an error reply, 0 for success.
    pub fn errno(m: &Message) -> u32 {
        if m.header.flags & flags::ERROR != 0 {
            m.header.error_no
        } else {
            0
        }
    }
}

/// What a client saw of the server's message-based DMA.
#[derive(Debug, Default)]
pub struct DmaLog {
    /// `count` of every DMA_READ, in order.
    pub reads: Vec<u64>,
    /// `count` of every DMA_WRITE, in order.
    pub writes: Vec<u64>,
}

impl RawClient {
    /// Serves the server's DMA_READ / DMA_WRITE from `guest` (which holds
    /// the client memory at IOVA `base`) until the reply to command `id`
    /// arrives; every piece must be at most `max_xfer` bytes. Returns the
    /// reply and what was served.
    pub fn serve_dma_until(
        &mut self,
        id: u16,
        guest: &mut [u8],
        base: u64,
        max_xfer: u64,
    ) -> (Message, DmaLog) {
        let mut log = DmaLog::default();
        loop {
            let m = self.recv();
            if m.header.flags & flags::TYPE_MASK == flags::TYPE_REPLY {
                assert_eq!({ m.header.msg_id }, id);
                return (m, log);
            }
            let (a, data) = wire::DmaAccess::read_from_prefix(&m.payload).unwrap();
            assert!(a.count <= max_xfer, "DMA piece of {} bytes", { a.count });
            let off = usize::try_from(a.addr - base).unwrap();
            let n = a.count as usize;
            let mut reply = a.as_bytes().to_vec();
            match Command(m.header.cmd) {
                Command::DMA_READ => {
                    assert_eq!(m.payload.len(), 16);
                    reply.extend_from_slice(&guest[off..off + n]);
                    log.reads.push(a.count);
                }
                Command::DMA_WRITE => {
                    assert_eq!(data.len(), n);
                    guest[off..off + n].copy_from_slice(data);
                    log.writes.push(a.count);
                }
                other => panic!("unexpected {other}"),
            }
            self.send_with_id(
                m.header.msg_id,
                m.header.cmd,
                flags::TYPE_REPLY,
                &reply,
                &[],
            );
        }
    }
}
