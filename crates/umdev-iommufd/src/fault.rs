//! IOMMUFD_OBJ_FAULT (eventq.c): a queue of I/O page faults for HWPTs
//! allocated with IOMMU_HWPT_FAULT_ID_VALID, read and answered by user
//! space through the fault "fd" ([`FaultFd`]).
//!
//! A HWPT with a fault queue installs an `IopfHandler` as its domain's
//! fault handler. A translation fault that a page request could resolve
//! (an entry not present, or a permission the entry lacks) on a device
//! attached through iommufd becomes a one-fault group with LAST_PAGE set.
//! Reading moves a group to the response table under a cookie (from 1,
//! lowest free: `xa_alloc` with XA_FLAGS_ALLOC1); writing a response with
//! that cookie completes it. Detaching or replacing the HWPT of a
//! (group, PASID) answers its outstanding groups with INVALID
//! (`iommufd_auto_response_faults`), and so does destroying the queue.
//!
//! Lock order: the one in `private.rs` (iommufd_private.h).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;
use umdev_iommu::memory::PAGE_SIZE;
use umdev_iommu::pgtable::Access as DmaAccess;
use umdev_iommu::vtd::{FaultHandler, FaultReason, FaultRecord, IOMMU_NO_PASID};
use umdev_pci::Bdf;

use crate::error::{IommufdError, Result};
use crate::object::{HasHeader, ObjHeader, ObjRef};
pub use crate::private::{
    Fault, HwptPgfault, IopfResponse, PageResponseCode, PgfaultFlags, PgfaultPerm,
};
use crate::private::{FaultState, Ictx, IopfGroup, IopfHandler, Object};

/// Answers kept for [`FaultFd::take_responses`]; older ones are dropped.
const RESPONSE_LOG: usize = 256;

/// Page request group indexes are 9 bits (PCIe PRG index).
const GRPID_MASK: u32 = 0x1ff;

/// A response written to the queue (struct iommu_hwpt_page_response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageResponse {
    /// The cookie of the group's LAST_PAGE fault.
    pub cookie: u32,
    /// The result.
    pub code: PageResponseCode,
}

impl FaultState {
    fn complete(&mut self, group: &IopfGroup, code: PageResponseCode, auto: bool) {
        if self.responses.len() == RESPONSE_LOG {
            self.responses.pop_front();
        }
        let f = &group.fault;
        self.responses.push_back(IopfResponse {
            dev_id: f.dev_id,
            pasid: f
                .flags
                .contains(PgfaultFlags::PASID_VALID)
                .then_some(f.pasid),
            grpid: f.grpid,
            code,
            auto,
        });
    }

    /// The lowest free cookie from 1 (`xa_alloc`, XA_FLAGS_ALLOC1).
    fn alloc_cookie(&self) -> Option<u32> {
        let mut cookie = 1u32;
        for &used in self.response.keys() {
            if used != cookie {
                break;
            }
            cookie = cookie.checked_add(1)?;
        }
        Some(cookie)
    }
}

impl Fault {
    /// The object id.
    pub fn id(&self) -> u32 {
        self.hdr.id()
    }

    /// Queues a group (`iommufd_fault_iopf_handler`); a destroyed queue
    /// answers it INVALID at once.
    fn deliver(&self, group: IopfGroup) {
        let mut st = self.state.lock();
        if st.closed {
            st.complete(&group, PageResponseCode::Invalid, true);
        } else {
            st.deliver.push_back(group);
        }
    }

    fn next_grpid(&self) -> u32 {
        let mut st = self.state.lock();
        let grpid = st.next_grpid;
        st.next_grpid = (grpid + 1) & GRPID_MASK;
        grpid
    }

