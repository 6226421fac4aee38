//! One 16550A UART whose transmitter is wired to its own receiver.
//!
//! Modelling choices (see also the module documentation of
//! [`crate::mtty`]):
//!
//! - The transmitter is instantaneous: a byte written to THR is on the line
//!   and in the receiver before the write returns, so LSR.THRE and
//!   LSR.TEMT always read 1 and every THR write is a "THR became empty"
//!   event for the THRE interrupt.
//! - The line is a loopback plug: TX→RX, RTS→CTS, DTR→DSR and DCD. In MCR
//!   loopback mode the modem inputs follow the 16550 datasheet instead:
//!   RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD.
//! - A received byte keeps only the word length programmed in LCR (5..8
//!   bits); at power-on LCR is 0, i.e. 5-bit words, as on real hardware.
//! - There is no clock. The receiver timeout is taken as expired at every
//!   register access, so received data below the FIFO trigger level is
//!   reported as a character timeout (IIR 0x0c) instead of waiting.
//! - When the receiver is full a new byte is an overrun (LSR.OE): in FIFO
//!   mode the byte is lost and the FIFO kept; in 16450 mode it replaces the
//!   unread byte in RBR.

use bitflags::bitflags;

use super::fifo::RxFifo;
use super::regs::*;

bitflags! {
    /// Interrupt conditions of one UART that are both present and enabled
    /// in IER.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Pending: u8 {
        /// Overrun with IER.RLSI.
        const LINE_STATUS = 1 << 0;
        /// Received data (trigger level or timeout) with IER.RDI.
        const RX_DATA = 1 << 1;
        /// THR empty, not yet acknowledged, with IER.THRI.
        const THR_EMPTY = 1 << 2;
        /// A modem status delta with IER.MSI.
        const MODEM_STATUS = 1 << 3;
    }
}

/// Register state of one UART.
#[derive(Clone, Debug)]
pub(crate) struct Uart16550 {
    rx: RxFifo,
    /// Last byte moved out of the receiver; what RBR reads when it is
    /// empty.
    rbr: u8,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    trigger_level: usize,
    overrun: bool,
    /// The THRE interrupt latch: set when THR becomes empty (or IER.THRI
    /// is switched on while it is), cleared by an IIR read that reports it.
    thr_ipending: bool,
    /// MSR bits 3:0.
    msr_delta: u8,
}

impl Uart16550 {
    /// Power-on state: FIFOs off, nothing enabled, IIR 0x01, LSR 0x60.
    pub(crate) fn new() -> Self {
        Self {
            rx: RxFifo::default(),
            rbr: 0,
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            dll: 0,
            dlm: 0,
            fifo_enabled: false,
            trigger_level: 1,
            overrun: false,
            thr_ipending: false,
            msr_delta: 0,
        }
    }

    fn dlab(&self) -> bool {
        self.lcr & UART_LCR_DLAB != 0
    }

    /// Register read at `offset` (0..=7), with the read side effects of
    /// RBR, IIR, LSR and MSR.
    pub(crate) fn read(&mut self, offset: u8) -> u8 {
        match offset {
            UART_RX if self.dlab() => self.dll,
            UART_RX => {
                if let Some(byte) = self.rx.pop() {
                    self.rbr = byte;
                }
                self.rbr
            }
            UART_IER if self.dlab() => self.dlm,
            UART_IER => self.ier,
            UART_IIR => {
                let iir = self.iir();
                // Reading IIR acknowledges a THRE interrupt it reports.
                if iir & (UART_IIR_ID | UART_IIR_NO_INT) == UART_IIR_THRI {
                    self.thr_ipending = false;
                }
                iir
            }
            UART_LCR => self.lcr,
            UART_MCR => self.mcr,
            UART_LSR => {
                let lsr = self.lsr();
                self.overrun = false;
                lsr
            }
            UART_MSR => {
                let msr = modem_inputs(self.mcr) | self.msr_delta;
                self.msr_delta = 0;
                msr
            }
            _ => self.scr,
        }
    }

    /// Register write at `offset` (0..=7).
    pub(crate) fn write(&mut self, offset: u8, value: u8) {
        match offset {
            UART_TX if self.dlab() => self.dll = value,
            UART_TX => {
                self.receive(value & word_mask(self.lcr));
                // The byte left at once: THR is empty again.
                self.thr_ipending = true;
            }
            UART_IER if self.dlab() => self.dlm = value,
            UART_IER => {
                let value = value & (UART_IER_RDI | UART_IER_THRI | UART_IER_RLSI | UART_IER_MSI);
                // Switching THRI on while THR is empty (always, here) raises
                // THRE even if an IIR read acknowledged it before; Linux's
                // serial8250_do_startup() tests exactly this, and QEMU's
                // serial.c does it on the rising edge as well.
                if value & UART_IER_THRI != 0 && self.ier & UART_IER_THRI == 0 {
                    self.thr_ipending = true;
                }
                self.ier = value;
            }
            UART_FCR => self.write_fcr(value),
            UART_LCR => self.lcr = value,
            UART_MCR => self.write_mcr(value),
            UART_LSR | UART_MSR => {}
            _ => self.scr = value,
        }
    }

