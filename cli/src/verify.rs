//! `ukitool verify`.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct VerifyArgs {}

pub fn run(_a: VerifyArgs) -> Result<ExitCode> {
    anyhow::bail!("verify is not implemented yet")
}
