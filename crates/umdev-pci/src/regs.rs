//! Config-space register offsets and bits, named as in Linux
//! `include/uapi/linux/pci_regs.h` so a kernel reader finds them.

/// Vendor ID (16 bits).
pub const PCI_VENDOR_ID: u16 = 0x00;
/// Device ID (16 bits).
pub const PCI_DEVICE_ID: u16 = 0x02;
/// Command register (16 bits).
pub const PCI_COMMAND: u16 = 0x04;
/// Status register (16 bits).
pub const PCI_STATUS: u16 = 0x06;
/// Revision ID (8 bits).
pub const PCI_REVISION_ID: u16 = 0x08;
/// Class code: programming interface byte; the 24-bit class spans 0x09..0x0c.
pub const PCI_CLASS_PROG: u16 = 0x09;
/// Cache line size (8 bits).
pub const PCI_CACHE_LINE_SIZE: u16 = 0x0c;
/// Latency timer (8 bits).
pub const PCI_LATENCY_TIMER: u16 = 0x0d;
/// Header type (8 bits): layout in bits 6:0, multi-function in bit 7.
pub const PCI_HEADER_TYPE: u16 = 0x0e;
/// First base address register.
pub const PCI_BASE_ADDRESS_0: u16 = 0x10;
/// Subsystem vendor ID (type 0 header).
pub const PCI_SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
/// Subsystem ID (type 0 header).
pub const PCI_SUBSYSTEM_ID: u16 = 0x2e;
/// Expansion ROM base address (type 0 header).
pub const PCI_ROM_ADDRESS: u16 = 0x30;
/// Offset of the first capability (8 bits).
pub const PCI_CAPABILITY_LIST: u16 = 0x34;
/// Interrupt line (8 bits).
pub const PCI_INTERRUPT_LINE: u16 = 0x3c;
/// Interrupt pin (8 bits).
pub const PCI_INTERRUPT_PIN: u16 = 0x3d;

/// Type 1: primary bus number.
pub const PCI_PRIMARY_BUS: u16 = 0x18;
/// Type 1: secondary bus number.
pub const PCI_SECONDARY_BUS: u16 = 0x19;
/// Type 1: subordinate (highest downstream) bus number.
pub const PCI_SUBORDINATE_BUS: u16 = 0x1a;
/// Type 1: secondary latency timer.
pub const PCI_SEC_LATENCY_TIMER: u16 = 0x1b;
/// Type 1: I/O base.
pub const PCI_IO_BASE: u16 = 0x1c;
/// Type 1: secondary status (16 bits).
pub const PCI_SEC_STATUS: u16 = 0x1e;
/// Type 1: memory base (16 bits).
pub const PCI_MEMORY_BASE: u16 = 0x20;
/// Type 1: prefetchable memory base (16 bits).
pub const PCI_PREF_MEMORY_BASE: u16 = 0x24;
/// Type 1: prefetchable base, upper 32 bits.
pub const PCI_PREF_BASE_UPPER32: u16 = 0x28;
/// Type 1: prefetchable limit, upper 32 bits.
pub const PCI_PREF_LIMIT_UPPER32: u16 = 0x2c;
/// Type 1: I/O base, upper 16 bits.
pub const PCI_IO_BASE_UPPER16: u16 = 0x30;
/// Type 1: expansion ROM base address.
pub const PCI_ROM_ADDRESS1: u16 = 0x38;
/// Type 1: bridge control (16 bits).
pub const PCI_BRIDGE_CONTROL: u16 = 0x3e;

/// Header layout 0: a function that is not a bridge.
pub const PCI_HEADER_TYPE_NORMAL: u8 = 0;
/// Header layout 1: PCI-to-PCI bridge (including PCIe ports).
pub const PCI_HEADER_TYPE_BRIDGE: u8 = 1;
/// Header type bit 7: the device has more than one function.
pub const PCI_HEADER_TYPE_MFD: u8 = 0x80;

/// Command: respond to I/O space accesses.
pub const PCI_COMMAND_IO: u16 = 0x1;
/// Command: respond to memory space accesses.
pub const PCI_COMMAND_MEMORY: u16 = 0x2;
/// Command: enable bus mastering (DMA).
pub const PCI_COMMAND_MASTER: u16 = 0x4;
/// Command: parity error response.
pub const PCI_COMMAND_PARITY: u16 = 0x40;
/// Command: SERR# enable.
pub const PCI_COMMAND_SERR: u16 = 0x100;
/// Command: INTx emulation disable.
pub const PCI_COMMAND_INTX_DISABLE: u16 = 0x400;

