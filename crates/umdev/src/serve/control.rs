//! The control socket: accepts connections and answers each request line
//! with one reply line (docs/control.md).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use rustix::io::Errno;
use serde_json::Value;

use super::daemon::Daemon;
use super::error::OpError;
use crate::proto::{ErrorBody, MAX_LINE, Op, PROTOCOL_VERSION, Response};

/// Connections served at once; more are refused with EAGAIN.
const MAX_CONNECTIONS: usize = 64;

/// The listening control socket and its accept thread.
pub struct ControlServer {
    path: PathBuf,
    /// The listening socket, to shut down (which ends a blocked accept).
    listener: UnixListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` (owner-only: mode 0600) and answers requests with
    /// `daemon` from a thread per connection.
    pub fn start(daemon: Arc<Daemon>, path: &Path) -> io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone()?;
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("umdev-control".into())
                .spawn(move || accept_loop(&accepting, &daemon, &stop))?
        };
        Ok(Self {
            path: path.to_owned(),
            listener,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting and removes the socket file. Connections already
    /// open are left to finish (the process is about to exit).
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept (with EINVAL).
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &UnixListener, daemon: &Arc<Daemon>, stop: &AtomicBool) {
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                // Do not spin on a persistent error (EMFILE).
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            live.fetch_sub(1, Ordering::SeqCst);
            let busy = ErrorBody::new(Errno::AGAIN, "too many control connections");
            let _ = write_reply(&mut stream, &Response::err(busy));
            continue;
        }
        let (daemon, live) = (daemon.clone(), live.clone());
        let spawned = std::thread::Builder::new()
            .name("umdev-control-conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &daemon) {
                    tracing::debug!("control connection: {e}");
                }
                live.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!("control connection thread: {e}");
        }
    }
}

fn write_reply(stream: &mut UnixStream, reply: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Answers request lines until the client closes (or sends a line longer
/// than [`MAX_LINE`], which is answered with EINVAL and ends it).
fn serve_connection(stream: UnixStream, daemon: &Daemon) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n > MAX_LINE {
            let err = OpError::Malformed {
                reason: format!("request longer than {MAX_LINE} bytes"),
            };
            return write_reply(&mut writer, &Response::err(err.body()));
        }
        let reply = match parse(&line).and_then(|op| daemon.handle(&op)) {
            Ok(result) => Response::ok(result),
            Err(e) => Response::err(e.body()),
        };
        write_reply(&mut writer, &reply)?;
    }
}

/// Checks the version before the operation, so a newer client gets
/// "unsupported version" rather than "unknown operation".
pub fn parse(line: &[u8]) -> Result<Op, OpError> {
    let malformed = |reason: String| OpError::Malformed { reason };
    let value: Value = serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(malformed("a request is a JSON object".to_owned()));
    };
    let version = fields
        .remove("version")
        .ok_or_else(|| malformed("missing \"version\"".to_owned()))?;
    let version = version
        .as_u64()
        .ok_or_else(|| malformed("\"version\" is not a number".to_owned()))?;
    if version != u64::from(PROTOCOL_VERSION) {
        return Err(OpError::Version { got: version });
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_checked_before_the_operation() {
        let e = parse(br#"{"version":2,"op":"teleport"}"#).unwrap_err();
        assert_eq!(e.errno(), Errno::PROTONOSUPPORT);
        let e = parse(br#"{"op":"list"}"#).unwrap_err();
        assert_eq!(e.errno(), Errno::INVAL);
        let e = parse(br#"{"version":1,"op":"teleport"}"#).unwrap_err();
        assert_eq!(e.errno(), Errno::INVAL);
        assert_eq!(
            parse(b"{\"version\":1,\"op\":\"list\"}\n").unwrap(),
            Op::List
        );
    }
}
