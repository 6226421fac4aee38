//! End to end: a real QEMU (`vfio-user-pci`, TCG) boots a real Linux guest
//! against a running `umdev serve` (`tests/e2e/run.sh`, issue 7).
//!
//! Needs root and the shared QEMU runner set up
//! (`../shared/tools/qemu-vfio-user/setup.sh`, which `./test.sh` runs): a missing
//! setup is a failure, not a skip. Console logs of every guest are kept in
//! `target/tmp/e2e/<case>/` (the suite prints the directory).

use std::path::Path;
use std::process::Command;

#[test]
fn qemu_guests_drive_umdev_mdevs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    let status = Command::new(repo.join("tests/e2e/run.sh"))
        .arg("--out")
        .arg(&out)
        .env("UMDEV_BIN", env!("CARGO_BIN_EXE_umdev"))
        .status()
        .expect("run tests/e2e/run.sh");
    assert!(
        status.success(),
        "end-to-end suite failed ({status}); see the summary above and the logs in {}",
        out.display()
    );
}