/// Status: INTx asserted (read-only).
pub const PCI_STATUS_INTERRUPT: u16 = 0x08;
/// Status: capability list present.
pub const PCI_STATUS_CAP_LIST: u16 = 0x10;
/// Status: master data parity error (RW1C).
pub const PCI_STATUS_PARITY: u16 = 0x100;
/// Status: signalled target abort (RW1C).
pub const PCI_STATUS_SIG_TARGET_ABORT: u16 = 0x800;
/// Status: received target abort (RW1C).
pub const PCI_STATUS_REC_TARGET_ABORT: u16 = 0x1000;
/// Status: received master abort (RW1C).
pub const PCI_STATUS_REC_MASTER_ABORT: u16 = 0x2000;
/// Status: signalled system error (RW1C).
pub const PCI_STATUS_SIG_SYSTEM_ERROR: u16 = 0x4000;
/// Status: detected parity error (RW1C).
pub const PCI_STATUS_DETECTED_PARITY: u16 = 0x8000;

/// BAR bit 0: I/O space indicator (0 = memory).
pub const PCI_BASE_ADDRESS_SPACE_IO: u32 = 0x01;
/// BAR memory type: 64-bit.
pub const PCI_BASE_ADDRESS_MEM_TYPE_64: u32 = 0x04;
/// BAR: prefetchable.
pub const PCI_BASE_ADDRESS_MEM_PREFETCH: u32 = 0x08;
/// BAR: mask of the address bits of a memory BAR.
pub const PCI_BASE_ADDRESS_MEM_MASK: u32 = !0x0f;

/// Capability ID: power management.
pub const PCI_CAP_ID_PM: u8 = 0x01;
/// Capability ID: MSI.
pub const PCI_CAP_ID_MSI: u8 = 0x05;
/// Capability ID: PCI Express.
pub const PCI_CAP_ID_EXP: u8 = 0x10;
/// Capability ID: MSI-X.
pub const PCI_CAP_ID_MSIX: u8 = 0x11;

/// PM: capabilities register (16 bits, read-only).
pub const PCI_PM_PMC: u16 = 2;
/// PM: control/status register.
pub const PCI_PM_CTRL: u16 = 4;
/// PM control: power state field (D0..D3hot).
pub const PCI_PM_CTRL_STATE_MASK: u16 = 0x0003;
/// PM control: PME enable.
pub const PCI_PM_CTRL_PME_ENABLE: u16 = 0x0100;
/// PM control: PME status (RW1C).
pub const PCI_PM_CTRL_PME_STATUS: u16 = 0x8000;
/// Size of the PM capability.
pub const PCI_PM_SIZEOF: u16 = 8;

/// MSI: message control.
pub const PCI_MSI_FLAGS: u16 = 2;
/// MSI control: enable.
pub const PCI_MSI_FLAGS_ENABLE: u16 = 0x0001;
/// MSI control: multiple message capable (log2, read-only).
pub const PCI_MSI_FLAGS_QMASK: u16 = 0x000e;
/// MSI control: multiple message enable (log2).
pub const PCI_MSI_FLAGS_QSIZE: u16 = 0x0070;
/// MSI control: 64-bit address capable.
pub const PCI_MSI_FLAGS_64BIT: u16 = 0x0080;
/// MSI control: per-vector masking capable.
pub const PCI_MSI_FLAGS_MASKBIT: u16 = 0x0100;
/// MSI: lower 32 bits of the message address.
pub const PCI_MSI_ADDRESS_LO: u16 = 4;
/// MSI: upper 32 bits of the address (64-bit capable devices).
pub const PCI_MSI_ADDRESS_HI: u16 = 8;
/// MSI: message data, 32-bit address layout.
pub const PCI_MSI_DATA_32: u16 = 8;
/// MSI: mask bits, 32-bit address layout.
pub const PCI_MSI_MASK_32: u16 = 12;
/// MSI: pending bits, 32-bit address layout.
pub const PCI_MSI_PENDING_32: u16 = 16;
/// MSI: message data, 64-bit address layout.
pub const PCI_MSI_DATA_64: u16 = 12;
/// MSI: mask bits, 64-bit address layout.
pub const PCI_MSI_MASK_64: u16 = 16;
/// MSI: pending bits, 64-bit address layout.
pub const PCI_MSI_PENDING_64: u16 = 20;

