//! The CLI's side of the control protocol.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde_json::Value;

use crate::paths::Layout;
use crate::proto::{ErrorBody, Op, PROTOCOL_VERSION, Request, Response};

/// Errors of talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers at the control socket.
    #[error("cannot reach the umdev daemon at {path}; is `umdev serve --root {root}` running?")]
    Connect {
        /// The control socket.
        path: PathBuf,
        /// The root it belongs to.
        root: String,
        /// The error.
        source: io::Error,
    },
    /// The connection failed mid-request.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The reply is not of this protocol.
    #[error("malformed reply from the daemon: {0}")]
    Protocol(String),
    /// The daemon refused the request.
    #[error("{} ({}): {}", .0.name, .0.errno, .0.message)]
    Refused(ErrorBody),
}

impl ClientError {
    /// The Linux errno of the failure.
    pub fn errno(&self) -> rustix::io::Errno {
        use rustix::io::Errno;
        match self {
            ClientError::Connect { source, .. } | ClientError::Io(source) => source
                .raw_os_error()
                .map_or(Errno::IO, Errno::from_raw_os_error),
            ClientError::Protocol(_) => Errno::PROTO,
            ClientError::Refused(body) => Errno::from_raw_os_error(body.errno),
        }
    }
}

/// A connection to the daemon's control socket.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the control socket of `layout`'s root.
    pub fn connect(layout: &Layout) -> Result<Self, ClientError> {
        let path = layout.control_socket();
        let stream = UnixStream::connect(&path).map_err(|source| ClientError::Connect {
            root: layout.root().display().to_string(),
            path,
            source,
        })?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends `op` and waits for its reply; the result of a success.
    pub fn call(&mut self, op: Op) -> Result<Value, ClientError> {
        let request = Request {
            version: PROTOCOL_VERSION,
            op,
        };
        let mut line = serde_json::to_vec(&request).map_err(io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(ClientError::Protocol(
                "the daemon closed the connection".to_owned(),
            ));
        }
        let reply: Response =
            serde_json::from_str(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
        match (reply.ok, reply.result, reply.error) {
            (true, Some(result), _) => Ok(result),
            (false, _, Some(error)) => Err(ClientError::Refused(error)),
            _ => Err(ClientError::Protocol(
                "reply has neither result nor error".to_owned(),
            )),
        }
    }
}
