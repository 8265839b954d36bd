//! `ukitool image`.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct ImageArgs {}

pub fn run(_a: ImageArgs) -> Result<ExitCode> {
    anyhow::bail!("image is not implemented yet")
}
