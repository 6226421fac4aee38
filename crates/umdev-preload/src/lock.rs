//! A small futex mutex, and the per-connection serialisation of requests.
//!
//! Several threads may call on one fd; a request and its reply must not
//! interleave with another's, or the stream desyncs. Each connection in
//! use holds one of [`SLOTS`] locks, claimed by its inode for the length of
//! the call, so two connections never share one (a blocking `read` of a
//! fault queue must not stall an `ioctl` on another file).
//!
//! Fork caveat: the locks are this process's. A child forked while another
//! thread was inside a call inherits the lock held by a thread it does not
//! have, so a `pthread_atfork` child handler frees every lock ([`reset`]).
//! Parent and child calling on one shared connection *at the same time*
//! are not serialised against each other; one after the other is fine.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

/// Connections that can be in a call at once before two share a lock.
const SLOTS: usize = 64;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// A mutex over a futex word (Drepper, "Futexes Are Tricky", mutex 2):
/// no allocation, and a child after `fork` can free it.
pub(crate) struct Lock<T> {
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `Guard`, and one guard at a
// time exists (the futex word), as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for Lock<T> {}

/// Holds a [`Lock`]; unlocks when dropped.
pub(crate) struct Guard<'a, T>(&'a Lock<T>);

impl<T> Lock<T> {
    /// An unlocked lock over `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self {
            state: AtomicU32::new(UNLOCKED),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock.
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
                self.futex(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, CONTENDED);
            }
        }
        Guard(self)
    }

    /// Frees the lock whoever holds it: only for the single thread of a
    /// child just forked, where the holder does not exist.
    pub(crate) fn force_unlock(&self) {
        self.state.store(UNLOCKED, Ordering::Release);
    }

    fn futex(&self, op: libc::c_int, val: u32) {
        // SAFETY: FUTEX_WAIT/WAKE on an aligned u32 this lock owns, with no
        // timeout and no second word; the kernel only reads the word.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.state.as_ptr(),
                op,
                val,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the one holder of the lock.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the one holder of the lock.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.0.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.0.futex(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1);
        }
    }
}

/// A connection in a call: its inode, and how many threads hold or wait
/// for its slot.
#[derive(Clone, Copy)]
struct Claim {
    key: (u64, u64),
    users: u32,
}

const FREE: Claim = Claim {
    key: (0, 0),
    users: 0,
};

/// Which slot each connection in a call has.
static CLAIMS: Lock<[Claim; SLOTS]> = Lock::new([FREE; SLOTS]);
/// One lock a slot: held for a request and its reply.
static SERIAL: [Lock<()>; SLOTS] = [const { Lock::new(()) }; SLOTS];

/// Runs `call` as the only call on the connection `key` (st_dev, st_ino)
/// in this process.
pub(crate) fn serialised<R>(key: (u64, u64), call: impl FnOnce() -> R) -> R {
    let slot = claim(key);
    let result = {
        let _serial = SERIAL[slot].lock();
        call()
    };
    CLAIMS.lock()[slot].users -= 1;
    result
}

/// The slot of `key`: its own if another thread holds it, else a free
/// one; with every slot busy, a shared one (correct, only slower).
fn claim(key: (u64, u64)) -> usize {
    let mut claims = CLAIMS.lock();
    let slot = claims
        .iter()
        .position(|c| c.users > 0 && c.key == key)
        .or_else(|| claims.iter().position(|c| c.users == 0))
        .unwrap_or((key.1 % SLOTS as u64) as usize);
    let c = &mut claims[slot];
    if c.users == 0 {
        c.key = key;
    }
    c.users += 1;
    slot
}

/// The child's side of `fork`: frees every lock and claim.
pub(crate) fn reset() {
    CLAIMS.force_unlock();
    *CLAIMS.lock() = [FREE; SLOTS];
    for serial in &SERIAL {
        serial.force_unlock();
    }
}
