//! `pci_regs.h` names the platform crate does not define (it builds only
//! the capabilities its devices have; vfio-pci must recognise more).

/// Size of the type 0 header (`PCI_STD_HEADER_SIZEOF`).
pub const PCI_STD_HEADER_SIZEOF: u16 = 0x40;
/// Number of standard BARs (`PCI_STD_NUM_BARS`).
pub const PCI_STD_NUM_BARS: u16 = 6;
/// Built-in self test register (8 bits).
pub const PCI_BIST: u16 = 0x0f;
/// Last BAR register.
pub const PCI_BASE_ADDRESS_5: u16 = 0x24;
/// Expansion ROM BAR: decode enable.
pub const PCI_ROM_ADDRESS_ENABLE: u32 = 0x01;
/// Capability header: next pointer (8 bits).
pub const PCI_CAP_LIST_NEXT: u16 = 1;
/// Capability header: capability-specific flags (16 bits).
pub const PCI_CAP_FLAGS: u16 = 2;

/// Capability ID: AGP.
pub const PCI_CAP_ID_AGP: u8 = 0x02;
/// Capability ID: vital product data.
pub const PCI_CAP_ID_VPD: u8 = 0x03;
/// Capability ID: PCI-X.
pub const PCI_CAP_ID_PCIX: u8 = 0x07;
/// Capability ID: HyperTransport.
pub const PCI_CAP_ID_HT: u8 = 0x08;
/// Capability ID: vendor specific.
pub const PCI_CAP_ID_VNDR: u8 = 0x09;
/// Capability ID: SATA data/index configuration.
pub const PCI_CAP_ID_SATA: u8 = 0x12;
/// Capability ID: PCI advanced features.
pub const PCI_CAP_ID_AF: u8 = 0x13;

/// AGP capability size.
pub const PCI_AGP_SIZEOF: u16 = 24;
/// VPD capability size.
pub const PCI_CAP_VPD_SIZEOF: u16 = 8;
/// Advanced features capability size.
pub const PCI_CAP_AF_SIZEOF: u16 = 6;
/// PCI-X command register (16 bits).
pub const PCI_X_CMD: u16 = 2;
/// PCI-X capability size, version 0.
pub const PCI_CAP_PCIX_SIZEOF_V0: u16 = 8;
/// PCI-X capability size, version 1 and 2.
pub const PCI_CAP_PCIX_SIZEOF_V2: u16 = 24;
/// HyperTransport: capability type field of byte 3 (3-bit form).
pub const HT_3BIT_CAP_MASK: u8 = 0xe0;
/// HyperTransport capability size, slave/primary interface.
pub const HT_CAP_SIZEOF_LONG: u16 = 28;
/// HyperTransport capability size, other interfaces.
pub const HT_CAP_SIZEOF_SHORT: u16 = 24;
/// SATA capability: register-access field offset.
pub const PCI_SATA_REGS: u16 = 4;
/// SATA: register-access field mask.
pub const PCI_SATA_REGS_MASK: u8 = 0xf;
/// SATA: registers follow the capability in config space.
pub const PCI_SATA_REGS_INLINE: u8 = 0xf;
/// SATA capability size, registers elsewhere.
pub const PCI_SATA_SIZEOF_SHORT: u16 = 8;
/// SATA capability size, registers inline.
pub const PCI_SATA_SIZEOF_LONG: u16 = 16;

/// PM capabilities: PME support field (D0..D3cold).
pub const PCI_PM_CAP_PME_MASK: u16 = 0xf800;

/// PCIe flags: capability version field.
pub const PCI_EXP_FLAGS_VERS: u16 = 0x000f;
/// Device control: max payload size field.
pub const PCI_EXP_DEVCTL_PAYLOAD: u16 = 0x00e0;
/// Device control: phantom functions enable.
pub const PCI_EXP_DEVCTL_PHANTOM: u16 = 0x0200;
/// Device control: max read request size field.
pub const PCI_EXP_DEVCTL_READRQ: u16 = 0x7000;
/// Device control 2: ARI forwarding enable.
pub const PCI_EXP_DEVCTL2_ARI: u16 = 0x0020;
/// PCIe capability size, version 1 endpoint.
pub const PCI_CAP_EXP_ENDPOINT_SIZEOF_V1: u16 = 20;
/// PCIe capability size, version 1 root-complex integrated endpoint.
pub const PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V1: u16 = 12;
/// PCIe capability size, version 2 root-complex integrated endpoint.
pub const PCI_CAP_EXP_RC_ENDPOINT_SIZEOF_V2: u16 = 44;

