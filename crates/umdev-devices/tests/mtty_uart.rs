//! The mtty UART as a driver sees it through the BARs: loopback, LSR, IIR
//! and interrupts.

use std::sync::{Arc, OnceLock, Weak};

use rustix::io::Errno;
use umdev_devices::irq::Interrupts;
use umdev_devices::mtty::regs::*;
use umdev_devices::mtty::{MttyDevice, MttyError, MttyParent, MttyType};
use umdev_testkit::mtty::{device, rd, wr};

const IDLE_LSR: u8 = UART_LSR_THRE | UART_LSR_TEMT;
const FIFO: u8 = UART_IIR_FIFO_ENABLED_16550A;

#[test]
fn thr_bytes_come_back_through_rbr_with_lsr_iir_and_interrupts() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    wr(&dev, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_1);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_NO_INT);
    assert_eq!(irq.only(0), 0);

    wr(&dev, 0, UART_IER, UART_IER_RDI | UART_IER_THRI);
    assert_eq!(irq.only(0), 1, "enabling THRI with THR empty raises THRE");

    let msg = b"mtty\x00\xff";
    for &b in msg {
        wr(&dev, 0, UART_TX, b);
    }
    assert_eq!(irq.only(0), 2, "one edge for the arrival of receive data");
    assert_eq!(rd(&dev, 0, UART_LSR), UART_LSR_DR | IDLE_LSR);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RDI, "RX data first");
    for &b in msg {
        assert_eq!(rd(&dev, 0, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
        assert_eq!(rd(&dev, 0, UART_RX), b);
    }
    assert_eq!(rd(&dev, 0, UART_LSR), IDLE_LSR);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_THRI, "then THRE");
    assert_eq!(
        rd(&dev, 0, UART_IIR),
        FIFO | UART_IIR_NO_INT,
        "read acked it"
    );
    assert!(!dev.irq_pending());
    assert_eq!(irq.only(0), 2, "reads raise nothing");
}

#[test]
fn without_fifos_iir_bits_7_6_are_clear() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    wr(&dev, 0, UART_IER, UART_IER_RDI | UART_IER_THRI);
    wr(&dev, 0, UART_TX, b'x');
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_RDI);
    assert_eq!(rd(&dev, 0, UART_RX), b'x');
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_THRI);
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_NO_INT);
    assert_eq!(irq.only(0), 2);
}

#[test]
fn full_fifo_overruns_and_keeps_the_first_sixteen() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    wr(
        &dev,
        0,
        UART_FCR,
        UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_14,
    );
    wr(&dev, 0, UART_IER, UART_IER_RDI | UART_IER_RLSI);
    for b in 0..UART_FIFO_SIZE as u8 {
        wr(&dev, 0, UART_TX, b);
    }
    assert_eq!(
        rd(&dev, 0, UART_IIR),
        FIFO | UART_IIR_RDI,
        "16 >= trigger 14"
    );
    assert_eq!(irq.only(0), 1);
    wr(&dev, 0, UART_TX, 0xee);
    assert_eq!(irq.only(0), 2, "the overrun is a new line-status interrupt");
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RLSI);
    assert_eq!(rd(&dev, 0, UART_LSR), UART_LSR_DR | UART_LSR_OE | IDLE_LSR);
    assert_eq!(
        rd(&dev, 0, UART_LSR),
        UART_LSR_DR | IDLE_LSR,
        "read clears OE"
    );
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RDI);
    for b in 0..UART_FIFO_SIZE as u8 {
        assert_eq!(rd(&dev, 0, UART_RX), b);
    }
    assert_eq!(rd(&dev, 0, UART_LSR), IDLE_LSR, "the 17th byte was lost");
}

#[test]
fn trigger_level_and_character_timeout() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    wr(&dev, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    wr(&dev, 0, UART_IER, UART_IER_RDI);
    for b in 0..7 {
        wr(&dev, 0, UART_TX, b);
    }
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RX_TIMEOUT);
    wr(&dev, 0, UART_TX, 7);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RDI);
    assert_eq!(irq.only(0), 1);
    wr(
        &dev,
        0,
        UART_FCR,
        UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR,
    );
    assert_eq!(rd(&dev, 0, UART_LSR), IDLE_LSR, "CLEAR_RCVR empties it");
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_NO_INT);
}

