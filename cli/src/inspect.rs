//! `ukitool inspect` and `ukitool extract`.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct InspectArgs {}

#[derive(clap::Args)]
pub struct ExtractArgs {}

pub fn run_inspect(_a: InspectArgs) -> Result<ExitCode> {
    anyhow::bail!("inspect is not implemented yet")
}

pub fn run_extract(_a: ExtractArgs) -> Result<ExitCode> {
    anyhow::bail!("extract is not implemented yet")
}
