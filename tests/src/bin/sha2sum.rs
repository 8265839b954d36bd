//! One sha256 pass over a file with the `sha2` crate (the same code ukitool hashes with):
//! the physical limit for `ukitool verify` in the benchmarks.

use sha2::{Digest, Sha256};
use std::io::Read;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "-".into());
    let mut file: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(&path)?)
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}  {path}");
    Ok(())
}
