//! The real stack for sdma tests: the default platform with its DMA engine
//! function (0000:01:00.0, 20-bit PASIDs) freed from its start-up driver,
//! an [`Sdma`] over the function's DMA port, and consumers: paging domains
//! mapping fresh memory, each attached to the function at its own PASID.

use std::sync::Arc;

use umdev_devices::irq::Interrupts;
use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{COMPLETION_SIZE, DESC_SIZE, Descriptor, Sdma, SdmaConfig, WorkQueue};
use umdev_iommu::iommu::{Domain, PagingFlags};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::system::System;
use umdev_pci::Bdf;

pub use crate::irq::Counter;

/// The default platform's DMA engine function.
pub fn pf() -> Bdf {
    "0000:01:00.0".parse().unwrap()
}

/// A started system with an engine on the DMA function.
pub struct Rig {
    /// The platform.
    pub sys: System,
    /// The engine on the DMA function.
    pub sdma: Sdma,
    /// Its interrupts.
    pub irq: Arc<Counter>,
}

crate::default_is_new!(Rig);

impl Rig {
    /// Default engine configuration.
    pub fn new() -> Self {
        Self::with_config(SdmaConfig::default())
    }

    /// An engine shaped by `config`.
    pub fn with_config(config: SdmaConfig) -> Self {
        let irq = Arc::new(Counter::default());
        Self::with_sink(config, irq.clone(), irq)
    }

    /// An engine delivering to `sink` (`irq` stays an idle counter).
    pub fn with_sink(config: SdmaConfig, sink: Arc<dyn Interrupts>, irq: Arc<Counter>) -> Self {
        let sys = System::default_platform().unwrap();
        sys.platform.unbind("idxd", pf()).unwrap();
        let dma = Arc::new(sys.dma_for(pf()).unwrap());
        let sdma = Sdma::new(dma, sink, config).unwrap();
        Self { sys, sdma, irq }
    }

    /// Work queue `index`.
    pub fn wq(&self, index: usize) -> &Arc<WorkQueue> {
        self.sdma.wq(index).unwrap()
    }

    /// A consumer with `regions` (IOVA, length) of fresh memory mapped
    /// read/write, attached at a fresh PASID.
    pub fn consumer(&self, regions: &[(u64, u64)]) -> Consumer {
        let consumer = self.consumer_unattached(regions);
        self.sys
            .iommu
            .attach_device_pasid(&consumer.domain, pf(), consumer.pasid)
            .unwrap();
        consumer
    }

    /// As [`Rig::consumer`], before the PASID attach.
    pub fn consumer_unattached(&self, regions: &[(u64, u64)]) -> Consumer {
        let domain = self
            .sys
            .iommu
            .domain_alloc_paging(
                pf(),
                PagingFlags {
                    pasid: true,
                    ..PagingFlags::default()
                },
            )
            .unwrap();
        let pasid = self.sys.iommu.alloc_global_pasid(pf()).unwrap();
        let mut consumer = Consumer {
            domain,
            pasid,
            regions: Vec::new(),
        };
        for &(iova, len) in regions {
            self.map(&mut consumer, iova, len, Prot::READ | Prot::WRITE);
        }
        consumer
    }

    /// Maps `len` bytes of fresh memory at `iova` with `prot`.
    pub fn map(&self, consumer: &mut Consumer, iova: u64, len: u64, prot: Prot) {
        let memory = self.sys.vtd.memory().alloc_anonymous(len).unwrap();
        consumer.domain.map(iova, memory.base(), len, prot).unwrap();
        consumer.regions.push((iova, memory));
    }

    /// Host side of handing queue `wq` to `consumer`: its PASID, IMS entry
    /// `entry` delivering `vector`, unmasked.
    pub fn assign(&self, wq: usize, consumer: &Consumer, entry: usize, vector: u32) {
        let q = self.wq(wq);
        q.set_pasid(Some(consumer.pasid)).unwrap();
        q.set_ims_entry(Some(entry)).unwrap();
        let ims = self.sdma.ims();
        ims.set_message(
            entry,
            umdev_devices::sdma::ImsMessage {
                addr: 0xfee0_0000,
                data: vector,
            },
        )
        .unwrap();
        ims.unmask(entry).unwrap();
    }
}

/// A consumer's address space.
pub struct Consumer {
    /// The consumer's paging domain.
    pub domain: Arc<Domain>,
    /// The PASID it is attached at.
    pub pasid: u32,
    /// Its mapped regions: (IOVA, memory).
    pub regions: Vec<(u64, Arc<MemoryObject>)>,
}