/// MSI-X: message control.
pub const PCI_MSIX_FLAGS: u16 = 2;
/// MSI-X control: table size minus one.
pub const PCI_MSIX_FLAGS_QSIZE: u16 = 0x07ff;
/// MSI-X control: mask all vectors.
pub const PCI_MSIX_FLAGS_MASKALL: u16 = 0x4000;
/// MSI-X control: enable.
pub const PCI_MSIX_FLAGS_ENABLE: u16 = 0x8000;
/// MSI-X: table offset and BIR.
pub const PCI_MSIX_TABLE: u16 = 4;
/// MSI-X: pending bit array offset and BIR.
pub const PCI_MSIX_PBA: u16 = 8;
/// MSI-X: BIR field of the table / PBA registers.
pub const PCI_MSIX_TABLE_BIR: u32 = 0x7;
/// Size of the MSI-X capability.
pub const PCI_CAP_MSIX_SIZEOF: u16 = 12;

/// PCIe: capabilities register (version, device/port type, slot).
pub const PCI_EXP_FLAGS: u16 = 2;
/// PCIe flags: device/port type field.
pub const PCI_EXP_FLAGS_TYPE: u16 = 0x00f0;
/// PCIe flags: slot implemented.
pub const PCI_EXP_FLAGS_SLOT: u16 = 0x0100;
/// PCIe: device capabilities.
pub const PCI_EXP_DEVCAP: u16 = 4;
/// Device capabilities: function level reset.
pub const PCI_EXP_DEVCAP_FLR: u32 = 0x1000_0000;
/// PCIe: device control.
pub const PCI_EXP_DEVCTL: u16 = 8;
/// Device control: initiate function level reset.
pub const PCI_EXP_DEVCTL_BCR_FLR: u16 = 0x8000;
/// PCIe: device status.
pub const PCI_EXP_DEVSTA: u16 = 10;
/// PCIe: link capabilities.
pub const PCI_EXP_LNKCAP: u16 = 12;
/// PCIe: link control.
pub const PCI_EXP_LNKCTL: u16 = 16;
/// PCIe: link status.
pub const PCI_EXP_LNKSTA: u16 = 18;
/// PCIe: slot capabilities.
pub const PCI_EXP_SLTCAP: u16 = 20;
/// PCIe: slot control.
pub const PCI_EXP_SLTCTL: u16 = 24;
/// PCIe: slot status.
pub const PCI_EXP_SLTSTA: u16 = 26;
/// PCIe: root control.
pub const PCI_EXP_RTCTL: u16 = 28;
/// PCIe: root status.
pub const PCI_EXP_RTSTA: u16 = 32;
/// PCIe: device capabilities 2.
pub const PCI_EXP_DEVCAP2: u16 = 36;
/// Device capabilities 2: ARI forwarding supported (ports).
pub const PCI_EXP_DEVCAP2_ARI: u32 = 0x20;
/// PCIe: device control 2.
pub const PCI_EXP_DEVCTL2: u16 = 40;
/// PCIe: link control 2.
pub const PCI_EXP_LNKCTL2: u16 = 48;
/// Size of a version 2 PCIe capability (`PCI_CAP_EXP_ENDPOINT_SIZEOF_V2`).
pub const PCI_CAP_EXP_SIZEOF_V2: u16 = 0x3c;

