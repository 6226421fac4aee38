//! SIGKILL at random points of a stream of 200 changes, 20 times: every
//! restart loads its state, and holds every change acknowledged before
//! the kill (the one in flight may or may not be there).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use umdev_testkit::daemon::{Daemon, with_version};

const CHANGES: usize = 200;
const KILLS: usize = 20;
/// Functions whose `driver_override` the stream changes.
const OVERRIDDEN: [&str; 3] = ["0000:04:00.0", "0000:06:00.1", "0000:09:01.0"];
/// The function the stream unbinds and binds again.
const TOGGLED: &str = "0000:05:00.0";
const TOGGLED_DRIVER: &str = "nvme";
const MAX_MDEVS: usize = 6;

/// What the daemon should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    mdevs: BTreeMap<String, String>,
    overrides: BTreeMap<String, Option<String>>,
    toggled_bound: bool,
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

/// A valid change of `model` and the model after it.
fn next_change(rng: &mut Rng, model: &Model) -> (Value, Model) {
    let mut after = model.clone();
    let op = match rng.below(4) {
        0 | 1 if model.mdevs.len() < MAX_MDEVS || model.mdevs.is_empty() => {
            let uuid = rng.uuid();
            // mtty (emulated) or an sdma work queue (a PASID of the engine).
            let (parent, mdev_type) = [
                ("mtty", "mtty-1"),
                ("mtty", "mtty-2"),
                ("0000:01:00.0", "idxd-wq"),
            ][rng.below(3) as usize];
            after.mdevs.insert(uuid.clone(), mdev_type.to_owned());
            json!({"op": "create", "parent": parent, "type": mdev_type, "uuid": uuid})
        }
        0 | 1 => {
            let i = rng.below(model.mdevs.len() as u64) as usize;
            let uuid = model.mdevs.keys().nth(i).unwrap().clone();
            after.mdevs.remove(&uuid);
            json!({"op": "remove", "uuid": uuid})
        }
        2 => {
            let bdf = OVERRIDDEN[rng.below(OVERRIDDEN.len() as u64) as usize];
            let value = ["vfio-pci", "mdev-pci", ""][rng.below(3) as usize];
            after.overrides.insert(
                bdf.to_owned(),
                (!value.is_empty()).then(|| value.to_owned()),
            );
            json!({"op": "driver_override", "bdf": bdf, "value": value})
        }
        _ => {
            after.toggled_bound = !model.toggled_bound;
            if model.toggled_bound {
                json!({"op": "unbind", "bdf": TOGGLED, "driver": TOGGLED_DRIVER})
            } else {
                json!({"op": "bind", "bdf": TOGGLED, "driver": TOGGLED_DRIVER})
            }
        }
    };
    (with_version(op), after)
}

/// What the daemon holds, in the model's terms.
fn observe(d: &Daemon) -> Model {
    let list = d.ok(json!({"op": "list"}));
    let mdevs = list["mdevs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["uuid"].as_str().unwrap().to_owned(),
                m["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let topology = d.ok(json!({"op": "topology"}));
    let functions = topology["functions"].as_array().unwrap();
    let function = |bdf: &str| functions.iter().find(|f| f["bdf"] == bdf).unwrap().clone();
    let overrides = OVERRIDDEN
        .iter()
        .map(|b| {
            let value = function(b)["driver_override"].as_str().map(str::to_owned);
            ((*b).to_owned(), value)
        })
        .collect();
    Model {
        mdevs,
        overrides,
        toggled_bound: function(TOGGLED)["driver"] == TOGGLED_DRIVER,
    }
}

#[test]
fn sigkill_during_a_stream_of_changes_never_loses_an_acknowledged_one() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");

    let mut d = Daemon::start(&root);
    let mut model = observe(&d);
    assert!(model.toggled_bound && model.mdevs.is_empty());
    // Kill points: 20 distinct changes of the 200.
    let mut kill_at = std::collections::BTreeSet::new();
    while kill_at.len() < KILLS {
        kill_at.insert(rng.below(CHANGES as u64) as usize);
    }
    let mut restarts = 0;
    let mut in_flight_kept = 0;
    for i in 0..CHANGES {
        let (request, after) = next_change(&mut rng, &model);
        let mut control = d.connect();
        if !kill_at.contains(&i) {
            let reply = control.send(&request);
            assert_eq!(reply["ok"], true, "change {i} {request}: {reply}");
            model = after;
            continue;
        }
        // Kill while the change is in flight: between sending it and
        // (maybe) its reply.
        control.write(&request).unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let pid = d.pid();
        d.kill();
        let reply = control.read();
        let acknowledged = reply.as_ref().is_some_and(|r| r["ok"] == true);
        drop(control);

        d = Daemon::try_start(&root, &[]).unwrap_or_else(|e| {
            panic!("restart {restarts} (seed {seed:#x}) after killing {pid:?}: {e}")
        });
        restarts += 1;
        let seen = observe(&d);
        if acknowledged {
            assert_eq!(seen, after, "change {i} was acknowledged (seed {seed:#x})");
        } else {
            assert!(
                seen == model || seen == after,
                "change {i} in flight (seed {seed:#x}): restored {seen:?}, before {model:?}, after {after:?}"
            );
        }
        if seen == after {
            in_flight_kept += 1;
        }
        model = seen;
    }
    assert_eq!(restarts, KILLS);
    assert_eq!(observe(&d), model);
    eprintln!("{in_flight_kept} of {KILLS} in-flight changes were saved before the kill");
    assert!(d.terminate().success());
}
