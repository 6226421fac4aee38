//! Debian's `mdevctl` (1.2.0, no alternate root) as a real client of the
//! mounted tree: each command runs in a private mount namespace with the
//! tree bound over `/sys` and a fresh state directory over
//! `/etc/mdevctl.d`. Needs root and the `mdevctl` package; without it the
//! test fails (CI installs it).

use std::path::Path;
use std::process::Command;

use umdev_testkit::sysfs::Rig;
use umdev_vfio::mdev::MdevUuid;

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";
const U3: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1003";

/// The namespace wrapper of mdevctl.md §3.2.
const WRAPPER: &str = r#"#!/bin/sh
root="$1"; shift
exec unshare --mount --propagation private sh -c '
  mount --bind "$0/sys" /sys &&
  mount --bind "$0/etc/mdevctl.d" /etc/mdevctl.d &&
  exec mdevctl "$@"' "$root" "$@"
"#;

struct Mdevctl<'a> {
    m: &'a Rig,
    wrapper: std::path::PathBuf,
}

impl<'a> Mdevctl<'a> {
    fn new(m: &'a Rig) -> Self {
        let found = Command::new("sh")
            .args(["-c", "command -v mdevctl"])
            .output()
            .expect("run sh");
        assert!(
            found.status.success(),
            "mdevctl is not installed: this test needs Debian's mdevctl package; \
             run the tests with ./test.sh, which installs it"
        );
        let etc = m.root().join("etc/mdevctl.d/scripts.d");
        std::fs::create_dir_all(etc.join("callouts")).unwrap();
        std::fs::create_dir_all(etc.join("notifiers")).unwrap();
        let wrapper = m.root().join("mdevctl-ns");
        std::fs::write(&wrapper, WRAPPER).unwrap();
        Self { m, wrapper }
    }

    /// Runs `mdevctl args…`; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("sh")
            .arg(&self.wrapper)
            .arg(self.m.root())
            .args(args)
            .output()
            .expect("run mdevctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `mdevctl args…`, asserting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(
            ok,
            "mdevctl {args:?} failed:\nstdout:\n{out}\nstderr:\n{err}"
        );
        out
    }

    fn state(&self, parent: &str, uuid: &str) -> std::path::PathBuf {
        self.m.root().join("etc/mdevctl.d").join(parent).join(uuid)
    }
}

/// What `mdevctl types` prints for the model's parents (mdevctl 1.2.0
/// main.rs `supported_types`: types sorted by name, description lines
/// joined with ", ", and a final empty line).
fn expected_types(m: &Rig) -> String {
    let mut out = String::new();
    let mut parents = m.host.bus.parents();
    parents.sort_by_key(|p| p.device().id.to_string());
    for p in parents {
        out.push_str(&format!("{}\n", p.device().id));
        let mut types = p.types();
        types.sort_by_key(|t| t.name());
        for t in types {
            out.push_str(&format!(
                "  {}\n    Available instances: {}\n    Device API: {}\n    Name: {}\n",
                t.name(),
                t.available_instances(),
                t.device_api(),
                t.pretty_name()
            ));
            if let Some(d) = t.description() {
                let d = d.trim_end().replace('\n', ", ");
                out.push_str(&format!("    Description: {d}\n"));
            }
        }
    }
    out.push('\n');
    out
}

/// What `mdevctl list` prints for the model's mdevs when none is defined
/// (main.rs `list_command`: by parent, then UUID; a final empty line).
fn expected_list(m: &Rig) -> String {
    let mut lines: Vec<(String, String, String)> = m
        .host
        .bus
        .devices()
        .iter()
        .map(|d| {
            (
                d.parent().id.to_string(),
                d.uuid().to_string(),
                d.type_name().to_owned(),
            )
        })
        .collect();
    lines.sort();
    let mut out: String = lines
        .into_iter()
        .map(|(p, u, t)| format!("{u} {p} {t} manual\n"))
        .collect();
    out.push('\n');
    out
}

