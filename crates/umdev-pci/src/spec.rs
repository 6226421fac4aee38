//! The description of a PCI function, from the platform file to the model.
//!
//! A platform file has three kinds of tables, all optional:
//!
//! ```toml
//! [[iommu]]             # one VT-d-like remapping unit per entry
//! name = "dmar0"
//! segments = [0]        # PCI segments it translates for
//! address_widths = [48, 57]
//! pasid_bits = 20       # > 0: scalable mode with PASID tables
//! page_sizes = ["4K", "2M", "1G"]
//! nesting = true
//! dirty_tracking = true
//! fault_log_size = 256
//!
//! [[driver]]            # a simple built-in driver
//! name = "pcieport"
//! driver_managed_dma = true
//! ids = [{ class = 0x060400, class_mask = 0xffffff }]
//!
//! [[function]]          # one PCI function
//! bdf = "0000:00:01.0"
//! kind = "root-port"
//! vendor = 0x8086
//! device = 0x7ab8
//! secondary_bus = 1     # bridges: the bus below them
//! acs = { capability = ["SV", "RR", "CR", "UF"] }
//! driver = "pcieport"   # bound by Platform::bind_startup_drivers
//! ```
//!
//! A `[[function]]` table deserializes into [`FunctionSpec`], the one
//! description of a function (Linux `struct pci_dev`): the loader fills in
//! what follows from the tree, as drivers/pci/probe.c does, and the
//! platform keeps and hands out that same value. Its capability tables
//! ([`BarSpec`], [`MsiSpec`], ...) likewise serve the loader, the config
//! space builder and the queries.
//!
//! The tree follows from the addresses: a function on bus N sits below the
//! bridge whose `secondary_bus` is N; a bus that no bridge claims is a root
//! bus of its segment. Subordinate bus numbers are derived (the highest bus
//! below the bridge) unless given. Functions sharing a slot form a
//! multifunction device (header type bit 7 is set on each of them).
//!
//! Numbers are TOML integers (hex `0x..` is fine); sizes are integers or
//! strings with a binary `K`, `M` or `G` suffix.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::bdf::Bdf;
use crate::regs::*;

/// What a function is; fixes its header type and PCIe device/port type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    /// PCIe endpoint (type 0 header, `PCI_EXP_TYPE_ENDPOINT`).
    Endpoint,
    /// PCIe legacy endpoint (`PCI_EXP_TYPE_LEG_END`).
    LegacyEndpoint,
    /// Root-complex integrated endpoint (`PCI_EXP_TYPE_RC_END`), on a root bus.
    RcEndpoint,
    /// Conventional PCI device: no PCIe capability, 256-byte config space.
    PciDevice,
    /// PCIe root port (`PCI_EXP_TYPE_ROOT_PORT`), on a root bus.
    RootPort,
    /// Switch upstream port (`PCI_EXP_TYPE_UPSTREAM`), below a root or
    /// downstream port.
    UpstreamPort,
    /// Switch downstream port (`PCI_EXP_TYPE_DOWNSTREAM`), on the internal
    /// bus of an upstream port.
    DownstreamPort,
    /// PCIe-to-PCI bridge (`PCI_EXP_TYPE_PCI_BRIDGE`): conventional devices
    /// below it issue DMA with the bridge's secondary-bus requester ID.
    PcieToPciBridge,
}

impl FunctionKind {
    /// PCIe device/port type, `None` for conventional PCI.
    pub fn pcie_type(self) -> Option<u8> {
        Some(match self {
            Self::Endpoint => PCI_EXP_TYPE_ENDPOINT,
            Self::LegacyEndpoint => PCI_EXP_TYPE_LEG_END,
            Self::RcEndpoint => PCI_EXP_TYPE_RC_END,
            Self::RootPort => PCI_EXP_TYPE_ROOT_PORT,
            Self::UpstreamPort => PCI_EXP_TYPE_UPSTREAM,
            Self::DownstreamPort => PCI_EXP_TYPE_DOWNSTREAM,
            Self::PcieToPciBridge => PCI_EXP_TYPE_PCI_BRIDGE,
            Self::PciDevice => return None,
        })
    }

    /// Whether functions of this kind have a type 1 (bridge) header.
    pub fn is_bridge(self) -> bool {
        matches!(
            self,
            Self::RootPort | Self::UpstreamPort | Self::DownstreamPort | Self::PcieToPciBridge
        )
    }

