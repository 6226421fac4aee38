//! What the read-only operations return: plain data the daemon builds
//! from the model (`serve::inspect`) and the CLI renders (`render`). Its
//! JSON form is the `result` of the reply, documented in docs/control.md.

use serde::{Deserialize, Serialize};

/// `hello`: who answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version.
    pub version: u32,
    /// `umdev` package version.
    pub daemon: String,
    /// The daemon's root directory.
    pub root: String,
    /// The daemon's pid.
    pub pid: u32,
    /// The platform description it runs.
    pub platform: String,
    /// Where the sysfs tree is mounted (`None`: not mounted).
    pub sys: Option<String>,
}

/// `list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    /// Registered mdev parents (`/sys/class/mdev_bus`).
    pub parents: Vec<Parent>,
    /// Every mdev.
    pub mdevs: Vec<MdevInfo>,
    /// Every device a consumer can open, with its socket.
    pub devices: Vec<Served>,
}

/// One mdev parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// Device name (`0000:01:00.0`, `mtty`).
    pub name: String,
    /// `dev_driver_string` of the parent (the type-name prefix).
    pub driver: String,
    /// Its types.
    pub types: Vec<TypeInfo>,
}

/// One type of a parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Directory name (`mtty-1`).
    pub name: String,
    /// The `name` attribute.
    pub pretty_name: String,
    /// The `device_api` attribute.
    pub device_api: String,
    /// The `description` attribute, if the driver has one.
    pub description: Option<String>,
    /// The `available_instances` attribute.
    pub available_instances: u32,
    /// UUIDs of its mdevs.
    pub devices: Vec<String>,
}

/// One mdev.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdevInfo {
    /// UUID.
    pub uuid: String,
    /// Parent device name.
    pub parent: String,
    /// Type directory name.
    #[serde(rename = "type")]
    pub mdev_type: String,
    /// Its singleton IOMMU group number.
    pub iommu_group: u32,
    /// The function whose requester ID its DMA carries, if IOMMU-backed.
    pub iommu_device: Option<String>,
    /// The PASID its DMA carries, if PASID-backed.
    pub pasid: Option<u32>,
    /// Id of the IOMMU domain attached for it, if any.
    pub domain: Option<u64>,
    /// Bound by a consumer (iommufd devid), if any.
    pub consumer_devid: Option<u32>,
}

/// A device served over vfio-user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// PCI address or mdev UUID.
    pub name: String,
    /// `pci` (a function bound to vfio-pci) or `mdev`.
    pub kind: String,
    /// Its vfio-user socket, if it is being served.
    pub socket: Option<String>,
    /// A vfio-user client is connected.
    pub attached: bool,
    /// Bound by a consumer (iommufd devid), if any.
    pub consumer_devid: Option<u32>,
    /// vfio-user sessions served on its socket so far.
    pub sessions: u64,
}

/// One IOMMU group (platform groups and mdev singleton groups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group number.
    pub id: u32,
    /// `platform` or `mdev`.
    pub kind: String,
    /// Member devices (PCI addresses, or the mdev UUID).
    pub devices: Vec<String>,
    /// `default`, `blocked`, `attached` (platform groups), `mdev`.
    pub state: String,
    /// Current RID domain id (platform groups).
    pub domain: Option<u64>,
    /// Default domain id (platform groups).
    pub default_domain: Option<u64>,
    /// Owner cookie when a user (consumer) owns the group.
    pub owner: Option<u64>,
    /// User claims, or DMA-API drivers bound.
    pub owner_cnt: u32,
    /// PASIDs attached, with their domain ids.
    pub pasids: Vec<PasidAttach>,
}

/// A PASID attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasidAttach {
    /// The PASID.
    pub pasid: u32,
    /// The domain id.
    pub domain: u64,
}

/// `topology`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// IOMMU units.
    pub units: Vec<Unit>,
    /// PCI functions in address order.
    pub functions: Vec<Function>,
    /// IOMMU groups.
    pub groups: Vec<Group>,
    /// mdevs.
    pub mdevs: Vec<MdevInfo>,
    /// Served devices and their consumers.
    pub devices: Vec<Served>,
}

/// An IOMMU unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Name (`dmar0`).
    pub name: String,
    /// PCI segments it translates.
    pub segments: Vec<u16>,
    /// PASID width in bits.
    pub pasid_bits: u8,
}

/// A PCI function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// Address.
    pub bdf: String,
    /// Upstream bridge, `None` on a root bus.
    pub upstream: Option<String>,
    /// Kind (`Endpoint`, `RootPort`, ...).
    pub kind: String,
    /// `vvvv:dddd`.
    pub ids: String,
    /// Bound driver.
    pub driver: Option<String>,
    /// `driver_override`.
    pub driver_override: Option<String>,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
    /// For a PF: (enabled, total) VFs.
    pub sriov: Option<(u16, u16)>,
    /// For a VF: its PF.
    pub physfn: Option<String>,
}

/// `stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Per IOMMU unit.
    pub units: Vec<UnitStats>,
    /// Per device (served devices first, then any other requester).
    pub devices: Vec<DeviceStats>,
}

/// A unit's counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitStats {
    /// Unit name.
    pub name: String,
    /// Counters.
    pub counters: Counters,
    /// IOTLB invalidations processed.
    pub iotlb_invalidations: u64,
    /// Faults dropped from a full log.
    pub faults_dropped: u64,
}

/// DMA counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Bytes read from memory by DMA.
    pub dma_read_bytes: u64,
    /// Bytes written to memory by DMA.
    pub dma_write_bytes: u64,
    /// IOTLB hits.
    pub iotlb_hits: u64,
    /// IOTLB misses.
    pub iotlb_misses: u64,
    /// Hits over translations (`None` before any translation).
    pub iotlb_hit_ratio: Option<f64>,
    /// Faults raised.
    pub faults: u64,
}

/// A device's counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// PCI address or mdev UUID (or `<bdf>/pasid<N>` for a PASID no mdev
    /// claims).
    pub name: String,
    /// The requester ID its DMA carries, if the IOMMU translates it.
    pub requester: Option<String>,
    /// The PASID its DMA carries.
    pub pasid: Option<u32>,
    /// Counters.
    pub counters: Counters,
    /// vfio-user messages handled in the current session.
    pub messages: Option<u64>,
    /// vfio-user DMA regions the current client has mapped.
    pub dma_maps: Option<u64>,
}

/// `faults`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Per unit.
    pub units: Vec<UnitFaults>,
}

/// A unit's fault log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitFaults {
    /// Unit name.
    pub name: String,
    /// Faults since start (including dropped ones).
    pub total: u64,
    /// Dropped from a full log.
    pub dropped: u64,
    /// Not recorded because of FPD.
    pub suppressed: u64,
    /// The records kept, oldest first.
    pub records: Vec<Fault>,
}

/// One fault record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Requester ID.
    pub requester: String,
    /// PASID of the request.
    pub pasid: Option<u32>,
    /// Faulting address.
    pub addr: u64,
    /// `read` or `write`.
    pub access: String,
    /// Reason.
    pub reason: String,
    /// Domain id of the PASID entry, if found.
    pub did: Option<u16>,
    /// The served device (mdev UUID or PCI address) whose DMA carries
    /// this requester ID and PASID, if there is one now.
    pub device: Option<String>,
}