    /// `iommufd_auto_response_faults`: answers INVALID every group, read
    /// or not, that came through `hwpt_key` for (`group_id`, `pasid`).
    pub(crate) fn auto_respond(&self, hwpt_key: u64, group_id: u32, pasid: u32) {
        let mut st = self.state.lock();
        let matches = |g: &IopfGroup| {
            g.hwpt_key == hwpt_key && g.group_id == group_id && g.fault.pasid == pasid
        };
        let (hit, kept): (Vec<IopfGroup>, Vec<IopfGroup>) = st.deliver.drain(..).partition(matches);
        st.deliver = kept.into();
        let cookies: Vec<u32> = st
            .response
            .iter()
            .filter(|(_, g)| matches(g))
            .map(|(&c, _)| c)
            .collect();
        let answered: Vec<IopfGroup> = cookies
            .iter()
            .filter_map(|c| st.response.remove(c))
            .collect();
        for g in hit.iter().chain(&answered) {
            st.complete(g, PageResponseCode::Invalid, true);
        }
    }

    /// `iommufd_fault_destroy`: every outstanding group is answered
    /// INVALID and later faults are refused the same way.
    pub(crate) fn teardown(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        let pending: Vec<IopfGroup> = st.deliver.drain(..).collect();
        let read: Vec<IopfGroup> = std::mem::take(&mut st.response).into_values().collect();
        for g in pending.iter().chain(&read) {
            st.complete(g, PageResponseCode::Invalid, true);
        }
    }

    /// `iommufd_fault_fops_read`: whole groups while they fit in
    /// `max_faults` records, each moved to the response table under a new
    /// cookie.
    fn read(&self, max_faults: usize) -> Vec<HwptPgfault> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        while out.len() < max_faults {
            let Some(cookie) = st.alloc_cookie() else {
                break;
            };
            let Some(mut group) = st.deliver.pop_front() else {
                break;
            };
            group.fault.cookie = cookie;
            out.push(group.fault);
            st.response.insert(cookie, group);
        }
        out
    }

    /// `iommufd_fault_fops_write`: completes groups by cookie, in order.
    /// An unknown cookie stops with EINVAL; the count of responses
    /// consumed is returned if it is not zero, else the error.
    fn write(&self, responses: &[PageResponse]) -> Result<usize> {
        let mut st = self.state.lock();
        for (done, r) in responses.iter().enumerate() {
            let Some(group) = st.response.remove(&r.cookie) else {
                if done > 0 {
                    return Ok(done);
                }
                return Err(IommufdError::Errno {
                    what: "no fault group with this cookie",
                    errno: Errno::INVAL,
                });
            };
            st.complete(&group, r.code, false);
        }
        Ok(responses.len())
    }
}

/// The fault queue's file descriptor: holds a reference on the object, so
/// it cannot be destroyed (EBUSY) until this is dropped.
#[derive(Debug)]
pub struct FaultFd {
    fault: Arc<Fault>,
}

impl FaultFd {
    /// The FAULT object id (`out_fault_id`).
    pub fn id(&self) -> u32 {
        self.fault.id()
    }

    /// read(): up to `max_faults` faults, whole groups only; empty when
    /// nothing is pending.
    pub fn read(&self, max_faults: usize) -> Vec<HwptPgfault> {
        self.fault.read(max_faults)
    }

    /// write(): page responses by cookie. Returns how many were consumed;
    /// EINVAL if the first names no outstanding group.
    pub fn write(&self, responses: &[PageResponse]) -> Result<usize> {
        self.fault.write(responses)
    }

    /// Groups not yet read.
    pub fn pending(&self) -> usize {
        self.fault.state.lock().deliver.len()
    }

    /// Groups read but not yet answered.
    pub fn outstanding(&self) -> usize {
        self.fault.state.lock().response.len()
    }

    /// Removes and returns the page responses sent to devices so far,
    /// oldest first (the last 256 are kept).
    pub fn take_responses(&self) -> Vec<IopfResponse> {
        self.fault.state.lock().responses.drain(..).collect()
    }
}

impl Drop for FaultFd {
    fn drop(&mut self) {
        self.fault.header().put();
    }
}

