//! A fixed-size, set-associative translation cache whose lookups take no
//! lock and write nothing: each slot is a seqlock, so a hit costs a few
//! loads. The IOTLB and the PASID-entry cache are built on it.
//!
//! Fills race with invalidations the way hardware fills do; the
//! generation counter closes that race. A filler reads
//! [`SeqCache::generation`] before it walks memory and inserts only if no
//! invalidation began since. An invalidation bumps the generation before it
//! scans; an inserter checks the generation while holding the slot. Both the
//! bump / scan and the slot lock / check are SeqCst, so either the scan sees
//! the slot locked (and waits, then removes the new entry) or the inserter
//! sees the new generation (and drops its fill).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use super::shard::{Padded, backoff};

/// Ways per set.
const WAYS: usize = 4;

/// A cache key. `key[0]` must have [`KEY_VALID`] set; an empty slot holds 0.
pub(crate) type Key = [u64; 2];

/// Marks a key as valid (and distinguishes it from an empty slot).
pub(crate) const KEY_VALID: u64 = 1 << 63;

struct Slot<const V: usize> {
    seq: AtomicU64,
    key: [AtomicU64; 2],
    val: [AtomicU64; V],
}

impl<const V: usize> Slot<V> {
    fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            key: [AtomicU64::new(0), AtomicU64::new(0)],
            val: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// A consistent snapshot of the key (None while a writer holds the
    /// slot), with the sequence number it was read under.
    fn read_key(&self, ordering: Ordering) -> Option<(u64, Key)> {
        let seq = self.seq.load(ordering);
        if seq & 1 != 0 {
            return None;
        }
        let key = [
            self.key[0].load(Ordering::Relaxed),
            self.key[1].load(Ordering::Relaxed),
        ];
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some((seq, key))
    }

    /// Takes the slot if its sequence number is still `seq`.
    fn try_lock(&self, seq: u64) -> bool {
        let locked = self
            .seq
            .compare_exchange(seq, seq + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if locked {
            // Data stores below must not become visible before the odd
            // sequence number (pairs with the reader's acquire fence).
            fence(Ordering::Release);
        }
        locked
    }

    fn lock(&self) -> u64 {
        let mut spins = 0;
        loop {
            let seq = self.seq.load(Ordering::Relaxed);
            if seq & 1 == 0 && self.try_lock(seq) {
                return seq;
            }
            backoff(&mut spins);
        }
    }

    fn unlock(&self, seq: u64) {
        self.seq.store(seq + 2, Ordering::Release);
    }
}

/// A set-associative seqlock cache of `V`-word values.
pub(crate) struct SeqCache<const V: usize> {
    slots: Box<[Slot<V>]>,
    set_bits: u32,
    hash_mask: u64,
    generation: Padded<AtomicU64>,
    victim: AtomicU32,
}

impl<const V: usize> std::fmt::Debug for SeqCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeqCache")
            .field("capacity", &self.capacity())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl<const V: usize> SeqCache<V> {
    /// A cache of `2^set_bits` sets of [`WAYS`] ways. Only the bits of
    /// `key[0]` in `hash_mask` choose the set (so that keys differing in the
    /// other bits can be found by probing one set).
    pub(crate) fn new(set_bits: u32, hash_mask: u64) -> Self {
        Self {
            slots: (0..WAYS << set_bits).map(|_| Slot::new()).collect(),
            set_bits,
            hash_mask,
            generation: Padded(AtomicU64::new(0)),
            victim: AtomicU32::new(0),
        }
    }

    /// Number of entries the cache holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn set_of(&self, key: Key) -> &[Slot<V>] {
        let hash = ((key[0] & self.hash_mask) ^ key[1].rotate_left(29))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let set = (hash >> (64 - self.set_bits)) as usize;
        &self.slots[set * WAYS..(set + 1) * WAYS]
    }

