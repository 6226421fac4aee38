//! One function bound to mdev-pci: the mdev parent driver of its single
//! type (vfio_mdev_pci.c `struct vfio_mdev_pci_device` and its
//! `mdev_parent_ops`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use umdev_pci::{Bdf, Platform};
use umdev_vfio::device::{VfioDeviceOps, VfioError, irq};
use umdev_vfio::mdev::{Accounting, Mdev, MdevDriver, MdevType, MdevUuid};
use umdev_vfio::vfio_pci::VfioPciDevice;

use super::MdevPciError;

/// The mdev of a wrapped function.
struct Instance {
    uuid: MdevUuid,
    pci: Arc<VfioPciDevice>,
}

/// A wrapped function as an mdev parent driver: one instance, counted by
/// the driver (`atomic_t avail`).
pub(super) struct Wrapped {
    bdf: Bdf,
    platform: Weak<Platform>,
    /// `vmdev->avail`: 1 while the instance is free.
    avail: AtomicU32,
    instance: Mutex<Option<Instance>>,
}

impl Wrapped {
    pub(super) fn new(bdf: Bdf, platform: Weak<Platform>) -> Self {
        Self {
            bdf,
            platform,
            avail: AtomicU32::new(1),
            instance: Mutex::new(None),
        }
    }

    /// The pass-through device of the mdev `uuid`, if it is this one's.
    pub(super) fn pci_device(&self, uuid: MdevUuid) -> Option<Arc<VfioPciDevice>> {
        self.instance
            .lock()
            .as_ref()
            .filter(|i| i.uuid == uuid)
            .map(|i| i.pci.clone())
    }

    /// Builds the pass-through device; the mdev is IOMMU-backed by the
    /// whole RID of the wrapped function (the core registers it so).
    fn instantiate(&self, mdev: &Mdev) -> Result<Arc<VfioPciDevice>, MdevPciError> {
        let bdf = self.bdf;
        let platform = self.platform.upgrade().ok_or(MdevPciError::Gone { bdf })?;
        let pci = VfioPciDevice::for_function(&platform, bdf)
            .map_err(|errno| MdevPciError::PassThrough { bdf, errno })?;
        let pci = Arc::new(pci);
        // vfio_mdev_pci_create: mdev_set_iommu_device(mdev, &pdev->dev).
        mdev.set_iommu_device(bdf);
        *self.instance.lock() = Some(Instance {
            uuid: mdev.uuid(),
            pci: pci.clone(),
        });
        Ok(pci)
    }
}

impl MdevDriver for Wrapped {
    fn name(&self) -> &str {
        super::MdevPci::NAME
    }

    fn device_api(&self) -> &str {
        "vfio-pci"
    }

    fn accounting(&self) -> Accounting {
        Accounting::GetAvailable
    }

    /// `available_instances_show`: `atomic_read(&vmdev->avail)`.
    fn get_available(&self, _: &MdevType) -> u32 {
        self.avail.load(Ordering::Acquire)
    }

    fn description(&self, _: &MdevType) -> Option<String> {
        Some(format!("pass-through of PCI function {}", self.bdf))
    }

    /// `vfio_mdev_pci_create`: takes the instance with
    /// `atomic_dec_if_positive` (ENOSPC when none), and gives it back if
    /// anything after that fails.
    fn create(&self, mdev: &Mdev) -> Result<Arc<dyn VfioDeviceOps>, VfioError> {
        self.avail
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .map_err(|_| MdevPciError::NoInstance { bdf: self.bdf })?;
        match self.instantiate(mdev) {
            Ok(pci) => Ok(pci),
            Err(e) => {
                self.avail.fetch_add(1, Ordering::AcqRel);
                Err(e.into())
            }
        }
    }

    /// `vfio_pci_core_request`: the REQ interrupt asks the consumer to
    /// release the device.
    fn request(&self, mdev: &Mdev) {
        if let Some(pci) = self.pci_device(mdev.uuid()) {
            pci.trigger(irq::REQ, 0);
        }
    }

    /// `vfio_mdev_pci_remove`: the consumer is already unbound (the core
    /// asked with [`Self::request`] and unregistered); the instance is
    /// given back.
    fn remove(&self, mdev: &Mdev) {
        let taken = {
            let mut instance = self.instance.lock();
            match instance.as_ref() {
                Some(i) if i.uuid == mdev.uuid() => instance.take(),
                _ => None,
            }
        };
        if taken.is_some() {
            self.avail.fetch_add(1, Ordering::AcqRel);
        }
    }
}
