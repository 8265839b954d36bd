//! Nested, repeated and look-alike signatures, and deeply nested DER: time bounds.

use ukitool_tests::der::{children, header, tlv};
use ukitool_tests::hostile::bytes::{get, set};
use ukitool_tests::hostile::inputs::{signed_stubs, snakeoil_trust};
use ukitool_tests::hostile::worst::{report, time_pe, timed_rows};
use ukitool_tests::tmpdir;

/// SPC_NESTED_SIGNATURE_OBJID 1.3.6.1.4.1.311.2.4.1.
const NESTED_OID: [u8; 12] = [
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x04, 0x01,
];

/// `ci` (a PKCS#7 ContentInfo) with `nested` ContentInfos added to its signer's
/// unauthenticated attributes as one nested-signature attribute.
fn with_nested(ci: &[u8], nested: &[Vec<u8>]) -> Vec<u8> {
    let top = children(ci); // OID, [0]
    let sd = children(top[1])[0];
    let parts = children(sd); // version, digestAlgorithms, contentInfo, [0] certs, signerInfos
    let infos = parts[parts.len() - 1];
    let signer = children(infos)[0];
    let mut sbody: Vec<u8> = children(signer).concat();
    let mut set = Vec::new();
    for n in nested {
        set.extend_from_slice(n);
    }
    let attr = tlv(0x30, &[&NESTED_OID[..], &tlv(0x31, &set)].concat());
    sbody.extend(tlv(0xa1, &attr));
    let infos = tlv(0x31, &tlv(0x30, &sbody));
    let mut sdbody: Vec<u8> = parts[..parts.len() - 1].concat();
    sdbody.extend(infos);
    tlv(0x30, &[top[0], &tlv(0xa0, &tlv(0x30, &sdbody))].concat())
}

/// `ci` with `n` look-alikes of its first certificate added (the last byte of each,
/// in the signature value, changed).
fn with_certs(ci: &[u8], n: usize) -> Vec<u8> {
    let top = children(ci);
    let sd = children(top[1])[0];
    let mut parts: Vec<Vec<u8>> = children(sd).iter().map(|p| p.to_vec()).collect();
    let certs = parts
        .iter()
        .position(|p| p[0] == 0xa0)
        .expect("a certificates field");
    let first = children(&parts[certs])[0].to_vec();
    let mut body = children(&parts[certs]).concat();
    for i in 0..n {
        let mut c = first.clone();
        let last = c.len() - 1;
        c[last] ^= (i as u8) | 1;
        c[last - 1] ^= (i >> 8) as u8;
        body.extend(c);
    }
    parts[certs] = tlv(0xa0, &body);
    tlv(
        0x30,
        &[top[0], &tlv(0xa0, &tlv(0x30, &parts.concat()))].concat(),
    )
}

/// `signed` (an sbsign'ed PE) with its certificate table replaced by `entries`
/// (WIN_CERTIFICATE bodies: each wrapped, 8-byte aligned).
fn with_cert_table(signed: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
    let pe = get(signed, 0x3c, 4) as usize;
    let dir = pe + 24 + 112 + 32;
    let at = get(signed, dir, 4) as usize;
    let mut d = signed[..at].to_vec();
    for e in entries {
        let len = 8 + e.len();
        let mut w = Vec::with_capacity(len + 8);
        w.extend_from_slice(&(len as u32).to_le_bytes());
        w.extend_from_slice(&0x0002_0200u32.to_le_bytes());
        w.extend_from_slice(e);
        w.resize(len.next_multiple_of(8), 0);
        d.extend(w);
    }
    let size = (d.len() - at) as u64;
    set(&mut d, dir + 4, 4, size);
    d
}

#[test]
fn nested_and_many_signatures_stay_linear() {
    let dir = tmpdir();
    let (signed, _) = signed_stubs(&dir);
    let trust = snakeoil_trust();
    let pe = get(&signed, 0x3c, 4) as usize;
    let at = get(&signed, pe + 24 + 112 + 32, 4) as usize;
    let len = get(&signed, at, 4) as usize;
    let (_, h, l) = header(&signed[at + 8..], 0);
    let base = signed[at + 8..at + 8 + h + l].to_vec();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Each level nests the previous: depth N is N valid signatures of the same image.
    for depth in [16usize, 256] {
        let mut ci = base.clone();
        for _ in 0..depth {
            ci = with_nested(&base, &[ci]);
        }
        cases.push((
            format!("signatures nested {depth} deep"),
            with_cert_table(&signed, &[ci]),
        ));
    }
    for wide in [100usize, 1000] {
        let ci = with_nested(&base, &vec![base.clone(); wide]);
        cases.push((
            format!("{wide} nested signatures in one attribute"),
            with_cert_table(&signed, &[ci]),
        ));
    }
    for n in [1000usize, 10000] {
        cases.push((
            format!("{n} WIN_CERTIFICATE entries"),
            with_cert_table(&signed, &vec![base.clone(); n]),
        ));
    }
    // 2000 copies of the signer's certificate, each with a different last signature
    // byte: same names and key, so every chain step tries each (an RSA check each).
    for n in [200usize, 2000] {
        cases.push((
            format!("{n} look-alike certificates in one signature"),
            with_cert_table(&signed, &[with_certs(&base, n)]),
        ));
    }
    // 100,000 nested SEQUENCE headers: a recursive DER reader would blow the stack.
    let mut deep = Vec::new();
    for i in 0..100_000u32 {
        let rest = 6 * (100_000 - i - 1);
        deep.extend_from_slice(&[0x30, 0x84]);
        deep.extend_from_slice(&rest.to_be_bytes());
    }
    cases.push((
        "100000 nested DER SEQUENCEs".into(),
        with_cert_table(&signed, &[deep]),
    ));
    assert!(len > 8);
    let rows = timed_rows(cases, move |name, d| time_pe(name, d, &trust));
    report(
        "nested and repeated signatures (inspect + verify + extract + measure)",
        &rows,
    );
}