fn uuid(s: &str) -> MdevUuid {
    s.parse().unwrap()
}

fn type_of(m: &Rig, u: &str) -> Option<String> {
    m.host.bus.find(uuid(u)).map(|d| d.type_name().to_owned())
}

#[test]
fn debian_mdevctl_drives_the_tree() {
    let m = Rig::new();
    let ctl = Mdevctl::new(&m);

    // A PCI parent too: 0000:05:00.0 moved to mdev-pci through the tree.
    m.bash_ok(
        "echo 0000:05:00.0 > bus/pci/devices/0000:05:00.0/driver/unbind && \
         echo mdev-pci > bus/pci/devices/0000:05:00.0/driver_override && \
         echo 0000:05:00.0 > bus/pci/drivers/mdev-pci/bind",
    );
    let pci_type = m
        .bash_ok("ls bus/pci/devices/0000:05:00.0/mdev_supported_types")
        .trim()
        .to_owned();

    // types: exactly what the model says.
    assert_eq!(ctl.ok(&["types"]), expected_types(&m));

    // start --parent --type --uuid, on the mtty parent and the PCI one.
    ctl.ok(&[
        "start", "--parent", "mtty", "--type", "mtty-1", "--uuid", U1,
    ]);
    assert_eq!(type_of(&m, U1).as_deref(), Some("mtty-1"));
    ctl.ok(&[
        "start",
        "--parent",
        "0000:05:00.0",
        "--type",
        &pci_type,
        "--uuid",
        U3,
    ]);
    assert_eq!(type_of(&m, U3).as_deref(), Some(pci_type.as_str()));
    assert_eq!(ctl.ok(&["types"]), expected_types(&m), "counts went down");
    let (ok, _, err) = ctl.run(&["start", "--parent", "0000:05:00.0", "--type", &pci_type]);
    assert!(!ok);
    assert!(err.contains("No available instances"), "{err}");

    // list: the active devices as the model has them.
    assert_eq!(ctl.ok(&["list"]), expected_list(&m));
    assert_eq!(
        expected_list(&m),
        format!("{U3} 0000:05:00.0 {pci_type} manual\n{U1} mtty mtty-1 manual\n\n")
    );

    // define, list --defined, start by UUID.
    ctl.ok(&[
        "define", "--uuid", U2, "--parent", "mtty", "--type", "mtty-2",
    ]);
    assert!(ctl.state("mtty", U2).is_file());
    assert!(m.host.bus.find(uuid(U2)).is_none(), "define does not start");
    assert_eq!(
        ctl.ok(&["list", "--defined"]),
        format!("{U2} mtty mtty-2 manual\n\n")
    );
    ctl.ok(&["start", "--uuid", U2]);
    assert_eq!(type_of(&m, U2).as_deref(), Some("mtty-2"));
    assert_eq!(
        ctl.ok(&["list", "--defined"]),
        format!("{U2} mtty mtty-2 manual (active)\n\n")
    );
    assert!(
        ctl.ok(&["list"])
            .contains(&format!("{U2} mtty mtty-2 manual (defined)\n"))
    );
    let (ok, _, err) = ctl.run(&["start", "--uuid", U2]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    // stop, undefine.
    for u in [U1, U2, U3] {
        ctl.ok(&["stop", "--uuid", u]);
        assert!(m.host.bus.find(uuid(u)).is_none(), "{u} stopped");
    }
    assert_eq!(ctl.ok(&["list"]), "\n");
    ctl.ok(&["undefine", "--uuid", U2]);
    assert!(!ctl.state("mtty", U2).exists());
    assert_eq!(ctl.ok(&["list", "--defined"]), "\n");
    assert_eq!(ctl.ok(&["types"]), expected_types(&m), "counts are back");
    assert!(Path::new(&m.sys()).join("bus/mdev/devices").is_dir());
}