impl Consumer {
    /// Runs `f(object, offset, range)` over the regions backing
    /// `[iova, iova + len)`, which may span adjacent regions.
    fn each(
        &self,
        iova: u64,
        len: usize,
        mut f: impl FnMut(&MemoryObject, u64, std::ops::Range<usize>),
    ) {
        let mut done = 0;
        while done < len {
            let at = iova + done as u64;
            let (base, m) = self
                .regions
                .iter()
                .find(|(base, m)| at >= *base && at < base + m.size())
                .unwrap_or_else(|| panic!("{at:#x} is not mapped memory"));
            let n = (len - done).min((base + m.size() - at) as usize);
            f(m, at - base, done..done + n);
            done += n;
        }
    }

    /// Reads consumer memory at `iova` (CPU side, no IOMMU).
    pub fn read(&self, iova: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.each(iova, len, |m, off, r| m.read(off, &mut buf[r]).unwrap());
        buf
    }

    /// Writes consumer memory at `iova` (CPU side).
    pub fn write(&self, iova: u64, data: &[u8]) {
        self.each(iova, data.len(), |m, off, r| {
            m.write(off, &data[r]).unwrap()
        });
    }
}

/// A completion record decoded by the documented offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cr {
    /// Completion status.
    pub status: u8,
    /// Result byte.
    pub result: u8,
    /// Fault information.
    pub fault_info: u8,
    /// Bytes completed.
    pub bytes: u32,
    /// The faulting address.
    pub fault_addr: u64,
    /// The operation's value (CRC, compare result).
    pub value: u64,
}

impl Cr {
    /// Decodes a record from its bytes, checking reserved bytes are zero.
    pub fn parse(b: &[u8]) -> Self {
        assert_eq!(b.len(), COMPLETION_SIZE);
        assert_eq!(b[3], 0, "reserved byte 3");
        assert!(b[24..].iter().all(|&x| x == 0), "reserved bytes 24..32");
        Self {
            status: b[0],
            result: b[1],
            fault_info: b[2],
            bytes: u32::from_le_bytes(b[4..8].try_into().unwrap()),
            fault_addr: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            value: u64::from_le_bytes(b[16..24].try_into().unwrap()),
        }
    }

    /// The record at `iova` in `consumer`'s memory.
    pub fn at(consumer: &Consumer, iova: u64) -> Self {
        Self::parse(&consumer.read(iova, COMPLETION_SIZE))
    }
}

/// Completion status: success.
pub const SUCCESS: u8 = 0x01;
/// Completion status: page fault.
pub const PAGE_FAULT: u8 = 0x03;

/// Reads a dword of the WQ's registers.
pub fn read32(wq: &WorkQueue, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    wq.mmio_read(offset, &mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Reads a qword of the WQ's registers.
pub fn read64(wq: &WorkQueue, offset: u64) -> u64 {
    let mut b = [0u8; 8];
    wq.mmio_read(offset, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Writes a dword of the WQ's registers.
pub fn write32(wq: &WorkQueue, offset: u64, value: u32) {
    wq.mmio_write(offset, &value.to_le_bytes()).unwrap();
}

/// Writes a qword of the WQ's registers.
pub fn write64(wq: &WorkQueue, offset: u64, value: u64) {
    wq.mmio_write(offset, &value.to_le_bytes()).unwrap();
}

/// Consumer side: a ring of `slots` at `ring`, interrupts on, enabled.
pub fn start(wq: &WorkQueue, ring: u64, slots: u32) {
    write64(wq, WQ_RING_BASE, ring);
    write32(wq, WQ_RING_SIZE, slots);
    write32(wq, WQ_INT_CTRL, INT_ENABLE);
    write32(wq, WQ_CTRL, CTRL_ENABLE);
    assert_eq!(read32(wq, WQ_STATUS) & STATUS_ENABLED, STATUS_ENABLED);
}

/// Writes `descs` into the ring of `wq` (in `consumer`'s memory) from its
/// TAIL on and rings the doorbell once.
pub fn post(wq: &WorkQueue, consumer: &Consumer, descs: &[Descriptor]) {
    let ring = read64(wq, WQ_RING_BASE);
    let slots = read32(wq, WQ_RING_SIZE);
    let mut tail = read32(wq, WQ_TAIL);
    for d in descs {
        consumer.write(ring + u64::from(tail) * DESC_SIZE as u64, &d.encode());
        tail = (tail + 1) % slots;
    }
    write32(wq, WQ_TAIL, tail);
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// CRC-32C bit by bit (the reference): inverted seed in, inverted out.
pub fn crc32c_ref(seed: u32, data: &[u8]) -> u32 {
    let mut c = !seed;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}