/// PCIe device/port type: PCI Express endpoint.
pub const PCI_EXP_TYPE_ENDPOINT: u8 = 0x0;
/// PCIe device/port type: legacy endpoint.
pub const PCI_EXP_TYPE_LEG_END: u8 = 0x1;
/// PCIe device/port type: root port.
pub const PCI_EXP_TYPE_ROOT_PORT: u8 = 0x4;
/// PCIe device/port type: switch upstream port.
pub const PCI_EXP_TYPE_UPSTREAM: u8 = 0x5;
/// PCIe device/port type: switch downstream port.
pub const PCI_EXP_TYPE_DOWNSTREAM: u8 = 0x6;
/// PCIe device/port type: PCIe-to-PCI/PCI-X bridge.
pub const PCI_EXP_TYPE_PCI_BRIDGE: u8 = 0x7;
/// PCIe device/port type: PCI/PCI-X-to-PCIe bridge.
pub const PCI_EXP_TYPE_PCIE_BRIDGE: u8 = 0x8;
/// PCIe device/port type: root-complex integrated endpoint.
pub const PCI_EXP_TYPE_RC_END: u8 = 0x9;
/// PCIe device/port type: root-complex event collector.
pub const PCI_EXP_TYPE_RC_EC: u8 = 0xa;

/// First extended capability offset.
pub const PCI_CFG_SPACE_SIZE: u16 = 256;
/// Size of a PCIe function's config space.
pub const PCI_CFG_SPACE_EXP_SIZE: u16 = 4096;

/// Extended capability ID: access control services.
pub const PCI_EXT_CAP_ID_ACS: u16 = 0x0d;
/// Extended capability ID: address translation services.
pub const PCI_EXT_CAP_ID_ATS: u16 = 0x0f;
/// Extended capability ID: single root I/O virtualisation.
pub const PCI_EXT_CAP_ID_SRIOV: u16 = 0x10;
/// Extended capability ID: page request interface.
pub const PCI_EXT_CAP_ID_PRI: u16 = 0x13;
/// Extended capability ID: process address space ID.
pub const PCI_EXT_CAP_ID_PASID: u16 = 0x1b;

/// ACS: capability register (16 bits).
pub const PCI_ACS_CAP: u16 = 0x04;
/// ACS: control register (16 bits).
pub const PCI_ACS_CTRL: u16 = 0x06;
/// ACS: source validation.
pub const PCI_ACS_SV: u16 = 0x0001;
/// ACS: translation blocking.
pub const PCI_ACS_TB: u16 = 0x0002;
/// ACS: P2P request redirect.
pub const PCI_ACS_RR: u16 = 0x0004;
/// ACS: P2P completion redirect.
pub const PCI_ACS_CR: u16 = 0x0008;
/// ACS: upstream forwarding.
pub const PCI_ACS_UF: u16 = 0x0010;
/// ACS: P2P egress control.
pub const PCI_ACS_EC: u16 = 0x0020;
/// ACS: direct translated P2P.
pub const PCI_ACS_DT: u16 = 0x0040;
/// Size of the ACS capability without an egress control vector.
pub const PCI_ACS_SIZEOF: u16 = 8;

/// ATS: capability register (16 bits).
pub const PCI_ATS_CAP: u16 = 0x04;
/// ATS capability: invalidate queue depth (0 means 32).
pub const PCI_ATS_CAP_QDEP_MASK: u16 = 0x1f;
/// ATS capability: page aligned request.
pub const PCI_ATS_CAP_PAGE_ALIGNED: u16 = 0x0020;
/// ATS: control register (16 bits).
pub const PCI_ATS_CTRL: u16 = 0x06;
/// ATS control: enable.
pub const PCI_ATS_CTRL_ENABLE: u16 = 0x8000;
/// ATS control: smallest translation unit (log2 of pages).
pub const PCI_ATS_CTRL_STU_MASK: u16 = 0x1f;
/// Size of the ATS capability.
pub const PCI_EXT_CAP_ATS_SIZEOF: u16 = 8;

/// PRI: control register (16 bits).
pub const PCI_PRI_CTRL: u16 = 0x04;
/// PRI control: enable.
pub const PCI_PRI_CTRL_ENABLE: u16 = 0x0001;
/// PRI control: reset.
pub const PCI_PRI_CTRL_RESET: u16 = 0x0002;
/// PRI: status register (16 bits).
pub const PCI_PRI_STATUS: u16 = 0x06;
/// PRI status: response failure (RW1C).
pub const PCI_PRI_STATUS_RF: u16 = 0x0001;
/// PRI status: unexpected page request group index (RW1C).
pub const PCI_PRI_STATUS_UPRGI: u16 = 0x0002;
/// PRI status: stopped.
pub const PCI_PRI_STATUS_STOPPED: u16 = 0x0100;
/// PRI status: PRG response carries a PASID.
pub const PCI_PRI_STATUS_PASID: u16 = 0x8000;
/// PRI: outstanding page request capacity (32 bits).
pub const PCI_PRI_MAX_REQ: u16 = 0x08;
/// PRI: outstanding page request allocation (32 bits).
pub const PCI_PRI_ALLOC_REQ: u16 = 0x0c;
/// Size of the PRI capability.
pub const PCI_EXT_CAP_PRI_SIZEOF: u16 = 16;

