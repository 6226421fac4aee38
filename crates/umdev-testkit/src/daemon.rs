//! A `umdev serve` child on a temporary root, and ways to talk to it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

/// The `umdev` binary of the build running the test: next to the test
/// executable's `deps/` directory (where cargo puts both).
pub fn umdev_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/");
    dir.join("umdev")
}

/// How long a daemon may take to say it is ready (generous: the machine
/// may be busy; this bounds a hang, it measures nothing).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running daemon.
pub struct Daemon {
    /// The daemon's root (its `sys/`, `run/` and state live below).
    pub root: PathBuf,
    child: Option<Child>,
    /// The daemon's stderr (its log), kept for failure messages.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `umdev serve --root root` and waits for its ready line.
    pub fn start(root: &Path) -> Self {
        Self::try_start(root, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts it with extra arguments; the error text (with the log) if
    /// it exits before saying it is ready.
    pub fn try_start(root: &Path, extra: &[&str]) -> Result<Self, String> {
        std::fs::create_dir_all(root).unwrap();
        let log = root.with_extension(format!("log{}", rand_suffix()));
        let mut child = Command::new(umdev_bin())
            .arg("serve")
            .arg("--root")
            .arg(root)
            .args(extra)
            .env("UMDEV_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn umdev serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            // Keep draining so the daemon never blocks on stdout.
            for _ in lines {}
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) if line.starts_with("umdev: ready ") => Ok(Self {
                root: root.to_owned(),
                child: Some(child),
                log,
            }),
            other => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Err(format!(
                    "umdev serve did not get ready ({other:?}, {status}):\n{text}"
                ))
            }
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_child(self.child.as_ref().expect("running"))
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> PathBuf {
        self.root.join("run/umdev/control.sock")
    }

    /// The mounted sysfs tree.
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// A new control connection.
    pub fn connect(&self) -> Control {
        Control::connect(&self.control_socket())
    }

    /// One request on a new connection; the reply.
    pub fn request(&self, request: Value) -> Value {
        self.connect().send(&request)
    }

    /// A request that must succeed; its result.
    pub fn ok(&self, op: Value) -> Value {
        let reply = self.request(with_version(op));
        assert_eq!(reply["ok"], true, "{reply}\n{}", self.log_text());
        reply["result"].clone()
    }

    /// Seed 004 through the control socket: unbinds the NVMe function
    /// `bdf` (8086:0953) and lets mdev-pci take it by `new_id`; the name of
    /// the one mdev type it then offers.
    pub fn wrap_nvme_with_mdev_pci(&self, bdf: &str) -> String {
        self.ok(json!({"op": "unbind", "bdf": bdf}));
        self.ok(json!({"op": "new_id", "driver": "mdev-pci", "id": "8086 0953"}));
        let list = self.ok(json!({"op": "list"}));
        let parent = list["parents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == bdf)
            .unwrap_or_else(|| panic!("{bdf} became no mdev parent: {list}"));
        parent["types"][0]["name"].as_str().unwrap().to_owned()
    }

    /// A request that must fail; its errno.
    pub fn errno(&self, op: Value) -> i64 {
        let reply = self.request(with_version(op));
        assert_eq!(reply["ok"], false, "{reply}");
        reply["error"]["errno"].as_i64().expect("errno")
    }

    /// The CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(umdev_bin())
            .args(args)
            .arg("--root")
            .arg(&self.root)
            .output()
            .expect("run umdev")
    }

    /// What the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        kill_process(self.pid(), signal).expect("kill");
    }

    /// SIGTERM, then wait; the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(Signal::TERM);
        self.child.take().unwrap().wait().unwrap()
    }

    /// SIGKILL, then wait (the mount and sockets stay behind).
    pub fn kill(mut self) {
        self.signal(Signal::KILL);
        self.child.take().unwrap().wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_process(Pid::from_child(&child), Signal::TERM);
            let _ = child.wait();
        }
        // Whatever happened, leave no dead mount behind.
        let _ = umdev_sysfs::cleanup_stale_mount(&self.root.join("sys"));
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `op` with `"version": 1`.
pub fn with_version(mut op: Value) -> Value {
    op["version"] = json!(1);
    op
}

/// A control connection speaking raw lines.
pub struct Control {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Control {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("connect to the control socket");
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// Writes one request line.
    pub fn write(&mut self, request: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.stream.write_all(&line)
    }

    /// Writes raw bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one reply line (`None` if the connection ended first).
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => Some(serde_json::from_str(&line).unwrap()),
            _ => None,
        }
    }

    /// A request and its reply.
    pub fn send(&mut self, request: &Value) -> Value {
        self.write(request).unwrap();
        self.read().expect("a reply")
    }
}

/// Socket files under `dir`.
pub fn sockets(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether something is mounted at `path` (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}
