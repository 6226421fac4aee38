//! The DMA test device on the real stack: the default platform with its
//! VT-d unit, an endpoint (the NVMe function) freed from its driver and
//! owned for user DMA, a paging domain attached to its group, and the
//! device programmed through `Platform::bar_write` like a user driver
//! would through a VFIO BAR region.

use proptest::prelude::*;
use umdev_devices::dmatest::attach_dmatest;
use umdev_devices::dmatest::regs::*;
use umdev_iommu::system::System;
use umdev_iommu::vtd::FaultReason;
use umdev_pci::regs::{PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use umdev_testkit::dmatest::{IOVA, Rig, WINDOW};

/// Bytes without short periods.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ seed)
        .collect()
}

#[test]
fn identification_and_attach() {
    let sys = System::default_platform().unwrap();
    let models = attach_dmatest(&sys);
    let bdfs: Vec<String> = models.iter().map(|m| m.bdf().to_string()).collect();
    // Every endpoint with a BAR 0; bridges and ports have none.
    assert_eq!(
        bdfs,
        [
            "0000:01:00.0",
            "0000:04:00.0",
            "0000:04:00.1",
            "0000:05:00.0",
            "0000:06:00.0",
            "0000:06:00.1",
            "0000:07:00.0",
            "0000:09:00.0",
            "0000:09:01.0"
        ]
    );
    // A second attach leaves them in place.
    assert!(attach_dmatest(&sys).is_empty());
    let rig = Rig::new();
    assert_eq!(rig.r32(DMATEST_ID), DMATEST_ID_VALUE);
    assert_eq!(rig.r32(DMATEST_VERSION), DMATEST_VERSION_VALUE);
    // Past the register window, and unaligned accesses: zero.
    assert_eq!(rig.r32(DMATEST_REGS_SIZE), 0);
    let mut b = [0xaa; 2];
    rig.sys.platform.bar_read(rig.dev, 0, 0, &mut b).unwrap();
    assert_eq!(b, [0; 2]);
}

#[test]
fn copy_lands_in_memory_and_interrupts() {
    let rig = Rig::new();
    let len = 20_000u32;
    let data = pattern(len as usize, 0x5c);
    rig.mem.write(0, &data).unwrap();
    rig.w32(DMATEST_IRQ_CTRL, DMATEST_IRQ_ENABLE);
    let status = rig.run(DMATEST_OP_COPY, IOVA, IOVA + 0x8000, len);
    assert_eq!(status, DMATEST_STATUS_DONE);
    assert_eq!(rig.r32(DMATEST_DONE_BYTES), len);
    assert_eq!(rig.r32(DMATEST_COMPLETIONS), 1);
    let mem = rig.memory();
    assert_eq!(&mem[0x8000..0x8000 + len as usize], &data[..]);
    assert_eq!(rig.irq.only(0), 1);
    assert!(rig.faults().is_empty());
    // DONE is write-1-to-clear; without IRQ_CTRL no interrupt.
    rig.w32(DMATEST_STATUS, DMATEST_STATUS_DONE);
    assert_eq!(rig.r32(DMATEST_STATUS), 0);
    rig.w32(DMATEST_IRQ_CTRL, 0);
    assert_eq!(
        rig.run(DMATEST_OP_COPY, IOVA, IOVA + 0x100, 16),
        DMATEST_STATUS_DONE
    );
    assert_eq!(rig.irq.only(0), 1);
    // Disconnected: enabled interrupts go nowhere.
    rig.model.set_interrupts(None);
    rig.w32(DMATEST_IRQ_CTRL, DMATEST_IRQ_ENABLE);
    assert_eq!(
        rig.run(DMATEST_OP_COPY, IOVA, IOVA + 0x100, 16),
        DMATEST_STATUS_DONE
    );
    assert_eq!(rig.irq.only(0), 1);
    assert_eq!(rig.r32(DMATEST_COMPLETIONS), 3);
}