/// Extended capability ID: advanced error reporting.
pub const PCI_EXT_CAP_ID_ERR: u16 = 0x01;
/// Extended capability ID: virtual channel.
pub const PCI_EXT_CAP_ID_VC: u16 = 0x02;
/// Extended capability ID: device serial number.
pub const PCI_EXT_CAP_ID_DSN: u16 = 0x03;
/// Extended capability ID: power budgeting.
pub const PCI_EXT_CAP_ID_PWR: u16 = 0x04;
/// Extended capability ID: multi-function virtual channel.
pub const PCI_EXT_CAP_ID_MFVC: u16 = 0x08;
/// Extended capability ID: virtual channel (MFVC present).
pub const PCI_EXT_CAP_ID_VC9: u16 = 0x09;
/// Extended capability ID: vendor specific.
pub const PCI_EXT_CAP_ID_VNDR: u16 = 0x0b;
/// Extended capability ID: alternative routing-ID interpretation.
pub const PCI_EXT_CAP_ID_ARI: u16 = 0x0e;
/// Extended capability ID: multicast.
pub const PCI_EXT_CAP_ID_MCAST: u16 = 0x12;
/// Extended capability ID: resizable BAR.
pub const PCI_EXT_CAP_ID_REBAR: u16 = 0x15;
/// Extended capability ID: dynamic power allocation.
pub const PCI_EXT_CAP_ID_DPA: u16 = 0x16;
/// Extended capability ID: TPH requester.
pub const PCI_EXT_CAP_ID_TPH: u16 = 0x17;
/// Extended capability ID: latency tolerance reporting.
pub const PCI_EXT_CAP_ID_LTR: u16 = 0x18;
/// Extended capability ID: designated vendor-specific.
pub const PCI_EXT_CAP_ID_DVSEC: u16 = 0x23;

/// AER capability length as vfio-pci exposes it (`PCI_ERR_ROOT_COMMAND`).
pub const PCI_ERR_ROOT_COMMAND: u16 = 0x2c;
/// Device serial number capability size.
pub const PCI_EXT_CAP_DSN_SIZEOF: u16 = 12;
/// Power budgeting capability size.
pub const PCI_EXT_CAP_PWR_SIZEOF: u16 = 16;
/// ARI capability size.
pub const PCI_EXT_CAP_ARI_SIZEOF: u16 = 8;
/// Multicast capability size (endpoint).
pub const PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF: u16 = 40;
/// LTR capability size.
pub const PCI_EXT_CAP_LTR_SIZEOF: u16 = 8;
/// VC: port capability register 1.
pub const PCI_VC_PORT_CAP1: u16 = 4;
/// VC: extended VC count field.
pub const PCI_VC_CAP1_EVCC: u32 = 0x7;
/// VC: port capability register 2.
pub const PCI_VC_PORT_CAP2: u16 = 8;
/// VC: 32-phase port arbitration.
pub const PCI_VC_CAP2_32_PHASE: u32 = 0x02;
/// VC: 64-phase port arbitration.
pub const PCI_VC_CAP2_64_PHASE: u32 = 0x04;
/// VC: 128-phase port arbitration.
pub const PCI_VC_CAP2_128_PHASE: u32 = 0x08;
/// VC: size up to the first VC resource.
pub const PCI_CAP_VC_BASE_SIZEOF: u16 = 0x10;
/// VC: size of each VC resource.
pub const PCI_CAP_VC_PER_VC_SIZEOF: u16 = 0x0c;
/// ACS: egress control vector size (bits).
pub const PCI_ACS_EGRESS_BITS: u16 = 0x05;
/// Resizable BAR: control register of the first BAR.
pub const PCI_REBAR_CTRL: u16 = 8;
/// Resizable BAR: number-of-BARs field.
pub const PCI_REBAR_CTRL_NBAR_MASK: u8 = 0xe0;
/// Resizable BAR: shift of the number-of-BARs field.
pub const PCI_REBAR_CTRL_NBAR_SHIFT: u8 = 5;
/// DPA capability register.
pub const PCI_DPA_CAP: u16 = 4;
/// DPA: substate-max field.
pub const PCI_DPA_CAP_SUBSTATE_MASK: u8 = 0x1f;
/// DPA: size without the substate table.
pub const PCI_DPA_BASE_SIZEOF: u16 = 16;
/// TPH capability register.
pub const PCI_TPH_CAP: u16 = 4;
/// TPH: steering-table location field.
pub const PCI_TPH_CAP_LOC_MASK: u32 = 0x600;
/// TPH: steering table in the capability.
pub const PCI_TPH_LOC_CAP: u32 = 0x200;
/// TPH: steering-table size field.
pub const PCI_TPH_CAP_ST_MASK: u32 = 0x07ff_0000;
/// TPH: shift of the steering-table size field.
pub const PCI_TPH_CAP_ST_SHIFT: u32 = 16;
/// TPH: size without the steering table.
pub const PCI_TPH_BASE_SIZEOF: u16 = 0x0c;
/// Vendor-specific extended capability header (length in bits 31:20).
pub const PCI_VSEC_HDR: u16 = 4;
/// Shift of the VSEC length field.
pub const PCI_VSEC_HDR_LEN_SHIFT: u32 = 20;
/// DVSEC header 1 (length in bits 31:20).
pub const PCI_DVSEC_HEADER1: u16 = 4;
