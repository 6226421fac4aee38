//! One engine function as an mdev parent: its work queues handed out one
//! per mdev, each with a PASID of the function and an IMS entry, and the
//! routing of IMS messages to the mdevs' MSI-X vectors.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use umdev_iommu::iommu::Iommu;
use umdev_pci::Bdf;
use umdev_vfio::device::{VfioDeviceOps, VfioError};
use umdev_vfio::mdev::{Accounting, Mdev, MdevDriver, MdevType, MdevUuid};

use super::vdev::SdmaVdev;
use super::{SdmaMdev, SdmaMdevError};
use crate::irq::Interrupts;
use crate::sdma::{ImsMessage, Sdma};

/// Routes IMS messages: the message data the parent programs is the IMS
/// entry's index (an interrupt handle, as in a remappable MSI), and entry
/// `i` belongs to the mdev holding the work queue whose interrupt it is.
#[derive(Default)]
pub(super) struct ImsRouter {
    routes: Mutex<Vec<Weak<SdmaVdev>>>,
}

impl ImsRouter {
    fn set(&self, handle: usize, vdev: Weak<SdmaVdev>) {
        let mut routes = self.routes.lock();
        if routes.len() <= handle {
            routes.resize_with(handle + 1, Weak::new);
        }
        routes[handle] = vdev;
    }
}

impl Interrupts for ImsRouter {
    fn trigger(&self, vector: u32) {
        let vdev = self
            .routes
            .lock()
            .get(vector as usize)
            .and_then(Weak::upgrade);
        if let Some(vdev) = vdev {
            vdev.deliver();
        }
    }
}

/// A work queue handed to an mdev.
struct Assigned {
    uuid: MdevUuid,
    pasid: u32,
    vdev: Arc<SdmaVdev>,
}

/// The mdev parent driver of one bound engine function.
pub struct SdmaParent {
    bdf: Bdf,
    iommu: Arc<Iommu>,
    sdma: Arc<Sdma>,
    router: Arc<ImsRouter>,
    /// Per work queue: the mdev holding it.
    wqs: Mutex<Vec<Option<Assigned>>>,
}

impl std::fmt::Debug for SdmaParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdmaParent")
            .field("bdf", &self.bdf)
            .field("sdma", &self.sdma)
            .finish_non_exhaustive()
    }
}

impl SdmaParent {
    pub(super) fn new(
        bdf: Bdf,
        iommu: Arc<Iommu>,
        sdma: Arc<Sdma>,
        router: Arc<ImsRouter>,
    ) -> Self {
        let wqs = (0..sdma.wqs().len()).map(|_| None).collect();
        Self {
            bdf,
            iommu,
            sdma,
            router,
            wqs: Mutex::new(wqs),
        }
    }

    /// The engine.
    pub fn sdma(&self) -> &Arc<Sdma> {
        &self.sdma
    }

    /// The device of mdev `uuid`, if it is one of this parent's.
    pub fn device(&self, uuid: MdevUuid) -> Option<Arc<SdmaVdev>> {
        self.wqs
            .lock()
            .iter()
            .flatten()
            .find(|a| a.uuid == uuid)
            .map(|a| a.vdev.clone())
    }

    /// Work queue `wq` gets `pasid` and IMS entry `wq` (masked, its data
    /// the entry's handle); on failure the queue is left unassigned.
    fn program(&self, wq: usize, pasid: u32) -> Result<(), SdmaMdevError> {
        let q = &self.sdma.wqs()[wq];
        let ims = self.sdma.ims();
        q.reset();
        let r = q
            .set_pasid(Some(pasid))
            .and_then(|()| q.set_ims_entry(Some(wq)))
            .and_then(|()| ims.reset(wq))
            .and_then(|()| {
                ims.set_message(
                    wq,
                    ImsMessage {
                        addr: 0,
                        data: wq as u32,
                    },
                )
            });
        if r.is_err() {
            self.unprogram(wq);
        }
        Ok(r?)
    }

    /// Work queue `wq` back to unassigned: disabled, no PASID, no IMS
    /// entry; the entry masked and cleared.
    fn unprogram(&self, wq: usize) {
        let q = &self.sdma.wqs()[wq];
        q.reset();
        // Disabled by the reset, so neither can fail.
        let _ = q.set_pasid(None);
        let _ = q.set_ims_entry(None);
        let _ = self.sdma.ims().reset(wq);
    }

    /// Every queue given back (the function is being unbound).
    pub(super) fn shutdown(&self) {
        let taken: Vec<(usize, Assigned)> = self
            .wqs
            .lock()
            .iter_mut()
            .enumerate()
            .filter_map(|(i, a)| a.take().map(|a| (i, a)))
            .collect();
        for (wq, a) in taken {
            self.release(wq, a);
        }
    }

    fn release(&self, wq: usize, a: Assigned) {
        a.vdev.unplug();
        self.router.set(wq, Weak::new());
        self.unprogram(wq);
        self.iommu.free_global_pasid(a.pasid);
    }

    fn assign(&self, mdev: &Mdev) -> Result<Arc<SdmaVdev>, SdmaMdevError> {
        let bdf = self.bdf;
        let mut wqs = self.wqs.lock();
        let wq = wqs
            .iter()
            .position(Option::is_none)
            .ok_or(SdmaMdevError::NoWorkQueue { bdf })?;
        let pasid = self
            .iommu
            .alloc_global_pasid(bdf)
            .ok_or(SdmaMdevError::NoPasid { bdf })?;
        if let Err(e) = self.program(wq, pasid) {
            self.iommu.free_global_pasid(pasid);
            return Err(e);
        }
        let q = self.sdma.wqs()[wq].clone();
        let vdev = Arc::new(SdmaVdev::new(self.sdma.clone(), q, wq));
        self.router.set(wq, Arc::downgrade(&vdev));
        mdev.set_iommu_device(bdf);
        mdev.set_iommu_pasid(pasid);
        wqs[wq] = Some(Assigned {
            uuid: mdev.uuid(),
            pasid,
            vdev: vdev.clone(),
        });
        Ok(vdev)
    }
}

impl MdevDriver for SdmaParent {
    fn name(&self) -> &str {
        SdmaMdev::NAME
    }

    fn device_api(&self) -> &str {
        "vfio-pci"
    }

    fn accounting(&self) -> Accounting {
        Accounting::GetAvailable
    }

    /// The free work queues.
    fn get_available(&self, _: &MdevType) -> u32 {
        self.wqs.lock().iter().filter(|a| a.is_none()).count() as u32
    }

    fn description(&self, _: &MdevType) -> Option<String> {
        Some(format!(
            "one dedicated work queue of DMA engine {}, isolated by PASID",
            self.bdf
        ))
    }

    /// A free work queue, a global PASID of the function and the queue's
    /// IMS entry; the mdev is IOMMU-backed at that PASID. ENOSPC when no
    /// queue or PASID is left.
    fn create(&self, mdev: &Mdev) -> Result<Arc<dyn VfioDeviceOps>, VfioError> {
        Ok(self.assign(mdev)?)
    }

    /// The consumer is unbound already (the core unregistered the
    /// registration, detaching the PASID); the queue, its IMS entry and
    /// the PASID go back.
    fn remove(&self, mdev: &Mdev) {
        let taken = {
            let mut wqs = self.wqs.lock();
            wqs.iter_mut()
                .enumerate()
                .find(|(_, a)| a.as_ref().is_some_and(|a| a.uuid == mdev.uuid()))
                .and_then(|(i, a)| a.take().map(|a| (i, a)))
        };
        if let Some((wq, a)) = taken {
            self.release(wq, a);
        }
    }
}
