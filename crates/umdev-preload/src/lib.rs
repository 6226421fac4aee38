//! `libumdev_preload.so`: the kernel uAPI of umdev for unmodified programs.
//!
//! Loaded with `LD_PRELOAD` into a dynamically linked program, it turns
//! each `open` of a node the daemon serves (`/dev/iommu`, `/dev/vfio/*`,
//! the fail-nth files; `route`) into a `SOCK_SEQPACKET` connection to the
//! daemon (`node`), and each `ioctl`, `read`, `write`, `pread` and
//! `pwrite` on such a connection into one request and one reply
//! (`transport`). One connection is one open file description, so
//! `close`, `dup*`, `fcntl` and `fork` need nothing from us: the kernel's
//! own file semantics hold. Every other call goes to libc unchanged
//! (`interpose`); whether an fd is served is decided from the socket
//! alone (`owner`).
//!
//! The environment contract: `UMDEV_UAPI_SOCKET` names the daemon's
//! listening socket (default `/run/umdev/uapi.sock`), spelled exactly as
//! the daemon bound it, since a node's fd is recognised by its peer
//! address.
//!
//! The wire format is [`umdev_uapi::frame`]; the crate depends on
//! `umdev-uapi` for that module only (the workspace builds it anyway, and
//! the linker keeps only what is used).
//!
//! Limits, all those of an interposer: calls glibc makes internally
//! (`fopen`, `opendir`) do not pass through the PLT and are not routed;
//! only absolute paths are routed (a relative one, for `open` or against
//! an `openat` dirfd, goes to libc); a call on a served file is not
//! interrupted by a signal (a request in flight must get its reply).

mod errno;
mod fork;
mod interpose;
mod lock;
mod node;
mod owner;
mod route;
mod transport;
