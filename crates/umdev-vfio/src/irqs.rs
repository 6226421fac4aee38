//! The SET_IRQS state machine of vfio-pci (drivers/vfio/pci/vfio_pci_intrs.c),
//! reusable by any device with the vfio-pci IRQ layout.
//!
//! One interrupt type is active at a time (`vdev->irq_type`): none, INTx,
//! MSI or MSI-X. INTx is level-triggered and automasked: when the device
//! raises it the table masks it and signals the trigger once; UNMASK
//! re-arms it and, if the device's line is still asserted at that moment,
//! signals again and stays masked (`vfio_pci_intx_unmask_handler`). MSI and
//! MSI-X are enabled by a TRIGGER with eventfds and disabled by TRIGGER,
//! DATA_NONE, count 0. DATA_NONE / DATA_BOOL TRIGGER signal the vectors'
//! eventfds directly (loopback testing). ERR and REQ have one eventfd each.
//!
//! An INTx unmask eventfd (`vfio_virqfd`) is modelled without a worker:
//! a signal on it is consumed, and unmasks, the next time the table looks
//! at INTx (a device interrupt or another SET_IRQS).

use parking_lot::Mutex;
use rustix::io::Errno;

use crate::device::{EventFd, IrqAction, IrqData, SetIrqs, VfioError, irq};
use crate::pci_config::IrqMode;

/// Whether the device's INTx line is asserted right now.
pub type IsAsserted = Box<dyn Fn() -> bool + Send + Sync>;

/// The enabled interrupt type (`vdev->irq_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Active {
    None,
    Intx,
    Msi { nvec: u32 },
    Msix,
}

/// Mutable state (`vdev->ctx`, `err_trigger`, `req_trigger`).
#[derive(Default)]
struct State {
    active: Option<Active>,
    /// INTx trigger (`ctx[0].trigger`).
    intx_trigger: Option<EventFd>,
    /// INTx masked (`ctx[0].masked`).
    intx_masked: bool,
    /// The user set INTx disable in the command register
    /// (`vdev->virq_disabled`).
    virq_disabled: bool,
    /// A one-shot unmask eventfd (`ctx[0].unmask`).
    intx_unmask: Option<EventFd>,
    /// MSI / MSI-X vector triggers.
    vectors: Vec<Option<EventFd>>,
    err: Option<EventFd>,
    req: Option<EventFd>,
}

impl State {
    fn active(&self) -> Active {
        self.active.unwrap_or(Active::None)
    }
}

/// Per-device interrupt state driven by VFIO_DEVICE_SET_IRQS.
pub struct IrqTable {
    /// Vectors per index (`vfio_pci_get_irq_count`).
    counts: [u32; irq::NUM as usize],
    is_asserted: IsAsserted,
    st: Mutex<State>,
}

impl std::fmt::Debug for IrqTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqTable")
            .field("counts", &self.counts)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

fn invalid(what: &'static str) -> VfioError {
    VfioError::InvalidIrqSet { what }
}

/// The one eventfd of a single-vector request, if any (`fd >= 0`).
fn single_fd(data: IrqData) -> Option<EventFd> {
    match data {
        IrqData::Eventfd(mut v) => v.pop().flatten(),
        _ => None,
    }
}

/// Whether vector `i` of a DATA_NONE / DATA_BOOL request is selected.
fn selected(data: &IrqData, i: usize) -> bool {
    match data {
        IrqData::None => true,
        IrqData::Bool(b) => b[i],
        IrqData::Eventfd(_) => false,
    }
}

impl IrqTable {
    /// A table for a device with `counts[index]` vectors per IRQ index;
    /// `is_asserted` reports the device's INTx line level.
    pub fn new(counts: [u32; irq::NUM as usize], is_asserted: IsAsserted) -> Self {
        Self {
            counts,
            is_asserted,
            st: Mutex::new(State::default()),
        }
    }

    /// The enabled interrupt mode, as the config virtualisation wants it.
    pub fn mode(&self) -> IrqMode {
        match self.st.lock().active() {
            Active::None => IrqMode::None,
            Active::Intx => IrqMode::Intx,
            Active::Msi { nvec } => IrqMode::Msi { vectors: nvec },
            Active::Msix => IrqMode::Msix,
        }
    }

