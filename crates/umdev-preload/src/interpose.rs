//! The interposed libc functions.
//!
//! Each resolves the next definition of its own name once
//! (`dlsym(RTLD_NEXT)`), rather than making the raw system call, so that
//! passthrough stays libc's: its `open64` flags, the fortify checks of
//! `__open_2`, cancellation points, and any other interposer loaded after
//! us. Our own system calls go through rustix's raw syscalls, which never
//! re-enter these functions.
//!
//! C-variadic prototypes: `open(path, flags, ...)`, `openat(dirfd, path,
//! flags, ...)` and `ioctl(fd, request, ...)` take an optional last
//! argument that stable Rust cannot declare as variadic. We declare it as a
//! plain register-sized argument. On x86_64 SysV (and AArch64 Linux)
//! variadic integer and pointer arguments are passed exactly as named ones,
//! in the next general register (`%rdx` / `%rcx`), so the definition reads
//! what the caller passed; a caller that passed none leaves an unspecified
//! value there, which, as in glibc, is only used when O_CREAT or O_TMPFILE
//! asks for a mode (and an ioctl's argument is only forwarded). The real
//! function is called through a variadic pointer type, so the value goes on
//! as the caller's.
//!
//! No function unwinds into C: a panic (there is no known path to one)
//! answers EIO.

use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{mode_t, off_t, size_t, ssize_t};
use rustix::io::Errno;
use umdev_uapi::frame::{Op, Request};

use crate::{errno, lock, node, owner, route, transport};

/// The next definition of a libc function, looked up on first use.
struct Real {
    name: &'static str,
    addr: AtomicPtr<c_void>,
}

impl Real {
    /// `name` must end in NUL.
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            addr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The address, null if there is no next definition.
    fn get(&self) -> *mut c_void {
        let addr = self.addr.load(Ordering::Acquire);
        if !addr.is_null() {
            return addr;
        }
        // SAFETY: `name` is NUL-terminated (every `Real` is made by
        // `interpose!` with a literal ending in "\0"); dlsym only reads it.
        let addr = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr().cast()) };
        self.addr.store(addr, Ordering::Release);
        addr
    }
}

