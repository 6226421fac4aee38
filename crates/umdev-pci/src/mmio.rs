//! MMIO dispatch: accesses to a function's memory BARs reach the device
//! model registered for it, gated by memory decoding as on real hardware.
//!
//! A function decodes its memory BARs while Memory Space Enable is set in
//! its command register (a VF: while VF MSE is set in its PF's SR-IOV
//! control register, SR-IOV spec §3.3.3.3) and it is in D0..D2. Otherwise
//! the access ends as an unsupported request: reads complete with all
//! ones, writes are dropped. A BAR with no model behind it reads as zeros
//! and ignores writes.

use std::sync::Arc;

use crate::bdf::Bdf;
use crate::caps::find_ext_capability;
use crate::error::PciError;
use crate::function::Function;
use crate::hooks::BarHandler;
use crate::platform::Platform;
use crate::regs::*;

/// Whether an access may reach the model.
enum Decode {
    /// Memory decoding is on: dispatch to this handler, if any.
    On(Option<Arc<dyn BarHandler>>),
    /// Memory decoding is off (or the function is in D3hot).
    Off,
}

impl Platform {
    /// Registers (or with `None` removes) the model behind `bdf`'s BARs;
    /// `ENODEV` if there is no such function. A VF's model goes away with
    /// the VF.
    pub fn set_bar_handler(
        &self,
        bdf: Bdf,
        handler: Option<Arc<dyn BarHandler>>,
    ) -> Result<(), PciError> {
        *self.lookup(bdf)?.bar_handler.write() = handler;
        Ok(())
    }

    /// The model behind `bdf`'s BARs.
    pub fn bar_handler(&self, bdf: Bdf) -> Result<Option<Arc<dyn BarHandler>>, PciError> {
        Ok(self.lookup(bdf)?.bar_handler.read().clone())
    }

    /// A memory read of `buf.len()` bytes at `offset` into BAR `bar` of
    /// `bdf`. `EINVAL` if the function has no such BAR or the access does
    /// not fit in it; all ones when the function does not decode memory.
    pub fn bar_read(&self, bdf: Bdf, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), PciError> {
        match self.decode(bdf, bar, offset, buf.len())? {
            Decode::On(Some(handler)) => handler.read(bar, offset, buf),
            Decode::On(None) => buf.fill(0),
            Decode::Off => buf.fill(0xff),
        }
        Ok(())
    }

    /// A memory write of `data` at `offset` into BAR `bar` of `bdf`.
    /// `EINVAL` as for [`Platform::bar_read`]; dropped when the function
    /// does not decode memory.
    pub fn bar_write(&self, bdf: Bdf, bar: u8, offset: u64, data: &[u8]) -> Result<(), PciError> {
        if let Decode::On(Some(handler)) = self.decode(bdf, bar, offset, data.len())? {
            handler.write(bar, offset, data);
        }
        Ok(())
    }

    /// Checks the access against the BAR and the decode state; takes and
    /// releases the function's leaf locks before the model is called.
    fn decode(&self, bdf: Bdf, bar: u8, offset: u64, len: usize) -> Result<Decode, PciError> {
        let f = self.lookup(bdf)?;
        let size = f
            .spec
            .bars
            .iter()
            .find(|b| b.index == bar)
            .map(|b| b.size.0);
        let fits = size.is_some_and(|size| {
            offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= size)
        });
        if !fits {
            return Err(PciError::BarRange {
                bdf,
                bar,
                offset,
                len,
            });
        }
        if !self.memory_decoding(&f) {
            return Ok(Decode::Off);
        }
        Ok(Decode::On(f.bar_handler.read().clone()))
    }

    /// Memory Space Enable (a VF: its PF's VF MSE) and a power state
    /// below D3hot (PCI PM spec §5.3: D3hot functions answer config
    /// cycles only).
    fn memory_decoding(&self, f: &Function) -> bool {
        let (mse, pm_state) = {
            let cfg = f.config.lock();
            let mse = cfg.read16(PCI_COMMAND) & PCI_COMMAND_MEMORY != 0;
            let pm_state = f
                .caps
                .iter()
                .find(|c| !c.extended && c.id == u16::from(PCI_CAP_ID_PM))
                .map_or(0, |c| {
                    cfg.read16(c.offset + PCI_PM_CTRL) & PCI_PM_CTRL_STATE_MASK
                });
            (mse, pm_state)
        };
        const D3HOT: u16 = 3;
        if pm_state == D3HOT {
            return false;
        }
        match f.spec.physfn {
            None => mse,
            Some(pf) => self.lookup(pf).is_ok_and(|pf| {
                let cfg = pf.config.lock();
                find_ext_capability(&cfg, PCI_EXT_CAP_ID_SRIOV)
                    .is_some_and(|at| cfg.read16(at + PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_MSE != 0)
            }),
        }
    }
}
