//! One PCI function: its resolved description, config space and binding
//! state.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::Bdf;
use crate::caps::{CapInfo, CapWriter, find_ext_capability};
use crate::config::ConfigSpace;
use crate::driver::{DeviceIds, DriverEntry};
use crate::error::PciError;
use crate::header::{HeaderParams, build_bar, build_header};
use crate::mmio::BarHandler;
use crate::regs::*;
use crate::spec::{
    AtsSpec, BarSpec, FunctionKind, MsiSpec, MsixSpec, PasidSpec, PriSpec, SriovSpec,
};

/// A validated, resolved function description (immutable once built).
#[derive(Clone, Debug)]
pub(crate) struct FunctionDesc {
    pub bdf: Bdf,
    pub kind: FunctionKind,
    pub vendor: u16,
    pub device: u16,
    pub subsystem_vendor: u16,
    pub subsystem_device: u16,
    pub class: u32,
    pub revision: u8,
    pub multifunction: bool,
    /// Bridges: (secondary, subordinate) bus numbers.
    pub buses: Option<(u8, u8)>,
    pub bars: Vec<BarSpec>,
    pub pm: bool,
    pub msi: Option<MsiSpec>,
    pub msix: Option<MsixSpec>,
    /// ACS (capability, initial control).
    pub acs: Option<(u16, u16)>,
    pub pasid: Option<PasidSpec>,
    pub ats: Option<AtsSpec>,
    pub pri: Option<PriSpec>,
    pub sriov: Option<SriovSpec>,
    /// Quirk DMA alias devfns on the same bus (`dma_alias_mask`).
    pub dma_aliases: Vec<u8>,
    /// `pci_upstream_bridge`: the bridge above this function's bus, `None`
    /// on a root bus (VFs: their PF's).
    pub upstream_bridge: Option<Bdf>,
    /// VFs: the PF.
    pub physfn: Option<Bdf>,
    pub startup_driver: Option<String>,
}

impl FunctionDesc {
    /// PCIe device/port type, `None` for conventional PCI.
    pub fn pcie_type(&self) -> Option<u8> {
        kind_pcie_type(self.kind)
    }

    /// Whether the function has a type 1 header.
    pub fn is_bridge(&self) -> bool {
        self.buses.is_some()
    }

    /// The description of this PF's VF at `vf_bdf`.
    pub fn vf_desc(&self, vf_bdf: Bdf) -> Option<FunctionDesc> {
        let sriov = self.sriov.as_ref()?;
        Some(FunctionDesc {
            bdf: vf_bdf,
            kind: FunctionKind::Endpoint,
            vendor: self.vendor,
            device: sriov.vf_device,
            subsystem_vendor: self.subsystem_vendor,
            subsystem_device: self.subsystem_device,
            class: self.class,
            revision: self.revision,
            multifunction: false,
            buses: None,
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
            upstream_bridge: self.upstream_bridge,
            physfn: Some(self.bdf),
            startup_driver: None,
        })
    }
}

/// PCIe device/port type of a kind, `None` for conventional PCI.
pub(crate) fn kind_pcie_type(kind: FunctionKind) -> Option<u8> {
    Some(match kind {
        FunctionKind::Endpoint => PCI_EXP_TYPE_ENDPOINT,
        FunctionKind::LegacyEndpoint => PCI_EXP_TYPE_LEG_END,
        FunctionKind::RcEndpoint => PCI_EXP_TYPE_RC_END,
        FunctionKind::RootPort => PCI_EXP_TYPE_ROOT_PORT,
        FunctionKind::UpstreamPort => PCI_EXP_TYPE_UPSTREAM,
        FunctionKind::DownstreamPort => PCI_EXP_TYPE_DOWNSTREAM,
        FunctionKind::PcieToPciBridge => PCI_EXP_TYPE_PCI_BRIDGE,
        FunctionKind::PciDevice => return None,
    })
}

/// Binding state, guarded by [`Function::state`] (a leaf lock).
#[derive(Default)]
pub(crate) struct FnState {
    /// Bound driver (`dev->driver`), set just before probe.
    pub driver: Option<Arc<DriverEntry>>,
    /// `driver_override`.
    pub driver_override: Option<String>,
    /// The function was removed (`dev->p->dead`).
    pub dead: bool,
    /// PF: the enabled VFs, in VF index order.
    pub vfs: Vec<Bdf>,
}