    /// Whether INTx is enabled and masked.
    pub fn intx_masked(&self) -> bool {
        let mut st = self.st.lock();
        self.poll_unmask(&mut st);
        st.active() == Active::Intx && st.intx_masked
    }

    /// `vfio_pci_set_irqs_ioctl`: dispatches a validated request.
    pub fn set_irqs(&self, req: SetIrqs) -> Result<(), VfioError> {
        let mut st = self.st.lock();
        self.poll_unmask(&mut st);
        match (req.index, req.action) {
            (irq::INTX, IrqAction::Mask) => Self::intx_mask(&mut st, req),
            (irq::INTX, IrqAction::Unmask) => self.intx_unmask(&mut st, req),
            (irq::INTX, IrqAction::Trigger) => self.intx_trigger(&mut st, req),
            (irq::MSI | irq::MSIX, IrqAction::Trigger) => self.msi_trigger(&mut st, req),
            (irq::ERR, IrqAction::Trigger) => Self::single_trigger(&mut st.err, req),
            (irq::REQ, IrqAction::Trigger) => Self::single_trigger(&mut st.req, req),
            // MSI/MSI-X masking is not exported ("XXX Need masking support
            // exported"), ERR and REQ only trigger: no handler, ENOTTY.
            (index, _) => Err(VfioError::UnsupportedIrqAction { index }),
        }
    }

    /// `vfio_pci_set_intx_mask`.
    fn intx_mask(st: &mut State, req: SetIrqs) -> Result<(), VfioError> {
        if st.active() != Active::Intx || req.start != 0 || req.count != 1 {
            return Err(invalid("INTx mask"));
        }
        match req.data {
            // "XXX implement me": ENOTTY.
            IrqData::Eventfd(_) => {
                return Err(VfioError::UnsupportedIrqAction { index: req.index });
            }
            ref d if selected(d, 0) => st.intx_masked = true,
            _ => {}
        }
        Ok(())
    }

    /// `vfio_pci_set_intx_unmask`.
    fn intx_unmask(&self, st: &mut State, req: SetIrqs) -> Result<(), VfioError> {
        if st.active() != Active::Intx || req.start != 0 || req.count != 1 {
            return Err(invalid("INTx unmask"));
        }
        match req.data {
            IrqData::Eventfd(v) => st.intx_unmask = v.into_iter().next().flatten(),
            ref d if selected(d, 0) => self.unmask(st),
            _ => {}
        }
        Ok(())
    }

    /// `vfio_pci_intx_unmask_handler`: re-arms INTx unless the user
    /// disabled it; a line still asserted fires again and stays masked.
    fn unmask(&self, st: &mut State) {
        if !st.intx_masked || st.virq_disabled {
            return;
        }
        if (self.is_asserted)() {
            if let Some(t) = &st.intx_trigger {
                t.signal();
            }
        } else {
            st.intx_masked = false;
        }
    }

    /// Consumes a signal on the unmask eventfd.
    fn poll_unmask(&self, st: &mut State) {
        if st.active() == Active::Intx && st.intx_unmask.as_ref().is_some_and(|u| u.take() > 0) {
            self.unmask(st);
        }
    }

    /// `vfio_pci_set_intx_trigger`.
    fn intx_trigger(&self, st: &mut State, req: SetIrqs) -> Result<(), VfioError> {
        let intx = st.active() == Active::Intx;
        if intx && req.count == 0 && matches!(req.data, IrqData::None) {
            Self::disable(st);
            return Ok(());
        }
        if !(intx || st.active() == Active::None) || req.start != 0 || req.count != 1 {
            return Err(invalid("INTx trigger"));
        }
        if let IrqData::Eventfd(_) = req.data {
            if !intx {
                // vfio_intx_enable: no pin, ENODEV.
                if self.counts[irq::INTX as usize] == 0 {
                    return Err(VfioError::Errno {
                        what: "device has no INTx pin",
                        errno: Errno::NODEV,
                    });
                }
                st.active = Some(Active::Intx);
                st.intx_masked = st.virq_disabled;
            }
            st.intx_trigger = single_fd(req.data);
            return Ok(());
        }
        if !intx {
            return Err(invalid("INTx not enabled"));
        }
        // Loopback: vfio_send_intx_eventfd, no automask.
        if selected(&req.data, 0)
            && let Some(t) = &st.intx_trigger
        {
            t.signal();
        }
        Ok(())
    }

