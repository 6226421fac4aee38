//! The read-only operations: views of the model (and of the vfio-user
//! sockets) built for `list`, `groups`, `topology`, `stats` and `faults`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use umdev_devices::host::Host;
use umdev_iommu::pgtable::Access;
use umdev_iommu::vtd::{DeviceStats as UnitDeviceStats, FaultRecord};
use umdev_pci::Bdf;
use umdev_vfio::mdev::Mdev;
use umdev_vfio::registration::Isolation;

use crate::views::{
    Counters, DeviceStats, Fault, Faults, Function, Group, List, MdevInfo, Parent, PasidAttach,
    Served, Stats, Topology, TypeInfo, Unit, UnitFaults, UnitStats,
};

/// What the daemon knows about one served device's socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    /// The socket file.
    pub path: PathBuf,
    /// A client is connected.
    pub attached: bool,
    /// Sessions served so far.
    pub sessions: u64,
    /// Messages of the current session.
    pub messages: Option<u64>,
    /// DMA regions the current client has mapped.
    pub dma_maps: Option<u64>,
}

/// Sockets by device name.
pub type SocketMap = BTreeMap<String, SocketInfo>;

fn mdev_info(m: &Mdev) -> MdevInfo {
    MdevInfo {
        uuid: m.uuid().to_string(),
        parent: m.parent().id.to_string(),
        mdev_type: m.type_name().to_owned(),
        iommu_group: m.group(),
        iommu_device: m.iommu_device().map(|b| b.to_string()),
        pasid: m.iommu_pasid(),
        domain: m.iommu_domain().map(|d| d.id()),
        consumer_devid: m.registration().and_then(|r| r.devid()),
    }
}

/// Every served (or servable) device.
fn served(host: &Host, sockets: &SocketMap) -> Vec<Served> {
    host.servable()
        .into_iter()
        .map(|s| {
            let socket = sockets.get(&s.name);
            let kind = if s.name.parse::<Bdf>().is_ok() {
                "pci"
            } else {
                "mdev"
            };
            Served {
                kind: kind.to_owned(),
                socket: socket.map(|i| i.path.display().to_string()),
                attached: socket.is_some_and(|i| i.attached),
                consumer_devid: s.device.devid(),
                sessions: socket.map_or(0, |i| i.sessions),
                name: s.name,
            }
        })
        .collect()
}

/// `list`.
pub fn list(host: &Host, sockets: &SocketMap) -> List {
    let parents = host
        .bus
        .parents()
        .into_iter()
        .map(|p| Parent {
            name: p.device().id.to_string(),
            driver: p.device().driver_string.clone(),
            types: p
                .types()
                .into_iter()
                .map(|t| TypeInfo {
                    name: t.name(),
                    pretty_name: t.pretty_name().to_owned(),
                    device_api: t.device_api().to_owned(),
                    description: t.description(),
                    available_instances: t.available_instances(),
                    devices: t.devices().iter().map(ToString::to_string).collect(),
                })
                .collect(),
        })
        .collect();
    List {
        parents,
        mdevs: host.bus.devices().iter().map(|m| mdev_info(m)).collect(),
        devices: served(host, sockets),
    }
}

/// `groups`: the platform's IOMMU groups, then the mdevs' singleton
/// groups.
pub fn groups(host: &Host) -> Vec<Group> {
    let platform = host.system.iommu.group_infos().into_iter().map(|g| {
        let state = if g.domain == g.default_domain {
            "default"
        } else if g.domain == g.blocking_domain {
            "blocked"
        } else {
            "attached"
        };
        Group {
            id: g.id,
            kind: "platform".to_owned(),
            devices: g.devices.iter().map(ToString::to_string).collect(),
            state: state.to_owned(),
            domain: Some(g.domain),
            default_domain: Some(g.default_domain),
            owner: g.owner,
            owner_cnt: g.owner_cnt,
            pasids: g
                .pasids
                .iter()
                .map(|&(pasid, domain)| PasidAttach { pasid, domain })
                .collect(),
        }
    });
    let mdevs = host.bus.devices().into_iter().map(|m| Group {
        id: m.group(),
        kind: "mdev".to_owned(),
        devices: vec![m.uuid().to_string()],
        state: "mdev".to_owned(),
        domain: m.iommu_domain().map(|d| d.id()),
        default_domain: None,
        owner: None,
        owner_cnt: u32::from(m.registration().and_then(|r| r.devid()).is_some()),
        pasids: Vec::new(),
    });
    platform.chain(mdevs).collect()
}

