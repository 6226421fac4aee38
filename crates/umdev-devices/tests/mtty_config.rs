//! The mtty config space: IDs, read-only fields, BAR sizing, and the
//! region bounds of `vfio_config_do_rw()`.

use rustix::io::Errno;
use umdev_devices::mtty::regs::{UART_IER, UART_IER_THRI, UART_IIR};
use umdev_devices::mtty::{MttyError, MttyType};
use umdev_pci::regs::*;
use umdev_testkit::mtty::{cfg, device, set_cfg, wr};

#[test]
fn identity_as_the_sample_presents_it() {
    let (dev, _) = device(MttyType::Single);
    assert_eq!(dev.config_size(), 256);
    assert_eq!(cfg::<4>(&dev, 0x00), 0x3253_4348, "device:vendor");
    assert_eq!(cfg::<4>(&dev, 0x2c), 0x3253_4348, "subsystem");
    assert_eq!(cfg::<4>(&dev, 0x08), 0x0700_0210, "class 070002, rev 10");
    assert_eq!(
        cfg::<2>(&dev, u64::from(PCI_COMMAND)),
        u32::from(PCI_COMMAND_IO)
    );
    assert_eq!(
        cfg::<2>(&dev, u64::from(PCI_STATUS)),
        0x0200,
        "no capability list"
    );
    assert_eq!(cfg::<1>(&dev, u64::from(PCI_HEADER_TYPE)), 0);
    assert_eq!(
        cfg::<1>(&dev, u64::from(PCI_CAPABILITY_LIST)),
        0,
        "no MSI capability"
    );
    assert_eq!(cfg::<1>(&dev, u64::from(PCI_INTERRUPT_PIN)), 1, "INTA#");
    assert_eq!(
        cfg::<4>(&dev, u64::from(PCI_BASE_ADDRESS_0)),
        PCI_BASE_ADDRESS_SPACE_IO
    );
    assert_eq!(cfg::<4>(&dev, 0x14), 0, "one port, no BAR1");
}

#[test]
fn read_only_fields_ignore_writes() {
    let (dev, _) = device(MttyType::Single);
    let mut before = [0u8; 256];
    dev.config_read(0, &mut before).unwrap();
    assert_eq!(dev.config_write(0, &[0xff; 256]), Ok(256));
    let mut after = [0u8; 256];
    dev.config_read(0, &mut after).unwrap();
    for (at, (&b, &a)) in before.iter().zip(&after).enumerate() {
        let at = at as u16;
        let changed = match at {
            // IO and INTX_DISABLE.
            0x04 => a == 0x01,
            0x05 => a == 0x04,
            // BAR0 address bits 31:3.
            0x10 => a == 0xf9,
            0x11..=0x13 => a == 0xff,
            // Interrupt line.
            0x3c => a == 0xff,
            _ => a == b,
        };
        assert!(changed, "config byte {at:#04x}: {b:#04x} -> {a:#04x}");
    }
}

#[test]
fn bar_sizing_reads_back_the_size_mask_with_the_io_bit() {
    let (dev, _) = device(MttyType::Dual);
    for bar in [0x10, 0x14] {
        set_cfg::<4>(&dev, bar, !0);
        assert_eq!(
            cfg::<4>(&dev, bar),
            0xffff_fff9,
            "BAR at {bar:#x}: 8 bytes, I/O"
        );
        set_cfg::<4>(&dev, bar, 0xc00f);
        assert_eq!(cfg::<4>(&dev, bar), 0xc009, "low bits stay size-aligned");
    }
    for bar in [0x18, 0x1c, 0x20, 0x24, u64::from(PCI_ROM_ADDRESS)] {
        set_cfg::<4>(&dev, bar, !0);
        assert_eq!(cfg::<4>(&dev, bar), 0, "unimplemented BAR at {bar:#x}");
    }
    // A byte-wide write reaches only its byte.
    set_cfg::<1>(&dev, 0x11, 0xd0);
    assert_eq!(cfg::<4>(&dev, 0x10), 0xd009);
}

#[test]
fn status_interrupt_bit_follows_the_line() {
    let (dev, _) = device(MttyType::Single);
    let status = u64::from(PCI_STATUS);
    wr(&dev, 0, UART_IER, UART_IER_THRI);
    assert_eq!(
        cfg::<2>(&dev, status),
        0x0200 | u32::from(PCI_STATUS_INTERRUPT)
    );
    assert_eq!(cfg::<4>(&dev, 4) >> 16, 0x0208, "seen in a dword read too");
    let mut iir = [0];
    dev.bar_read(0, u64::from(UART_IIR), &mut iir).unwrap();
    assert_eq!(cfg::<2>(&dev, status), 0x0200);
}

#[test]
fn out_of_range_config_access_is_efault() {
    let (dev, _) = device(MttyType::Single);
    let mut b = [0u8; 4];
    for (offset, len) in [(254, 4), (256, 1), (0x1_0000, 1), (u64::MAX, 1)] {
        let e = dev.config_read(offset, &mut b[..len]).unwrap_err();
        assert_eq!(
            e,
            MttyError::ConfigRange {
                offset,
                len,
                size: 256
            }
        );
        assert_eq!(e.errno(), Errno::FAULT);
        assert_eq!(
            dev.config_write(offset, &b[..len]).unwrap_err().errno(),
            Errno::FAULT
        );
    }
    assert_eq!(dev.config_read(252, &mut b), Ok(4));
}

#[test]
fn reset_restores_power_on_config() {
    let (dev, _) = device(MttyType::Dual);
    let (fresh, _) = device(MttyType::Dual);
    dev.config_write(0, &[0xff; 256]).unwrap();
    dev.reset();
    let mut a = [0u8; 256];
    let mut b = [0u8; 256];
    dev.config_read(0, &mut a).unwrap();
    fresh.config_read(0, &mut b).unwrap();
    assert_eq!(a, b);
}
