//! `umdev`: user-space IOMMU-aware mediated devices.
//!
//! `umdev serve` runs the daemon (the model, its sysfs tree, vfio-user
//! sockets and the control socket); the other commands talk to it over
//! the control socket (docs/control.md). `umdev platform` works without a
//! daemon.

mod client;
mod paths;
mod proto;
mod render;
mod run;
mod serve;
mod show;
mod views;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::Value;
use umdev_iommu::system::System;
use umdev_pci::Platform;

use client::Client;
use paths::Layout;
use proto::Op;

/// umdev: a user-space implementation of IOMMU-aware mediated devices.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the daemon is and how to print.
#[derive(Args, Debug, Clone)]
struct Common {
    /// The daemon's root directory (default: $UMDEV_ROOT, else
    /// /run/umdev-root).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Print the daemon's JSON result instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: mount the sysfs tree at ROOT/sys, serve devices
    /// over vfio-user under ROOT/run/umdev/ and answer the control
    /// socket ROOT/run/umdev/control.sock, until SIGINT or SIGTERM.
    Serve {
        /// Platform description (TOML); the embedded default if omitted.
        #[arg(long)]
        platform: Option<PathBuf>,
        /// Root directory (default: $UMDEV_ROOT, else /run/umdev-root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Do not mount the sysfs tree.
        #[arg(long)]
        no_sysfs: bool,
        /// Serve `/dev/iommu` with the iommufd selftest mock (IOMMU_TEST_CMD,
        /// the kernel's CONFIG_IOMMUFD_TEST) instead of the platform's IOMMU.
        #[arg(long)]
        iommufd_test: bool,
    },
    /// Run an unmodified program against the running daemon: in a private
    /// mount namespace with the daemon's tree over /sys and placeholder
    /// /dev/iommu, with libumdev_preload.so routing those nodes to the
    /// daemon (`umdev run -- CMD ARGS…`).
    Run {
        /// Root directory (default: $UMDEV_ROOT, else /run/umdev-root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The preload library (default: $UMDEV_PRELOAD, else
        /// libumdev_preload.so beside this binary).
        #[arg(long)]
        preload: Option<PathBuf>,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// The daemon's version, root, pid and platform.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// mdev parents and types (with available instances), mdevs and the
    /// served devices with their consumers.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Create an mdev.
    Create {
        /// Parent device (`mtty`, `0000:01:00.0`).
        #[arg(long)]
        parent: String,
        /// Type (`mtty-1`).
        #[arg(long = "type")]
        mdev_type: String,
        /// UUID (a random one if omitted).
        #[arg(long)]
        uuid: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Remove an mdev.
    Remove {
        /// Its UUID.
        uuid: String,
        #[command(flatten)]
        common: Common,
    },
    /// IOMMU groups: members, domain, owner, PASIDs.
    Groups {
        #[command(flatten)]
        common: Common,
    },
    /// PCI tree, IOMMU groups, domains, PASIDs, mdevs and consumers.
    Topology {
        /// Print Graphviz (`| dot -Tsvg`).
        #[arg(long)]
        dot: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Per-device DMA bytes, IOTLB hit ratio and faults.
    Stats {
        #[command(flatten)]
        common: Common,
    },
    /// The IOMMU fault log.
    Faults {
        #[command(flatten)]
        common: Common,
    },
    /// Bind a PCI function to a driver.
    Bind {
        /// Driver (`vfio-pci`, `mdev-pci`).
        driver: String,
        /// Function (`0000:01:00.0`).
        bdf: String,
        #[command(flatten)]
        common: Common,
    },
    /// Unbind a PCI function from its driver.
    Unbind {
        /// Function.
        bdf: String,
        /// Only if bound to this driver.
        #[arg(long)]
        driver: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Set a function's driver_override ("" clears it).
    DriverOverride {
        /// Function.
        bdf: String,
        /// Driver name.
        value: String,
        #[command(flatten)]
        common: Common,
    },
    /// Add a dynamic id to a driver (`new_id`).
    NewId {
        /// Driver.
        driver: String,
        /// `"vvvv dddd [ssvv ssdd cccc mmmm data]"`.
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a dynamic id from a driver (`remove_id`).
    RemoveId {
        /// Driver.
        driver: String,
        /// `"vvvv dddd [ssvv ssdd cccc mmmm]"`.
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Enable N SR-IOV VFs on a PF (0 disables them).
    Sriov {
        /// The PF.
        bdf: String,
        /// VFs.
        num_vfs: u16,
        #[command(flatten)]
        common: Common,
    },
    /// The simulated platform, without a daemon.
    Platform {
        #[command(subcommand)]
        command: PlatformCommand,
    },
}

#[derive(Subcommand, Debug)]
enum PlatformCommand {
    /// Bring the platform up and print its IOMMU units, PCI tree, IOMMU
    /// groups (with their domains and owners) and drivers.
    Show {
        /// Platform description (TOML); the embedded default if omitted.
        #[arg(long)]
        platform: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the embedded default platform description (a starting point
    /// for your own).
    Default,
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<System> {
    let platform = match path {
        Some(p) => Platform::from_file(p)?,
        None => Platform::default_platform().context("the embedded default platform")?,
    };
    Ok(System::start(platform)?)
}

/// Sends `op` to the daemon and prints the result as JSON or through
/// `text`.
fn call<T: DeserializeOwned>(
    common: &Common,
    op: Op,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let what = serde_json::to_value(&op)?["op"]
        .as_str()
        .unwrap_or("request")
        .to_owned();
    let layout = Layout::resolve(common.root.clone());
    let result = Client::connect(&layout)?
        .call(op)
        .with_context(|| format!("{what} failed"))?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let view: T =
            serde_json::from_value(result).with_context(|| format!("unexpected {what} result"))?;
        print!("{}", text(&view));
    }
    Ok(())
}

/// A change's confirmation line.
fn done(message: String) -> impl FnOnce(&Value) -> String {
    move |_| format!("{message}\n")
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UMDEV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            platform,
            root,
            no_sysfs,
            iommufd_test,
        } => {
            init_tracing();
            serve::run(&serve::ServeOptions {
                platform,
                layout: Layout::resolve(root),
                no_sysfs,
                iommufd_test,
            })
        }
        Command::Run {
            root,
            preload,
            command,
        } => run::run(&run::RunOptions {
            layout: Layout::resolve(root),
            preload,
            command,
        }),
        Command::Status { common } => call(&common, Op::Hello, |h: &views::Hello| {
            format!(
                "umdev {} (protocol {}), pid {}\nroot: {}\nsysfs: {}\nplatform: {}\n",
                h.daemon,
                h.version,
                h.pid,
                h.root,
                h.sys.as_deref().unwrap_or("(not mounted)"),
                h.platform
            )
        }),
        Command::List { common } => call(&common, Op::List, render::list::list),
        Command::Create {
            parent,
            mdev_type,
            uuid,
            common,
        } => {
            let op = Op::Create {
                parent: parent.clone(),
                mdev_type: mdev_type.clone(),
                uuid,
            };
            call(&common, op, |v: &Value| {
                format!(
                    "{}\n",
                    v["uuid"].as_str().unwrap_or("(created; no UUID in reply)")
                )
            })
        }
        Command::Remove { uuid, common } => call(
            &common,
            Op::Remove { uuid: uuid.clone() },
            done(format!("removed {uuid}")),
        ),
        Command::Groups { common } => call(&common, Op::Groups, |g: &Vec<views::Group>| {
            render::list::groups(g)
        }),
        Command::Topology { dot, common } => {
            let render = if dot {
                render::dot::dot
            } else {
                render::topology::text
            };
            call(&common, Op::Topology, render)
        }
        Command::Stats { common } => call(&common, Op::Stats, render::stats::stats),
        Command::Faults { common } => call(&common, Op::Faults, render::stats::faults),
        Command::Bind {
            driver,
            bdf,
            common,
        } => {
            let message = format!("bound {bdf} to {driver}");
            call(&common, Op::Bind { driver, bdf }, done(message))
        }
        Command::Unbind {
            bdf,
            driver,
            common,
        } => {
            let message = format!("unbound {bdf}");
            call(&common, Op::Unbind { bdf, driver }, done(message))
        }
        Command::DriverOverride { bdf, value, common } => {
            let message = format!("driver_override of {bdf} set to {value:?}");
            call(&common, Op::DriverOverride { bdf, value }, done(message))
        }
        Command::NewId { driver, id, common } => {
            let message = format!("added {id:?} to {driver}");
            call(&common, Op::NewId { driver, id }, done(message))
        }
        Command::RemoveId { driver, id, common } => {
            let message = format!("removed {id:?} from {driver}");
            call(&common, Op::RemoveId { driver, id }, done(message))
        }
        Command::Sriov {
            bdf,
            num_vfs,
            common,
        } => {
            let message = format!("{bdf}: {num_vfs} VF(s)");
            call(&common, Op::SriovNumvfs { bdf, num_vfs }, done(message))
        }
        Command::Platform { command } => match command {
            PlatformCommand::Show { platform, json } => {
                let system = load(platform.as_ref())?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&show::json(&system))?);
                } else {
                    print!("{}", show::text(&system));
                }
                Ok(())
            }
            PlatformCommand::Default => {
                print!("{}", umdev_pci::DEFAULT_PLATFORM_TOML);
                Ok(())
            }
        },
    }
}

/// The exit status of a failure: the errno when the daemon refused a
/// request (or another daemon holds the root), else 1.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    let errno = e.chain().find_map(|cause| {
        cause
            .downcast_ref::<client::ClientError>()
            .map(client::ClientError::errno)
            .or_else(|| {
                cause
                    .downcast_ref::<serve::LockError>()
                    .map(serve::LockError::errno)
            })
    });
    let code = errno.map_or(1, |e| e.raw_os_error());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umdev: {e:#}");
            exit_code(&e)
        }
    }
}
