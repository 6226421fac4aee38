//! `umdev`: user-space IOMMU-aware mediated devices.
//!
//! For now the binary brings up a platform (the embedded default or a TOML
//! file) with its IOMMU and shows it; later steps turn it into the daemon.

mod show;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use umdev_iommu::system::System;
use umdev_pci::Platform;

/// umdev: a user-space implementation of IOMMU-aware mediated devices.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The simulated platform.
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Platform { command } => match command {
            PlatformCommand::Show { platform, json } => {
                let system = load(platform.as_ref())?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&show::json(&system))?);
                } else {
                    print!("{}", show::text(&system));
                }
            }
            PlatformCommand::Default => print!("{}", umdev_pci::DEFAULT_PLATFORM_TOML),
        },
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umdev: {e:#}");
            ExitCode::FAILURE
        }
    }
}
