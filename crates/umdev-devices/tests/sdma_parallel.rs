//! Work queues run independently: a queue busy on one thread neither
//! blocks another queue nor loses a doorbell rung meanwhile, and an
//! interrupt sink may ring its own queue's doorbell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use umdev_devices::irq::Interrupts;
use umdev_devices::sdma::regs::*;
use umdev_devices::sdma::{DESC_SIZE, Descriptor, SdmaConfig, WorkQueue};
use umdev_testkit::sdma::*;

const REGION: u64 = 0x10_0000;
const REGION_LEN: u64 = 0x1_0000;
const RING: u64 = REGION;
const CR: u64 = REGION + 0x1000;
const DATA: u64 = REGION + 0x2000;
const BLOCKING: u32 = 0x50;

/// Blocks inside the interrupt of vector [`BLOCKING`] until released (a
/// deadlock detector, not a timing assertion: 30 s without release means
/// the other queue could not run).
struct Blocker {
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
    released: AtomicBool,
    counter: Counter,
}

impl Interrupts for Blocker {
    fn trigger(&self, vector: u32) {
        self.counter.trigger(vector);
        if vector == BLOCKING {
            self.entered.lock().send(()).unwrap();
            let ok = self
                .release
                .lock()
                .recv_timeout(Duration::from_secs(30))
                .is_ok();
            self.released.store(ok, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_busy_queue_blocks_neither_another_queue_nor_its_own_doorbells() {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let blocker = Arc::new(Blocker {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        released: AtomicBool::new(false),
        counter: Counter::default(),
    });
    let rig = Rig::with_sink(
        SdmaConfig::default(),
        blocker.clone(),
        Arc::new(Counter::default()),
    );
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    let b = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, BLOCKING);
    rig.assign(1, &b, 1, 0x51);
    start(rig.wq(0), RING, 8);
    start(rig.wq(1), RING, 8);
    a.write(DATA, &[1; 64]);
    b.write(DATA, &[2; 64]);
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            post(
                rig.wq(0),
                &a,
                &[Descriptor::memmove(DATA, DATA + 64, 64).with_completion(CR, true)],
            );
        });
        // Queue 0's runner is now inside its interrupt.
        entered.recv().unwrap();
        post(
            rig.wq(1),
            &b,
            &[Descriptor::memmove(DATA, DATA + 64, 64).with_completion(CR, true)],
        );
        assert_eq!(Cr::at(&b, CR).status, SUCCESS, "queue 1 ran meanwhile");
        assert_eq!(b.read(DATA + 64, 64), [2; 64]);
        // A doorbell on the busy queue returns at once; the busy runner
        // picks the descriptor up.
        post(
            rig.wq(0),
            &a,
            &[Descriptor::fill(DATA + 128, 0x0909_0909_0909_0909, 64)
                .with_completion(CR + 32, false)],
        );
        release.send(()).unwrap();
        first.join().unwrap();
    });
    assert!(blocker.released.load(Ordering::SeqCst));
    assert_eq!(Cr::at(&a, CR).status, SUCCESS);
    assert_eq!(a.read(DATA + 64, 64), [1; 64]);
    assert_eq!(
        Cr::at(&a, CR + 32).status,
        SUCCESS,
        "the doorbell was not lost"
    );
    assert_eq!(a.read(DATA + 128, 64), [9; 64]);
    assert_eq!(read32(rig.wq(0), WQ_HEAD), 2);
    assert_eq!(
        (blocker.counter.count(BLOCKING), blocker.counter.count(0x51)),
        (1, 1)
    );
}

/// Rings its queue's doorbell from inside the queue's interrupt, once.
struct Reposter {
    wq: OnceLock<Arc<WorkQueue>>,
    done: AtomicBool,
    counter: Counter,
}

impl Interrupts for Reposter {
    fn trigger(&self, vector: u32) {
        self.counter.trigger(vector);
        if !self.done.swap(true, Ordering::SeqCst) {
            write32(self.wq.get().unwrap(), WQ_TAIL, 2);
        }
    }
}

#[test]
fn an_interrupt_sink_may_ring_its_own_doorbell() {
    let sink = Arc::new(Reposter {
        wq: OnceLock::new(),
        done: AtomicBool::new(false),
        counter: Counter::default(),
    });
    let rig = Rig::with_sink(
        SdmaConfig::default(),
        sink.clone(),
        Arc::new(Counter::default()),
    );
    let a = rig.consumer(&[(REGION, REGION_LEN)]);
    rig.assign(0, &a, 0, 7);
    let q = rig.wq(0);
    sink.wq.set(q.clone()).unwrap();
    start(q, RING, 8);
    a.write(
        RING + DESC_SIZE as u64,
        &Descriptor::fill(DATA, 0x66, 8)
            .with_completion(CR + 32, true)
            .encode(),
    );
    post(q, &a, &[Descriptor::noop().with_completion(CR, true)]);
    assert_eq!(Cr::at(&a, CR).status, SUCCESS);
    assert_eq!(Cr::at(&a, CR + 32).status, SUCCESS);
    assert_eq!(a.read(DATA, 8), 0x66u64.to_le_bytes());
    assert_eq!((read32(q, WQ_HEAD), sink.counter.count(7)), (2, 2));
}