#[test]
fn dlab_switches_offsets_0_and_1_to_the_divisor_latch() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_IER, UART_IER_RDI);
    wr(&dev, 0, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    wr(&dev, 0, UART_DLL, 0x0c);
    wr(&dev, 0, UART_DLM, 0x01);
    assert_eq!(rd(&dev, 0, UART_DLL), 0x0c);
    assert_eq!(rd(&dev, 0, UART_DLM), 0x01);
    assert_eq!(
        rd(&dev, 0, UART_LSR),
        IDLE_LSR,
        "DLL writes transmit nothing"
    );
    assert_eq!(irq.only(0), 0);

    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    assert_eq!(rd(&dev, 0, UART_IER), UART_IER_RDI, "IER kept its value");
    wr(&dev, 0, UART_TX, 0x5a);
    assert_eq!(rd(&dev, 0, UART_LCR), UART_LCR_WLEN8);

    wr(&dev, 0, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    assert_eq!(rd(&dev, 0, UART_DLL), 0x0c, "latch kept, RBR untouched");
    assert_eq!(rd(&dev, 0, UART_DLM), 0x01);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    assert_eq!(rd(&dev, 0, UART_RX), 0x5a);
}

#[test]
fn iir_reports_by_priority() {
    let (dev, _irq) = device(MttyType::Single);
    wr(&dev, 0, UART_LCR, UART_LCR_WLEN8);
    wr(&dev, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(&dev, 0, UART_MCR, UART_MCR_RTS); // CTS follows: a modem delta
    wr(
        &dev,
        0,
        UART_IER,
        UART_IER_RDI | UART_IER_THRI | UART_IER_RLSI | UART_IER_MSI,
    );
    for b in 0..=UART_FIFO_SIZE as u8 {
        wr(&dev, 0, UART_TX, b); // the 17th overruns
    }
    assert_eq!(
        rd(&dev, 0, UART_IIR),
        FIFO | UART_IIR_RLSI,
        "1: line status"
    );
    rd(&dev, 0, UART_LSR);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_RDI, "2: RX data");
    for _ in 0..UART_FIFO_SIZE {
        rd(&dev, 0, UART_RX);
    }
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_THRI, "3: THRE");
    assert_eq!(
        rd(&dev, 0, UART_IIR),
        FIFO | UART_IIR_MSI,
        "4: modem status"
    );
    assert_eq!(
        rd(&dev, 0, UART_MSR),
        UART_MSR_CTS | UART_MSR_DCTS,
        "RTS loops to CTS"
    );
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_NO_INT);
}

#[test]
fn thre_follows_the_16550_rules_linux_probes() {
    // serial8250_do_startup(): THRI on → THRE; IIR read acks it; THRI
    // off and on again must re-assert it, or Linux sets UART_BUG_THRE.
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_IER, UART_IER_THRI);
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_THRI);
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_NO_INT);
    wr(&dev, 0, UART_IER, UART_IER_THRI);
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_NO_INT, "no rising edge");
    wr(&dev, 0, UART_IER, 0);
    wr(&dev, 0, UART_IER, UART_IER_THRI);
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_THRI, "re-asserted");
    wr(&dev, 0, UART_TX, 0);
    assert_eq!(irq.only(0), 3, "a THR write is a new THR-empty event");
    assert_eq!(rd(&dev, 0, UART_IIR), UART_IIR_THRI);
}

#[test]
fn rx_interrupt_raised_when_enabled_with_data_waiting() {
    let (dev, irq) = device(MttyType::Single);
    wr(&dev, 0, UART_TX, 1);
    assert_eq!(irq.only(0), 0, "nothing enabled");
    wr(&dev, 0, UART_IER, UART_IER_RDI);
    assert_eq!(irq.only(0), 1);
    assert!(dev.irq_pending());
    rd(&dev, 0, UART_RX);
    assert!(!dev.irq_pending());
}

