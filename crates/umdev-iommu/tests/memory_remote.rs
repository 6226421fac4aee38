//! Remote memory objects (vfio-user DMA_MAP without an fd): device DMA
//! through the IOMMU reaches the registered backend at the right offsets,
//! page by page across a scattered mapping, a failing backend is a DMA
//! fault, release revokes, and no unit-wide lock is held while the backend
//! runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use rustix::io::Errno;
use umdev_iommu::dma::{Dma, DmaPort};
use umdev_iommu::iommu::PagingFlags;
use umdev_iommu::memory::{
    HostMemory, MemoryError, MemoryKind, PAGE_SIZE, RemoteBackend, RemoteError,
};
use umdev_iommu::pgtable::{Access, Prot};
use umdev_iommu::vtd::FaultReason;
use umdev_testkit::vtd::{attached_paging, bdf, config, driver};

/// Which way a backend call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

/// A client's memory as a plain buffer, with a log of the calls.
struct Client {
    bytes: Mutex<Vec<u8>>,
    calls: Mutex<Vec<(Dir, u64, usize)>>,
    gone: AtomicBool,
}

impl Client {
    fn new(len: u64) -> Arc<Self> {
        Arc::new(Self {
            bytes: Mutex::new((0..len).map(|i| (i % 251) as u8).collect()),
            calls: Mutex::new(Vec::new()),
            gone: AtomicBool::new(false),
        })
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    fn calls(&self) -> Vec<(Dir, u64, usize)> {
        self.calls.lock().unwrap().clone()
    }
}

impl RemoteBackend for Client {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RemoteError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(RemoteError::Disconnected);
        }
        self.calls
            .lock()
            .unwrap()
            .push((Dir::Read, offset, buf.len()));
        let bytes = self.bytes.lock().unwrap();
        buf.copy_from_slice(&bytes[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), RemoteError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(RemoteError::Disconnected);
        }
        self.calls
            .lock()
            .unwrap()
            .push((Dir::Write, offset, data.len()));
        self.bytes.lock().unwrap()[offset as usize..offset as usize + data.len()]
            .copy_from_slice(data);
        Ok(())
    }
}

const DEV: (u8, u8, u8) = (0, 4, 0);

#[test]
fn dma_into_a_remote_object_lands_in_the_backend_at_its_offset() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let client = Client::new(4 * PAGE_SIZE);
    let object = mem.insert_remote(4 * PAGE_SIZE, client.clone()).unwrap();
    assert_eq!(object.kind(), MemoryKind::Remote);
    assert!(object.is_remote() && object.file().is_none());
    domain
        .map(
            0x10_0000,
            object.base(),
            4 * PAGE_SIZE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();

    port.write(None, 0x10_0000 + 0x1123, b"remote bytes")
        .unwrap();
    assert_eq!(client.calls(), [(Dir::Write, 0x1123, 12)]);
    assert_eq!(&client.bytes()[0x1123..0x1123 + 12], b"remote bytes");

    let mut back = [0u8; 12];
    port.read(None, 0x10_0000 + 0x1123, &mut back).unwrap();
    assert_eq!(&back, b"remote bytes");
    let expected: Vec<u8> = (0x3000..0x3010u64).map(|i| (i % 251) as u8).collect();
    let mut tail = [0u8; 16];
    port.read(None, 0x10_3000, &mut tail).unwrap();
    assert_eq!(tail.as_slice(), expected.as_slice());

    // The object's own accessors and the HPA accessors reach the backend
    // too; direct views do not exist.
    let mut via_hpa = [0u8; 6];
    mem.read(object.base() + 0x1123, &mut via_hpa).unwrap();
    assert_eq!(&via_hpa, b"remote");
    assert!(matches!(
        object.slice(0, 8).unwrap_err(),
        MemoryError::NotMapped { .. }
    ));
    assert_eq!(object.atomic_u64(0).unwrap_err().errno(), Errno::FAULT);
    assert_eq!(
        mem.read_u64(object.base()).unwrap_err().errno(),
        Errno::FAULT
    );
    // Out-of-range accesses never reach the backend.
    let before = client.calls().len();
    assert!(object.read(4 * PAGE_SIZE - 4, &mut [0u8; 8]).is_err());
    assert_eq!(client.calls().len(), before);
    assert_eq!(object.remote_in_flight(), 0);
}