    /// The interrupt conditions now pending.
    pub(crate) fn pending(&self) -> Pending {
        let mut p = Pending::empty();
        p.set(
            Pending::LINE_STATUS,
            self.ier & UART_IER_RLSI != 0 && self.overrun,
        );
        p.set(
            Pending::RX_DATA,
            self.ier & UART_IER_RDI != 0 && self.rx.len() > 0,
        );
        p.set(
            Pending::THR_EMPTY,
            self.ier & UART_IER_THRI != 0 && self.thr_ipending,
        );
        p.set(
            Pending::MODEM_STATUS,
            self.ier & UART_IER_MSI != 0 && self.msr_delta != 0,
        );
        p
    }

    /// IIR without side effects: the highest-priority pending condition.
    fn iir(&self) -> u8 {
        let p = self.pending();
        let id = if p.contains(Pending::LINE_STATUS) {
            UART_IIR_RLSI
        } else if p.contains(Pending::RX_DATA) {
            if self.fifo_enabled && self.rx.len() < self.trigger_level {
                UART_IIR_RX_TIMEOUT
            } else {
                UART_IIR_RDI
            }
        } else if p.contains(Pending::THR_EMPTY) {
            UART_IIR_THRI
        } else if p.contains(Pending::MODEM_STATUS) {
            UART_IIR_MSI
        } else {
            UART_IIR_NO_INT
        };
        if self.fifo_enabled {
            id | UART_IIR_FIFO_ENABLED_16550A
        } else {
            id
        }
    }

    fn lsr(&self) -> u8 {
        let mut lsr = UART_LSR_THRE | UART_LSR_TEMT;
        if self.rx.len() > 0 {
            lsr |= UART_LSR_DR;
        }
        if self.overrun {
            lsr |= UART_LSR_OE;
        }
        lsr
    }

