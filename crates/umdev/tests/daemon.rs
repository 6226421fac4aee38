//! `umdev serve` end to end: the control protocol, the CLI, the sockets,
//! the sysfs tree's writes reaching the saved state, shutdown, stale
//! files of a crashed run and the one-daemon-per-root rule.

use std::process::Command;

use serde_json::{Value, json};
use umdev_testkit::daemon::{Control, Daemon, is_mounted, sockets, umdev_bin, with_version};

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";

fn mdev_uuids(list: &Value) -> Vec<String> {
    list["mdevs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn available(list: &Value, parent: &str, mdev_type: &str) -> u64 {
    list["parents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == parent)
        .and_then(|p| {
            p["types"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == mdev_type)
        })
        .unwrap_or_else(|| panic!("no type {mdev_type} on {parent} in {list}"))["available_instances"]
        .as_u64()
        .unwrap()
}

#[test]
fn control_protocol_creates_lists_and_removes_with_kernel_errnos() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));

    let hello = d.ok(json!({"op": "hello"}));
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["pid"], d.pid().as_raw_nonzero().get());
    assert_eq!(hello["sys"], d.sys().display().to_string());

    let before = d.ok(json!({"op": "list"}));
    assert!(mdev_uuids(&before).is_empty());
    let free = available(&before, "mtty", "mtty-1");

    let created = d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": U1}));
    assert_eq!(created["uuid"], U1);
    let list = d.ok(json!({"op": "list"}));
    assert_eq!(mdev_uuids(&list), [U1]);
    assert!(available(&list, "mtty", "mtty-1") < free);
    let mdev = &list["mdevs"][0];
    assert_eq!(
        (mdev["parent"].as_str(), mdev["type"].as_str()),
        (Some("mtty"), Some("mtty-1"))
    );
    // Served at once, on its own socket.
    let served = list["devices"].as_array().unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(
        served[0]["socket"],
        d.root
            .join(format!("run/umdev/{U1}.sock"))
            .display()
            .to_string()
    );
    assert!(d.root.join(format!("run/umdev/{U1}.sock")).exists());

    // The errnos of the same writes through sysfs.
    let eexist = d.errno(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": U1}));
    assert_eq!(eexist, libc::EEXIST as i64);
    let einval =
        d.errno(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": "not-a-uuid"}));
    assert_eq!(einval, libc::EINVAL as i64);
    let enoent = d.errno(json!({"op": "create", "parent": "mtty", "type": "mtty-9", "uuid": U2}));
    assert_eq!(enoent, libc::ENOENT as i64);
    let enoent = d.errno(json!({"op": "create", "parent": "nope", "type": "mtty-1"}));
    assert_eq!(enoent, libc::ENOENT as i64);
    assert_eq!(
        d.errno(json!({"op": "remove", "uuid": U2})),
        libc::ENOENT as i64
    );
    let enodev = d.errno(json!({"op": "driver_override", "bdf": "0000:42:00.0", "value": "x"}));
    assert_eq!(enodev, libc::ENODEV as i64);

    // A random UUID when none is given.
    let random = d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-2"}));
    let random = random["uuid"].as_str().unwrap().to_owned();
    assert_eq!(random.len(), 36);

    d.ok(json!({"op": "remove", "uuid": U1}));
    d.ok(json!({"op": "remove", "uuid": random}));
    let after = d.ok(json!({"op": "list"}));
    assert!(mdev_uuids(&after).is_empty());
    assert_eq!(available(&after, "mtty", "mtty-1"), free);
    assert_eq!(
        sockets(&d.root.join("run/umdev")),
        ["control.sock", "uapi.sock"]
    );
}

#[test]
fn bad_requests_get_errors_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));
    let mut c = Control::connect(&d.control_socket());
    let cases: [(&[u8], i64); 4] = [
        (b"this is not json\n", libc::EINVAL as i64),
        (b"{\"op\":\"list\"}\n", libc::EINVAL as i64),
        (
            b"{\"version\":2,\"op\":\"list\"}\n",
            libc::EPROTONOSUPPORT as i64,
        ),
        (b"{\"version\":1,\"op\":\"reboot\"}\n", libc::EINVAL as i64),
    ];
    for (line, errno) in cases {
        c.write_raw(line);
        let reply = c.read().expect("a reply");
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["version"], 1);
        assert_eq!(reply["error"]["errno"], errno, "{reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    // Same connection, a good request.
    let reply = c.send(&with_version(json!({"op": "groups"})));
    assert_eq!(reply["ok"], true);
    let groups = reply["result"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g["devices"] == json!(["0000:03:00.0", "0000:04:00.0", "0000:04:00.1"]))
    );
}

