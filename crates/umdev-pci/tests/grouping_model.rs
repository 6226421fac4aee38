//! Property test: on random topologies, the platform's groups (Linux
//! `pci_device_group`, probed in address order) equal a union-find
//! reference model of "cannot be isolated" relations, numbered in order of
//! each group's first member.

use std::collections::BTreeMap;

use proptest::prelude::*;
use umdev_pci::Platform;

/// What hangs below a port.
#[derive(Clone, Debug)]
enum Below {
    /// A PCIe endpoint device; one entry per function: has ACS?
    Endpoint(Vec<bool>),
    /// A PCIe-to-PCI bridge with this many conventional devices.
    Bridge(u8),
    /// A switch: per downstream port, ACS? and what is below it.
    Switch(Vec<(bool, Option<Below>)>),
}

fn below() -> impl Strategy<Value = Below> {
    let leaf = prop_oneof![
        prop::collection::vec(any::<bool>(), 1..4).prop_map(Below::Endpoint),
        (1u8..4).prop_map(Below::Bridge),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop::collection::vec((any::<bool>(), prop::option::of(inner)), 1..4)
            .prop_map(Below::Switch)
    })
}

/// Root-bus contents: root ports (ACS?, below) and root-complex endpoints
/// (quirk alias to the previous one?).
#[derive(Clone, Debug)]
struct Topo {
    ports: Vec<(bool, Option<Below>)>,
    rc: Vec<bool>,
}

fn topo() -> impl Strategy<Value = Topo> {
    (
        prop::collection::vec((any::<bool>(), prop::option::of(below())), 1..4),
        prop::collection::vec(any::<bool>(), 0..4),
    )
        .prop_map(|(ports, rc)| Topo { ports, rc })
}

/// One emitted function, with what the model needs.
struct Node {
    bdf: (u8, u8, u8),
    kind: &'static str,
    acs: bool,
    secondary: Option<u8>,
    parent: Option<usize>,
    alias_of: Option<usize>,
}

struct Emitter {
    nodes: Vec<Node>,
    next_bus: u8,
}

impl Emitter {
    fn add(
        &mut self,
        bdf: (u8, u8, u8),
        kind: &'static str,
        acs: bool,
        parent: Option<usize>,
    ) -> usize {
        self.nodes.push(Node {
            bdf,
            kind,
            acs,
            secondary: None,
            parent,
            alias_of: None,
        });
        self.nodes.len() - 1
    }

    /// Gives bridge `i` the next bus number, as Linux's depth-first scan
    /// does right before scanning below it.
    fn open(&mut self, i: usize) -> u8 {
        self.next_bus += 1;
        self.nodes[i].secondary = Some(self.next_bus);
        self.next_bus
    }

    /// Emits the bridge's children depth-first, so bus numbers follow the
    /// order Linux assigns them.
    fn below(&mut self, parent: usize, what: Option<&Below>) {
        let bus = self.open(parent);
        let Some(what) = what else { return };
        match what {
            Below::Endpoint(fns) => {
                for (f, acs) in fns.iter().enumerate() {
                    self.add((bus, 0, f as u8), "endpoint", *acs, Some(parent));
                }
            }
            Below::Bridge(n) => {
                let b = self.add((bus, 0, 0), "pcie-to-pci-bridge", false, Some(parent));
                let sec = self.open(b);
                for d in 0..*n {
                    self.add((sec, d, 0), "pci-device", false, Some(b));
                }
            }
            Below::Switch(dsps) => {
                let usp = self.add((bus, 0, 0), "upstream-port", false, Some(parent));
                let internal = self.open(usp);
                let ports: Vec<usize> = dsps
                    .iter()
                    .enumerate()
                    .map(|(d, (acs, _))| {
                        self.add((internal, d as u8, 0), "downstream-port", *acs, Some(usp))
                    })
                    .collect();
                for (p, (_, child)) in ports.into_iter().zip(dsps) {
                    self.below(p, child.as_ref());
                }
            }
        }
    }

