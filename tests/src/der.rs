//! DER elements (tag, length, content), enough to take a PKCS#7 signature apart and put
//! a changed one together. Test inputs only: malformed DER panics.

/// The element at `b[i..]`: (tag, header length, content length).
pub fn header(b: &[u8], i: usize) -> (u8, usize, usize) {
    let (tag, first) = (b[i], b[i + 1] as usize);
    if first < 0x80 {
        return (tag, 2, first);
    }
    let n = first & 0x7f;
    let len = b[i + 2..i + 2 + n]
        .iter()
        .fold(0usize, |a, &x| (a << 8) | x as usize);
    (tag, 2 + n, len)
}

/// An element with a definite length in its shortest form.
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count();
        v.push(0x80 | (b.len() - skip) as u8);
        v.extend_from_slice(&b[skip..]);
    }
    v.extend_from_slice(body);
    v
}

/// The elements of `content`, one after another, each whole (header and content).
pub fn elements(content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < content.len() {
        let (_, h, l) = header(content, i);
        out.push(&content[i..i + h + l]);
        i += h + l;
    }
    out
}

/// The content of the element at the start of `d`.
pub fn content(d: &[u8]) -> &[u8] {
    let (_, h, l) = header(d, 0);
    &d[h..h + l]
}

/// The children of the constructed element at the start of `d`, each whole.
pub fn children(d: &[u8]) -> Vec<&[u8]> {
    elements(content(d))
}
