//! The tree served over FUSE ([`mount`]).

mod fs;
mod inodes;
mod mount;

use std::sync::Arc;

pub use mount::{MountError, MountHandle, cleanup_stale_mount, mount};

/// Called after every successful attribute write, before the write returns
/// to the writer (see [`mount`]).
pub type OnChange = Arc<dyn Fn() + Send + Sync>;