#[test]
fn fill_writes_the_pattern() {
    let rig = Rig::new();
    rig.w64(DMATEST_FILL_LO, 0x0807_0605_0403_0201);
    assert_eq!(rig.r64(DMATEST_FILL_LO), 0x0807_0605_0403_0201);
    let status = rig.run(DMATEST_OP_FILL, 0, IOVA + 3, 9000);
    assert_eq!(status, DMATEST_STATUS_DONE);
    let mem = rig.memory();
    assert_eq!(mem[2], 0);
    for (i, b) in mem[3..9003].iter().enumerate() {
        assert_eq!(*b, (i % 8) as u8 + 1);
    }
    assert_eq!(mem[9003], 0);
}

#[test]
fn unmapped_iova_faults_with_the_address() {
    let rig = Rig::new();
    let data = pattern(0x3000, 1);
    rig.mem.write(0, &data).unwrap();
    rig.w32(DMATEST_IRQ_CTRL, DMATEST_IRQ_ENABLE);
    // The destination runs 0x1000 bytes past the end of the window.
    let dst = IOVA + WINDOW - 0x2000;
    let status = rig.run(DMATEST_OP_COPY, IOVA, dst, 0x3000);
    assert_eq!(
        status,
        DMATEST_STATUS_ERROR | (DMATEST_ERR_WRITE_FAULT << DMATEST_STATUS_CODE_SHIFT)
    );
    let end = IOVA + WINDOW;
    assert_eq!(rig.r64(DMATEST_FAULT_LO), end);
    assert_eq!(rig.r32(DMATEST_DONE_BYTES), 0x2000);
    assert_eq!(rig.irq.only(0), 1, "errors interrupt too");
    let faults = rig.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].requester, rig.dev);
    assert_eq!(faults[0].addr, end);
    assert_eq!(faults[0].pasid, None);
    assert!(
        matches!(
            faults[0].reason,
            FaultReason::FirstLevelNotPresent { .. } | FaultReason::SecondLevelNotPresent { .. }
        ),
        "{:?}",
        faults[0].reason
    );
    // The part inside the window was copied.
    let mem = rig.memory();
    let from = (WINDOW - 0x2000) as usize;
    assert_eq!(&mem[from..], &data[..0x2000]);

    // An unmapped source: a read fault, nothing written.
    let status = rig.run(DMATEST_OP_COPY, 0x10, IOVA, 64);
    assert_eq!(status >> DMATEST_STATUS_CODE_SHIFT, DMATEST_ERR_READ_FAULT);
    assert_eq!(rig.r64(DMATEST_FAULT_LO), 0x10);
    assert_eq!(rig.r32(DMATEST_DONE_BYTES), 0);
    assert_eq!(rig.faults().len(), 2);
    // Clearing ERROR clears the code.
    rig.w32(DMATEST_STATUS, DMATEST_STATUS_ERROR);
    assert_eq!(rig.r32(DMATEST_STATUS), 0);
}

