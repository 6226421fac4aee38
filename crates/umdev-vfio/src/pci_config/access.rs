//! One access piece at a time: the kernel's read and write functions
//! (`vfio_default_config_*`, `vfio_direct_config_read`, `vfio_raw_*`,
//! `vfio_basic_config_*`, `vfio_pm_config_write`, `vfio_exp_config_write`,
//! `vfio_msi_config_*`, `vfio_bar_fixup`).
//!
//! A piece is `n` (1, 2 or 4) bytes at `pos`, carried as a little-endian
//! `u32`; it never straddles two owners.

use umdev_pci::PciError;
use umdev_pci::regs::*;

use super::layout::{Cap, Handler, Owner};
use super::regs::*;
use super::{IrqMode, State, VfioPciConfig, is_bar, le, ones, owner_of};

impl VfioPciConfig {
    pub(super) fn read_chunk(&self, st: &mut State, pos: u16, n: usize) -> Result<u32, PciError> {
        match owner_of(&self.layout, pos) {
            Owner::Unassigned => self.hw_read(pos, n),
            Owner::Basic => self.basic_read(st, pos, n),
            Owner::Cap(i) => {
                let cap = self.layout.caps[usize::from(i)];
                let offset = pos - cap.start;
                match cap.handler {
                    Handler::Pm | Handler::Exp => self.default_read(st, pos, n),
                    Handler::Msi { .. } => {
                        if offset <= PCI_MSI_FLAGS && offset + n as u16 >= PCI_MSI_FLAGS {
                            // Multiple Message Capable is what vfio-pci
                            // enabled, not what the device has.
                            let at = cap.start + PCI_MSI_FLAGS;
                            let flags = st.get(at, 2) & !u32::from(PCI_MSI_FLAGS_QMASK);
                            st.set(at, 2, flags | u32::from(st.msi_qmax << 1));
                        }
                        self.default_read(st, pos, n)
                    }
                    Handler::Direct | Handler::DirectRawWrite => {
                        self.direct_read(st, pos, n, offset)
                    }
                }
            }
        }
    }

    pub(super) fn write_chunk(
        &self,
        st: &mut State,
        pos: u16,
        n: usize,
        val: u32,
    ) -> Result<(), PciError> {
        match owner_of(&self.layout, pos) {
            Owner::Unassigned => self.hw_write(pos, n, val),
            Owner::Basic => self.basic_write(st, pos, n, val),
            Owner::Cap(i) => {
                let cap = self.layout.caps[usize::from(i)];
                match cap.handler {
                    Handler::Pm => self.pm_write(st, pos, n, val, cap),
                    Handler::Exp => self.exp_write(st, pos, n, val, cap),
                    Handler::Msi { .. } => self.msi_write(st, pos, n, val, cap),
                    Handler::Direct => Ok(()),
                    Handler::DirectRawWrite => self.hw_write(pos, n, val),
                }
            }
        }
    }

    fn hw_read(&self, pos: u16, n: usize) -> Result<u32, PciError> {
        let mut b = [0; 4];
        self.dev.config_read(pos, &mut b[..n])?;
        Ok(le(&b[..n]))
    }

    fn hw_write(&self, pos: u16, n: usize, val: u32) -> Result<(), PciError> {
        self.dev.config_write(pos, &val.to_le_bytes()[..n])
    }

    fn perm(bits: &[u8], pos: u16, n: usize) -> u32 {
        let at = usize::from(pos);
        le(&bits[at..at + n])
    }

    /// Virtualised bits from vconfig, the rest from the device.
    fn default_read(&self, st: &State, pos: u16, n: usize) -> Result<u32, PciError> {
        let val = st.get(pos, n);
        let virt = Self::perm(&self.layout.virt, pos, n);
        if virt == ones(n) {
            return Ok(val);
        }
        let phys = self.hw_read(pos, n)?;
        Ok((phys & !virt) | (val & virt))
    }