    /// `vfio_pci_set_msi_trigger`.
    fn msi_trigger(&self, st: &mut State, req: SetIrqs) -> Result<(), VfioError> {
        let msix = req.index == irq::MSIX;
        let this = match st.active() {
            Active::Msi { .. } => !msix,
            Active::Msix => msix,
            _ => false,
        };
        if this && req.count == 0 && matches!(req.data, IrqData::None) {
            Self::disable(st);
            return Ok(());
        }
        if !(this || st.active() == Active::None) {
            return Err(invalid("another interrupt type is enabled"));
        }
        let IrqData::Eventfd(fds) = req.data else {
            if !this {
                return Err(invalid("MSI/MSI-X not enabled"));
            }
            for i in 0..req.count {
                let v = (req.start + i) as usize;
                if selected(&req.data, i as usize)
                    && let Some(Some(t)) = st.vectors.get(v)
                {
                    t.signal();
                }
            }
            return Ok(());
        };
        let end = req.start + req.count;
        if !this {
            // vfio_msi_enable: MSI allocates exactly start + count vectors;
            // MSI-X allocates dynamically up to the table size.
            let (active, len) = if msix {
                (Active::Msix, self.counts[irq::MSIX as usize])
            } else {
                (Active::Msi { nvec: end }, end)
            };
            st.active = Some(active);
            st.vectors = (0..len).map(|_| None).collect();
        } else if end as usize > st.vectors.len() {
            // vfio_msi_set_vector_signal on an MSI vector never allocated.
            return Err(invalid("MSI vector not allocated"));
        }
        for (i, fd) in fds.into_iter().enumerate() {
            st.vectors[req.start as usize + i] = fd;
        }
        Ok(())
    }

    /// `vfio_pci_set_ctx_trigger_single` (ERR, REQ).
    fn single_trigger(slot: &mut Option<EventFd>, req: SetIrqs) -> Result<(), VfioError> {
        if req.start != 0 || req.count > 1 {
            return Err(invalid("ERR/REQ range"));
        }
        match req.data {
            IrqData::None if slot.is_some() => {
                if req.count == 0 {
                    *slot = None;
                } else if let Some(t) = slot {
                    t.signal();
                }
                Ok(())
            }
            IrqData::Bool(b) if req.count == 1 => {
                if b[0]
                    && let Some(t) = slot
                {
                    t.signal();
                }
                Ok(())
            }
            IrqData::Eventfd(mut v) if req.count == 1 => {
                *slot = v.pop().flatten();
                Ok(())
            }
            _ => Err(invalid("ERR/REQ data")),
        }
    }

    /// Drops the active type's triggers (`vfio_intx_disable`,
    /// `vfio_msi_disable`).
    fn disable(st: &mut State) {
        st.active = None;
        st.intx_trigger = None;
        st.intx_unmask = None;
        st.intx_masked = false;
        st.vectors.clear();
    }

    /// Tears every trigger down (`vfio_pci_core_disable` at close).
    pub fn disable_all(&self) {
        let mut st = self.st.lock();
        Self::disable(&mut st);
        st.err = None;
        st.req = None;
    }

    /// The user's INTx disable bit changed (`vfio_basic_config_write`
    /// masks or unmasks INTx).
    pub fn set_virq_disabled(&self, disabled: bool) {
        let mut st = self.st.lock();
        if st.virq_disabled == disabled {
            return;
        }
        st.virq_disabled = disabled;
        if st.active() != Active::Intx {
            return;
        }
        if disabled {
            st.intx_masked = true;
        } else {
            self.unmask(&mut st);
        }
    }

