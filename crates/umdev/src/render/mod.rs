//! Human forms of the views (the CLI without `--json`).

pub mod dot;
pub mod list;
pub mod stats;
pub mod table;
pub mod topology;