#[test]
fn cli_drives_the_daemon_with_tables_json_and_errno_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));

    let out = d.cli(&[
        "create", "--parent", "mtty", "--type", "mtty-2", "--uuid", U1,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), U1);

    let out = d.cli(&[
        "create", "--parent", "mtty", "--type", "mtty-2", "--uuid", U1,
    ]);
    assert_eq!(out.status.code(), Some(libc::EEXIST));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EEXIST"), "{err}");

    let out = d.cli(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["PARENT", "mtty-2", "Dual port serial", U1, "AVAILABLE"] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let out = d.cli(&["list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mdev_uuids(&v), [U1]);

    let out = d.cli(&["topology", "--dot"]);
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph umdev {"), "{dot}");
    assert!(dot.contains(&format!("\"mtty\" -> \"{U1}\"")), "{dot}");
    assert!(
        dot.contains("\"0000:00:01.0\" -> \"0000:01:00.0\""),
        "{dot}"
    );

    let out = d.cli(&["topology"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PCI tree:") && text.contains(&format!("mdev {U1}")),
        "{text}"
    );

    let out = d.cli(&["stats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["units"][0]["name"], "dmar0");
    assert!(
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == U1)
    );
    let out = d.cli(&["faults", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["units"][0]["name"], "dmar0");

    let out = d.cli(&["remove", U1]);
    assert!(out.status.success());
    let out = d.cli(&["remove", U1]);
    assert_eq!(out.status.code(), Some(libc::ENOENT));

    // No daemon: a clear error.
    let out = Command::new(umdev_bin())
        .args(["list", "--root"])
        .arg(dir.path().join("elsewhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `umdev serve"));
}

#[test]
fn a_vfio_pci_binding_is_served_and_unserved_with_the_binding() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));
    let nvme = "0000:05:00.0";
    let socket = d.root.join(format!("run/umdev/{nvme}.sock"));
    d.ok(json!({"op": "unbind", "bdf": nvme}));
    d.ok(json!({"op": "driver_override", "bdf": nvme, "value": "vfio-pci"}));
    d.ok(json!({"op": "bind", "driver": "vfio-pci", "bdf": nvme}));
    assert!(socket.exists());
    let list = d.ok(json!({"op": "list"}));
    assert!(
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == nvme && x["kind"] == "pci")
    );
    d.ok(json!({"op": "unbind", "bdf": nvme, "driver": "vfio-pci"}));
    assert!(!socket.exists());
}

#[test]
fn sysfs_writes_are_saved_before_they_return_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::start(&root);
    let create = d
        .sys()
        .join("class/mdev_bus/mtty/mdev_supported_types/mtty-1/create");
    std::fs::write(&create, U1).unwrap();
    // Saved by the time write(2) returned.
    let state = std::fs::read_to_string(root.join("var/lib/umdev/state.json")).unwrap();
    assert!(state.contains(U1), "{state}");
    assert!(d.root.join(format!("run/umdev/{U1}.sock")).exists());
    let err = std::fs::write(&create, U1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    d.kill();

    let d = Daemon::start(&root);
    assert!(d.log_text().contains("stale"), "{}", d.log_text());
    let list = d.ok(json!({"op": "list"}));
    assert_eq!(mdev_uuids(&list), [U1]);
    assert!(d.sys().join(format!("bus/mdev/devices/{U1}")).exists());
    std::fs::write(d.sys().join(format!("bus/mdev/devices/{U1}/remove")), "1").unwrap();
    let state = std::fs::read_to_string(root.join("var/lib/umdev/state.json")).unwrap();
    assert!(!state.contains(U1), "{state}");
}

#[test]
fn sigterm_unmounts_and_removes_every_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::start(&root);
    d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": U1}));
    d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": U2}));
    assert!(is_mounted(&d.sys()));
    // The control socket, the uAPI socket and one per mdev.
    assert_eq!(sockets(&root.join("run/umdev")).len(), 4);
    let status = d.terminate();
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&root.join("sys")));
    assert!(sockets(&root.join("run/umdev")).is_empty());
    // And the state was kept.
    let d = Daemon::start(&root);
    let mut uuids = mdev_uuids(&d.ok(json!({"op": "list"})));
    uuids.sort();
    assert_eq!(uuids, [U1, U2]);
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused_and_leaves_the_first_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::start(&root);
    let out = Command::new(umdev_bin())
        .args(["serve", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(libc::EWOULDBLOCK));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another umdev daemon"), "{err}");
    assert!(
        err.contains(&format!("pid {}", d.pid().as_raw_nonzero())),
        "{err}"
    );
    // The first one still answers, with its mount and socket in place.
    d.ok(json!({"op": "hello"}));
    assert!(is_mounted(&d.sys()));
}