    /// A device interrupt on `index`, `vector`: INTx goes through the
    /// automask (`vfio_intx_handler`: ignored while masked), MSI/MSI-X
    /// vectors and ERR/REQ signal their eventfd. Returns whether an
    /// eventfd was signalled; nothing happens for an index that is not
    /// enabled.
    pub fn trigger(&self, index: u32, vector: u32) -> bool {
        let mut st = self.st.lock();
        self.poll_unmask(&mut st);
        let active = st.active();
        let fd = match index {
            irq::INTX if active == Active::Intx && vector == 0 => {
                if st.intx_masked {
                    return false;
                }
                st.intx_masked = true;
                st.intx_trigger.as_ref()
            }
            irq::MSI if matches!(active, Active::Msi { .. }) => {
                st.vectors.get(vector as usize).and_then(Option::as_ref)
            }
            irq::MSIX if active == Active::Msix => {
                st.vectors.get(vector as usize).and_then(Option::as_ref)
            }
            irq::ERR if vector == 0 => st.err.as_ref(),
            irq::REQ if vector == 0 => st.req.as_ref(),
            _ => None,
        };
        fd.inspect(|t| t.signal()).is_some()
    }

    /// A device interrupt on `vector` of whatever type is enabled (the
    /// device signals through the mechanism the driver programmed).
    pub fn raise(&self, vector: u32) -> bool {
        let index = match self.st.lock().active() {
            Active::None => return false,
            Active::Intx => irq::INTX,
            Active::Msi { .. } => irq::MSI,
            Active::Msix => irq::MSIX,
        };
        self.trigger(index, vector)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::device::{IrqInfo, IrqInfoFlags, irq_set_flags::*};

    const COUNTS: [u32; 5] = [1, 4, 8, 1, 1];

    struct Rig {
        table: IrqTable,
        line: Arc<AtomicBool>,
    }

    fn rig() -> Rig {
        let line = Arc::new(AtomicBool::new(false));
        let l = line.clone();
        let table = IrqTable::new(COUNTS, Box::new(move || l.load(Ordering::SeqCst)));
        Rig { table, line }
    }

    fn req(index: u32, flags: u32, start: u32, count: u32, data: IrqData) -> SetIrqs {
        let info = IrqInfo {
            index,
            flags: IrqInfoFlags::EVENTFD,
            count: COUNTS[index as usize],
        };
        SetIrqs::validate(5, &info, flags, start, count, data).unwrap()
    }

    impl Rig {
        fn set(
            &self,
            index: u32,
            flags: u32,
            start: u32,
            count: u32,
            data: IrqData,
        ) -> Result<(), Errno> {
            let r = self.table.set_irqs(req(index, flags, start, count, data));
            r.map_err(|e| e.errno())
        }
    }

    fn fds(n: usize) -> (Vec<EventFd>, IrqData) {
        let fds: Vec<EventFd> = (0..n).map(|_| EventFd::new().unwrap()).collect();
        let data = fds.iter().map(|f| Some(f.try_clone().unwrap())).collect();
        (fds, IrqData::Eventfd(data))
    }

    const OK: Result<(), Errno> = Ok(());
    const TRIG_FD: u32 = DATA_EVENTFD | ACTION_TRIGGER;

    #[test]
    fn intx_automasks_and_unmask_refires_while_asserted() {
        let r = rig();
        let (fd, data) = fds(1);
        assert_eq!(r.set(irq::INTX, TRIG_FD, 0, 1, data), OK);
        assert_eq!(r.table.mode(), IrqMode::Intx);
        r.line.store(true, Ordering::SeqCst);
        assert!(r.table.trigger(irq::INTX, 0));
        assert!(!r.table.trigger(irq::INTX, 0), "masked after firing");
        assert_eq!(fd[0].take(), 1);
        // Unmask with the line still asserted: fires again, stays masked.
        assert_eq!(
            r.set(irq::INTX, DATA_NONE | ACTION_UNMASK, 0, 1, IrqData::None),
            OK
        );
        assert_eq!(fd[0].take(), 1);
        assert!(r.table.intx_masked());
        // Deasserted: unmask re-arms.
        r.line.store(false, Ordering::SeqCst);
        let on = IrqData::Bool(vec![true]);
        assert_eq!(r.set(irq::INTX, DATA_BOOL | ACTION_UNMASK, 0, 1, on), OK);
        assert!(!r.table.intx_masked());
        assert!(r.table.raise(0));
        assert_eq!(fd[0].take(), 1);
        // The user's INTx disable keeps it masked through an unmask.
        r.table.set_virq_disabled(true);
        assert_eq!(
            r.set(irq::INTX, DATA_NONE | ACTION_UNMASK, 0, 1, IrqData::None),
            OK
        );
        assert!(r.table.intx_masked());
        r.table.set_virq_disabled(false);
        assert!(!r.table.intx_masked());
    }

    #[test]
    fn intx_unmask_eventfd_rearms() {
        let r = rig();
        let (fd, data) = fds(1);
        assert_eq!(OK, r.set(irq::INTX, TRIG_FD, 0, 1, data));
        let (unmask, udata) = fds(1);
        assert_eq!(
            r.set(irq::INTX, DATA_EVENTFD | ACTION_UNMASK, 0, 1, udata),
            OK
        );
        assert!(r.table.trigger(irq::INTX, 0));
        assert!(r.table.intx_masked());
        let mask_fd = IrqData::Eventfd(vec![None]);
        assert_eq!(
            r.set(irq::INTX, DATA_EVENTFD | ACTION_MASK, 0, 1, mask_fd),
            Err(Errno::NOTTY)
        );
        unmask[0].signal();
        assert!(!r.table.intx_masked());
        assert!(r.table.trigger(irq::INTX, 0));
        assert_eq!(fd[0].take(), 2);
    }

    #[test]
    fn msi_enable_excludes_other_types_and_disable_releases() {
        let r = rig();
        let (fd, data) = fds(2);
        assert_eq!(r.set(irq::MSI, TRIG_FD, 0, 2, data), OK);
        assert_eq!(r.table.mode(), IrqMode::Msi { vectors: 2 });
        // vfio_msi_enable / vfio_intx_enable refuse while MSI is on.
        assert_eq!(r.set(irq::MSIX, TRIG_FD, 0, 1, fds(1).1), Err(Errno::INVAL));
        assert_eq!(r.set(irq::INTX, TRIG_FD, 0, 1, fds(1).1), Err(Errno::INVAL));
        // A vector past the allocated ones.
        assert_eq!(r.set(irq::MSI, TRIG_FD, 2, 1, fds(1).1), Err(Errno::INVAL));
        // Loopback: DATA_NONE fires all, DATA_BOOL the selected ones.
        assert_eq!(
            r.set(irq::MSI, DATA_NONE | ACTION_TRIGGER, 0, 2, IrqData::None),
            OK
        );
        let sel = IrqData::Bool(vec![false, true]);
        assert_eq!(r.set(irq::MSI, DATA_BOOL | ACTION_TRIGGER, 0, 2, sel), OK);
        assert_eq!((fd[0].take(), fd[1].take()), (1, 2));
        assert!(r.table.raise(1));
        assert_eq!(fd[1].take(), 1);
        // Masking MSI: ENOTTY, as vfio-pci exports no MSI masking.
        assert_eq!(
            r.set(irq::MSI, DATA_NONE | ACTION_MASK, 0, 1, IrqData::None),
            Err(Errno::NOTTY)
        );
        assert_eq!(
            r.set(irq::INTX, DATA_NONE | ACTION_MASK, 0, 1, IrqData::None),
            Err(Errno::INVAL)
        );
        // Disable, then MSI-X may be enabled.
        assert_eq!(
            r.set(irq::MSI, DATA_NONE | ACTION_TRIGGER, 0, 0, IrqData::None),
            OK
        );
        assert_eq!(r.table.mode(), IrqMode::None);
        assert!(!r.table.trigger(irq::MSI, 0));
        assert_eq!(fd[0].take(), 0);
        let (x, data) = fds(1);
        assert_eq!(r.set(irq::MSIX, TRIG_FD, 5, 1, data), OK);
        assert_eq!(r.table.mode(), IrqMode::Msix);
        assert!(r.table.trigger(irq::MSIX, 5));
        assert!(!r.table.trigger(irq::MSIX, 0));
        assert_eq!(x[0].take(), 1);
        // MSI-X vectors are added later without re-enabling.
        assert_eq!(r.set(irq::MSIX, TRIG_FD, 7, 1, fds(1).1), OK);
    }

    #[test]
    fn err_and_req_have_one_eventfd() {
        let r = rig();
        // Loopback without a trigger: EINVAL.
        assert_eq!(
            r.set(irq::ERR, DATA_NONE | ACTION_TRIGGER, 0, 1, IrqData::None),
            Err(Errno::INVAL)
        );
        let (fd, data) = fds(1);
        assert_eq!(r.set(irq::REQ, TRIG_FD, 0, 1, data), OK);
        assert!(r.table.trigger(irq::REQ, 0));
        assert_eq!(
            r.set(irq::REQ, DATA_NONE | ACTION_TRIGGER, 0, 1, IrqData::None),
            OK
        );
        assert_eq!(fd[0].take(), 2);
        assert_eq!(
            r.set(irq::REQ, DATA_NONE | ACTION_UNMASK, 0, 1, IrqData::None),
            Err(Errno::NOTTY)
        );
        // count 0 + DATA_NONE removes it.
        assert_eq!(
            r.set(irq::REQ, DATA_NONE | ACTION_TRIGGER, 0, 0, IrqData::None),
            OK
        );
        assert!(!r.table.trigger(irq::REQ, 0));
        r.table.disable_all();
        assert_eq!(r.table.mode(), IrqMode::None);
    }

    /// One step of the INTx property test.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// The device drives its line to this level (a rising edge fires).
        Line(bool),
        /// ACTION_MASK, DATA_NONE.
        Mask,
        /// ACTION_UNMASK, DATA_NONE.
        Unmask,
        /// ACTION_TRIGGER, DATA_NONE: loopback.
        Loopback,
        /// The user's INTx disable bit.
        VirqDisabled(bool),
    }