    /// The TOML spelling of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::LegacyEndpoint => "legacy-endpoint",
            Self::RcEndpoint => "rc-endpoint",
            Self::PciDevice => "pci-device",
            Self::RootPort => "root-port",
            Self::UpstreamPort => "upstream-port",
            Self::DownstreamPort => "downstream-port",
            Self::PcieToPciBridge => "pcie-to-pci-bridge",
        }
    }
}

/// `[[function]]`: one PCI function (Linux `struct pci_dev`).
///
/// Fields marked "derived" are not in the file: the loader sets them from
/// the tree (drivers/pci/probe.c `pci_setup_device`), and SR-IOV sets them
/// on VFs (drivers/pci/iov.c `pci_iov_add_virtfn`). Defaults the file may
/// leave out are resolved by the loader too, so a loaded description holds
/// the values the device presents.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// Address; the file spells it `ssss:bb:dd.f` or `bb:dd.f`.
    #[serde(deserialize_with = "bdf_from_str", serialize_with = "bdf_str")]
    pub bdf: Bdf,
    /// Kind (VFs are endpoints with `physfn` set).
    pub kind: FunctionKind,
    /// Vendor ID (a VF's is its PF's; the VF's register reads 0xffff).
    pub vendor: u16,
    /// Device ID (a VF's is the PF's VF device ID).
    pub device: u16,
    /// Subsystem vendor ID (file default: `vendor`; 0 on bridges, whose
    /// type 1 header has none).
    #[serde(default)]
    pub subsystem_vendor: u16,
    /// Subsystem device ID (file default: 0; 0 on bridges).
    #[serde(default)]
    pub subsystem_device: u16,
    /// 24-bit class code; bridges default to 0x060400 (PCI bridge).
    #[serde(default)]
    pub class: u32,
    /// Revision ID.
    #[serde(default)]
    pub revision: u8,
    /// Bridges: the bus number directly below.
    #[serde(default)]
    pub secondary_bus: Option<u8>,
    /// Bridges: the highest bus number below (file default: derived).
    #[serde(default)]
    pub subordinate_bus: Option<u8>,
    /// Memory BARs.
    #[serde(default)]
    pub bars: Vec<BarSpec>,
    /// Power-management capability.
    #[serde(default)]
    pub pm: bool,
    /// MSI capability.
    #[serde(default)]
    pub msi: Option<MsiSpec>,
    /// MSI-X capability.
    #[serde(default)]
    pub msix: Option<MsixSpec>,
    /// ACS extended capability (absent: the function has no ACS).
    #[serde(default)]
    pub acs: Option<AcsSpec>,
    /// PASID extended capability.
    #[serde(default)]
    pub pasid: Option<PasidSpec>,
    /// ATS extended capability.
    #[serde(default)]
    pub ats: Option<AtsSpec>,
    /// PRI extended capability.
    #[serde(default)]
    pub pri: Option<PriSpec>,
    /// SR-IOV extended capability (the function is a PF).
    #[serde(default)]
    pub sriov: Option<SriovSpec>,
    /// Quirk DMA alias devfns on the same bus, whose requester ID this
    /// function also uses (Linux `pci_add_dma_alias`, `dma_alias_mask`);
    /// the file spells them `dd.f`.
    #[serde(default, deserialize_with = "devfns_from_str")]
    pub dma_aliases: Vec<u8>,
    /// Driver bound by `Platform::bind_startup_drivers` (file key `driver`).
    #[serde(default, rename(deserialize = "driver"))]
    pub startup_driver: Option<String>,
    /// Derived: header type bit 7 (another function shares the slot).
    #[serde(skip_deserializing)]
    pub multifunction: bool,
    /// Derived: `pci_upstream_bridge`, the bridge above this function's
    /// bus, `None` on a root bus (VFs: their PF's).
    #[serde(skip_deserializing, serialize_with = "opt_bdf_str")]
    pub upstream_bridge: Option<Bdf>,
    /// Derived: VFs' PF (`pdev->physfn`).
    #[serde(skip_deserializing, serialize_with = "opt_bdf_str")]
    pub physfn: Option<Bdf>,
}

impl FunctionSpec {
    /// PCIe device/port type, `None` for conventional PCI.
    pub fn pcie_type(&self) -> Option<u8> {
        self.kind.pcie_type()
    }

