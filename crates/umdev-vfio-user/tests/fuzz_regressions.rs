//! Every input the fuzz targets ever crashed on (`fuzz/regressions/<target>/`,
//! where `.ci/fuzz.sh` files them) and the hand-written seeds
//! (`fuzz/seeds/<target>/`) run through the same harness the fuzz targets
//! use: no panic, no hang, the device released after each session.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// The files of `fuzz/<kind>/<target>/`, sorted (dotfiles skipped).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn run(target: &str, f: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "{target}: no seeds");
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap();
        eprintln!("{target}: {}", path.display());
        f(&data);
    }
}

#[test]
fn decode_inputs_are_handled() {
    run("decode", harness::decode);
}

#[test]
fn session_inputs_are_handled() {
    run("session", harness::session);
}