/// Defines interposed functions of one prototype. In the body, `$pass`
/// is a closure calling the next definition of the function's own name
/// (type `$ty`) with the caller's arguments; the body runs under [`guard`].
macro_rules! interpose {
    ($(#[$doc:meta])* ($($arg:ident: $t:ty),*) -> $ret:ty, $ty:ty => |$pass:ident| $body:expr) => {};
    ($(#[$doc:meta])* $name:ident $(| $more:ident)* ($($arg:ident: $t:ty),*) -> $ret:ty,
     $ty:ty => |$pass:ident| $body:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        ///
        /// As the libc function: pointers are the caller's and must be
        /// valid as libc requires.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> $ret {
            static REAL: Real = Real::new(concat!(stringify!($name), "\0"));
            guard(|| {
                let addr = REAL.get();
                if addr.is_null() {
                    return errno::fail(Errno::NOSYS);
                }
                // SAFETY: dlsym found the next definition of this very
                // symbol, whose C prototype is `$ty`.
                let real = unsafe { std::mem::transmute::<*mut c_void, $ty>(addr) };
                // SAFETY: the caller's arguments, forwarded as they came.
                let $pass = || unsafe { real($($arg),*) };
                $body
            })
        }
        interpose! {
            $(#[$doc])* $($more)|* ($($arg: $t),*) -> $ret, $ty => |$pass| $body
        }
    };
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type Openat2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
type ReadFn = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;
type WriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t;
type PreadFn = unsafe extern "C" fn(c_int, *mut c_void, size_t, off_t) -> ssize_t;
type PwriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t;

interpose! {
    /// `open(2)`: a routed node connects to the daemon.
    open | open64 (path: *const c_char, flags: c_int, mode: mode_t) -> c_int,
    OpenFn => |pass| open_path(path, flags, pass)
}

interpose! {
    /// `openat(2)`: an absolute routed path connects to the daemon (the
    /// kernel ignores `dirfd` for it); a relative one goes to libc.
    openat | openat64 (dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int,
    OpenatFn => |pass| open_path(path, flags, pass)
}

interpose! {
    /// glibc's fortified `open` (`_FORTIFY_SOURCE`, no mode argument).
    __open_2 | __open64_2 (path: *const c_char, flags: c_int) -> c_int,
    Open2Fn => |pass| open_path(path, flags, pass)
}

interpose! {
    /// glibc's fortified `openat`.
    __openat_2 | __openat64_2 (dirfd: c_int, path: *const c_char, flags: c_int) -> c_int,
    Openat2Fn => |pass| open_path(path, flags, pass)
}

interpose! {
    /// `ioctl(2)`: on a served file, `cmd` (the request number truncated to
    /// 32 bits, as the kernel's `unsigned int cmd`) and `arg` go to the
    /// daemon.
    ioctl (fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int,
    IoctlFn => |pass| on_file(fd, |tid| Request::ioctl(request as u32, arg as u64, tid), pass)
}

interpose! {
    /// `read(2)`.
    read (fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t,
    ReadFn => |pass| transfer(fd, Op::READ, buf as u64, count, -1, pass)
}

interpose! {
    /// `write(2)`.
    write (fd: c_int, buf: *const c_void, count: size_t) -> ssize_t,
    WriteFn => |pass| transfer(fd, Op::WRITE, buf as u64, count, -1, pass)
}

interpose! {
    /// `pread(2)`: the offset goes with the request.
    pread | pread64 (fd: c_int, buf: *mut c_void, count: size_t, offset: off_t) -> ssize_t,
    PreadFn => |pass| transfer(fd, Op::READ, buf as u64, count, offset, pass)
}

interpose! {
    /// `pwrite(2)`: the offset goes with the request.
    pwrite | pwrite64 (fd: c_int, buf: *const c_void, count: size_t, offset: off_t) -> ssize_t,
    PwriteFn => |pass| transfer(fd, Op::WRITE, buf as u64, count, offset, pass)
}

/// Runs an entry point; a panic becomes EIO instead of unwinding into C.
fn guard<R: From<i8>>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| errno::fail(Errno::IO))
}

/// An open: a routed path is opened at the daemon, any other by `pass`
/// with errno as the caller left it.
fn open_path(path: *const c_char, flags: c_int, pass: impl FnOnce() -> c_int) -> c_int {
    if !path.is_null() {
        // SAFETY: a non-null path of open(2) is a NUL-terminated string
        // (libc would read it the same way).
        let path = unsafe { CStr::from_ptr(path) };
        if route::is_routed(path.to_bytes()) {
            return match node::open(path, flags) {
                Ok(sock) => sock.into_raw_fd(),
                Err(e) => errno::fail(e.errno()),
            };
        }
    }
    pass()
}

/// `read`/`write` and their offset forms: `count` bytes at `buf`, at
/// `offset` (−1: the file position).
fn transfer(
    fd: c_int,
    op: Op,
    buf: u64,
    count: size_t,
    offset: off_t,
    pass: impl FnOnce() -> ssize_t,
) -> ssize_t {
    on_file(
        fd,
        |tid| Request::new(op, 0, buf, count as u64, offset, tid),
        pass,
    )
}

/// A call on an fd: one request to the daemon if it serves the fd, else
/// `pass` with errno as the caller left it.
fn on_file<R: From<i8> + TryFrom<i64>>(
    fd: c_int,
    request: impl FnOnce(u32) -> Request,
    pass: impl FnOnce() -> R,
) -> R {
    let saved = errno::get();
    if fd >= 0 {
        // SAFETY: the caller's fd, borrowed for this call only; if it is
        // not open the kernel answers EBADF to fstat and we pass through.
        let sock = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Some(key) = owner::served(sock) {
            let req = request(transport::tid());
            let ret = lock::serialised(key, || transport::call(sock, &req));
            return match ret.map(R::try_from) {
                Ok(Ok(value)) => value,
                Ok(Err(_)) => errno::fail(Errno::OVERFLOW),
                Err(e) => errno::fail(e.errno()),
            };
        }
    }
    errno::set(saved);
    pass()
}
