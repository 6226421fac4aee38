//! One PCI function as the platform holds it: its description, config
//! space and binding state.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::bdf::Bdf;
use crate::caps::{CapInfo, CapWriter, find_ext_capability};
use crate::config::ConfigSpace;
use crate::driver::{DeviceIds, DriverEntry};
use crate::error::PciError;
use crate::header::{HeaderParams, build_bar, build_header};
use crate::hooks::BarHandler;
use crate::info::FunctionInfo;
use crate::regs::*;
use crate::spec::FunctionSpec;

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
    /// The description, as loaded (or as SR-IOV made it for a VF).
    pub spec: Arc<FunctionSpec>,
    /// Capabilities in list order, as the config space was built.
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
    /// Builds the function and its config space from `spec`.
    pub fn new(spec: FunctionSpec) -> Self {
        let pcie = spec.pcie_type();
        let size = if pcie.is_some() {
            PCI_CFG_SPACE_EXP_SIZE
        } else {
            PCI_CFG_SPACE_SIZE
        };
        let mut cfg = ConfigSpace::new(size);
        let virtfn = spec.physfn.is_some();
        let (vendor, device) = if virtfn {
            (0xffff, 0xffff)
        } else {
            (spec.vendor, spec.device)
        };
        build_header(
            &mut cfg,
            &HeaderParams {
                vendor,
                device,
                class: spec.class,
                revision: spec.revision,
                subsystem: (spec.subsystem_vendor, spec.subsystem_device),
                multifunction: spec.multifunction,
                bridge_buses: spec.buses().map(|(s, sub)| (spec.bdf.bus(), s, sub)),
                pcie: pcie.is_some(),
                virtfn,
            },
        );
        if !virtfn {
            for bar in &spec.bars {
                build_bar(&mut cfg, PCI_BASE_ADDRESS_0 + 4 * u16::from(bar.index), bar);
            }
        }
        let mut w = CapWriter::new(&mut cfg);
        if spec.pm {
            w.pm();
        }
        if let Some(msi) = &spec.msi {
            w.msi(msi);
        }
        if let Some(msix) = &spec.msix {
            w.msix(msix);
        }
        if let Some(t) = pcie {
            w.pcie(t);
        }
        if let Some(acs) = &spec.acs {
            let (cap, ctrl) = acs.registers();
            w.acs(cap, ctrl);
        }
        if let Some(ats) = &spec.ats {
            w.ats(ats);
        }
        if let Some(pri) = &spec.pri {
            w.pri(pri, spec.pasid.is_some());
        }
        if let Some(pasid) = &spec.pasid {
            w.pasid(pasid);
        }
        if let Some(sriov) = &spec.sriov {
            w.sriov(sriov, spec.bdf.function());
        }
        let caps = w.finish();
        Self {
            spec: Arc::new(spec),
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
            vendor: self.spec.vendor,
            device: self.spec.device,
            subsystem_vendor: self.spec.subsystem_vendor,
            subsystem_device: self.spec.subsystem_device,
            class: self.spec.class,
        }
    }

    /// A snapshot of the function, with its IOMMU group number.
    pub fn info(&self, group: Option<u32>) -> FunctionInfo {
        let state = self.state.lock();
        let num_vfs = state.vfs.len() as u16;
        let driver = state.driver.as_ref().map(|e| e.name.clone());
        let driver_override = state.driver_override.clone();
        drop(state);
        FunctionInfo {
            spec: self.spec.clone(),
            capabilities: self.caps.clone(),
            acs_regs: self.acs_regs(),
            num_vfs,
            iommu_group: group,
            driver,
            driver_override,
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
                bdf: self.spec.bdf,
                offset,
                len,
            })
        }
    }
}
