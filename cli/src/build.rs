//! `ukitool build`, `ukitool sign` and `ukitool measure`.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct BuildArgs {}

#[derive(clap::Args)]
pub struct SignArgs {}

#[derive(clap::Args)]
pub struct MeasureArgs {}

pub fn run_build(_a: BuildArgs) -> Result<ExitCode> {
    anyhow::bail!("build is not implemented yet")
}

pub fn run_sign(_a: SignArgs) -> Result<ExitCode> {
    anyhow::bail!("sign is not implemented yet")
}

pub fn run_measure(_a: MeasureArgs) -> Result<ExitCode> {
    anyhow::bail!("measure is not implemented yet")
}
