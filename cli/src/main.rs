//! `ukitool`: a thin command line over ukitool-core. Argument parsing lives here and in
//! each command's module; the work is done by the core; printers write to a writer.

mod bigdisk;
mod build;
mod completions;
mod diff;
mod image;
mod imagefile;
mod input;
mod inspect;
mod keys;
mod output;
mod pkcs11;
mod verify;
mod write;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ukitool",
    version,
    long_version = completions::LONG_VERSION,
    about = "Inspect, verify, extract, build, sign and measure Unified Kernel Images; make and write bootable disks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show everything about a PE, UKI, addon or raw disk image
    Inspect(inspect::InspectArgs),
    /// Extract one section, or all of them, byte-exact
    Extract(inspect::ExtractArgs),
    /// Check Authenticode signatures (and .pcrsig) against trust anchors
    Verify(verify::VerifyArgs),
    /// Assemble a UKI or an addon from a stub, a kernel and parts
    Build(build::BuildArgs),
    /// Add an Authenticode signature to a PE
    Sign(build::SignArgs),
    /// Predict PCR 11 as systemd-stub measures it; optionally sign a .pcrsig
    Measure(build::MeasureArgs),
    /// Show what changed between two PEs or UKIs (exit 0 identical, 1 different)
    Diff(diff::DiffArgs),
    /// Make a bootable raw GPT disk image from a UKI
    Image(image::ImageArgs),
    /// Make Secure Boot keys (PK, KEK, db) and export their .esl and .auth files
    Keys(keys::KeysArgs),
    /// Write a raw, compressed or VM disk image, or a UKI, to a block device, safely
    Write(write::WriteArgs),
    /// List block devices and whether they are safe targets
    Disks(write::DisksArgs),
    /// Print a shell completion script (bash, zsh, fish, ...)
    Completions(completions::CompletionsArgs),
    /// Write the man pages into a directory (for packagers)
    #[command(hide = true)]
    ManPages(completions::ManPagesArgs),
}

/// Exit codes: 0 success; 1 a negative verdict (unsigned, untrusted, mismatch, ...);
/// 2 unreadable or malformed input, or a usage error.
fn main() -> ExitCode {
    // A panic is a bug, but the user still gets one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("ukitool: internal error (please report): {msg}");
        std::process::exit(70);
    }));
    // Parsed in two steps, as `Cli::try_parse` does, to keep the matches: `build` reads
    // the order of its options from them.
    let parsed = Cli::command().try_get_matches().and_then(|m| {
        let cli = Cli::from_arg_matches(&m).map_err(|e| e.format(&mut Cli::command()))?;
        Ok((cli, m))
    });
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Inspect(a) => inspect::run_inspect(a),
        Command::Extract(a) => inspect::run_extract(a),
        Command::Verify(a) => verify::run(a),
        Command::Build(a) => build::run_build(a, matches.subcommand_matches("build")),
        Command::Sign(a) => build::run_sign(a),
        Command::Measure(a) => build::run_measure(a),
        Command::Diff(a) => diff::run(a),
        Command::Image(a) => image::run(a),
        Command::Keys(a) => keys::run(a),
        Command::Write(a) => write::run_write(a),
        Command::Disks(a) => write::run_disks(a),
        Command::Completions(a) => completions::run_completions(a, Cli::command()),
        Command::ManPages(a) => completions::run_man_pages(a, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, joined.
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("ukitool: error: {line}");
            ExitCode::from(2)
        }
    }
}
