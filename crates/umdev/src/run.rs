//! `umdev run [--root DIR] -- CMD ARGS…`: an unmodified program against a
//! running daemon. In a private mount namespace (the rest of the system
//! sees nothing), it puts the daemon's sysfs tree over `/sys`, a
//! fault-injection knob directory over `/sys/kernel/debug`, and a `/dev`
//! that is the real one plus placeholder nodes for `/dev/iommu`; then it
//! executes CMD with `libumdev_preload.so` in `LD_PRELOAD`, so that
//! opening those nodes reaches the daemon.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, MountPropagationFlags};

use crate::paths::Layout;

/// The preload's file name, looked for beside the `umdev` binary.
pub const PRELOAD_NAME: &str = "libumdev_preload.so";

/// Environment variable naming the preload (overrides the default).
pub const PRELOAD_ENV: &str = "UMDEV_PRELOAD";

/// The socket the preload connects to (frame.rs's contract).
pub const SOCKET_ENV: &str = "UMDEV_UAPI_SOCKET";

/// Major number of the placeholder nodes: 240 is "local/experimental use"
/// in Documentation/admin-guide/devices.txt, so a program run without the
/// preload gets ENXIO opening them, not some real device.
const PLACEHOLDER_MAJOR: u32 = 240;

/// Placeholder nodes under `/dev`, with their minors.
const NODES: &[(&str, u32)] = &[("iommu", 0)];

/// debugfs' fault-injection knobs (Documentation/fault-injection/
/// fault-injection.rst) with the kernel's defaults. They are inert: umdev
/// injects faults through `/proc/<pid>/task/<tid>/fail-nth` only, which
/// the preload routes to the daemon; programs that tune the knobs first
/// (iommufd_fail_nth) find them. Every directory has [`COMMON_KNOBS`].
const FAULT_KNOBS: &[(&str, &[(&str, &str)])] = &[
    ("failslab", &[]),
    (
        "fail_page_alloc",
        &[("ignore-gfp-highmem", "Y"), ("min-order", "1")],
    ),
];

/// The knobs of every fault-injection directory, with their defaults.
const COMMON_KNOBS: &[(&str, &str)] = &[
    ("probability", "0"),
    ("interval", "1"),
    ("times", "1"),
    ("space", "0"),
    ("verbose", "2"),
    ("ignore-gfp-wait", "Y"),
];

/// What `umdev run` was asked.
#[derive(Debug)]
pub struct RunOptions {
    /// The daemon's root.
    pub layout: Layout,
    /// The preload; beside the binary if `None`.
    pub preload: Option<PathBuf>,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

fn preload_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => match std::env::var_os(PRELOAD_ENV) {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .context("locating the umdev binary")?
                .with_file_name(PRELOAD_NAME),
        },
    };
    let path = path.canonicalize().with_context(|| {
        format!(
            "the preload {} (build it: cargo build -p umdev-preload)",
            path.display()
        )
    })?;
    Ok(path)
}

fn mount_err(what: &str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> anyhow::Error {
    let msg = format!("{what} {}", path.display());
    move |e| anyhow::Error::new(std::io::Error::from(e)).context(msg)
}

/// `/dev` as it is, plus the placeholders: a tmpfs with every entry of
/// the real `/dev` bound into it (directories recursively, so `/dev/pts`
/// and `/dev/shm` stay what they are), moved over `/dev`.
fn new_dev(layout: &Layout) -> anyhow::Result<()> {
    let stage = layout.run_dir().join(format!("dev.{}", std::process::id()));
    std::fs::create_dir(&stage).with_context(|| format!("creating {}", stage.display()))?;
    rustix::mount::mount("tmpfs", &stage, "tmpfs", MountFlags::NOSUID, c"mode=755")
        .map_err(mount_err("mounting a tmpfs on", &stage))?;
    for entry in std::fs::read_dir("/dev").context("reading /dev")? {
        let entry = entry?;
        let name = entry.file_name();
        let src = entry.path();
        let dst = stage.join(&name);
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            symlink(std::fs::read_link(&src)?, &dst)?;
            continue;
        }
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
        } else {
            std::fs::File::create(&dst)?;
        }
        rustix::mount::mount_bind_recursive(&src, &dst).map_err(mount_err("binding", &src))?;
    }
    for (name, minor) in NODES {
        let dst = stage.join(name);
        if dst.exists() {
            continue;
        }
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &dst,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(PLACEHOLDER_MAJOR, *minor),
        )
        .map_err(mount_err("creating", &dst))?;
    }
    rustix::mount::mount_move(&stage, "/dev")
        .map_err(mount_err("moving the new /dev from", &stage))?;
    let _ = std::fs::remove_dir(&stage);
    Ok(())
}

fn fault_knobs(debug: &Path) -> anyhow::Result<()> {
    rustix::mount::mount(
        "debugfs-knobs",
        debug,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        c"mode=700",
    )
    .map_err(mount_err("mounting a tmpfs on", debug))?;
    for (dir, knobs) in FAULT_KNOBS {
        let dir = debug.join(dir);
        std::fs::create_dir(&dir)?;
        for (knob, value) in COMMON_KNOBS.iter().chain(*knobs) {
            std::fs::write(dir.join(knob), format!("{value}\n"))?;
        }
    }
    Ok(())
}

/// Sets up the namespace and executes the command; returns only on error.
pub fn run(opts: &RunOptions) -> anyhow::Result<()> {
    let Some((program, args)) = opts.command.split_first() else {
        bail!("umdev run: no command given (umdev run -- CMD ARGS…)");
    };
    let socket = opts.layout.uapi_socket();
    let is_socket = std::fs::metadata(&socket).map(|m| m.file_type().is_socket());
    ensure!(
        matches!(is_socket, Ok(true)),
        "no daemon serves {} (start one: umdev serve --root {})",
        socket.display(),
        opts.layout.root().display()
    );
    let preload = preload_path(opts.preload.as_deref())?;

    // SAFETY: a new mount namespace changes no memory of this process;
    // the CLI has started no thread that could race it.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .context("unshare(CLONE_NEWNS): umdev run needs root")?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(mount_err("making private", Path::new("/")))?;
    let sys = opts.layout.sys();
    if sys.join("bus").is_dir() {
        rustix::mount::mount_bind(&sys, "/sys").map_err(mount_err("binding", &sys))?;
    }
    let debug = Path::new("/sys/kernel/debug");
    if debug.is_dir() {
        fault_knobs(debug)?;
    }
    new_dev(&opts.layout)?;

    let mut ld_preload = preload.into_os_string();
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        ld_preload.push(" ");
        ld_preload.push(old);
    }
    // SAFETY: the process is single-threaded here (the CLI starts no
    // thread before a subcommand runs), so no other thread reads the
    // environment while it changes.
    unsafe {
        std::env::set_var("LD_PRELOAD", &ld_preload);
        std::env::set_var(SOCKET_ENV, &socket);
    }
    let program_c = CString::new(program.as_bytes()).context("the command")?;
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args)
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument")?;
    let err = exec(&program_c, &argv);
    Err(anyhow::Error::new(err).context(format!("executing {}", program.to_string_lossy())))
}

fn exec(program: &CString, argv: &[CString]) -> std::io::Error {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `program` and every pointer in `ptrs` are NUL-terminated
    // strings that outlive the call, and `ptrs` ends with a null pointer,
    // as execvp(3) requires. It returns only on failure.
    unsafe { libc::execvp(program.as_ptr(), ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}