#[test]
fn dual_port_uarts_are_independent() {
    let (dev, irq) = device(MttyType::Dual);
    for port in 0..2 {
        wr(&dev, port, UART_LCR, UART_LCR_WLEN8);
    }
    wr(&dev, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(&dev, 1, UART_IER, UART_IER_RDI);
    wr(&dev, 0, UART_TX, b'a');
    wr(&dev, 0, UART_TX, b'b');
    assert_eq!(irq.only(0), 0, "port 0 has nothing enabled");
    wr(&dev, 1, UART_TX, b'z');
    assert_eq!(irq.only(0), 1);
    wr(&dev, 1, UART_SCR, 0x55);
    assert_eq!(rd(&dev, 0, UART_SCR), 0);
    assert_eq!(rd(&dev, 0, UART_IIR), FIFO | UART_IIR_NO_INT);
    assert_eq!(rd(&dev, 1, UART_IIR), UART_IIR_RDI, "port 1 has no FIFO");
    assert_eq!(rd(&dev, 1, UART_RX), b'z');
    assert_eq!(rd(&dev, 1, UART_LSR), IDLE_LSR);
    assert_eq!(rd(&dev, 0, UART_RX), b'a');
    assert_eq!(rd(&dev, 0, UART_RX), b'b');
    assert_eq!(rd(&dev, 1, UART_SCR), 0x55);
}

#[test]
fn bar_bounds_follow_vfio_pci_bar_rw() {
    let (single, _) = device(MttyType::Single);
    let (dual, _) = device(MttyType::Dual);
    assert_eq!(single.bar_size(0), 8);
    assert_eq!(single.bar_size(1), 0);
    assert_eq!(dual.bar_size(1), 8);
    assert_eq!(dual.bar_size(2), 0);

    let mut b = [0u8; 4];
    let e = single.bar_read(1, 0, &mut b).unwrap_err();
    assert_eq!(e, MttyError::NoSuchBar { bar: 1 });
    assert_eq!(e.errno(), Errno::INVAL);
    assert_eq!(dual.bar_write(5, 0, &b).unwrap_err().errno(), Errno::INVAL);
    let e = single.bar_read(0, 8, &mut b).unwrap_err();
    assert_eq!(
        e,
        MttyError::BarOffset {
            bar: 0,
            offset: 8,
            size: 8
        }
    );
    assert_eq!(e.errno(), Errno::INVAL);
    assert_eq!(
        single.bar_read(0, u64::MAX, &mut b).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(single.bar_read(0, 6, &mut b), Ok(2), "cut at the BAR's end");
    assert_eq!(single.bar_read(0, 0, &mut []), Ok(0));
}

#[test]
fn wide_access_is_consecutive_registers() {
    let (dev, _) = device(MttyType::Single);
    // LCR, MCR, then LSR and MSR (read-only), then SCR.
    assert_eq!(
        dev.bar_write(0, 3, &[0x1b, UART_MCR_DTR, 0xff, 0xff, 0x42]),
        Ok(5)
    );
    let mut regs = [0u8; 8];
    assert_eq!(dev.bar_read(0, 0, &mut regs), Ok(8));
    assert_eq!(regs[UART_LCR as usize], 0x1b);
    assert_eq!(regs[UART_MCR as usize], UART_MCR_DTR);
    assert_eq!(regs[UART_LSR as usize], IDLE_LSR);
    assert_eq!(
        regs[UART_MSR as usize],
        UART_MSR_DSR | UART_MSR_DCD | UART_MSR_DDSR | UART_MSR_DDCD,
        "DTR reaches DSR and DCD through the loopback plug"
    );
    assert_eq!(regs[UART_SCR as usize], 0x42);
}

/// Calls back into the device from `trigger`, which must not deadlock and
/// must already see the level.
struct Reentrant {
    dev: OnceLock<Weak<MttyDevice>>,
    seen: std::sync::Mutex<Vec<bool>>,
}

impl Interrupts for Reentrant {
    fn trigger(&self, _vector: u32) {
        let dev = self
            .dev
            .get()
            .and_then(Weak::upgrade)
            .expect("device alive");
        self.seen.lock().unwrap().push(dev.irq_pending());
    }
}

#[test]
fn interrupt_handler_may_access_the_device() {
    let irq = Arc::new(Reentrant {
        dev: OnceLock::new(),
        seen: Default::default(),
    });
    let dev = Arc::new(
        MttyParent::default()
            .create(MttyType::Single, irq.clone())
            .unwrap(),
    );
    irq.dev.set(Arc::downgrade(&dev)).unwrap();
    wr(&dev, 0, UART_IER, UART_IER_THRI);
    wr(&dev, 0, UART_IER, UART_IER_THRI | UART_IER_RDI);
    wr(&dev, 0, UART_TX, 0);
    assert_eq!(*irq.seen.lock().unwrap(), vec![true, true]);
}

#[test]
fn reset_returns_the_uarts_to_power_on() {
    let (dev, irq) = device(MttyType::Dual);
    for port in 0..2 {
        wr(&dev, port, UART_LCR, UART_LCR_WLEN8);
        wr(&dev, port, UART_FCR, UART_FCR_ENABLE_FIFO);
        wr(&dev, port, UART_IER, 0x0f);
        wr(&dev, port, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
        wr(&dev, port, UART_SCR, 0x99);
        wr(&dev, port, UART_TX, 1);
    }
    let before = irq.only(0);
    dev.reset();
    assert_eq!(irq.only(0), before, "reset raises nothing");
    assert!(!dev.irq_pending());
    for port in 0..2 {
        let mut regs = [0u8; 8];
        dev.bar_read(port, 0, &mut regs).unwrap();
        assert_eq!(regs, [0, 0, UART_IIR_NO_INT, 0, 0, IDLE_LSR, 0, 0]);
    }
}