    /// The cached value for `key`.
    #[inline]
    pub(crate) fn lookup(&self, key: Key) -> Option<[u64; V]> {
        for slot in self.set_of(key) {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq & 1 != 0
                || slot.key[0].load(Ordering::Relaxed) != key[0]
                || slot.key[1].load(Ordering::Relaxed) != key[1]
            {
                continue;
            }
            let val = std::array::from_fn(|i| slot.val[i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == seq {
                return Some(val);
            }
        }
        None
    }

    /// The generation a filler must read before walking memory and pass to
    /// [`SeqCache::insert`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `val` for `key`, unless an invalidation began after
    /// `generation` was read.
    pub(crate) fn insert(&self, key: Key, val: [u64; V], generation: u64) {
        debug_assert!(key[0] & KEY_VALID != 0);
        let set = self.set_of(key);
        let keys: [Option<Key>; WAYS] =
            std::array::from_fn(|way| set[way].read_key(Ordering::Relaxed).map(|(_, k)| k));
        let way = keys
            .iter()
            .position(|k| *k == Some(key))
            .or_else(|| keys.iter().position(|k| k.is_some_and(|k| k[0] == 0)))
            .unwrap_or_else(|| self.victim.fetch_add(1, Ordering::Relaxed) as usize % WAYS);
        let slot = &set[way];
        let seq = slot.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            slot.key[0].store(key[0], Ordering::Relaxed);
            slot.key[1].store(key[1], Ordering::Relaxed);
            for (word, v) in slot.val.iter().zip(val) {
                word.store(v, Ordering::Relaxed);
            }
        }
        slot.unlock(seq);
    }

    /// Starts an invalidation: fills that read the generation before this
    /// will not be inserted. Call before scanning.
    pub(crate) fn begin_invalidation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes the entries of the set `probe` maps to that match `pred`.
    pub(crate) fn invalidate_set_of(&self, probe: Key, pred: impl Fn(Key) -> bool) -> usize {
        self.set_of(probe)
            .iter()
            .filter(|slot| Self::invalidate_slot(slot, &pred))
            .count()
    }

    /// Removes every entry that matches `pred`.
    pub(crate) fn invalidate_all(&self, pred: impl Fn(Key) -> bool) -> usize {
        self.slots
            .iter()
            .filter(|slot| Self::invalidate_slot(slot, &pred))
            .count()
    }

    fn invalidate_slot(slot: &Slot<V>, pred: &impl Fn(Key) -> bool) -> bool {
        let mut spins = 0;
        loop {
            match slot.read_key(Ordering::SeqCst) {
                None => backoff(&mut spins),
                Some((_, key)) if key[0] & KEY_VALID == 0 || !pred(key) => return false,
                Some((seq, _)) => {
                    if slot.try_lock(seq) {
                        slot.key[0].store(0, Ordering::Relaxed);
                        slot.unlock(seq);
                        return true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> Key {
        [KEY_VALID | n, n << 12]
    }

    #[test]
    fn insert_lookup_invalidate() {
        let cache = SeqCache::<2>::new(2, u64::MAX);
        assert_eq!(cache.capacity(), 16);
        let g = cache.generation();
        for n in 0..8 {
            cache.insert(key(n), [n, n + 1], g);
        }
        let hits = (0..8)
            .filter(|&n| cache.lookup(key(n)) == Some([n, n + 1]))
            .count();
        assert!(hits >= 4, "only {hits} of 8 entries cached in 16 slots");
        assert_eq!(cache.lookup(key(100)), None);
        let removed = cache.invalidate_all(|k| k[0] & 1 == 0);
        assert!(removed >= 1);
        for n in (0..8).step_by(2) {
            assert_eq!(cache.lookup(key(n)), None);
        }
    }

    #[test]
    fn stale_fill_after_invalidation_is_dropped() {
        let cache = SeqCache::<1>::new(4, u64::MAX);
        let g = cache.generation();
        cache.begin_invalidation();
        cache.invalidate_set_of(key(1), |_| true);
        cache.insert(key(1), [7], g);
        assert_eq!(cache.lookup(key(1)), None);
        cache.insert(key(1), [8], cache.generation());
        assert_eq!(cache.lookup(key(1)), Some([8]));
        // Re-inserting a key replaces it in place.
        cache.insert(key(1), [9], cache.generation());
        assert_eq!(cache.lookup(key(1)), Some([9]));
        cache.begin_invalidation();
        assert_eq!(cache.invalidate_set_of(key(1), |k| k == key(1)), 1);
        assert_eq!(cache.lookup(key(1)), None);
    }
}
