//! .splash: a BMP; only the header fields the stub checks are read.

use crate::bytes::{slice, u16_le, u32_le};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Splash {
    pub width: i32,
    pub height: i32,
    pub bits_per_pixel: u16,
}

/// "BM" at 0, width i32 at 18, height i32 at 22 (negative: top-down), bpp u16 at 28.
pub fn parse(data: &[u8]) -> Result<Splash> {
    if slice(data, 0, 2, "BMP signature")? != b"BM" {
        return Err(Error::malformed(
            0,
            ".splash does not start with the BMP signature \"BM\"",
        ));
    }
    Ok(Splash {
        width: u32_le(data, 18, "BMP header")? as i32,
        height: u32_le(data, 22, "BMP header")? as i32,
        bits_per_pixel: u16_le(data, 28, "BMP header")?,
    })
}
