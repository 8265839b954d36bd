//! Little-endian and big-endian fields and CRC-32 (GPT), for the tests' own view of
//! their inputs.

use std::sync::OnceLock;

/// The `w`-byte little-endian value at `at` (bytes past the end read as zero).
pub fn get(d: &[u8], at: usize, w: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..w).rev() {
        v = (v << 8) | u64::from(*d.get(at + i).unwrap_or(&0));
    }
    v
}

pub fn set(d: &mut [u8], at: usize, w: usize, v: u64) {
    for i in 0..w {
        if let Some(b) = d.get_mut(at + i) {
            *b = (v >> (8 * i)) as u8;
        }
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// A big-endian number.
pub fn get_be(b: &[u8]) -> usize {
    b.iter().fold(0usize, |v, &x| (v << 8) | x as usize)
}