    /// The reference: vfio_pci_intrs.c's INTx rules, stated directly.
    #[derive(Default)]
    struct Model {
        line: bool,
        masked: bool,
        virq: bool,
        fired: u64,
    }

    impl Model {
        fn unmask(&mut self) {
            if self.masked && !self.virq {
                if self.line {
                    self.fired += 1;
                } else {
                    self.masked = false;
                }
            }
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::Line(level) => {
                    let rising = level && !self.line;
                    self.line = level;
                    if rising && !self.masked {
                        self.masked = true;
                        self.fired += 1;
                    }
                }
                Op::Mask => self.masked = true,
                Op::Unmask => self.unmask(),
                Op::Loopback => self.fired += 1,
                Op::VirqDisabled(d) if d != self.virq => {
                    self.virq = d;
                    if d {
                        self.masked = true;
                    } else {
                        self.unmask();
                    }
                }
                Op::VirqDisabled(_) => {}
            }
        }
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            any::<bool>().prop_map(Op::Line),
            Just(Op::Mask),
            Just(Op::Unmask),
            Just(Op::Loopback),
            any::<bool>().prop_map(Op::VirqDisabled),
        ]
    }

    proptest::proptest! {
        #[test]
        fn intx_matches_the_reference(ops in proptest::collection::vec(op(), 1..40)) {
            let r = rig();
            let (fd, data) = fds(1);
            proptest::prop_assert_eq!(r.set(irq::INTX, TRIG_FD, 0, 1, data), OK);
            let mut m = Model::default();
            for op in ops {
                m.apply(op);
                match op {
                    Op::Line(level) => {
                        let was = r.line.swap(level, Ordering::SeqCst);
                        if level && !was {
                            r.table.trigger(irq::INTX, 0);
                        }
                    }
                    Op::Mask => {
                        r.set(irq::INTX, DATA_NONE | ACTION_MASK, 0, 1, IrqData::None).unwrap();
                    }
                    Op::Unmask => {
                        r.set(irq::INTX, DATA_NONE | ACTION_UNMASK, 0, 1, IrqData::None).unwrap();
                    }
                    Op::Loopback => {
                        r.set(irq::INTX, DATA_NONE | ACTION_TRIGGER, 0, 1, IrqData::None).unwrap();
                    }
                    Op::VirqDisabled(d) => r.table.set_virq_disabled(d),
                }
                proptest::prop_assert_eq!(fd[0].take(), m.fired);
                m.fired = 0;
                proptest::prop_assert_eq!(r.table.intx_masked(), m.masked);
            }
        }
    }
}