    /// Writable virtualised bits to vconfig, writable others to the device
    /// by read-modify-write of the same bytes.
    fn default_write(&self, st: &mut State, pos: u16, n: usize, val: u32) -> Result<(), PciError> {
        let write = Self::perm(&self.layout.write, pos, n);
        if write == 0 {
            return Ok(());
        }
        let virt = Self::perm(&self.layout.virt, pos, n);
        if write & virt != 0 {
            let v = st.get(pos, n) & !(write & virt);
            st.set(pos, n, v | (val & write & virt));
        }
        if write & !virt != 0 {
            let phys = self.hw_read(pos, n)? & !(write & !virt);
            self.hw_write(pos, n, phys | (val & write & !virt))?;
        }
        Ok(())
    }

    /// From the device, except the capability header (ID and next pointer,
    /// or the whole extended header) which comes from vconfig.
    fn direct_read(&self, st: &State, pos: u16, n: usize, offset: u16) -> Result<u32, PciError> {
        let val = self.hw_read(pos, n)?;
        let from_vconfig = if pos >= PCI_CFG_SPACE_SIZE {
            if offset < 4 { n } else { 0 }
        } else if offset == 0 && n > 1 {
            n.min(usize::from(PCI_CAP_FLAGS))
        } else if offset == PCI_CAP_LIST_NEXT {
            1
        } else {
            0
        };
        if from_vconfig == 0 {
            return Ok(val);
        }
        let keep = ones(from_vconfig);
        Ok((val & !keep) | (st.get(pos, from_vconfig) & keep))
    }

    fn basic_read(&self, st: &mut State, pos: u16, n: usize) -> Result<u32, PciError> {
        if is_bar(pos) {
            self.bar_fixup(st);
        }
        let mut val = self.default_read(st, pos, n)?;
        if pos == PCI_COMMAND && self.res.is_virtfn {
            // A VF's Memory Space Enable is virtual.
            val |= st.get(PCI_COMMAND, 2) & u32::from(PCI_COMMAND_MEMORY);
        }
        Ok(val)
    }

