//! SR-IOV: `sriov_numvfs` (drivers/pci/pci-sysfs.c → drivers/pci/iov.c
//! `sriov_numvfs_store`) and VF creation / removal (`pci_enable_sriov`,
//! `pci_disable_sriov`, `pci_iov_add_virtfn`, `pci_iov_remove_virtfn`).

use std::sync::Arc;

use crate::device::PciDev;
use crate::error::PciError;
use crate::function::Function;
use crate::group::iommu_probe_device;
use crate::regs::*;
use crate::{Bdf, Platform};

impl Platform {
    /// `cat sriov_numvfs`: VFs enabled on the PF.
    pub fn sriov_numvfs(&self, pf: Bdf) -> Result<u16, PciError> {
        let f = self.lookup(pf)?;
        if f.spec.sriov.is_none() {
            return Err(PciError::NotSriov(pf));
        }
        Ok(f.state.lock().vfs.len() as u16)
    }

    /// `echo n > sriov_numvfs` (drivers/pci/iov.c `sriov_numvfs_store`):
    /// `ERANGE` above TotalVFs; no change is success; `ENOENT` without a
    /// bound driver implementing `sriov_configure`; `EBUSY` when enabling
    /// while VFs are enabled; else the driver's `sriov_configure` result.
    /// A function without SR-IOV has no such attribute (`ENOENT`).
    pub fn set_sriov_numvfs(&self, pf: Bdf, num_vfs: u16) -> Result<(), PciError> {
        let f = self.lookup(pf)?;
        let Some(sriov) = &f.spec.sriov else {
            return Err(PciError::NotSriov(pf));
        };
        if num_vfs > sriov.total_vfs {
            return Err(PciError::TooManyVfs {
                bdf: pf,
                requested: num_vfs,
                total: sriov.total_vfs,
            });
        }
        let _dev = f.device_lock.lock();
        let (current, driver) = {
            let state = f.state.lock();
            (state.vfs.len() as u16, state.driver.clone())
        };
        if num_vfs == current {
            return Ok(());
        }
        let driver = driver.ok_or(PciError::NoSriovDriver(pf))?;
        let configure = driver
            .driver
            .sriov_configure()
            .ok_or(PciError::NoSriovDriver(pf))?;
        if num_vfs != 0 && current != 0 {
            return Err(PciError::VfsEnabled {
                bdf: pf,
                num_vfs: current,
            });
        }
        configure
            .configure(&PciDev::new(self, &f), num_vfs)
            .map(drop)
            .map_err(|errno| PciError::SriovConfigure { bdf: pf, errno })
    }

    /// drivers/pci/iov.c `sriov_enable`, PF device lock held by the caller.
    pub(crate) fn sriov_enable(&self, pf: &Arc<Function>, num_vfs: u16) -> Result<(), PciError> {
        let bdf = pf.spec.bdf;
        let Some(sriov) = &pf.spec.sriov else {
            return Err(PciError::NotPhysfn(bdf));
        };
        if num_vfs == 0 {
            return Ok(());
        }
        if !pf.state.lock().vfs.is_empty() || num_vfs > sriov.total_vfs {
            return Err(PciError::SriovEnable {
                bdf,
                requested: num_vfs,
            });
        }
        let pos = pf.sriov_pos().expect("a PF has the SR-IOV capability");
        {
            let mut cfg = pf.config.lock();
            cfg.set16(pos + PCI_SRIOV_NUM_VF, num_vfs);
            let ctrl = cfg.read16(pos + PCI_SRIOV_CTRL);
            cfg.set16(
                pos + PCI_SRIOV_CTRL,
                ctrl | PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE,
            );
        }
        // sriov_add_vfs → pci_iov_add_virtfn for each VF: the device is
        // added (IOMMU probe) and then offered to drivers.
        for i in 0..num_vfs {
            let rid = u32::from(bdf.rid())
                + u32::from(sriov.first_vf_offset)
                + u32::from(i) * u32::from(sriov.vf_stride);
            // The loader checked every VF address up to TotalVFs.
            let vf_bdf = Bdf::from_rid(bdf.segment(), rid as u16);
            let spec = pf.spec.vf_spec(vf_bdf).expect("PF has SR-IOV");
            let (vf, group) = iommu_probe_device(&mut self.topo.write(), Function::new(spec));
            pf.state.lock().vfs.push(vf_bdf);
            if let (Some(h), Some(group)) = (self.hooks(), group) {
                // iommu_probe_device failures leave the VF without an
                // IOMMU, as in Linux; nothing else to undo here.
                let _ = h.probe_device(vf_bdf, group);
            }
            // Autoprobe results do not affect enabling (pci_bus_add_device).
            let _ = self.device_attach(&vf);
        }
        Ok(())
    }

    /// drivers/pci/iov.c `sriov_disable`, PF device lock held by the
    /// caller: each VF is unbound, removed and released from the IOMMU.
    pub(crate) fn sriov_disable(&self, pf: &Arc<Function>) {
        let vfs = std::mem::take(&mut pf.state.lock().vfs);
        for vf_bdf in vfs {
            let Some(vf) = self.topo.read().get(vf_bdf).cloned() else {
                continue;
            };
            {
                let _dev = vf.device_lock.lock();
                self.release_driver_locked(&vf);
                vf.state.lock().dead = true;
            }
            let grouped = self.topo.read().group(vf_bdf).is_some();
            self.topo.write().remove(vf_bdf);
            if grouped && let Some(h) = self.hooks() {
                h.release_device(vf_bdf);
            }
        }
        if let Some(pos) = pf.sriov_pos() {
            let mut cfg = pf.config.lock();
            let ctrl = cfg.read16(pos + PCI_SRIOV_CTRL);
            cfg.set16(
                pos + PCI_SRIOV_CTRL,
                ctrl & !(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE),
            );
            cfg.set16(pos + PCI_SRIOV_NUM_VF, 0);
        }
    }
}