    fn receive(&mut self, byte: u8) {
        let capacity = if self.fifo_enabled { UART_FIFO_SIZE } else { 1 };
        if self.rx.len() < capacity {
            self.rx.push(byte);
            return;
        }
        self.overrun = true;
        if !self.fifo_enabled {
            self.rx.clear();
            self.rx.push(byte);
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & UART_FCR_ENABLE_FIFO != 0;
        // Switching between 16450 and FIFO mode flushes the receiver.
        if enable != self.fifo_enabled {
            self.rx.clear();
        }
        self.fifo_enabled = enable;
        // The other FCR bits are only programmed together with bit 0.
        // CLEAR_XMIT has nothing to clear: the transmitter is always empty.
        if enable {
            if value & UART_FCR_CLEAR_RCVR != 0 {
                self.rx.clear();
            }
            self.trigger_level = match value & UART_FCR_TRIGGER_MASK {
                UART_FCR_TRIGGER_1 => 1,
                UART_FCR_TRIGGER_4 => 4,
                UART_FCR_TRIGGER_8 => 8,
                _ => 14,
            };
        }
    }

    fn write_mcr(&mut self, value: u8) {
        let old = modem_inputs(self.mcr);
        self.mcr = value & UART_MCR_MASK_16550A;
        let new = modem_inputs(self.mcr);
        let changed = old ^ new;
        for (input, delta) in [
            (UART_MSR_CTS, UART_MSR_DCTS),
            (UART_MSR_DSR, UART_MSR_DDSR),
            (UART_MSR_DCD, UART_MSR_DDCD),
        ] {
            if changed & input != 0 {
                self.msr_delta |= delta;
            }
        }
        // RI reports its trailing edge only.
        if old & UART_MSR_RI != 0 && new & UART_MSR_RI == 0 {
            self.msr_delta |= UART_MSR_TERI;
        }
    }
}

/// Mask of the data bits of a word of the length LCR selects.
fn word_mask(lcr: u8) -> u8 {
    0xff >> (UART_LCR_WLEN8 - (lcr & UART_LCR_WLEN_MASK))
}

/// MSR bits 7:4 as the modem outputs in `mcr` drive them.
fn modem_inputs(mcr: u8) -> u8 {
    let on = |bit: u8, input: u8| if mcr & bit != 0 { input } else { 0 };
    if mcr & UART_MCR_LOOP != 0 {
        on(UART_MCR_RTS, UART_MSR_CTS)
            | on(UART_MCR_DTR, UART_MSR_DSR)
            | on(UART_MCR_OUT1, UART_MSR_RI)
            | on(UART_MCR_OUT2, UART_MSR_DCD)
    } else {
        on(UART_MCR_RTS, UART_MSR_CTS) | on(UART_MCR_DTR, UART_MSR_DSR | UART_MSR_DCD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_on_registers() {
        let mut u = Uart16550::new();
        assert_eq!(u.read(UART_IIR), UART_IIR_NO_INT);
        assert_eq!(u.read(UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
        assert_eq!(u.read(UART_MSR), 0);
        assert_eq!(u.read(UART_IER), 0);
        assert_eq!(u.pending(), Pending::empty());
    }

    #[test]
    fn word_length_masks_looped_bytes() {
        let mut u = Uart16550::new();
        for (wlen, want) in [(0, 0x1f), (1, 0x3f), (2, 0x7f), (3, 0xff)] {
            u.write(UART_LCR, wlen);
            u.write(UART_TX, 0xff);
            assert_eq!(u.read(UART_RX), want, "LCR word length {wlen}");
        }
    }

    #[test]
    fn ier_keeps_only_16550a_bits() {
        let mut u = Uart16550::new();
        u.write(UART_IER, 0xff);
        assert_eq!(u.read(UART_IER), 0x0f);
    }

    #[test]
    fn linux_loopback_test_sees_0x90() {
        // 8250_port.c autoconfig(): MCR = LOOP | OUT2 | RTS must read back
        // MSR[7:4] = DCD | CTS.
        let mut u = Uart16550::new();
        u.write(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
        assert_eq!(u.read(UART_MSR) & 0xf0, 0x90);
    }

    #[test]
    fn modem_deltas_and_trailing_ri() {
        let mut u = Uart16550::new();
        u.write(UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
        assert_eq!(
            u.read(UART_MSR),
            UART_MSR_CTS
                | UART_MSR_DSR
                | UART_MSR_DCD
                | UART_MSR_DCTS
                | UART_MSR_DDSR
                | UART_MSR_DDCD
        );
        assert_eq!(
            u.read(UART_MSR),
            UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD,
            "deltas clear on read"
        );
        u.write(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
        u.read(UART_MSR);
        u.write(UART_MCR, UART_MCR_LOOP);
        assert_eq!(u.read(UART_MSR) & UART_MSR_TERI, UART_MSR_TERI);
        u.write(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
        assert_eq!(u.read(UART_MSR) & UART_MSR_TERI, 0, "leading RI edge");
    }

    #[test]
    fn mcr_high_bits_read_zero() {
        let mut u = Uart16550::new();
        u.write(UART_MCR, 0xff);
        assert_eq!(u.read(UART_MCR), UART_MCR_MASK_16550A);
    }

    #[test]
    fn non_fifo_overrun_replaces_rbr() {
        let mut u = Uart16550::new();
        u.write(UART_LCR, UART_LCR_WLEN8);
        u.write(UART_TX, 1);
        u.write(UART_TX, 2);
        assert_eq!(u.read(UART_LSR), UART_LSR_DR | UART_LSR_OE | 0x60);
        assert_eq!(u.read(UART_RX), 2);
        assert_eq!(u.read(UART_LSR), 0x60, "OE clears on LSR read");
        assert_eq!(u.read(UART_RX), 2, "an empty RBR keeps the last byte");
    }

    #[test]
    fn character_timeout_below_trigger_level() {
        let mut u = Uart16550::new();
        u.write(UART_LCR, UART_LCR_WLEN8);
        u.write(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4);
        u.write(UART_IER, UART_IER_RDI);
        for i in 0..3 {
            u.write(UART_TX, i);
        }
        assert_eq!(u.read(UART_IIR), 0xc0 | UART_IIR_RX_TIMEOUT);
        u.write(UART_TX, 3);
        assert_eq!(u.read(UART_IIR), 0xc0 | UART_IIR_RDI);
    }

    #[test]
    fn fifo_mode_switch_flushes() {
        let mut u = Uart16550::new();
        u.write(UART_FCR, UART_FCR_ENABLE_FIFO);
        u.write(UART_TX, 1);
        u.write(UART_FCR, 0);
        assert_eq!(u.read(UART_LSR) & UART_LSR_DR, 0);
        u.write(UART_TX, 1);
        u.write(UART_FCR, UART_FCR_CLEAR_RCVR);
        assert_eq!(
            u.read(UART_LSR) & UART_LSR_DR,
            UART_LSR_DR,
            "CLEAR_RCVR without ENABLE_FIFO is not programmed"
        );
    }
}