    fn toml(&self) -> String {
        let mut s = String::from(
            "[[iommu]]\nname = \"u\"\nsegments = [0]\naddress_widths = [48]\npage_sizes = [\"4K\"]\n",
        );
        for n in &self.nodes {
            let (b, d, f) = n.bdf;
            s += &format!(
                "[[function]]\nbdf = \"{b:02x}:{d:02x}.{f}\"\nkind = \"{}\"\nvendor = 1\ndevice = 2\n",
                n.kind
            );
            match n.secondary {
                Some(sec) => s += &format!("secondary_bus = {sec}\n"),
                None => s += "class = 0x020000\n",
            }
            if n.acs {
                s += "acs = { capability = [\"SV\", \"RR\", \"CR\", \"UF\"] }\n";
            }
            if let Some(a) = n.alias_of {
                let (_, d, f) = self.nodes[a].bdf;
                s += &format!("dma_aliases = [\"{d:02x}.{f}\"]\n");
            }
        }
        s
    }
}

fn emit(t: &Topo) -> Emitter {
    let mut e = Emitter {
        nodes: Vec::new(),
        next_bus: 0,
    };
    let mut ports = Vec::new();
    for (i, (acs, _)) in t.ports.iter().enumerate() {
        ports.push(e.add((0, 1 + i as u8, 0), "root-port", *acs, None));
    }
    for (i, alias) in t.rc.iter().enumerate() {
        let n = e.add((0, 0x10 + i as u8, 0), "rc-endpoint", false, None);
        if *alias && i > 0 {
            e.nodes[n].alias_of = Some(n - 1);
        }
    }
    for (p, (_, child)) in ports.into_iter().zip(&t.ports) {
        e.below(p, child.as_ref());
    }
    e
}

/// The reference: union-find over the isolation rules.
fn model(nodes: &[Node]) -> Vec<u32> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        if p[x] != x {
            let r = find(p, p[x]);
            p[x] = r;
        }
        p[x]
    }
    let union = |p: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(p, a), find(p, b));
        p[ra] = rb;
    };
    let slot = |n: &Node| (n.bdf.0, n.bdf.1);
    let mf = |i: usize| nodes.iter().filter(|o| slot(o) == slot(&nodes[i])).count() > 1;
    // pci_acs_enabled: ports need ACS; single-function endpoints and
    // upstream ports are isolated; conventional PCI and bridges never are.
    let acs_ok = |i: usize| match nodes[i].kind {
        "root-port" | "downstream-port" => nodes[i].acs,
        "endpoint" | "upstream-port" | "rc-endpoint" => !mf(i) || nodes[i].acs,
        _ => false,
    };
    let path_ok = |mut i: usize| loop {
        if !acs_ok(i) {
            return false;
        }
        match nodes[i].parent {
            None => return true,
            Some(p) => i = p,
        }
    };
    for i in 0..nodes.len() {
        if let Some(p) = nodes[i].parent
            && (nodes[p].kind == "pcie-to-pci-bridge" || !path_ok(p))
        {
            union(&mut parent, i, p);
        }
        if let Some(a) = nodes[i].alias_of {
            union(&mut parent, i, a);
        }
        for j in 0..nodes.len() {
            if i != j && slot(&nodes[i]) == slot(&nodes[j]) && !acs_ok(i) && !acs_ok(j) {
                union(&mut parent, i, j);
            }
        }
    }
    // Number groups by their first member in address order.
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| nodes[i].bdf);
    let mut ids: BTreeMap<usize, u32> = BTreeMap::new();
    let mut out = vec![0; nodes.len()];
    for i in order {
        let root = find(&mut parent, i);
        let next = ids.len() as u32;
        out[i] = *ids.entry(root).or_insert(next);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn groups_match_the_union_find_model(t in topo()) {
        let e = emit(&t);
        let text = e.toml();
        let p = Platform::from_toml_str(&text, "random.toml")
            .map_err(|err| TestCaseError::fail(format!("{err}\n{text}")))?;
        let want = model(&e.nodes);
        for (n, g) in e.nodes.iter().zip(want) {
            let (b, d, f) = n.bdf;
            let bdf = umdev_pci::Bdf::new(0, b, d, f).unwrap();
            prop_assert_eq!(p.iommu_group(bdf), Some(g), "{} in\n{}", bdf, text);
        }
    }
}