/// `topology`.
pub fn topology(host: &Host, sockets: &SocketMap) -> Topology {
    let platform = host.platform();
    let units = host
        .system
        .vtd
        .units()
        .iter()
        .map(|u| Unit {
            name: u.name().to_owned(),
            segments: u.config().segments.clone(),
            pasid_bits: u.config().pasid_bits,
        })
        .collect();
    let functions = platform
        .functions()
        .into_iter()
        .filter_map(|b| platform.function(b))
        .map(|f| Function {
            bdf: f.bdf.to_string(),
            upstream: f.upstream_bridge.map(|b| b.to_string()),
            kind: format!("{:?}", f.kind),
            ids: format!("{:04x}:{:04x}", f.vendor, f.device),
            driver: f.driver.clone(),
            driver_override: f.driver_override.clone(),
            iommu_group: f.iommu_group,
            sriov: f.sriov.as_ref().map(|s| (f.num_vfs, s.total_vfs)),
            physfn: f.physfn.map(|b| b.to_string()),
        })
        .collect();
    Topology {
        units,
        functions,
        groups: groups(host),
        mdevs: host.bus.devices().iter().map(|m| mdev_info(m)).collect(),
        devices: served(host, sockets),
    }
}

fn counters(s: &UnitDeviceStats) -> Counters {
    Counters {
        dma_read_bytes: s.dma_read_bytes,
        dma_write_bytes: s.dma_write_bytes,
        iotlb_hits: s.iotlb_hits,
        iotlb_misses: s.iotlb_misses,
        iotlb_hit_ratio: s.iotlb_hit_ratio(),
        faults: s.faults,
    }
}

/// The (requester, PASID) whose counters are a served device's.
fn requester_of(isolation: Isolation) -> Option<(Bdf, Option<u32>)> {
    match isolation {
        Isolation::Physical { bdf } => Some((bdf, None)),
        Isolation::IommuBacked {
            iommu_device,
            pasid,
        } => Some((iommu_device, pasid)),
        Isolation::Emulated => None,
    }
}

/// `stats`: per unit, then per served device (its requester's counters),
/// then every other requester with counters.
pub fn stats(host: &Host, sockets: &SocketMap) -> Stats {
    let vtd = &host.system.vtd;
    let units = vtd
        .units()
        .iter()
        .map(|u| {
            let s = u.stats();
            let total = s.iotlb_hits + s.iotlb_misses;
            UnitStats {
                name: u.name().to_owned(),
                counters: Counters {
                    dma_read_bytes: s.dma_read_bytes,
                    dma_write_bytes: s.dma_write_bytes,
                    iotlb_hits: s.iotlb_hits,
                    iotlb_misses: s.iotlb_misses,
                    iotlb_hit_ratio: (total != 0).then(|| s.iotlb_hits as f64 / total as f64),
                    faults: s.faults + s.faults_suppressed,
                },
                iotlb_invalidations: s.iotlb_invalidations,
                faults_dropped: s.faults_dropped,
            }
        })
        .collect();
    let mut by_requester: BTreeMap<(Bdf, Option<u32>), UnitDeviceStats> = vtd
        .units()
        .iter()
        .flat_map(|u| u.device_stats())
        .map(|s| ((s.requester, s.pasid), s))
        .collect();
    let mut devices: Vec<DeviceStats> = host
        .servable()
        .into_iter()
        .map(|s| {
            let key = requester_of(s.device.isolation());
            let found = key.and_then(|k| by_requester.remove(&k));
            let socket = sockets.get(&s.name);
            DeviceStats {
                requester: key.map(|(b, _)| b.to_string()),
                pasid: key.and_then(|(_, p)| p),
                counters: found.as_ref().map(counters).unwrap_or_default(),
                messages: socket.and_then(|i| i.messages),
                dma_maps: socket.and_then(|i| i.dma_maps),
                name: s.name,
            }
        })
        .collect();
    devices.extend(by_requester.into_values().map(|s| DeviceStats {
        name: match s.pasid {
            Some(p) => format!("{}/pasid{p}", s.requester),
            None => s.requester.to_string(),
        },
        requester: Some(s.requester.to_string()),
        pasid: s.pasid,
        counters: counters(&s),
        messages: None,
        dma_maps: None,
    }));
    Stats { units, devices }
}

/// Served devices by the (requester, PASID) their DMA carries.
fn by_requester(host: &Host) -> BTreeMap<(Bdf, Option<u32>), String> {
    host.servable()
        .into_iter()
        .filter_map(|s| Some((requester_of(s.device.isolation())?, s.name)))
        .collect()
}

fn fault(r: &FaultRecord, devices: &BTreeMap<(Bdf, Option<u32>), String>) -> Fault {
    Fault {
        device: devices.get(&(r.requester, r.pasid)).cloned(),
        requester: r.requester.to_string(),
        pasid: r.pasid,
        addr: r.addr,
        access: match r.access {
            Access::Read => "read",
            Access::Write => "write",
        }
        .to_owned(),
        reason: format!("{:?}", r.reason),
        did: r.did,
    }
}

/// `faults`.
pub fn faults(host: &Host) -> Faults {
    let devices = by_requester(host);
    Faults {
        units: host
            .system
            .vtd
            .units()
            .iter()
            .map(|u| {
                let log = u.fault_log();
                UnitFaults {
                    name: u.name().to_owned(),
                    total: log.total(),
                    dropped: log.dropped(),
                    suppressed: log.suppressed(),
                    records: log.records().iter().map(|r| fault(r, &devices)).collect(),
                }
            })
            .collect(),
    }
}