#[test]
fn a_dma_across_mapped_and_remote_pages_splits_at_the_object_boundary() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let local = mem.alloc_anonymous(PAGE_SIZE).unwrap();
    let client = Client::new(PAGE_SIZE);
    let remote = mem.insert_remote(PAGE_SIZE, client.clone()).unwrap();
    let rw = Prot::READ | Prot::WRITE;
    domain.map(0x4000, local.base(), PAGE_SIZE, rw).unwrap();
    domain.map(0x5000, remote.base(), PAGE_SIZE, rw).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();

    let data: Vec<u8> = (0..256u32).map(|i| (i * 7) as u8).collect();
    port.write(None, 0x5000 - 100, &data).unwrap();
    let mut head = vec![0u8; 100];
    local.read(PAGE_SIZE - 100, &mut head).unwrap();
    assert_eq!(head, data[..100]);
    assert_eq!(client.calls(), [(Dir::Write, 0, 156)]);
    assert_eq!(client.bytes()[..156], data[100..]);

    let mut back = vec![0u8; 256];
    port.read(None, 0x5000 - 100, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn a_failing_backend_is_a_dma_fault_not_a_panic() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let client = Client::new(2 * PAGE_SIZE);
    let object = mem.insert_remote(2 * PAGE_SIZE, client.clone()).unwrap();
    domain
        .map(
            0x8000,
            object.base(),
            2 * PAGE_SIZE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    client.gone.store(true, Ordering::SeqCst);

    let err = port.write(None, 0x8010, &[1u8; 64]).unwrap_err();
    assert_eq!(err.errno(), Errno::FAULT);
    assert_eq!(err.record().reason, FaultReason::Unbacked);
    assert_eq!(err.record().addr, 0x8010);
    assert_eq!(err.record().access, Access::Write);
    let err = port.read(None, 0x9000, &mut [0u8; 8]).unwrap_err();
    assert_eq!(
        (err.record().reason, err.record().addr),
        (FaultReason::Unbacked, 0x9000)
    );
    assert_eq!(driver.units()[0].fault_log().total(), 2);

    let direct = object.read(0, &mut [0u8; 4]).unwrap_err();
    assert!(matches!(
        direct,
        MemoryError::Remote {
            source: RemoteError::Disconnected,
            ..
        }
    ));
    assert_eq!(direct.errno(), Errno::FAULT);
    assert_eq!(object.remote_in_flight(), 0);
    assert!(client.calls().is_empty());
}

#[test]
fn release_revokes_a_remote_object() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let client = Client::new(PAGE_SIZE);
    let object = mem.insert_remote(PAGE_SIZE, client.clone()).unwrap();
    domain
        .map(0x1000, object.base(), PAGE_SIZE, Prot::READ | Prot::WRITE)
        .unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    port.write(None, 0x1000, b"a").unwrap();
    let placed = mem.placed_bytes();

    mem.release(&object);
    assert_eq!(mem.placed_bytes(), placed - PAGE_SIZE);
    // A stale translation faults; a stale reference is refused before the
    // backend.
    let err = port.write(None, 0x1000, b"b").unwrap_err();
    assert_eq!(err.record().reason, FaultReason::Unbacked);
    let err = object.write(0, b"c").unwrap_err();
    assert!(matches!(
        err,
        MemoryError::Remote {
            source: RemoteError::Revoked,
            ..
        }
    ));
    assert!(object.remote_access().is_err());
    assert_eq!(client.calls(), [(Dir::Write, 0, 1)]);
    assert_eq!(client.bytes()[0], b'a');
    object.drain();
}

/// A backend that parks every call until the test lets it go.
struct Parked {
    entered: Mutex<Sender<()>>,
    go: Mutex<Receiver<()>>,
    writes: AtomicUsize,
}

impl RemoteBackend for Parked {
    fn read(&self, _offset: u64, _buf: &mut [u8]) -> Result<(), RemoteError> {
        Err(RemoteError::Refused(5))
    }

