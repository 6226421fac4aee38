//! The DMA test device on the real stack: the NVMe function freed from its
//! driver and owned for user DMA, a paging domain attached to its group,
//! and register accessors that program it as a user driver would through a
//! VFIO BAR region.

use std::sync::Arc;

use umdev_devices::dmatest::DmaTest;
use umdev_devices::dmatest::attach_dmatest;
use umdev_devices::dmatest::regs::*;
use umdev_iommu::iommu::{Domain, OwnerCookie, PagingFlags};
use umdev_iommu::memory::MemoryObject;
use umdev_iommu::pgtable::Prot;
use umdev_iommu::system::System;
use umdev_pci::Bdf;
use umdev_pci::regs::{PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};

use crate::irq::Counter;
use crate::pci::nvme;

/// IOVA of the mapped window.
pub const IOVA: u64 = 0x10_0000;
/// Size of the mapped window.
pub const WINDOW: u64 = 64 << 10;

/// The default platform with a DMA test engine behind each endpoint.
pub fn engines() -> (System, Vec<Arc<DmaTest>>) {
    let sys = System::default_platform().unwrap();
    let models = attach_dmatest(&sys);
    (sys, models)
}

/// The engine among `models` behind `dev`.
pub fn engine(models: &[Arc<DmaTest>], dev: Bdf) -> Arc<DmaTest> {
    models.iter().find(|m| m.bdf() == dev).unwrap().clone()
}

/// The owned NVMe function, its engine and its mapped window.
pub struct Rig {
    /// The platform.
    pub sys: System,
    /// The function (the NVMe one).
    pub dev: Bdf,
    /// Its DMA test engine.
    pub model: Arc<DmaTest>,
    /// The memory behind the window.
    pub mem: Arc<MemoryObject>,
    /// The engine's interrupts.
    pub irq: Arc<Counter>,
    /// The paging domain attached to the function's group.
    pub domain: Arc<Domain>,
    _owner: OwnerCookie,
}

crate::default_is_new!(Rig);

impl Rig {
    /// The NVMe function owned by a user, `WINDOW` bytes mapped at `IOVA`,
    /// memory decoding and bus mastering on.
    pub fn new() -> Self {
        let (sys, models) = engines();
        let dev = nvme();
        let model = engine(&models, dev);
        sys.platform.unbind("nvme", dev).unwrap();
        let owner = OwnerCookie::new();
        sys.iommu.device_claim_dma_owner(dev, &owner).unwrap();
        let domain = sys
            .iommu
            .domain_alloc_paging(dev, PagingFlags::default())
            .unwrap();
        let mem = sys.vtd.memory().alloc_anonymous(WINDOW).unwrap();
        domain
            .map(IOVA, mem.base(), WINDOW, Prot::READ | Prot::WRITE)
            .unwrap();
        let group = sys.iommu.device_group(dev).unwrap();
        sys.iommu.attach_group(&domain, &group).unwrap();
        let irq = Arc::new(Counter::default());
        model.set_interrupts(Some(irq.clone()));
        let rig = Rig {
            sys,
            dev,
            model,
            mem,
            irq,
            domain,
            _owner: owner,
        };
        rig.command(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
        rig
    }
}

impl Rig {
    /// Writes the PCI command register.
    pub fn command(&self, cmd: u16) {
        self.sys
            .platform
            .config_write(self.dev, PCI_COMMAND, &cmd.to_le_bytes())
            .unwrap();
    }

    /// Writes a dword of BAR 0 at `reg`.
    pub fn w32(&self, reg: u64, v: u32) {
        self.sys
            .platform
            .bar_write(self.dev, 0, reg, &v.to_le_bytes())
            .unwrap();
    }

    /// Writes a qword of BAR 0 at `reg`.
    pub fn w64(&self, reg: u64, v: u64) {
        self.sys
            .platform
            .bar_write(self.dev, 0, reg, &v.to_le_bytes())
            .unwrap();
    }

    /// Reads a dword of BAR 0 at `reg`.
    pub fn r32(&self, reg: u64) -> u32 {
        let mut b = [0; 4];
        self.sys
            .platform
            .bar_read(self.dev, 0, reg, &mut b)
            .unwrap();
        u32::from_le_bytes(b)
    }

    /// Reads a qword of BAR 0 at `reg`.
    pub fn r64(&self, reg: u64) -> u64 {
        let mut b = [0; 8];
        self.sys
            .platform
            .bar_read(self.dev, 0, reg, &mut b)
            .unwrap();
        u64::from_le_bytes(b)
    }

    /// Programs and starts an operation; returns STATUS.
    pub fn run(&self, op: u32, src: u64, dst: u64, len: u32) -> u32 {
        self.w64(DMATEST_SRC_LO, src);
        self.w64(DMATEST_DST_LO, dst);
        self.w32(DMATEST_LEN, len);
        self.w32(DMATEST_CMD, op | DMATEST_CMD_START);
        self.r32(DMATEST_STATUS)
    }

    /// The window's bytes.
    pub fn memory(&self) -> Vec<u8> {
        let mut b = vec![0; WINDOW as usize];
        self.mem.read(0, &mut b).unwrap();
        b
    }

    /// The fault log of the function's IOMMU unit.
    pub fn faults(&self) -> Vec<umdev_iommu::vtd::FaultRecord> {
        self.sys
            .vtd
            .unit_for(self.dev)
            .unwrap()
            .fault_log()
            .records()
    }
}