    fn basic_write(&self, st: &mut State, pos: u16, n: usize, val: u32) -> Result<(), PciError> {
        self.default_write(st, pos, n, val)?;
        if pos == PCI_COMMAND {
            // Remember the user's memory and I/O enables.
            let mask = u32::from(PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
            let cmd = st.get(PCI_COMMAND, 2) & !mask;
            st.set(PCI_COMMAND, 2, cmd | (val & mask));
        }
        if pos == PCI_COMMAND || pos == PCI_COMMAND + 1 {
            // Emulated INTx disable: the interrupt path reads this.
            st.virq_disabled = st.get(PCI_COMMAND, 2) & u32::from(PCI_COMMAND_INTX_DISABLE) != 0;
        }
        if is_bar(pos) {
            st.bardirty = true;
        }
        Ok(())
    }

    /// Makes the virtual BARs read like hardware being sized: address
    /// bits below each BAR's size read zero, flag bits come from the
    /// resource; unimplemented BARs read zero.
    fn bar_fixup(&self, st: &mut State) {
        if !st.bardirty {
            return;
        }
        let mut i = 0;
        while i < PCI_STD_NUM_BARS {
            let reg = PCI_BASE_ADDRESS_0 + 4 * i;
            match self.res.bar(i) {
                None => st.set(reg, 4, 0),
                Some(bar) => {
                    let mask = !(bar.size - 1);
                    st.set(reg, 4, (st.get(reg, 4) & mask as u32) | bar.flags());
                    if bar.flags() & PCI_BASE_ADDRESS_MEM_TYPE_64 != 0 && i + 1 < PCI_STD_NUM_BARS {
                        i += 1;
                        let upper = reg + 4;
                        st.set(upper, 4, st.get(upper, 4) & (mask >> 32) as u32);
                    }
                }
            }
            i += 1;
        }
        match self.res.rom_size {
            Some(size) => {
                let mask = !(size - 1) as u32 | PCI_ROM_ADDRESS_ENABLE;
                st.set(PCI_ROM_ADDRESS, 4, st.get(PCI_ROM_ADDRESS, 4) & mask);
            }
            None => st.set(PCI_ROM_ADDRESS, 4, 0),
        }
        st.bardirty = false;
    }

    /// The power state the user writes is set on the device by vfio-pci.
    fn pm_write(
        &self,
        st: &mut State,
        pos: u16,
        n: usize,
        val: u32,
        cap: Cap,
    ) -> Result<(), PciError> {
        self.default_write(st, pos, n, val)?;
        if pos - cap.start == PCI_PM_CTRL {
            let at = cap.start + PCI_PM_CTRL;
            let ctrl = self.hw_read(at, 2)? as u16;
            // pci_set_power_state; PME status (RW1C) is written as 0 so
            // the state change does not clear it.
            let state = val as u16 & PCI_PM_CTRL_STATE_MASK;
            let ctrl = (ctrl & !(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS)) | state;
            self.hw_write(at, 2, ctrl.into())?;
        }
        Ok(())
    }

    /// FLR is virtual and reads zero, requesting a reset when the device
    /// can do one; max read request reaches the device, no lower than its
    /// max payload.
    fn exp_write(
        &self,
        st: &mut State,
        pos: u16,
        n: usize,
        val: u32,
        cap: Cap,
    ) -> Result<(), PciError> {
        let ctrl_at = cap.start + PCI_EXP_DEVCTL;
        let readrq = st.get(ctrl_at, 2) as u16 & PCI_EXP_DEVCTL_READRQ;
        self.default_write(st, pos, n, val)?;
        let mut ctrl = st.get(ctrl_at, 2) as u16;
        if ctrl & PCI_EXP_DEVCTL_BCR_FLR != 0 {
            ctrl &= !PCI_EXP_DEVCTL_BCR_FLR;
            st.set(ctrl_at, 2, ctrl.into());
            let devcap = self.hw_read(cap.start + PCI_EXP_DEVCAP, 4)?;
            if devcap & PCI_EXP_DEVCAP_FLR != 0 {
                // The kernel ignores pci_try_reset_function's result.
                let _ = self.dev.try_reset_function();
            }
        }
        if ctrl & PCI_EXP_DEVCTL_READRQ != readrq {
            let rq = 128u32 << ((ctrl & PCI_EXP_DEVCTL_READRQ) >> 12);
            let phys = self.hw_read(ctrl_at, 2)? as u16;
            let mps = 128u32 << ((phys & PCI_EXP_DEVCTL_PAYLOAD) >> 5);
            let rq = rq.max(mps);
            // pcie_set_readrq refuses sizes above 4096 bytes.
            if rq <= 4096 {
                let field = ((rq.trailing_zeros() - 7) << 12) as u16;
                let phys = (phys & !PCI_EXP_DEVCTL_READRQ) | field;
                self.hw_write(ctrl_at, 2, phys.into())?;
            }
        }
        Ok(())
    }

    /// After the user writes the control register, MSI Enable is kept
    /// only in MSI mode, Multiple Message Enable is capped at what
    /// vfio-pci enabled, and the result goes to vconfig and the device.
    fn msi_write(
        &self,
        st: &mut State,
        pos: u16,
        n: usize,
        val: u32,
        cap: Cap,
    ) -> Result<(), PciError> {
        self.default_write(st, pos, n, val)?;
        let offset = pos - cap.start;
        if offset <= PCI_MSI_FLAGS && offset + n as u16 >= PCI_MSI_FLAGS {
            let at = cap.start + PCI_MSI_FLAGS;
            let mut flags = st.get(at, 2) as u16;
            if !matches!(st.irq_mode, IrqMode::Msi { .. }) {
                flags &= !PCI_MSI_FLAGS_ENABLE;
            }
            if (flags & PCI_MSI_FLAGS_QSIZE) >> 4 > st.msi_qmax {
                flags = (flags & !PCI_MSI_FLAGS_QSIZE) | (st.msi_qmax << 4);
            }
            st.set(at, 2, flags.into());
            self.hw_write(at, 2, flags.into())?;
        }
        Ok(())
    }
}
