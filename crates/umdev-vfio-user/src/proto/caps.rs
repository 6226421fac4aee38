//! VERSION capabilities: what a client offers (lenient: unknown, obsolete
//! or missing keys are fine, as is no JSON at all) and what this server
//! answers (only what it supports).

use serde_json::{Map, Value, json};

use super::error::ProtoError;
use super::{Limits, MAX_DMA_MAPS, PAGE_SIZE};

/// The spec default of `max_msg_fds`.
const DEFAULT_MAX_MSG_FDS: u32 = 1;
/// The spec default of `max_data_xfer_size`.
const DEFAULT_MAX_DATA_XFER_SIZE: u32 = 1 << 20;

/// The capabilities a client offered, with the spec defaults for what it
/// left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCaps {
    /// fds the client accepts per message from us.
    pub max_msg_fds: u32,
    /// Largest DMA_READ / DMA_WRITE `count` the client accepts.
    pub max_data_xfer_size: u32,
    /// The client said `"write_multiple": true`.
    pub write_multiple: bool,
}

impl Default for ClientCaps {
    fn default() -> Self {
        Self {
            max_msg_fds: DEFAULT_MAX_MSG_FDS,
            max_data_xfer_size: DEFAULT_MAX_DATA_XFER_SIZE,
            write_multiple: false,
        }
    }
}

impl ClientCaps {
    /// Parses the JSON part of a VERSION payload (possibly empty, possibly
    /// NUL-terminated). EINVAL for text that is not a JSON object or has a
    /// known key of the wrong type; a zero `max_data_xfer_size` is refused
    /// too (no DMA message could ever be sent).
    pub fn parse(json: &[u8]) -> Result<Self, ProtoError> {
        let text = match json.iter().position(|&b| b == 0) {
            Some(nul) => &json[..nul],
            None => json,
        };
        let mut caps = Self::default();
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(caps);
        }
        let bad = |what: &'static str| ProtoError::BadVersion { what };
        let root: Value = serde_json::from_slice(text).map_err(|_| bad("JSON"))?;
        let root = root.as_object().ok_or(bad("JSON root"))?;
        let Some(c) = root.get("capabilities") else {
            return Ok(caps);
        };
        let c = c.as_object().ok_or(bad("capabilities"))?;
        let number = |key: &'static str, default: u32| -> Result<u32, ProtoError> {
            match c.get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_u64()
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .ok_or(bad(key)),
            }
        };
        caps.max_msg_fds = number("max_msg_fds", DEFAULT_MAX_MSG_FDS)?;
        caps.max_data_xfer_size = number("max_data_xfer_size", DEFAULT_MAX_DATA_XFER_SIZE)?;
        if caps.max_data_xfer_size == 0 {
            return Err(bad("max_data_xfer_size"));
        }
        caps.write_multiple = match c.get("write_multiple") {
            None => false,
            Some(v) => v.as_bool().ok_or(bad("write_multiple"))?,
        };
        Ok(caps)
    }
}

/// The JSON of this server's VERSION reply (NUL-terminated): what it
/// supports, within what the client offered. No `migration` (not
/// implemented) and no `twin_socket`; `write_multiple` only to a client
/// that offered it.
pub fn server_json(limits: &Limits, client: &ClientCaps) -> Vec<u8> {
    let mut c = Map::new();
    c.insert("max_msg_fds".into(), json!(limits.max_msg_fds));
    c.insert(
        "max_data_xfer_size".into(),
        json!(limits.max_data_xfer_size),
    );
    c.insert("pgsizes".into(), json!(PAGE_SIZE));
    c.insert("max_dma_maps".into(), json!(MAX_DMA_MAPS));
    if client.write_multiple {
        c.insert("write_multiple".into(), json!(true));
    }
    let mut out = serde_json::to_vec(&json!({ "capabilities": c })).expect("a JSON map");
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_variants_parse() {
        let qemu = br#"{"capabilities": {"pgsizes": 4096, "max_msg_fds": 16, "max_dma_maps": 65535, "max_data_xfer_size": 1048576, "migration": {"max_bitmap_size": 268435456, "pgsize": 4096}, "write_multiple": true}}"#;
        let c = ClientCaps::parse(qemu).unwrap();
        assert_eq!((c.max_msg_fds, c.write_multiple), (16, true));
        let sample = b"{\"capabilities\":{\"max_msg_fds\":32,\"max_data_xfer_size\":1024}}\0";
        let c = ClientCaps::parse(sample).unwrap();
        assert_eq!((c.max_msg_fds, c.max_data_xfer_size), (32, 1024));
        assert_eq!(ClientCaps::parse(b"").unwrap(), ClientCaps::default());
        assert_eq!(ClientCaps::parse(b"\0").unwrap(), ClientCaps::default());
        assert_eq!(ClientCaps::parse(b"{}").unwrap(), ClientCaps::default());
        let twin = br#"{"capabilities":{"twin_socket":{"supported":true}}}"#;
        assert_eq!(ClientCaps::parse(twin).unwrap(), ClientCaps::default());
    }

    #[test]
    fn malformed_caps_are_einval() {
        for bad in [
            &b"{"[..],
            b"[1]",
            br#"{"capabilities": 3}"#,
            br#"{"capabilities": {"max_msg_fds": "x"}}"#,
            br#"{"capabilities": {"max_data_xfer_size": 0}}"#,
            br#"{"capabilities": {"write_multiple": 1}}"#,
        ] {
            let e = ClientCaps::parse(bad).unwrap_err();
            assert_eq!(e.errno(), rustix::io::Errno::INVAL);
        }
    }

    #[test]
    fn the_reply_advertises_only_what_is_supported() {
        let json = server_json(&Limits::DEFAULT, &ClientCaps::default());
        assert_eq!(json.last(), Some(&0));
        let v: Value = serde_json::from_slice(&json[..json.len() - 1]).unwrap();
        let c = v["capabilities"].as_object().unwrap();
        assert_eq!(c["max_msg_fds"], 16);
        assert_eq!(c["pgsizes"], 4096);
        assert!(!c.contains_key("migration"));
        assert!(!c.contains_key("write_multiple"));
        let wm = ClientCaps {
            write_multiple: true,
            ..ClientCaps::default()
        };
        let json = server_json(&Limits::DEFAULT, &wm);
        let v: Value = serde_json::from_slice(&json[..json.len() - 1]).unwrap();
        assert_eq!(v["capabilities"]["write_multiple"], true);
    }
}