impl IopfHandler {
    pub(crate) fn new(fault: &Arc<Fault>, hwpt_key: u64) -> Arc<Self> {
        Arc::new(Self {
            hwpt_key,
            fault: Mutex::new(Some(ObjRef::new(fault))),
            devices: Mutex::new(BTreeMap::new()),
        })
    }

    fn fault(&self) -> Option<Arc<Fault>> {
        self.fault.lock().as_ref().map(|f| Arc::clone(f.arc()))
    }

    /// A bound device is now attached for `pasid` through this HWPT.
    pub(crate) fn add_device(&self, bdf: Bdf, pasid: u32, dev_id: u32, group_id: u32) {
        self.devices.lock().insert((bdf, pasid), (dev_id, group_id));
    }

    /// The device left; faults it already queued stay until the
    /// attachment itself goes.
    pub(crate) fn remove_device(&self, bdf: Bdf, pasid: u32) {
        self.devices.lock().remove(&(bdf, pasid));
    }

    /// The (group, PASID) attachment left this HWPT (last detach or
    /// replace): forget its devices and answer its faults INVALID.
    pub(crate) fn detach_attachment(&self, group_id: u32, pasid: u32) {
        self.devices
            .lock()
            .retain(|&(_, p), &mut (_, g)| !(p == pasid && g == group_id));
        if let Some(fault) = self.fault() {
            fault.auto_respond(self.hwpt_key, group_id, pasid);
        }
    }

    /// The HWPT is destroyed: its reference on the queue goes.
    pub(crate) fn release(&self) {
        self.fault.lock().take();
    }
}

impl FaultHandler for IopfHandler {
    fn report(&self, rec: &FaultRecord) {
        // Only what a page request can resolve reaches the queue; other
        // faults stay in the unit's fault log.
        if !matches!(
            rec.reason,
            FaultReason::FirstLevelNotPresent { .. }
                | FaultReason::SecondLevelNotPresent { .. }
                | FaultReason::Permission
        ) {
            return;
        }
        let pasid = rec.pasid.unwrap_or(IOMMU_NO_PASID);
        let Some(&(dev_id, group_id)) = self.devices.lock().get(&(rec.requester, pasid)) else {
            return;
        };
        let Some(fault) = self.fault() else {
            return;
        };
        let mut flags = PgfaultFlags::LAST_PAGE;
        if rec.pasid.is_some() {
            flags |= PgfaultFlags::PASID_VALID;
        }
        let perm = match rec.access {
            DmaAccess::Read => PgfaultPerm::READ,
            DmaAccess::Write => PgfaultPerm::WRITE,
        };
        let grpid = fault.next_grpid();
        fault.deliver(IopfGroup {
            fault: HwptPgfault {
                flags,
                dev_id,
                pasid,
                grpid,
                perm,
                addr: rec.addr & !(PAGE_SIZE - 1),
                length: 0,
                cookie: 0,
            },
            hwpt_key: self.hwpt_key,
            group_id,
        });
    }
}

impl Ictx {
    /// IOMMU_FAULT_QUEUE_ALLOC: a new FAULT object and its fd.
    pub fn fault_queue_alloc(&self) -> Result<FaultFd> {
        let fault = Arc::new(Fault {
            hdr: ObjHeader::new(),
            state: Mutex::new(FaultState::default()),
        });
        // The fd's reference (`iommufd_eventq_init`).
        fault.header().get();
        self.table
            .lock()
            .insert(Object::Fault(Arc::clone(&fault)))?;
        Ok(FaultFd { fault })
    }

    /// A FAULT object by id: ENOENT otherwise (`iommufd_get_fault`).
    pub(crate) fn get_fault(&self, id: u32) -> Result<Arc<Fault>> {
        match self.table.lock().get(id)? {
            Object::Fault(f) => Ok(f),
            _ => Err(IommufdError::WrongType {
                id,
                wanted: "a fault queue",
                errno: Errno::NOENT,
            }),
        }
    }
}
