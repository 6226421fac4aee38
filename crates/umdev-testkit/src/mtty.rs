//! mtty fixtures: a device with an interrupt counter, and register
//! accessors.

use std::sync::Arc;

use umdev_devices::mtty::{MttyDevice, MttyParent, MttyType};

use crate::irq::Counter;

/// A fresh device of `ty` from a default parent, with its interrupt counter.
pub fn device(ty: MttyType) -> (MttyDevice, Arc<Counter>) {
    let log = Arc::new(Counter::default());
    let dev = MttyParent::default()
        .create(ty, log.clone())
        .expect("a default parent has ports");
    (dev, log)
}

/// Reads UART register `reg` of `port`.
pub fn rd(dev: &MttyDevice, port: u32, reg: u8) -> u8 {
    let mut b = [0];
    assert_eq!(dev.bar_read(port, u64::from(reg), &mut b), Ok(1));
    b[0]
}

/// Writes UART register `reg` of `port`.
pub fn wr(dev: &MttyDevice, port: u32, reg: u8, value: u8) {
    assert_eq!(dev.bar_write(port, u64::from(reg), &[value]), Ok(1));
}

/// Reads a little-endian config register of `N` bytes.
pub fn cfg<const N: usize>(dev: &MttyDevice, offset: u64) -> u32 {
    let mut b = [0u8; N];
    assert_eq!(dev.config_read(offset, &mut b), Ok(N));
    b.iter().rev().fold(0, |acc, &x| acc << 8 | u32::from(x))
}

/// Writes a little-endian config register of `N` bytes.
pub fn set_cfg<const N: usize>(dev: &MttyDevice, offset: u64, value: u32) {
    let b = value.to_le_bytes();
    assert_eq!(dev.config_write(offset, &b[..N]), Ok(N));
}
