//! Input files: memory-mapped when they are files, read fully when they are stdin.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

use anyhow::{Context, Result};

/// The bytes of an input, mapped or owned.
pub enum Input {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Input {
    /// Open `path`, or read stdin when it is `-`.
    pub fn open(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            return Ok(Input::Owned(buf));
        }
        let file = File::open(path).with_context(|| format!("{}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("{}", path.display()))?;
        if meta.len() == 0 || !meta.is_file() {
            // Empty files cannot be mapped; block devices and pipes are read.
            let mut buf = Vec::new();
            (&file)
                .read_to_end(&mut buf)
                .with_context(|| format!("{}", path.display()))?;
            return Ok(Input::Owned(buf));
        }
        // SAFETY: the map is read-only. If another process truncates the file while we
        // read it we may get SIGBUS, the same contract as any mmap-based tool (objdump,
        // ripgrep); we accept it for zero-copy reads of 100+ MiB images.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        Ok(Input::Mapped(map))
    }
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}