    /// Whether the function has a type 1 header.
    pub fn is_bridge(&self) -> bool {
        self.kind.is_bridge()
    }

    /// Header layout: `PCI_HEADER_TYPE_NORMAL` or `PCI_HEADER_TYPE_BRIDGE`.
    pub fn header_type(&self) -> u8 {
        if self.is_bridge() {
            PCI_HEADER_TYPE_BRIDGE
        } else {
            PCI_HEADER_TYPE_NORMAL
        }
    }

    /// Bridges: (secondary, subordinate) bus numbers.
    pub fn buses(&self) -> Option<(u8, u8)> {
        self.secondary_bus.zip(self.subordinate_bus)
    }

    /// Whether this is an SR-IOV VF (`pdev->is_virtfn`).
    pub fn is_virtfn(&self) -> bool {
        self.physfn.is_some()
    }

    /// Whether this is an SR-IOV PF (`pdev->is_physfn`).
    pub fn is_physfn(&self) -> bool {
        self.sriov.is_some()
    }

    /// Requester ID.
    pub fn rid(&self) -> u16 {
        self.bdf.rid()
    }

    /// The description of this PF's VF at `vf_bdf`
    /// (drivers/pci/iov.c `pci_iov_add_virtfn`).
    pub fn vf_spec(&self, vf_bdf: Bdf) -> Option<FunctionSpec> {
        let sriov = self.sriov.as_ref()?;
        Some(FunctionSpec {
            bdf: vf_bdf,
            kind: FunctionKind::Endpoint,
            vendor: self.vendor,
            device: sriov.vf_device,
            subsystem_vendor: self.subsystem_vendor,
            subsystem_device: self.subsystem_device,
            class: self.class,
            revision: self.revision,
            secondary_bus: None,
            subordinate_bus: None,
            bars: sriov.vf_bars.clone(),
            pm: false,
            msi: None,
            msix: sriov.vf_msix,
            acs: None,
            pasid: None,
            ats: None,
            pri: None,
            sriov: None,
            dma_aliases: Vec::new(),
            startup_driver: None,
            multifunction: false,
            upstream_bridge: self.upstream_bridge,
            physfn: Some(self.bdf),
        })
    }
}

/// Addresses are text: `ssss:bb:dd.f`, or `bb:dd.f` on segment 0.
fn bdf_from_str<'de, D: Deserializer<'de>>(d: D) -> Result<Bdf, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|_| de::Error::custom(format!("`{text}` is not a PCI address (ssss:bb:dd.f)")))
}

/// DMA aliases are `dd.f` texts.
fn devfns_from_str<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            parse_devfn(text).ok_or_else(|| {
                de::Error::custom(format!("`{text}` is not another dd.f on this bus"))
            })
        })
        .collect()
}

/// `dd.f` → devfn.
fn parse_devfn(text: &str) -> Option<u8> {
    let (d, f) = text.split_once('.')?;
    let d = u8::from_str_radix(d, 16).ok().filter(|d| *d < 32)?;
    let f = u8::from_str_radix(f, 16).ok().filter(|f| *f < 8)?;
    Some((d << 3) | f)
}

/// Addresses serialize as `ssss:bb:dd.f`.
fn bdf_str<S: Serializer>(b: &Bdf, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(b)
}

fn opt_bdf_str<S: Serializer>(b: &Option<Bdf>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.collect_str(b),
        None => s.serialize_none(),
    }
}

/// A memory BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BarSpec {
    /// BAR register number, 0..6 (0..2 on bridges); a 64-bit BAR also uses
    /// the next register.
    pub index: u8,
    /// Size in bytes, a power of two of at least 16.
    pub size: Size,
    /// 64-bit BAR (default true).
    #[serde(default = "yes")]
    pub mem64: bool,
    /// Prefetchable.
    #[serde(default)]
    pub prefetchable: bool,
}

fn yes() -> bool {
    true
}

/// MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsiSpec {
    /// Vectors: 1, 2, 4, 8, 16 or 32.
    #[serde(default = "one")]
    pub vectors: u8,
    /// 64-bit message address (default true).
    #[serde(default = "yes")]
    pub address_64: bool,
    /// Per-vector masking (default true).
    #[serde(default = "yes")]
    pub per_vector_mask: bool,
}

