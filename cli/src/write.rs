//! `ukitool write` and `ukitool disks`.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct WriteArgs {}

#[derive(clap::Args)]
pub struct DisksArgs {}

pub fn run_write(_a: WriteArgs) -> Result<ExitCode> {
    anyhow::bail!("write is not implemented yet")
}

pub fn run_disks(_a: DisksArgs) -> Result<ExitCode> {
    anyhow::bail!("disks is not implemented yet")
}
