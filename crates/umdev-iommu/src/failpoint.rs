//! Fault injection in the spirit of the kernel's `fail_nth`
//! (tools/testing/selftests/iommu/iommufd_fail_nth.c).
//!
//! Every fallible step that can fail in the kernel for want of memory
//! (object-id allocation, table-page allocation, pin accounting, domain
//! fill, domain-id allocation) calls [`should_fail`] first. A test arms the
//! current thread with [`arm`]`(n)`: the `n`-th such step the thread then
//! reaches fails as if the allocation had failed, every step after it
//! succeeds again. Unarmed, a step costs one thread-local read.

use std::cell::Cell;

thread_local! {
    /// 0 = disarmed; otherwise the number of steps left before the failing one.
    static COUNTDOWN: Cell<u64> = const { Cell::new(0) };
    /// The site that failed since the last `arm`.
    static HIT: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Makes the `nth` (1-based) fallible step this thread reaches fail.
pub fn arm(nth: u64) {
    COUNTDOWN.with(|c| c.set(nth));
    HIT.with(|h| h.set(None));
}

/// Disarms the thread and returns the site that failed, if one did.
pub fn disarm() -> Option<&'static str> {
    COUNTDOWN.with(|c| c.set(0));
    HIT.with(Cell::take)
}

/// The steps left before the failing one: the armed count minus the steps
/// taken, 0 once the failure fired or when disarmed (what a read of the
/// kernel's `/proc/<pid>/task/<tid>/fail-nth` shows).
pub fn countdown() -> u64 {
    COUNTDOWN.with(Cell::get)
}

/// Called at a fallible step named `site`: true when this step must fail.
pub fn should_fail(site: &'static str) -> bool {
    COUNTDOWN.with(|c| match c.get() {
        0 => false,
        1 => {
            c.set(0);
            HIT.with(|h| h.set(Some(site)));
            true
        }
        n => {
            c.set(n - 1);
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_step_fails_once() {
        assert!(!should_fail("a"));
        arm(3);
        assert!(!should_fail("a"));
        assert!(!should_fail("b"));
        assert_eq!(countdown(), 1);
        assert!(should_fail("c"));
        assert_eq!(countdown(), 0);
        assert!(!should_fail("d"));
        assert_eq!(disarm(), Some("c"));
        arm(5);
        assert!(!should_fail("a"));
        assert_eq!(disarm(), None);
        assert!(!should_fail("a"));
    }
}
