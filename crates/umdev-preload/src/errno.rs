//! The calling thread's `errno`, and keeping it across our own checks.

use rustix::io::Errno;

/// The current `errno`.
pub(crate) fn get() -> i32 {
    // SAFETY: `__errno_location` returns the calling thread's errno
    // variable, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Sets `errno`.
pub(crate) fn set(value: i32) {
    // SAFETY: as in `get`.
    unsafe { *libc::__errno_location() = value }
}

/// `errno = e; return -1`, the C failure convention.
pub(crate) fn fail<R: From<i8>>(e: Errno) -> R {
    set(e.raw_os_error());
    R::from(-1)
}
