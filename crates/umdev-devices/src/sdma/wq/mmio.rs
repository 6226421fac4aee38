//! The register page: what the consumer reads and writes.

use std::sync::atomic::Ordering;

use super::{WorkQueue, WqState};
use crate::sdma::desc::{DESC_SIZE, Opcode};
use crate::sdma::error::SdmaError;
use crate::sdma::regs::*;

/// The OPCAP register value.
fn opcap() -> u32 {
    Opcode::ALL
        .into_iter()
        .fold(0, |bits, op| bits | 1 << (op as u8))
}

impl WorkQueue {
    /// EINVAL unless a 4- or 8-byte naturally aligned access inside the
    /// page.
    fn check_access(offset: u64, len: usize) -> Result<(), SdmaError> {
        let ok = matches!(len, 4 | 8)
            && offset.is_multiple_of(len as u64)
            && offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= WQ_PAGE_SIZE);
        if ok {
            Ok(())
        } else {
            Err(SdmaError::BadAccess { offset, len })
        }
    }

    /// Reads `data.len()` bytes (4 or 8) of the register page at `offset`.
    /// Reserved registers read as zero; an 8-byte read is one snapshot.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) -> Result<(), SdmaError> {
        Self::check_access(offset, data.len())?;
        let st = self.state.lock();
        let mut value = u64::from(self.read_dword(&st, offset));
        if data.len() == 8 {
            value |= u64::from(self.read_dword(&st, offset + 4)) << 32;
        }
        data.copy_from_slice(&value.to_le_bytes()[..data.len()]);
        Ok(())
    }

    fn read_dword(&self, st: &WqState, offset: u64) -> u32 {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        let enabled = u32::from(self.is_enabled());
        match offset {
            WQ_OPCAP => opcap(),
            WQ_MAX_XFER => self.engine.max_xfer,
            WQ_CTRL => enabled * CTRL_ENABLE,
            WQ_STATUS => enabled * STATUS_ENABLED + u32::from(st.error.is_valid()) * STATUS_ERROR,
            WQ_RING_BASE => lo(st.ring_base),
            o if o == WQ_RING_BASE + 4 => hi(st.ring_base),
            WQ_RING_SIZE => st.ring_size,
            WQ_PASID => st.pasid.map_or(0, |p| p | PASID_VALID),
            WQ_HEAD => self.head.load(Ordering::Acquire),
            WQ_TAIL => self.tail.load(Ordering::Acquire),
            WQ_INT_CTRL => {
                let entry = st.ims_entry.map_or(INT_NO_ENTRY, u32::from);
                (u32::from(self.int_enable.load(Ordering::Acquire)) * INT_ENABLE) | (entry << 16)
            }
            WQ_ERROR => lo(st.error.error),
            o if o == WQ_ERROR + 4 => hi(st.error.error),
            WQ_ERROR_ADDR => lo(st.error.addr),
            o if o == WQ_ERROR_ADDR + 4 => hi(st.error.addr),
            _ => 0,
        }
    }

    /// Writes `data` (4 or 8 bytes) to the register page at `offset`; an
    /// 8-byte write is two 4-byte writes, low first. Writes to read-only
    /// and reserved registers, and to ring registers while enabled, are
    /// ignored. A TAIL write runs the posted descriptors before returning.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) -> Result<(), SdmaError> {
        Self::check_access(offset, data.len())?;
        for (i, dword) in data.chunks_exact(4).enumerate() {
            let value = u32::from_le_bytes([dword[0], dword[1], dword[2], dword[3]]);
            self.write_dword(offset + 4 * i as u64, value);
        }
        Ok(())
    }

    fn write_dword(&self, offset: u64, value: u32) {
        let set_lo = |old: u64| (old & !0xffff_ffff) | u64::from(value);
        let set_hi = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
        match offset {
            WQ_CTRL if value & CTRL_ENABLE != 0 => self.enable(),
            WQ_CTRL => self.disable(),
            WQ_RING_BASE => self.set_ring(|st| st.ring_base = set_lo(st.ring_base)),
            o if o == WQ_RING_BASE + 4 => self.set_ring(|st| st.ring_base = set_hi(st.ring_base)),
            WQ_RING_SIZE => self.set_ring(|st| st.ring_size = value),
            WQ_TAIL => self.doorbell(value),
            WQ_INT_CTRL => self
                .int_enable
                .store(value & INT_ENABLE != 0, Ordering::Release),
            WQ_ERROR if u64::from(value) & ERROR_VALID != 0 => {
                self.state.lock().error = ErrorLatch::default();
            }
            // WQ_PASID among them: only the host programs it.
            _ => {}
        }
    }

    fn set_ring(&self, f: impl FnOnce(&mut WqState)) {
        let mut st = self.state.lock();
        if !self.is_enabled() {
            f(&mut st);
        }
    }

    fn enable(&self) {
        let _run = self.runner.lock();
        let mut st = self.state.lock();
        if self.is_enabled() {
            return;
        }
        let ring_bytes = u64::from(st.ring_size) * DESC_SIZE as u64;
        let error = if st.pasid.is_none() {
            Some((WqErrorCode::NoPasid, 0))
        } else if !(MIN_RING_SIZE..=MAX_RING_SIZE).contains(&st.ring_size)
            || !st.ring_base.is_multiple_of(DESC_SIZE as u64)
            || st.ring_base.checked_add(ring_bytes).is_none()
        {
            Some((WqErrorCode::BadRing, st.ring_base))
        } else {
            None
        };
        let raise = match error {
            Some((code, addr)) => st.error.latch(code, 0, 0, addr),
            None => {
                self.head.store(0, Ordering::Release);
                self.tail.store(0, Ordering::Release);
                self.enabled.store(true, Ordering::SeqCst);
                false
            }
        };
        let entry = st.ims_entry;
        drop(st);
        if raise {
            self.raise(entry);
        }
    }

    fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        // Waits for the descriptor in flight.
        drop(self.runner.lock());
    }
}