fn one() -> u8 {
    1
}

/// MSI-X capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsixSpec {
    /// Number of table entries, 1..=2048.
    pub table_size: u16,
    /// BAR holding the table.
    #[serde(default)]
    pub table_bar: u8,
    /// Offset of the table in that BAR (8-byte aligned).
    pub table_offset: u32,
    /// BAR holding the pending bit array.
    #[serde(default)]
    pub pba_bar: u8,
    /// Offset of the PBA in that BAR (8-byte aligned).
    pub pba_offset: u32,
}

/// An ACS capability/control bit, named as in `pci_regs.h` without the
/// `PCI_ACS_` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum AcsFlag {
    /// Source validation.
    SV,
    /// Translation blocking.
    TB,
    /// P2P request redirect.
    RR,
    /// P2P completion redirect.
    CR,
    /// Upstream forwarding.
    UF,
    /// P2P egress control.
    EC,
    /// Direct translated P2P.
    DT,
}

/// ACS extended capability.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcsSpec {
    /// Capability register bits.
    #[serde(default)]
    pub capability: Vec<AcsFlag>,
    /// Control register bits; default: what Linux `pci_std_enable_acs`
    /// programs at boot, i.e. the capability's SV, RR, CR and UF.
    pub control: Option<Vec<AcsFlag>>,
}

impl AcsFlag {
    /// The `PCI_ACS_*` bit.
    pub fn bit(self) -> u16 {
        match self {
            Self::SV => PCI_ACS_SV,
            Self::TB => PCI_ACS_TB,
            Self::RR => PCI_ACS_RR,
            Self::CR => PCI_ACS_CR,
            Self::UF => PCI_ACS_UF,
            Self::EC => PCI_ACS_EC,
            Self::DT => PCI_ACS_DT,
        }
    }
}

impl AcsSpec {
    /// The (capability, initial control) register values; without
    /// `control`, what drivers/pci/pci.c `pci_std_enable_acs` programs at
    /// boot.
    pub fn registers(&self) -> (u16, u16) {
        let bits = |flags: &[AcsFlag]| flags.iter().fold(0u16, |m, f| m | f.bit());
        let cap = bits(&self.capability);
        let ctrl = self.control.as_deref().map_or(
            cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF),
            bits,
        );
        (cap, ctrl)
    }
}

/// PASID extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PasidSpec {
    /// Max PASID width in bits, 1..=20.
    pub max_width: u8,
    /// Execute permission supported.
    #[serde(default)]
    pub exec: bool,
    /// Privileged mode supported.
    #[serde(default)]
    pub privileged: bool,
}

/// ATS extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AtsSpec {
    /// Invalidate queue depth, 0..=31 (0 means 32).
    #[serde(default)]
    pub invalidate_queue_depth: u8,
    /// Page aligned requests (default true).
    #[serde(default = "yes")]
    pub page_aligned: bool,
}

/// PRI extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriSpec {
    /// Outstanding page request capacity.
    #[serde(default = "default_pri_requests")]
    pub max_requests: u32,
}

fn default_pri_requests() -> u32 {
    512
}

/// SR-IOV extended capability of a PF.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SriovSpec {
    /// TotalVFs, at least 1 (InitialVFs equals it: no VF migration).
    pub total_vfs: u16,
    /// VF device ID.
    pub vf_device: u16,
    /// First VF offset: VF 0's requester ID is the PF's plus this.
    pub first_vf_offset: u16,
    /// VF stride between consecutive VFs' requester IDs (default 1).
    #[serde(default = "one16")]
    pub vf_stride: u16,
    /// Per-VF memory BARs (the SR-IOV VF BAR registers).
    #[serde(default)]
    pub vf_bars: Vec<BarSpec>,
    /// MSI-X capability of each VF.
    pub vf_msix: Option<MsixSpec>,
}

fn one16() -> u16 {
    1
}

/// A byte size: an integer, or a string with a binary `K`, `M` or `G`
/// suffix (`"16K"` is 16384). Serializes as the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(v) => Ok(Size(v)),
            Raw::Text(s) => parse_size(&s).map(Size).ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid size `{s}`, expected an integer or a number with K, M or G"
                ))
            }),
        }
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        _ => (s, 0),
    };
    let v: u64 = digits.trim().parse().ok()?;
    v.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("x4K"), None);
    }
}
