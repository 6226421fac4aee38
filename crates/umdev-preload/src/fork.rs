//! After `fork`: the child has one thread, and the locks other threads of
//! the parent held stay held in its copy of memory. A `pthread_atfork`
//! child handler, registered when the library is loaded, frees them.

use crate::{lock, owner};

/// Runs when the dynamic loader initialises the library (`.init_array`,
/// before the program's `main`).
#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER: extern "C" fn() = register;

extern "C" fn register() {
    // SAFETY: registers a handler with no prepare or parent part; the
    // library is never unloaded (LD_PRELOAD), so the handler stays valid.
    unsafe {
        libc::pthread_atfork(None, None, Some(child));
    }
}

/// The child's handler: only atomic stores, fit for a child of a
/// multithreaded parent (async-signal-safe).
extern "C" fn child() {
    lock::reset();
    owner::reset();
}