/// A function as the platform holds it.
pub(crate) struct Function {
    pub desc: FunctionDesc,
    pub caps: Vec<CapInfo>,
    /// Config space; a leaf lock.
    pub config: Mutex<ConfigSpace>,
    /// Linux `device_lock`: held across probe / remove / sriov_configure.
    pub device_lock: Mutex<()>,
    /// Binding state; a leaf lock, never held across callbacks.
    pub state: Mutex<FnState>,
    /// The model behind the BARs; a leaf lock, cloned out before calls.
    pub bar_handler: RwLock<Option<Arc<dyn BarHandler>>>,
}

impl Function {
    /// Builds the function and its config space from `desc`.
    pub fn new(desc: FunctionDesc) -> Self {
        let pcie = desc.pcie_type();
        let size = if pcie.is_some() {
            PCI_CFG_SPACE_EXP_SIZE
        } else {
            PCI_CFG_SPACE_SIZE
        };
        let mut cfg = ConfigSpace::new(size);
        let virtfn = desc.physfn.is_some();
        let (vendor, device) = if virtfn {
            (0xffff, 0xffff)
        } else {
            (desc.vendor, desc.device)
        };
        build_header(
            &mut cfg,
            &HeaderParams {
                vendor,
                device,
                class: desc.class,
                revision: desc.revision,
                subsystem: (desc.subsystem_vendor, desc.subsystem_device),
                multifunction: desc.multifunction,
                bridge_buses: desc.buses.map(|(s, sub)| (desc.bdf.bus(), s, sub)),
                pcie: pcie.is_some(),
                virtfn,
            },
        );
        if !virtfn {
            for bar in &desc.bars {
                build_bar(&mut cfg, PCI_BASE_ADDRESS_0 + 4 * u16::from(bar.index), bar);
            }
        }
        let mut w = CapWriter::new(&mut cfg);
        if desc.pm {
            w.pm();
        }
        if let Some(msi) = &desc.msi {
            w.msi(msi);
        }
        if let Some(msix) = &desc.msix {
            w.msix(msix);
        }
        if let Some(t) = pcie {
            w.pcie(t);
        }
        if let Some((cap, ctrl)) = desc.acs {
            w.acs(cap, ctrl);
        }
        if let Some(ats) = &desc.ats {
            w.ats(ats);
        }
        if let Some(pri) = &desc.pri {
            w.pri(pri, desc.pasid.is_some());
        }
        if let Some(pasid) = &desc.pasid {
            w.pasid(pasid);
        }
        if let Some(sriov) = &desc.sriov {
            w.sriov(sriov, desc.bdf.function());
        }
        let caps = w.finish();
        Self {
            desc,
            caps,
            config: Mutex::new(cfg),
            device_lock: Mutex::new(()),
            state: Mutex::new(FnState::default()),
            bar_handler: RwLock::new(None),
        }
    }

    /// Live ACS (capability, control) registers, if the function has ACS.
    pub fn acs_regs(&self) -> Option<(u16, u16)> {
        let cfg = self.config.lock();
        let at = find_ext_capability(&cfg, PCI_EXT_CAP_ID_ACS)?;
        Some((cfg.read16(at + PCI_ACS_CAP), cfg.read16(at + PCI_ACS_CTRL)))
    }

    /// Offset of the SR-IOV capability.
    pub fn sriov_pos(&self) -> Option<u16> {
        find_ext_capability(&self.config.lock(), PCI_EXT_CAP_ID_SRIOV)
    }

    /// The ids drivers match against (the `struct pci_dev` copies).
    pub fn ids(&self) -> DeviceIds {
        DeviceIds {
            vendor: self.desc.vendor,
            device: self.desc.device,
            subsystem_vendor: self.desc.subsystem_vendor,
            subsystem_device: self.desc.subsystem_device,
            class: self.desc.class,
        }
    }

    /// Reads config space; bytes outside it are `EINVAL`.
    pub fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        let cfg = self.config.lock();
        self.check_range(&cfg, offset, buf.len())?;
        cfg.read(offset, buf);
        Ok(())
    }

    /// Writes config space through the write masks.
    pub fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        let mut cfg = self.config.lock();
        self.check_range(&cfg, offset, data.len())?;
        cfg.write(offset, data);
        Ok(())
    }

    fn check_range(&self, cfg: &ConfigSpace, offset: u16, len: usize) -> Result<(), PciError> {
        if cfg.in_range(offset, len) {
            Ok(())
        } else {
            Err(PciError::ConfigRange {
                bdf: self.desc.bdf,
                offset,
                len,
            })
        }
    }
}
