//! 16550A register offsets and bits, named as in Linux
//! `include/uapi/linux/serial_reg.h` so a kernel reader finds them.
//!
//! Offsets are within the port's 8-byte I/O BAR. Offsets 0 and 1 are the
//! divisor latch while `LCR.DLAB` is set.

/// Receive buffer (read, DLAB = 0).
pub const UART_RX: u8 = 0;
/// Transmit holding register (write, DLAB = 0).
pub const UART_TX: u8 = 0;
/// Divisor latch, low byte (DLAB = 1).
pub const UART_DLL: u8 = 0;
/// Interrupt enable register (DLAB = 0).
pub const UART_IER: u8 = 1;
/// Divisor latch, high byte (DLAB = 1).
pub const UART_DLM: u8 = 1;
/// Interrupt identification register (read).
pub const UART_IIR: u8 = 2;
/// FIFO control register (write).
pub const UART_FCR: u8 = 2;
/// Line control register.
pub const UART_LCR: u8 = 3;
/// Modem control register.
pub const UART_MCR: u8 = 4;
/// Line status register (read; writes are ignored).
pub const UART_LSR: u8 = 5;
/// Modem status register (read; writes are ignored).
pub const UART_MSR: u8 = 6;
/// Scratch register.
pub const UART_SCR: u8 = 7;

/// IER: received data available (and character timeout).
pub const UART_IER_RDI: u8 = 0x01;
/// IER: transmitter holding register empty.
pub const UART_IER_THRI: u8 = 0x02;
/// IER: receiver line status.
pub const UART_IER_RLSI: u8 = 0x04;
/// IER: modem status.
pub const UART_IER_MSI: u8 = 0x08;

/// IIR bit 0: no interrupt pending.
pub const UART_IIR_NO_INT: u8 = 0x01;
/// IIR: mask of the interrupt identification (bits 3:1).
pub const UART_IIR_ID: u8 = 0x0e;
/// IIR identification: modem status (priority 4, lowest).
pub const UART_IIR_MSI: u8 = 0x00;
/// IIR identification: transmitter holding register empty (priority 3).
pub const UART_IIR_THRI: u8 = 0x02;
/// IIR identification: received data available (priority 2).
pub const UART_IIR_RDI: u8 = 0x04;
/// IIR identification: receiver line status (priority 1, highest).
pub const UART_IIR_RLSI: u8 = 0x06;
/// IIR identification: character timeout (priority 2, FIFO mode only).
pub const UART_IIR_RX_TIMEOUT: u8 = 0x0c;
/// IIR bits 7:6: FIFOs enabled (both bits set on a 16550A).
pub const UART_IIR_FIFO_ENABLED_16550A: u8 = 0xc0;

/// FCR: enable the FIFOs.
pub const UART_FCR_ENABLE_FIFO: u8 = 0x01;
/// FCR: clear the receive FIFO.
pub const UART_FCR_CLEAR_RCVR: u8 = 0x02;
/// FCR: clear the transmit FIFO.
pub const UART_FCR_CLEAR_XMIT: u8 = 0x04;
/// FCR: receive trigger level field (bits 7:6).
pub const UART_FCR_TRIGGER_MASK: u8 = 0xc0;
/// FCR trigger level: 1 byte.
pub const UART_FCR_TRIGGER_1: u8 = 0x00;
/// FCR trigger level: 4 bytes.
pub const UART_FCR_TRIGGER_4: u8 = 0x40;
/// FCR trigger level: 8 bytes.
pub const UART_FCR_TRIGGER_8: u8 = 0x80;
/// FCR trigger level: 14 bytes.
pub const UART_FCR_TRIGGER_14: u8 = 0xc0;

/// LCR: word length field (bits 1:0; 5 + value bits).
pub const UART_LCR_WLEN_MASK: u8 = 0x03;
/// LCR word length: 8 bits.
pub const UART_LCR_WLEN8: u8 = 0x03;
/// LCR: divisor latch access bit.
pub const UART_LCR_DLAB: u8 = 0x80;

/// MCR: data terminal ready.
pub const UART_MCR_DTR: u8 = 0x01;
/// MCR: request to send.
pub const UART_MCR_RTS: u8 = 0x02;
/// MCR: OUT1 (RI in loopback mode).
pub const UART_MCR_OUT1: u8 = 0x04;
/// MCR: OUT2 (DCD in loopback mode).
pub const UART_MCR_OUT2: u8 = 0x08;
/// MCR: internal loopback mode.
pub const UART_MCR_LOOP: u8 = 0x10;
/// MCR bits a 16550A implements (bits 7:5 read as zero).
pub const UART_MCR_MASK_16550A: u8 = 0x1f;

/// LSR: data ready.
pub const UART_LSR_DR: u8 = 0x01;
/// LSR: overrun error.
pub const UART_LSR_OE: u8 = 0x02;
/// LSR: transmitter holding register empty.
pub const UART_LSR_THRE: u8 = 0x20;
/// LSR: transmitter empty (holding and shift register).
pub const UART_LSR_TEMT: u8 = 0x40;

/// MSR: delta clear to send.
pub const UART_MSR_DCTS: u8 = 0x01;
/// MSR: delta data set ready.
pub const UART_MSR_DDSR: u8 = 0x02;
/// MSR: trailing edge ring indicator.
pub const UART_MSR_TERI: u8 = 0x04;
/// MSR: delta data carrier detect.
pub const UART_MSR_DDCD: u8 = 0x08;
/// MSR: clear to send.
pub const UART_MSR_CTS: u8 = 0x10;
/// MSR: data set ready.
pub const UART_MSR_DSR: u8 = 0x20;
/// MSR: ring indicator.
pub const UART_MSR_RI: u8 = 0x40;
/// MSR: data carrier detect.
pub const UART_MSR_DCD: u8 = 0x80;

/// Depth of the 16550A receive and transmit FIFOs.
pub const UART_FIFO_SIZE: usize = 16;
