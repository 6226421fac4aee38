//! Random register sequences on a dual-port mtty against a plain reference
//! model of the receive FIFO, LSR, IIR and interrupt edges.

use std::collections::VecDeque;

use proptest::prelude::*;
use umdev_devices::mtty::MttyType;
use umdev_devices::mtty::regs::*;
use umdev_testkit::mtty::{device, rd, wr};

#[derive(Clone, Debug)]
enum Op {
    Tx(u8),
    Rx,
    Lsr,
    Iir,
    Ier(u8),
    ReadIer,
    Fcr(u8),
    Lcr(u8),
}

/// One UART as a textbook 16550A with an instant loopback line.
#[derive(Default)]
struct Model {
    rx: VecDeque<u8>,
    last: u8,
    fifo: bool,
    trigger: usize,
    overrun: bool,
    lcr: u8,
    ier: u8,
    divisor: [u8; 2],
    thre: bool,
    edges: u64,
}

impl Model {
    fn dlab(&self) -> bool {
        self.lcr & 0x80 != 0
    }

    /// (line status, receive data, THR empty), each gated by IER.
    fn pending(&self) -> [bool; 3] {
        [
            self.ier & 0x04 != 0 && self.overrun,
            self.ier & 0x01 != 0 && !self.rx.is_empty(),
            self.ier & 0x02 != 0 && self.thre,
        ]
    }

    fn iir(&self) -> u8 {
        let high = if self.fifo { 0xc0 } else { 0 };
        let id = match self.pending() {
            [true, _, _] => 0x06,
            [_, true, _] if self.fifo && self.rx.len() < self.trigger => 0x0c,
            [_, true, _] => 0x04,
            [_, _, true] => 0x02,
            _ => 0x01,
        };
        high | id
    }

    /// Applies `op`; returns what a read returns.
    fn step(&mut self, op: &Op) -> Option<u8> {
        let before = self.pending();
        let out = match *op {
            Op::Tx(v) if self.dlab() => {
                self.divisor[0] = v;
                None
            }
            Op::Tx(v) => {
                let bits = 5 + u32::from(self.lcr & 3);
                let v = (u16::from(v) & ((1 << bits) - 1)) as u8;
                let room = if self.fifo { 16 } else { 1 };
                if self.rx.len() == room {
                    self.overrun = true;
                    if !self.fifo {
                        self.rx[0] = v;
                    }
                } else {
                    self.rx.push_back(v);
                }
                self.thre = true;
                None
            }
            Op::Rx if self.dlab() => Some(self.divisor[0]),
            Op::Rx => {
                if let Some(b) = self.rx.pop_front() {
                    self.last = b;
                }
                Some(self.last)
            }
            Op::Lsr => {
                let v = 0x60 | u8::from(!self.rx.is_empty()) | u8::from(self.overrun) << 1;
                self.overrun = false;
                Some(v)
            }
            Op::Iir => {
                let v = self.iir();
                if v & 0x0f == 0x02 {
                    self.thre = false;
                }
                Some(v)
            }
            Op::Ier(v) if self.dlab() => {
                self.divisor[1] = v;
                None
            }
            Op::Ier(v) => {
                if v & 0x02 != 0 && self.ier & 0x02 == 0 {
                    self.thre = true;
                }
                self.ier = v & 0x0f;
                None
            }
            Op::ReadIer if self.dlab() => Some(self.divisor[1]),
            Op::ReadIer => Some(self.ier),
            Op::Fcr(v) => {
                let on = v & 1 != 0;
                if on != self.fifo || (on && v & 2 != 0) {
                    self.rx.clear();
                }
                self.fifo = on;
                if on {
                    self.trigger = [1, 4, 8, 14][usize::from(v >> 6)];
                }
                None
            }
            Op::Lcr(v) => {
                self.lcr = v;
                None
            }
        };
        let after = self.pending();
        if before.iter().zip(after).any(|(&b, a)| a && !b) {
            self.edges += 1;
        }
        out
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<u8>().prop_map(Op::Tx),
        6 => Just(Op::Rx),
        3 => Just(Op::Lsr),
        3 => Just(Op::Iir),
        2 => (0u8..16).prop_map(Op::Ier),
        1 => any::<u8>().prop_map(Op::Ier),
        1 => Just(Op::ReadIer),
        1 => any::<u8>().prop_map(Op::Fcr),
        2 => (0u8..4).prop_map(Op::Lcr),
        1 => any::<u8>().prop_map(Op::Lcr),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn uarts_match_the_reference_model(
        ops in proptest::collection::vec((0u32..2, op()), 1..300),
    ) {
        let (dev, irq) = device(MttyType::Dual);
        let mut models = [Model::default(), Model::default()];
        for (i, (port, op)) in ops.iter().enumerate() {
            let model = &mut models[*port as usize];
            let want = model.step(op);
            let got = match *op {
                Op::Tx(v) => { wr(&dev, *port, UART_TX, v); None }
                Op::Rx => Some(rd(&dev, *port, UART_RX)),
                Op::Lsr => Some(rd(&dev, *port, UART_LSR)),
                Op::Iir => Some(rd(&dev, *port, UART_IIR)),
                Op::Ier(v) => { wr(&dev, *port, UART_IER, v); None }
                Op::ReadIer => Some(rd(&dev, *port, UART_IER)),
                Op::Fcr(v) => { wr(&dev, *port, UART_FCR, v); None }
                Op::Lcr(v) => { wr(&dev, *port, UART_LCR, v); None }
            };
            prop_assert_eq!(got, want, "step {} on port {}: {:?}", i, port, op);
            prop_assert_eq!(
                irq.only(0),
                models[0].edges + models[1].edges,
                "interrupts after step {}: {:?}", i, op
            );
            let level = models.iter().any(|m| m.pending().iter().any(|&p| p));
            prop_assert_eq!(dev.irq_pending(), level);
        }
    }
}
