//! `/proc/<pid>/task/<tid>/fail-nth` for the daemon's work
//! (Documentation/fault-injection/fault-injection.rst, fs/proc/base.c
//! `proc_fail_nth_write` / `proc_fail_nth_read`): writing `N` makes the
//! `N`-th fallible step of that thread's next calls fail with ENOMEM,
//! through [`umdev_iommu::failpoint`]; reading gives the steps left, `0`
//! once the failure fired. The state is per calling thread, as the
//! kernel's `task->fail_nth`, and survives the file's close.

use std::collections::HashMap;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::failpoint;

use crate::file::FileOps;
use crate::user::Peer;

/// Threads with an armed count at most (ENOMEM past it): a client cannot
/// grow the table without bound.
const MAX_ARMED: usize = 4096;

/// Longest write the file accepts (`kstrtouint_from_user` reads a
/// number; the kernel bounds it the same way).
const MAX_WRITE: u64 = 64;

/// A thread of a client process.
type Task = (i32, i32);

/// The armed counts of every client thread.
#[derive(Debug, Default)]
pub struct FailNth {
    armed: Mutex<HashMap<Task, u64>>,
}

impl FailNth {
    /// No thread armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, task: Task) -> u64 {
        self.armed.lock().get(&task).copied().unwrap_or(0)
    }

    fn set(&self, task: Task, n: u64) -> Result<(), Errno> {
        let mut armed = self.armed.lock();
        if n == 0 {
            armed.remove(&task);
        } else if armed.len() >= MAX_ARMED && !armed.contains_key(&task) {
            return Err(Errno::NOMEM);
        } else {
            armed.insert(task, n);
        }
        Ok(())
    }

    /// Runs `call` for thread `tid` of `peer` with its count armed on this
    /// daemon thread, and keeps what is left of it.
    pub fn run<T>(&self, peer: Peer, tid: u32, call: impl FnOnce() -> T) -> T {
        let task = (peer.pid(), tid as i32);
        let n = self.get(task);
        if n == 0 {
            return call();
        }
        failpoint::arm(n);
        let out = call();
        let left = failpoint::countdown();
        failpoint::disarm();
        // Lowering an existing entry never needs room.
        let _ = self.set(task, left);
        out
    }

    /// The file of thread `tid` of `peer`.
    pub fn file(self: &std::sync::Arc<Self>, peer: Peer, tid: i32) -> FailNthFile {
        FailNthFile {
            table: self.clone(),
            task: (peer.pid(), tid),
        }
    }
}

/// One open `fail-nth` file.
#[derive(Debug)]
pub struct FailNthFile {
    table: std::sync::Arc<FailNth>,
    task: Task,
}

/// `kstrtouint(s, 0)`: decimal, `0x` hex or `0` octal, one trailing
/// newline allowed.
fn parse_uint(s: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_suffix('\n').unwrap_or(s);
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl FileOps for FailNthFile {
    fn read(&self, peer: Peer, buf: u64, len: u64, offset: Option<u64>) -> Result<i64, Errno> {
        let text = format!("{}\n", self.table.get(self.task));
        let pos = offset.unwrap_or(0);
        let Some(rest) = text.as_bytes().get(pos as usize..) else {
            return Ok(0);
        };
        let n = rest.len().min(len as usize);
        peer.write(buf, &rest[..n]).map_err(|e| e.errno())?;
        Ok(n as i64)
    }

    fn write(&self, peer: Peer, buf: u64, len: u64, _offset: Option<u64>) -> Result<i64, Errno> {
        if len > MAX_WRITE {
            return Err(Errno::INVAL);
        }
        let mut text = vec![0u8; len as usize];
        peer.read(buf, &mut text).map_err(|e| e.errno())?;
        let n = parse_uint(&text).ok_or(Errno::INVAL)?;
        self.table.set(self.task, u64::from(n))?;
        Ok(len as i64)
    }

    fn injects_faults(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn me() -> Peer {
        Peer::new(std::process::id() as i32)
    }

    fn pwrite(f: &FailNthFile, s: &str) -> Result<i64, Errno> {
        f.write(me(), s.as_ptr() as u64, s.len() as u64, Some(0))
    }

    fn pread(f: &FailNthFile) -> String {
        let mut buf = [0u8; 32];
        let n = f
            .read(me(), buf.as_mut_ptr() as u64, buf.len() as u64, Some(0))
            .unwrap();
        String::from_utf8(buf[..n as usize].to_vec()).unwrap()
    }

    #[test]
    fn arms_counts_down_and_reads_zero_once_fired() {
        let table = Arc::new(FailNth::new());
        let f = table.file(me(), 7);
        assert_eq!(pread(&f), "0\n");
        assert_eq!(pwrite(&f, "3"), Ok(1));
        assert_eq!(pread(&f), "3\n");
        // One step taken on thread 7: two left.
        let hit = table.run(me(), 7, || failpoint::should_fail("a"));
        assert!(!hit);
        assert_eq!(pread(&f), "2\n");
        // Another thread is not armed.
        assert!(!table.run(me(), 8, || failpoint::should_fail("a")));
        let hits = table.run(me(), 7, || {
            [failpoint::should_fail("b"), failpoint::should_fail("c")]
        });
        assert_eq!(hits, [false, true]);
        assert_eq!(pread(&f), "0\n");
        // This daemon thread is disarmed again.
        assert!(!failpoint::should_fail("d"));
    }

    #[test]
    fn writes_parse_as_kstrtouint() {
        let table = Arc::new(FailNth::new());
        let f = table.file(me(), 1);
        assert_eq!(pwrite(&f, "0x10\n"), Ok(5));
        assert_eq!(pread(&f), "16\n");
        assert_eq!(pwrite(&f, "010"), Ok(3));
        assert_eq!(pread(&f), "8\n");
        assert_eq!(pwrite(&f, "0"), Ok(1));
        assert_eq!(pread(&f), "0\n");
        for bad in ["", "x", "-1", "1 2", "99999999999"] {
            assert_eq!(pwrite(&f, bad), Err(Errno::INVAL), "{bad:?}");
        }
        assert_eq!(pread(&f), "0\n");
        assert_eq!(
            f.write(me(), 8, 4, Some(0)),
            Err(Errno::FAULT),
            "a bad user pointer"
        );
    }
}
