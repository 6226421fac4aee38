//! Random create/remove sequences on the mtty parent through the tree,
//! against a reference model of its port pool: every errno, every
//! `available_instances` and every directory listing must match.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use proptest::prelude::*;
use rustix::io::Errno;
use umdev_devices::host::Host;
use umdev_sysfs::Tree;

/// Ports of the mtty sample's pool and per instance of each type.
const PORTS: u32 = 24;
const TYPES: [(&str, u32); 2] = [("mtty-1", 1), ("mtty-2", 2)];

#[derive(Clone, Debug)]
enum Op {
    Create { ty: usize, uuid: u8 },
    Remove { uuid: u8 },
}

fn uuid(n: u8) -> String {
    format!("83b8f4f2-509f-382f-3c1e-e6bfe0fa10{n:02x}")
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..16u8).prop_map(|(ty, uuid)| Op::Create { ty, uuid }),
        (0..16u8).prop_map(|uuid| Op::Remove { uuid }),
    ]
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tree = Tree::new(Host::default_platform().unwrap());
    // Reference: uuid -> type index; free ports.
    let mut live: BTreeMap<u8, usize> = BTreeMap::new();
    let mut free = PORTS;
    for op in ops {
        match op {
            Op::Create { ty, uuid: n } => {
                let (name, ports) = TYPES[ty];
                let path = format!("class/mdev_bus/mtty/mdev_supported_types/{name}/create");
                let got = tree
                    .write(&path, 0, format!("{}\n", uuid(n)).as_bytes())
                    .map_err(|e| e.errno());
                let want = match live.entry(n) {
                    Entry::Occupied(_) => Err(Errno::EXIST),
                    Entry::Vacant(_) if free < ports => Err(Errno::NOSPC),
                    Entry::Vacant(v) => {
                        v.insert(ty);
                        free -= ports;
                        Ok(37)
                    }
                };
                prop_assert_eq!(got, want);
            }
            Op::Remove { uuid: n } => {
                let path = format!("bus/mdev/devices/{}/remove", uuid(n));
                let got = tree.write(&path, 0, b"1\n").map_err(|e| e.errno());
                let want = match live.remove(&n) {
                    Some(ty) => {
                        free += TYPES[ty].1;
                        Ok(2)
                    }
                    None => Err(Errno::NOENT),
                };
                prop_assert_eq!(got, want);
            }
        }
        for (ty, (name, ports)) in TYPES.iter().enumerate() {
            let dir = format!("class/mdev_bus/mtty/mdev_supported_types/{name}");
            let avail = tree.read(&format!("{dir}/available_instances")).unwrap();
            prop_assert_eq!(
                String::from_utf8(avail).unwrap(),
                format!("{}\n", free / ports)
            );
            let want: Vec<String> = live
                .iter()
                .filter(|(_, t)| **t == ty)
                .map(|(n, _)| uuid(*n))
                .collect();
            prop_assert_eq!(names(&tree, &format!("{dir}/devices")), want);
        }
        let want: Vec<String> = live.keys().map(|n| uuid(*n)).collect();
        prop_assert_eq!(names(&tree, "bus/mdev/devices"), want);
    }
    Ok(())
}

fn names(tree: &Tree, dir: &str) -> Vec<String> {
    tree.readdir(dir)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tree_matches_a_port_pool_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