/// The function `bdf` in a `topology` result.
fn function(topology: &Value, bdf: &str) -> Value {
    topology["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["bdf"] == bdf)
        .unwrap_or_else(|| panic!("no {bdf} in {topology}"))
        .clone()
}

#[test]
fn dynamic_ids_vfs_overrides_bindings_and_mdevs_are_restored_in_a_working_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::start(&root);
    let (nvme, pf, vf0, vf1) = (
        "0000:05:00.0",
        "0000:07:00.0",
        "0000:07:02.0",
        "0000:07:02.1",
    );
    // mdev-pci takes the NVMe function through a dynamic id (seed 004).
    let mdev_type = d.wrap_nvme_with_mdev_pci(nvme);
    d.ok(json!({"op": "create", "parent": nvme, "type": mdev_type, "uuid": U1}));
    // Two VFs, the second moved to vfio-pci.
    d.ok(json!({"op": "sriov_numvfs", "bdf": pf, "num_vfs": 2}));
    d.ok(json!({"op": "driver_override", "bdf": vf1, "value": "vfio-pci"}));
    d.ok(json!({"op": "unbind", "bdf": vf1}));
    d.ok(json!({"op": "bind", "driver": "vfio-pci", "bdf": vf1}));
    let before = d.ok(json!({"op": "topology"}));
    d.kill();

    let d = Daemon::start(&root);
    assert!(!d.log_text().contains("not restored"), "{}", d.log_text());
    let after = d.ok(json!({"op": "topology"}));
    for bdf in [nvme, pf, vf0, vf1] {
        assert_eq!(function(&after, bdf), function(&before, bdf), "{bdf}");
    }
    assert_eq!(function(&after, nvme)["driver"], "mdev-pci");
    assert_eq!(function(&after, pf)["sriov"], json!([2, 4]));
    assert_eq!(function(&after, vf0)["driver"], "iavf");
    assert_eq!(function(&after, vf1)["driver"], "vfio-pci");
    let mdevs = after["mdevs"].as_array().unwrap();
    assert_eq!(mdevs.len(), 1);
    assert_eq!(
        (mdevs[0]["uuid"].as_str(), mdevs[0]["parent"].as_str()),
        (Some(U1), Some(nvme))
    );
    let mut expected = vec![
        "control.sock".to_owned(),
        format!("{vf1}.sock"),
        format!("{U1}.sock"),
        "uapi.sock".to_owned(),
    ];
    expected.sort();
    assert_eq!(sockets(&root.join("run/umdev")), expected);
}

