//! Every input the `frames` fuzz target ever crashed on
//! (`fuzz/regressions/frames/`, where `.ci/fuzz.sh` files them) and the
//! hand-written seeds (`fuzz/seeds/frames/`) through the harness the fuzz
//! target uses: the daemon answers or closes, never panics or hangs.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

#[test]
fn seeds_and_regressions_run_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind).join("frames");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        for f in files {
            eprintln!("frames: {}", f.display());
            harness::frames(&std::fs::read(&f).unwrap());
            n += 1;
        }
    }
    assert!(n >= 9, "the seeds are there ({n} inputs)");
}
