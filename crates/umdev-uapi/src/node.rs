//! The nodes a client can open, by path: the daemon's half of `open(2)`.
//! The preload sends every path it routes; what is not a node here is
//! ENOENT, as a missing `/dev` entry would be.
//!
//! - `/dev/iommu`: a new iommufd context (drivers/iommu/iommufd/main.c
//!   `iommufd_fops_open`);
//! - `/proc/self/task/<tid>/fail-nth`, `/proc/<pid>/task/<tid>/fail-nth`,
//!   `/proc/thread-self/fail-nth`: the caller's own threads only (another
//!   process's would need ptrace rights over it: EACCES).

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::iommu::Iommu;
use umdev_iommu::memory::HostMemory;
use umdev_iommufd::Ictx;
use umdev_iommufd::selftest::MockBus;

use crate::fail_nth::FailNth;
use crate::file::FileOps;
use crate::ioctl::IommufdFile;
use crate::peer_mem::PeerMemory;
use crate::test_cmd::Selftest;
use crate::user::Peer;

/// A node a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// `/dev/iommu`.
    Iommu,
    /// The fail-nth file of thread `tid` of process `pid` (`None`: the
    /// caller).
    FailNth {
        /// The process the path names.
        pid: Option<i32>,
        /// The thread (`None`: the calling thread).
        tid: Option<i32>,
    },
}

impl Node {
    /// The node `path` names, if any.
    pub fn parse(path: &str) -> Option<Self> {
        if path == "/dev/iommu" {
            return Some(Node::Iommu);
        }
        if path == "/proc/thread-self/fail-nth" {
            return Some(Node::FailNth {
                pid: None,
                tid: None,
            });
        }
        let rest = path.strip_prefix("/proc/")?.strip_suffix("/fail-nth")?;
        let (pid, tid) = rest.split_once("/task/")?;
        let pid = match pid {
            "self" => None,
            n => Some(n.parse().ok().filter(|&p: &i32| p > 0)?),
        };
        let tid = tid.parse().ok().filter(|&t: &i32| t > 0)?;
        Some(Node::FailNth {
            pid,
            tid: Some(tid),
        })
    }
}

/// What opening a node needs: the IOMMU the contexts use and, with the
/// test mock, its bus.
pub struct Nodes {
    iommu: Arc<Iommu>,
    memory: Arc<HostMemory>,
    mock: Option<Arc<MockBus>>,
    fail_nth: Arc<FailNth>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("selftest", &self.mock.is_some())
            .finish_non_exhaustive()
    }
}

impl Nodes {
    /// Contexts on `iommu`; with `mock`, on the mock bus's IOMMU with
    /// IOMMU_TEST_CMD enabled (the kernel's `CONFIG_IOMMUFD_TEST`).
    pub fn new(iommu: Arc<Iommu>, mock: Option<Arc<MockBus>>) -> Self {
        let iommu = mock.as_ref().map_or(iommu, |bus| bus.iommu().clone());
        Self {
            iommu,
            memory: HostMemory::new(),
            mock,
            fail_nth: Arc::new(FailNth::new()),
        }
    }

    /// The fail-nth table of every client thread.
    pub fn fail_nth(&self) -> &FailNth {
        &self.fail_nth
    }

    /// `open(path)` from thread `tid` of `peer`.
    pub fn open(&self, peer: Peer, tid: u32, path: &str) -> Result<Box<dyn FileOps>, Errno> {
        match Node::parse(path).ok_or(Errno::NOENT)? {
            Node::Iommu => {
                let ictx = self
                    .fail_nth
                    .run(peer, tid, || Ictx::new(self.iommu.clone()));
                Ok(Box::new(IommufdFile {
                    ictx,
                    memory: PeerMemory::new(self.memory.clone()),
                    selftest: self.mock.clone().map(Selftest::new),
                }))
            }
            Node::FailNth { pid, tid: task } => {
                if pid.is_some_and(|p| p != peer.pid()) {
                    return Err(Errno::ACCESS);
                }
                let task = task.unwrap_or(tid as i32);
                let dir = format!("/proc/{}/task/{task}", peer.pid());
                if !std::path::Path::new(&dir).exists() {
                    return Err(Errno::NOENT);
                }
                Ok(Box::new(self.fail_nth.file(peer, task)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(Node::parse("/dev/iommu"), Some(Node::Iommu));
        assert_eq!(
            Node::parse("/proc/self/task/12/fail-nth"),
            Some(Node::FailNth {
                pid: None,
                tid: Some(12)
            })
        );
        assert_eq!(
            Node::parse("/proc/40/task/41/fail-nth"),
            Some(Node::FailNth {
                pid: Some(40),
                tid: Some(41)
            })
        );
        assert_eq!(
            Node::parse("/proc/thread-self/fail-nth"),
            Some(Node::FailNth {
                pid: None,
                tid: None
            })
        );
        for bad in [
            "/dev/iommu0",
            "/dev/iommu/",
            "/proc/self/task/x/fail-nth",
            "/proc/0/task/1/fail-nth",
            "/proc/self/task/1/fail-nth/",
            "/proc/self/fail-nth",
            "",
        ] {
            assert_eq!(Node::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fail_nth_of_another_process_or_a_missing_thread() {
        let nodes = Nodes::new(MockBus::new().iommu().clone(), None);
        let me = Peer::new(std::process::id() as i32);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(nodes.open(me, tid, "/proc/thread-self/fail-nth").is_ok());
        assert_eq!(
            nodes.open(me, tid, "/proc/1/task/1/fail-nth").err(),
            Some(Errno::ACCESS)
        );
        assert_eq!(
            nodes
                .open(me, tid, &format!("/proc/self/task/{}/fail-nth", i32::MAX))
                .err(),
            Some(Errno::NOENT)
        );
        assert_eq!(nodes.open(me, tid, "/dev/null").err(), Some(Errno::NOENT));
    }
}