#[test]
fn a_state_entry_that_fails_is_logged_and_the_rest_applied() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let state_dir = root.join("var/lib/umdev");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = json!({
        "version": 1,
        "platform": "elsewhere.toml",
        "functions": [
            {"bdf": "0000:42:00.0", "driver": "vfio-pci", "driver_override": null,
             "sriov_numvfs": null, "virtfn": false},
            {"bdf": "0000:09:01.0", "driver": "e1000", "driver_override": "e1000",
             "sriov_numvfs": null, "virtfn": false}
        ],
        "dynamic_ids": [],
        "mdevs": [
            {"uuid": U1, "parent": "mtty", "type": "mtty-1"},
            {"uuid": U2, "parent": "0000:42:00.0", "type": "nope"}
        ]
    });
    std::fs::write(state_dir.join("state.json"), state.to_string()).unwrap();
    let d = Daemon::start(&root);
    let log = d.log_text();
    assert!(log.contains("not restored: function 0000:42:00.0"), "{log}");
    assert!(log.contains(&format!("not restored: mdev {U2}")), "{log}");
    assert!(log.contains("elsewhere.toml"), "{log}");
    assert_eq!(mdev_uuids(&d.ok(json!({"op": "list"}))), [U1]);
    let topology = d.ok(json!({"op": "topology"}));
    assert_eq!(
        function(&topology, "0000:09:01.0")["driver_override"],
        "e1000"
    );
}

#[test]
fn an_unreadable_state_file_is_moved_aside_and_the_daemon_starts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let state_dir = root.join("var/lib/umdev");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("state.json"), "{ truncated").unwrap();
    let d = Daemon::start(&root);
    assert!(mdev_uuids(&d.ok(json!({"op": "list"}))).is_empty());
    assert_eq!(
        std::fs::read_to_string(state_dir.join("state.json.bad")).unwrap(),
        "{ truncated"
    );
    // A fresh, loadable state took its place.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["version"], 1);
}

#[test]
fn a_root_too_long_for_socket_addresses_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r".repeat(80));
    let out = Command::new(umdev_bin())
        .args(["serve", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too long"), "{err}");
    assert!(!root.exists(), "nothing created");
}

#[test]
fn without_the_sysfs_tree_the_daemon_still_serves_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let d = Daemon::try_start(&root, &["--no-sysfs"]).unwrap();
    assert_eq!(d.ok(json!({"op": "hello"}))["sys"], Value::Null);
    assert!(!is_mounted(&root.join("sys")));
    d.ok(json!({"op": "create", "parent": "mtty", "type": "mtty-1", "uuid": U1}));
    assert!(root.join(format!("run/umdev/{U1}.sock")).exists());
    assert!(d.terminate().success());
    let d = Daemon::try_start(&root, &["--no-sysfs"]).unwrap();
    assert_eq!(mdev_uuids(&d.ok(json!({"op": "list"}))), [U1]);
}

/// The seed 004 recipe, as the shell script `tests/sysfs/seed004.sh`, run
/// against this daemon's tree bound over `/sys`; the model agrees after.
#[test]
fn seed_004_recipe_runs_literally_against_the_daemons_mount() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("root"));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sysfs/seed004.sh");
    let out = Command::new(script)
        .arg(d.sys())
        .output()
        .expect("run seed004.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seed004.sh failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("second create: ENOSPC"), "{stdout}");
    let nvme = function(&d.ok(json!({"op": "topology"})), "0000:05:00.0");
    assert_eq!(nvme["driver"], "mdev-pci", "{nvme}");
    let list = d.ok(json!({"op": "list"}));
    assert!(mdev_uuids(&list).is_empty(), "{list}");
}