#[test]
fn memory_decoding_off_ignores_writes() {
    let rig = Rig::new();
    rig.mem.write(0, &pattern(256, 9)).unwrap();
    rig.w32(DMATEST_LEN, 256);
    rig.command(PCI_COMMAND_MASTER);
    // Registers read all ones and START goes nowhere.
    assert_eq!(rig.r32(DMATEST_ID), u32::MAX);
    rig.w64(DMATEST_SRC_LO, IOVA);
    rig.w64(DMATEST_DST_LO, IOVA + 0x1000);
    rig.w32(DMATEST_LEN, 0x100);
    rig.w32(DMATEST_CMD, DMATEST_OP_COPY | DMATEST_CMD_START);
    rig.command(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_eq!(rig.r32(DMATEST_COMPLETIONS), 0);
    assert_eq!(rig.r64(DMATEST_SRC_LO), 0, "the writes were dropped");
    assert_eq!(rig.r32(DMATEST_LEN), 256);
    assert!(rig.memory()[0x1000..0x1100].iter().all(|&b| b == 0));
}

#[test]
fn no_bus_master_no_dma() {
    let rig = Rig::new();
    rig.mem.write(0, &pattern(64, 3)).unwrap();
    rig.command(PCI_COMMAND_MEMORY);
    let status = rig.run(DMATEST_OP_COPY, IOVA, IOVA + 0x1000, 64);
    assert_eq!(
        status >> DMATEST_STATUS_CODE_SHIFT,
        DMATEST_ERR_NO_BUS_MASTER
    );
    assert!(rig.memory()[0x1000..0x1040].iter().all(|&b| b == 0));
    assert!(rig.faults().is_empty());
}

#[test]
fn invalid_commands() {
    let rig = Rig::new();
    let invalid = DMATEST_STATUS_ERROR | (DMATEST_ERR_INVALID << DMATEST_STATUS_CODE_SHIFT);
    assert_eq!(rig.run(0x6, IOVA, IOVA, 16), invalid, "unknown op");
    assert_eq!(
        rig.run(DMATEST_OP_COPY, IOVA, IOVA, DMATEST_MAX_LEN + 1),
        invalid
    );
    assert_eq!(rig.run(DMATEST_OP_COPY, u64::MAX - 8, IOVA, 16), invalid);
    assert_eq!(
        rig.run(DMATEST_OP_COPY, IOVA, IOVA + 64, 0),
        DMATEST_STATUS_DONE
    );
}

#[test]
fn a_blocked_device_cannot_dma() {
    // The group back in its blocking domain (owned, nothing attached).
    let rig = Rig::new();
    let group = rig.sys.iommu.device_group(rig.dev).unwrap();
    rig.sys.iommu.detach_group(&rig.domain, &group).unwrap();
    let status = rig.run(DMATEST_OP_COPY, IOVA, IOVA + 0x1000, 64);
    assert_eq!(status >> DMATEST_STATUS_CODE_SHIFT, DMATEST_ERR_READ_FAULT);
    assert_eq!(rig.faults().last().unwrap().requester, rig.dev);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random copies, some running off the window: memory matches a
    /// model that copies up to the first unmapped byte.
    #[test]
    fn copies_match_a_model(
        ops in proptest::collection::vec((0..WINDOW + 0x2000, 0..WINDOW + 0x2000, 0u32..0x5000), 1..12),
    ) {
        let rig = Rig::new();
        let mut model = pattern(WINDOW as usize, 0x77);
        rig.mem.write(0, &model).unwrap();
        for (src, dst, len) in ops {
            let status = rig.run(DMATEST_OP_COPY, IOVA + src, IOVA + dst, len);
            // The engine, chunk by chunk: a chunk whose read faults is not
            // written; of a chunk whose write faults, bytes before the
            // first unmapped one may or may not have landed.
            let (src, dst, len) = (src as usize, dst as usize, len as usize);
            let window = WINDOW as usize;
            let mut off = 0;
            let mut maybe: Option<(usize, Vec<u8>)> = None;
            while off < len {
                let n = (len - off).min(4096);
                if src + off + n > window {
                    break;
                }
                let data = model[src + off..src + off + n].to_vec();
                let w = n.min(window.saturating_sub(dst + off));
                if w < n {
                    maybe = Some((dst + off, data[..w].to_vec()));
                    break;
                }
                model[dst + off..dst + off + n].copy_from_slice(&data);
                off += n;
            }
            if off == len {
                prop_assert_eq!(status, DMATEST_STATUS_DONE);
            } else {
                prop_assert_ne!(status & DMATEST_STATUS_ERROR, 0);
            }
            prop_assert_eq!(rig.r32(DMATEST_DONE_BYTES) as usize, off);
            let mem = rig.memory();
            if let Some((at, data)) = maybe {
                for (i, b) in data.iter().enumerate() {
                    let got = mem[at + i];
                    prop_assert!(got == *b || got == model[at + i], "byte {:#x}", at + i);
                    model[at + i] = got;
                }
            }
            prop_assert!(mem == model);
        }
    }
}