/// PASID: capability register (16 bits).
pub const PCI_PASID_CAP: u16 = 0x04;
/// PASID capability: execute permission supported.
pub const PCI_PASID_CAP_EXEC: u16 = 0x0002;
/// PASID capability: privileged mode supported.
pub const PCI_PASID_CAP_PRIV: u16 = 0x0004;
/// PASID capability: max PASID width field (bits 12:8).
pub const PCI_PASID_CAP_WIDTH: u16 = 0x1f00;
/// PASID: control register (16 bits).
pub const PCI_PASID_CTRL: u16 = 0x06;
/// PASID control: enable.
pub const PCI_PASID_CTRL_ENABLE: u16 = 0x0001;
/// PASID control: execute permission enable.
pub const PCI_PASID_CTRL_EXEC: u16 = 0x0002;
/// PASID control: privileged mode enable.
pub const PCI_PASID_CTRL_PRIV: u16 = 0x0004;
/// Size of the PASID capability.
pub const PCI_EXT_CAP_PASID_SIZEOF: u16 = 8;

/// SR-IOV: capabilities (32 bits).
pub const PCI_SRIOV_CAP: u16 = 0x04;
/// SR-IOV capability: VF migration capable.
pub const PCI_SRIOV_CAP_VFM: u32 = 0x01;
/// SR-IOV: control (16 bits).
pub const PCI_SRIOV_CTRL: u16 = 0x08;
/// SR-IOV control: VF enable.
pub const PCI_SRIOV_CTRL_VFE: u16 = 0x01;
/// SR-IOV control: VF migration enable.
pub const PCI_SRIOV_CTRL_VFM: u16 = 0x02;
/// SR-IOV control: VF migration interrupt enable.
pub const PCI_SRIOV_CTRL_INTR: u16 = 0x04;
/// SR-IOV control: VF memory space enable.
pub const PCI_SRIOV_CTRL_MSE: u16 = 0x08;
/// SR-IOV control: ARI capable hierarchy.
pub const PCI_SRIOV_CTRL_ARI: u16 = 0x10;
/// SR-IOV: status (16 bits).
pub const PCI_SRIOV_STATUS: u16 = 0x0a;
/// SR-IOV: InitialVFs.
pub const PCI_SRIOV_INITIAL_VF: u16 = 0x0c;
/// SR-IOV: TotalVFs.
pub const PCI_SRIOV_TOTAL_VF: u16 = 0x0e;
/// SR-IOV: NumVFs.
pub const PCI_SRIOV_NUM_VF: u16 = 0x10;
/// SR-IOV: function dependency link.
pub const PCI_SRIOV_FUNC_LINK: u16 = 0x12;
/// SR-IOV: first VF offset (routing ID offset of VF 0).
pub const PCI_SRIOV_VF_OFFSET: u16 = 0x14;
/// SR-IOV: VF stride.
pub const PCI_SRIOV_VF_STRIDE: u16 = 0x16;
/// SR-IOV: VF device ID.
pub const PCI_SRIOV_VF_DID: u16 = 0x1a;
/// SR-IOV: supported page sizes.
pub const PCI_SRIOV_SUP_PGSIZE: u16 = 0x1c;
/// SR-IOV: system page size.
pub const PCI_SRIOV_SYS_PGSIZE: u16 = 0x20;
/// SR-IOV: VF BAR 0.
pub const PCI_SRIOV_BAR: u16 = 0x24;
/// SR-IOV: VF migration state array offset.
pub const PCI_SRIOV_VFM: u16 = 0x3c;
/// Size of the SR-IOV capability.
pub const PCI_EXT_CAP_SRIOV_SIZEOF: u16 = 0x40;

/// Wildcard of a `pci_device_id` field (`PCI_ANY_ID`).
pub const PCI_ANY_ID: u32 = !0;
