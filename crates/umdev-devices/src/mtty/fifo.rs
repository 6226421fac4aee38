//! The receive FIFO of one UART: a 16-byte ring.

use super::regs::UART_FIFO_SIZE;

/// Bytes received and not yet read, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct RxFifo {
    buf: [u8; UART_FIFO_SIZE],
    head: usize,
    len: usize,
}

impl RxFifo {
    /// Number of bytes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `byte`; the caller checked there is room.
    pub(crate) fn push(&mut self, byte: u8) {
        debug_assert!(self.len < UART_FIFO_SIZE);
        self.buf[(self.head + self.len) % UART_FIFO_SIZE] = byte;
        self.len += 1;
    }

    /// Takes the oldest byte.
    pub(crate) fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.buf[self.head];
        self.head = (self.head + 1) % UART_FIFO_SIZE;
        self.len -= 1;
        Some(byte)
    }

    /// Drops everything held.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_in_order() {
        let mut f = RxFifo::default();
        for round in 0..3u8 {
            for i in 0..UART_FIFO_SIZE as u8 {
                f.push(round * 100 + i);
            }
            assert_eq!(f.len(), UART_FIFO_SIZE);
            for i in 0..UART_FIFO_SIZE as u8 {
                assert_eq!(f.pop(), Some(round * 100 + i));
            }
            assert_eq!(f.pop(), None);
            // Leave the head somewhere in the middle for the next round.
            f.push(7);
            f.pop();
        }
    }
}