    fn write(&self, _offset: u64, _data: &[u8]) -> Result<(), RemoteError> {
        self.entered.lock().unwrap().send(()).unwrap();
        self.go
            .lock()
            .unwrap()
            .recv()
            .map_err(|_| RemoteError::Disconnected)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_parked_backend_does_not_hold_up_invalidation_and_drain_waits_for_it() {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let (entered_tx, entered) = channel();
    let (go, go_rx) = channel();
    let backend = Arc::new(Parked {
        entered: Mutex::new(entered_tx),
        go: Mutex::new(go_rx),
        writes: AtomicUsize::new(0),
    });
    let remote = mem.insert_remote(PAGE_SIZE, backend.clone()).unwrap();
    let local = mem.alloc_anonymous(PAGE_SIZE).unwrap();
    let rw = Prot::READ | Prot::WRITE;
    domain.map(0x1000, remote.base(), PAGE_SIZE, rw).unwrap();
    domain.map(0x2000, local.base(), PAGE_SIZE, rw).unwrap();
    let port = DmaPort::for_requester(driver.units(), dev).unwrap();
    let drains_before = driver.units()[0].stats().drains;

    std::thread::scope(|s| {
        let dma = s.spawn(|| port.write(None, 0x1000, b"parked"));
        entered.recv().unwrap();
        assert_eq!(remote.remote_in_flight(), 1);

        // A strict unmap (IOTLB flush + in-flight drain) completes while the
        // remote DMA is parked in its backend.
        let (done_tx, done) = channel();
        let domain = &domain;
        s.spawn(move || {
            let bytes = domain.unmap(0x2000, PAGE_SIZE);
            done_tx.send(bytes).unwrap();
        });
        let unmapped = done.recv_timeout(Duration::from_secs(60));
        if unmapped.is_err() {
            go.send(()).unwrap();
        }
        assert_eq!(unmapped, Ok(PAGE_SIZE), "unmap waited for the backend");
        assert!(driver.units()[0].stats().drains > drains_before);

        // The owner's release + drain is what waits for it.
        mem.release(&remote);
        let (drained_tx, drained) = channel();
        let remote = &remote;
        s.spawn(move || {
            remote.drain();
            drained_tx.send(remote.remote_in_flight()).unwrap();
        });
        go.send(()).unwrap();
        assert_eq!(dma.join().unwrap(), Ok(()));
        assert_eq!(drained.recv().unwrap(), 0);
    });
    assert_eq!(backend.writes.load(Ordering::SeqCst), 1);
    let err = port.read(None, 0x1000, &mut [0u8; 1]).unwrap_err();
    assert_eq!(err.record().reason, FaultReason::Unbacked);
}

/// Page `i` of the IOVA window maps page `perm[i]` of the remote object.
fn scattered(perm: &[u64]) -> (Arc<umdev_iommu::intel::VtdIommu>, Arc<Client>, u64) {
    let (mem, driver) = driver(vec![config("dmar0", &[0])]);
    let dev = bdf(DEV.0, DEV.1, DEV.2);
    let domain = attached_paging(&driver, dev, PagingFlags::default());
    let pages = perm.len() as u64;
    let client = Client::new(pages * PAGE_SIZE);
    let object = mem
        .insert_remote(pages * PAGE_SIZE, client.clone())
        .unwrap();
    let base = 0x40_0000;
    for (i, &page) in perm.iter().enumerate() {
        domain
            .map(
                base + i as u64 * PAGE_SIZE,
                object.base() + page * PAGE_SIZE,
                PAGE_SIZE,
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
    }
    (driver, client, base)
}

#[test]
fn a_dma_across_scattered_pages_calls_the_backend_per_physical_run() {
    // IOVA pages 0,1,2,3 → object pages 2,3,0,1: two physically contiguous
    // runs, so two backend calls.
    let (driver, client, base) = scattered(&[2, 3, 0, 1]);
    let port = DmaPort::for_requester(driver.units(), bdf(DEV.0, DEV.1, DEV.2)).unwrap();
    let data = vec![0xabu8; 2 * PAGE_SIZE as usize];
    port.write(None, base + PAGE_SIZE + 0x800, &data).unwrap();
    assert_eq!(
        client.calls(),
        [
            (Dir::Write, 3 * PAGE_SIZE + 0x800, 0x800),
            (Dir::Write, 0, 0x1800),
        ]
    );
}

fn permutation() -> impl Strategy<Value = Vec<u64>> {
    (1u64..=6).prop_flat_map(|n| Just((0..n).collect::<Vec<u64>>()).prop_shuffle())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random reads and writes through a scattered IOVA window agree with
    /// a model of the client's memory indexed through the permutation.
    #[test]
    fn scattered_dma_matches_the_model(
        perm in permutation(),
        ops in proptest::collection::vec((any::<bool>(), 0u64..6 * PAGE_SIZE, 1usize..3 * PAGE_SIZE as usize, any::<u8>()), 1..24),
    ) {
        let (driver, client, base) = scattered(&perm);
        let port = DmaPort::for_requester(driver.units(), bdf(DEV.0, DEV.1, DEV.2)).unwrap();
        let window = perm.len() as u64 * PAGE_SIZE;
        let mut model = client.bytes();
        let phys = |iova_off: u64| perm[(iova_off / PAGE_SIZE) as usize] * PAGE_SIZE + iova_off % PAGE_SIZE;
        for (write, at, len, fill) in ops {
            let at = at % window;
            let len = (len as u64).min(window - at) as usize;
            if write {
                let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                port.write(None, base + at, &data).unwrap();
                for (i, b) in data.iter().enumerate() {
                    model[phys(at + i as u64) as usize] = *b;
                }
            } else {
                let mut buf = vec![0u8; len];
                port.read(None, base + at, &mut buf).unwrap();
                let want: Vec<u8> = (0..len as u64).map(|i| model[phys(at + i) as usize]).collect();
                prop_assert_eq!(buf, want);
            }
        }
        prop_assert_eq!(client.bytes(), model);
        // Crossing the end of the window: a translation fault, and the
        // remote piece before it is not moved.
        let calls = client.calls().len();
        prop_assert!(port.write(None, base + window - 1, &[0u8; 2]).is_err());
        prop_assert_eq!(client.calls().len(), calls);
    }
}

#[test]
fn remote_objects_get_host_physical_ranges_like_others() {
    let mem = HostMemory::new();
    let client = Client::new(2 << 20);
    let a = mem.alloc_anonymous(PAGE_SIZE).unwrap();
    let r = mem.insert_remote(2 << 20, client).unwrap();
    assert_eq!(r.base() % (2 << 20), 0, "naturally aligned for superpages");
    assert!(r.base() >= a.base() + a.size());
    assert_eq!(
        mem.insert_remote(100, Client::new(100))
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
    let (object, offset) = mem.resolve(r.base() + 0x3000, 16).unwrap();
    assert!(object.is_remote());
    assert_eq!(offset, 0x3000);
}
