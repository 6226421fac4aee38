//! The TOML platform description (schema types).
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
//! The tree follows from the addresses: a function on bus N sits below the
//! bridge whose `secondary_bus` is N; a bus that no bridge claims is a root
//! bus of its segment. Subordinate bus numbers are derived (the highest bus
//! below the bridge) unless given. Functions sharing a slot form a
//! multifunction device (header type bit 7 is set on each of them).
//!
//! Numbers are TOML integers (hex `0x..` is fine); sizes are integers or
//! strings with a binary `K`, `M` or `G` suffix.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

/// The whole platform file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// IOMMU units.
    #[serde(default)]
    pub iommu: Vec<Spanned<IommuSpec>>,
    /// Built-in drivers.
    #[serde(default)]
    pub driver: Vec<Spanned<DriverSpec>>,
    /// PCI functions, any order.
    #[serde(default)]
    pub function: Vec<Spanned<FunctionSpec>>,
}

/// `[[iommu]]`: a DMA remapping unit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IommuSpec {
    /// Unit name, e.g. `dmar0`.
    pub name: Spanned<String>,
    /// PCI segments whose functions this unit translates.
    pub segments: Spanned<Vec<u16>>,
    /// Supported input address widths (first-level 48 / 57, second-level).
    pub address_widths: Vec<u32>,
    /// PASID width in bits; 0 means no PASID support (legacy mode).
    #[serde(default)]
    pub pasid_bits: u8,
    /// Supported page sizes, e.g. `["4K", "2M", "1G"]`.
    pub page_sizes: Spanned<Vec<Size>>,
    /// Nested translation (user stage-1 over a stage-2 parent).
    #[serde(default)]
    pub nesting: bool,
    /// Dirty-bit tracking in the second-level tables.
    #[serde(default)]
    pub dirty_tracking: bool,
    /// Entries of the per-unit fault log.
    #[serde(default = "default_fault_log_size")]
    pub fault_log_size: usize,
}

fn default_fault_log_size() -> usize {
    256
}

/// `[[driver]]`: a built-in driver whose probe always succeeds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverSpec {
    /// Driver name as in `/sys/bus/pci/drivers/<name>`.
    pub name: Spanned<String>,
    /// Whether the driver does no kernel DMA (vfio-pci, pci-stub, pcieport):
    /// binding it does not claim the group for the DMA API.
    #[serde(default)]
    pub driver_managed_dma: bool,
    /// Static id table (`pci_device_id` entries).
    #[serde(default)]
    pub ids: Vec<IdSpec>,
    /// Whether the driver implements `sriov_configure` (as
    /// `pci_sriov_configure_simple`; it also disables VFs on remove).
    #[serde(default)]
    pub sriov_configure: bool,
}

/// One `pci_device_id` entry; absent ids are `PCI_ANY_ID`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// Vendor ID.
    pub vendor: Option<u16>,
    /// Device ID.
    pub device: Option<u16>,
    /// Subsystem vendor ID.
    pub subvendor: Option<u16>,
    /// Subsystem device ID.
    pub subdevice: Option<u16>,
    /// 24-bit class code compared under `class_mask`.
    #[serde(default)]
    pub class: u32,
    /// Which class bits must match.
    #[serde(default)]
    pub class_mask: u32,
    /// Opaque driver data.
    #[serde(default)]
    pub driver_data: u64,
    /// Matches only through `driver_override`.
    #[serde(default)]
    pub override_only: bool,
}

/// What a function is; fixes its header type and PCIe device/port type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
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

/// `[[function]]`: one PCI function.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// Address, `ssss:bb:dd.f` or `bb:dd.f`.
    pub bdf: Spanned<String>,
    /// Function kind.
    pub kind: FunctionKind,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID (default: `vendor`; type 0 headers only).
    pub subsystem_vendor: Option<u16>,
    /// Subsystem device ID (default: 0).
    pub subsystem_device: Option<u16>,
    /// 24-bit class code; bridges default to 0x060400 (PCI bridge).
    pub class: Option<Spanned<u32>>,
    /// Revision ID.
    #[serde(default)]
    pub revision: u8,
    /// Bridges: the bus number directly below.
    pub secondary_bus: Option<Spanned<u8>>,
    /// Bridges: the highest bus number below (default: derived).
    pub subordinate_bus: Option<Spanned<u8>>,
    /// Memory BARs.
    pub bars: Option<Spanned<Vec<BarSpec>>>,
    /// Power-management capability.
    #[serde(default)]
    pub pm: bool,
    /// MSI capability.
    pub msi: Option<Spanned<MsiSpec>>,
    /// MSI-X capability.
    pub msix: Option<Spanned<MsixSpec>>,
    /// ACS extended capability (absent: the function has no ACS).
    pub acs: Option<Spanned<AcsSpec>>,
    /// PASID extended capability.
    pub pasid: Option<Spanned<PasidSpec>>,
    /// ATS extended capability.
    pub ats: Option<Spanned<AtsSpec>>,
    /// PRI extended capability.
    pub pri: Option<Spanned<PriSpec>>,
    /// SR-IOV extended capability (the function is a PF).
    pub sriov: Option<Spanned<SriovSpec>>,
    /// Quirk DMA aliases: other `dd.f` on the same bus whose requester ID
    /// this function also uses (Linux `pci_add_dma_alias`).
    pub dma_aliases: Option<Spanned<Vec<String>>>,
    /// Driver bound by `Platform::bind_startup_drivers`.
    pub driver: Option<Spanned<String>>,
}

impl FunctionSpec {
    /// The BARs, none if absent.
    pub fn bar_list(&self) -> &[BarSpec] {
        self.bars.as_ref().map_or(&[], |b| b.get_ref())
    }

    /// The DMA alias texts, none if absent.
    pub fn dma_alias_list(&self) -> &[String] {
        self.dma_aliases.as_ref().map_or(&[], |b| b.get_ref())
    }
}

/// A memory BAR.
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsSpec {
    /// Capability register bits.
    #[serde(default)]
    pub capability: Vec<AcsFlag>,
    /// Control register bits; default: what Linux `pci_std_enable_acs`
    /// programs at boot, i.e. the capability's SV, RR, CR and UF.
    pub control: Option<Vec<AcsFlag>>,
}

/// PASID extended capability.
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
/// suffix (`"16K"` is 16384).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
