//! `ukitool verify` against real signed binaries, with outside referees: sbverify
//! (sbsigntools, OpenSSL), python3-pefile + hashlib for digests, osslsigncode to
//! nest signatures and efisiglist (pesign) to build db files.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use ukitool_core::authenticode::{pkcs7, verify, TrustStore, Verdict};
use ukitool_core::pe::PeFile;
use ukitool_tests::{fixture, path_str, run_ok, tmpdir, ukitool, XorShift};

/// Run `ukitool verify --json FILE ARGS...`: (exit code, report).
fn verify_json(file: &Path, args: &[&str]) -> (i32, Value) {
    let out = ukitool()
        .arg("verify")
        .arg("--json")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: bad JSON ({e}); stderr: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// The Authenticode digest as python3-pefile sees the file (spec arithmetic).
const PEFILE_HASH: &str = r#"
import sys, hashlib, pefile
path, alg = sys.argv[1], sys.argv[2]
d = open(path, 'rb').read()
pe = pefile.PE(data=d, fast_load=True)
opt = pe.OPTIONAL_HEADER
cks = opt.get_field_absolute_offset('CheckSum')
sec = opt.DATA_DIRECTORY[4]
so = sec.get_file_offset()
h = hashlib.new(alg)
h.update(d[:cks]); h.update(d[cks+4:so]); h.update(d[so+8:opt.SizeOfHeaders])
n = opt.SizeOfHeaders
for x in sorted((x for x in pe.sections if x.SizeOfRawData), key=lambda x: x.PointerToRawData):
    h.update(d[x.PointerToRawData:x.PointerToRawData+x.SizeOfRawData]); n += x.SizeOfRawData
end = len(d) - sec.Size
if end > n: h.update(d[n:end])
print(h.hexdigest())
"#;

fn pefile_digest(file: &Path, alg: &str) -> String {
    run_ok(Command::new("/usr/bin/python3").args(["-c", PEFILE_HASH, path_str(file), alg]))
        .trim()
        .to_string()
}

/// What sbverify says. `readable` is false when it could not parse the file or a
/// signature; `ok` is its verdict; `image_digest` is the digest it computed when
/// the hash check failed (it prints it as "expecting:").
struct Sbverify {
    readable: bool,
    ok: bool,
    hash_failed: bool,
    image_digest: Option<String>,
    text: String,
}

fn sbverify(file: &Path, cert: &Path) -> Sbverify {
    let out = Command::new("sbverify")
        .args(["-v", "--cert", path_str(cert), path_str(file)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let image_digest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("expecting:"))
        .map(|d| d.trim().to_string());
    let hash_failed = text.contains("Image fails hash check");
    let readable =
        !text.contains("Unable to") && (text.contains("PKCS7 verification") || hash_failed);
    Sbverify {
        readable,
        ok: out.status.success() && text.contains("Signature verification OK"),
        hash_failed,
        image_digest,
        text,
    }
}

fn sigs(v: &Value) -> &Vec<Value> {
    v["signatures"].as_array().unwrap()
}

#[test]
fn shim_has_two_valid_microsoft_signatures_with_the_referee_digest() {
    let shim = fixture("shimx64.efi.signed");
    let (code, v) = verify_json(&shim, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "valid-untrusted");
    let want = pefile_digest(&shim, "sha256");
    assert_eq!(v["image_digests"]["sha256"], want.as_str());
    let list = sigs(&v);
    assert_eq!(list.len(), 2);
    for sig in list {
        assert_eq!(sig["verdict"], "valid-untrusted");
        assert_eq!(sig["signature_valid"], true);
        assert_eq!(sig["signed_digest"], want.as_str());
    }
    let chains: Vec<String> = list.iter().map(|x| x["chain"].to_string()).collect();
    assert!(
        chains[0].contains("Microsoft Corporation UEFI CA 2011"),
        "{chains:?}"
    );
    assert!(chains[1].contains("Microsoft UEFI CA 2023"), "{chains:?}");
    assert_eq!(v["lints"].as_array().unwrap().len(), 0);
    // sbverify --list sees the same two signatures.
    let out = Command::new("sbverify")
        .args(["--list", path_str(&shim)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("signature ")).count(),
        2
    );
    assert!(text.contains("Microsoft UEFI CA 2023"));
}

/// Rebuild `base` (a signed PE) with the given WIN_CERTIFICATE entries as its table.
fn with_entries(base: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
    let pe = PeFile::parse(base).unwrap();
    let dir = pe.security_dir_offset.unwrap() as usize;
    let start = pe
        .certificate_table()
        .map_or(base.len(), |d| d.virtual_address as usize);
    let mut out = base[..start].to_vec();
    let mut table = Vec::new();
    for e in entries {
        table.extend_from_slice(e);
        table.resize(table.len().next_multiple_of(8), 0);
    }
    let (va, size) = if table.is_empty() {
        (0, 0)
    } else {
        (start as u32, table.len() as u32)
    };
    out[dir..dir + 4].copy_from_slice(&va.to_le_bytes());
    out[dir + 4..dir + 8].copy_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&table);
    out
}

fn entries_of(data: &[u8]) -> Vec<Vec<u8>> {
    let pe = PeFile::parse(data).unwrap();
    pkcs7::certificate_entries(&pe)
        .unwrap()
        .iter()
        .map(|e| data[e.offset as usize..e.offset as usize + e.length as usize].to_vec())
        .collect()
}

#[test]
fn uefi_ca_2011_only_lint_fires_when_the_2023_signature_is_gone() {
    let shim = std::fs::read(fixture("shimx64.efi.signed")).unwrap();
    let e = entries_of(&shim);
    let only2011 = with_entries(&shim, &e[..1]);
    let only2023 = with_entries(&shim, &e[1..]);
    let check = |d: &[u8]| {
        let pe = PeFile::parse(d).unwrap();
        verify(&pe, &TrustStore::default())
    };
    let r = check(&only2011);
    assert_eq!(r.verdict, Verdict::ValidUntrusted);
    assert_eq!(r.lints.len(), 1);
    assert_eq!(r.lints[0].id, "microsoft-uefi-ca-2011-only");
    assert!(check(&only2023).lints.is_empty());
    // The referee agrees both halves are still validly signed.
    let dir = tmpdir();
    let p = dir.join("shim-2011.efi");
    std::fs::write(&p, &only2011).unwrap();
    let out = Command::new("sbverify")
        .args(["--list", path_str(&p)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("signature ")).count(),
        1
    );
}

#[test]
fn grub_is_trusted_with_the_debian_ca_only() {
    let grub = fixture("grubx64.efi.signed");
    let ca = fixture("debian-ca.pem");
    let snakeoil = fixture("snakeoil.pem");
    let (code, v) = verify_json(&grub, &["--cert", path_str(&ca)]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("valid-trusted")),
        "{v:#}"
    );
    assert_eq!(
        sigs(&v)[0]["signer"]["subject_cn"],
        "Debian Secure Boot Signer 2022 - grub2"
    );
    assert!(sbverify(&grub, &ca).ok);
    let (code, v) = verify_json(&grub, &[]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("valid-untrusted")));
    let (code, v) = verify_json(&grub, &["--cert", path_str(&snakeoil)]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("valid-untrusted")));
    assert!(!sbverify(&grub, &snakeoil).ok);
    assert_eq!(
        v["image_digests"]["sha256"],
        pefile_digest(&grub, "sha256").as_str()
    );
}

#[test]
fn test_key_verdicts_match_sbverify() {
    let snakeoil = fixture("snakeoil.pem");
    for (name, verdict, code) in [
        ("uki-signed.efi", "valid-trusted", 0),
        ("uki-tampered.efi", "hash-mismatch", 1),
        ("uki-other-signed.efi", "valid-untrusted", 1),
        ("uki.efi", "unsigned", 1),
    ] {
        let f = fixture(name);
        let (c, v) = verify_json(&f, &["--cert", path_str(&snakeoil)]);
        assert_eq!(
            (c, v["verdict"].as_str()),
            (code, Some(verdict)),
            "{name}: {v:#}"
        );
        let referee = sbverify(&f, &snakeoil);
        assert_eq!(
            referee.ok,
            verdict == "valid-trusted",
            "{name}: {}",
            referee.text
        );
        let digest = v["image_digests"]["sha256"].as_str().unwrap().to_string();
        assert_eq!(digest, pefile_digest(&f, "sha256"), "{name}");
        if let Some(d) = referee.image_digest {
            assert_eq!(d, digest, "{name}");
        }
    }
}

/// A self-signed signer (other.pem, CN = its own issuer) is where its chain ends: the
/// text output names it once (issue 19), as openssl shows the certificate is self-issued.
#[test]
fn a_self_signed_chain_is_listed_once() {
    let cert = fixture("other.pem");
    let issuer = run_ok(Command::new("openssl").args([
        "x509",
        "-noout",
        "-subject",
        "-issuer",
        "-nameopt",
        "RFC2253",
        "-in",
        path_str(&cert),
    ]));
    let names: Vec<&str> = issuer
        .lines()
        .filter_map(|l| l.split_once('=').map(|x| x.1))
        .collect();
    assert_eq!(names.len(), 2, "{issuer}");
    assert_eq!(names[0], names[1], "other.pem is self-signed: {issuer}");
    let out = ukitool()
        .args(["verify", path_str(&fixture("uki-other-signed.efi"))])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let chain = text
        .lines()
        .find(|l| l.trim_start().starts_with("chain:"))
        .expect("a chain line");
    assert_eq!(
        chain.trim(),
        "chain:     ukitool other test key [not an anchor]",
        "{text}"
    );
    // Its private key given as the certificate: one sentence that says so.
    let out = ukitool()
        .args([
            "verify",
            "--cert",
            path_str(&fixture("other.key")),
            path_str(&fixture("uki-other-signed.efi")),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("this is a private key (PEM \"PRIVATE KEY\"), not a certificate"),
        "{err}"
    );
}

#[test]
fn dual_signed_in_both_orders_and_nested_all_signatures_found() {
    let snakeoil = fixture("snakeoil.pem");
    let signed = std::fs::read(fixture("uki-signed.efi")).unwrap();
    let other = std::fs::read(fixture("uki-other-signed.efi")).unwrap();
    let a = entries_of(&signed).remove(0);
    let b = entries_of(&other).remove(0);
    let dir = tmpdir();
    for (name, order) in [
        ("ab", vec![a.clone(), b.clone()]),
        ("ba", vec![b.clone(), a.clone()]),
    ] {
        let p = dir.join(format!("dual-{name}.efi"));
        std::fs::write(&p, with_entries(&signed, &order)).unwrap();
        let (code, v) = verify_json(&p, &["--cert", path_str(&snakeoil)]);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (0, Some("valid-trusted")),
            "{v:#}"
        );
        let verdicts: Vec<&str> = sigs(&v)
            .iter()
            .map(|x| x["verdict"].as_str().unwrap())
            .collect();
        let want = if name == "ab" {
            ["valid-trusted", "valid-untrusted"]
        } else {
            ["valid-untrusted", "valid-trusted"]
        };
        assert_eq!(verdicts, want);
        let referee = sbverify(&p, &snakeoil);
        assert!(referee.ok, "{}", referee.text);
        assert_eq!(referee.text.matches("PKCS7 verification").count(), 2);
    }
    // Nested (osslsigncode -nest), with a second digest algorithm.
    let nested = dir.join("nested.efi");
    let st = Command::new("osslsigncode")
        .args([
            "sign",
            "-certs",
            path_str(&fixture("other.pem")),
            "-key",
            path_str(&fixture("other.key")),
        ])
        .args([
            "-nest",
            "-h",
            "sha512",
            "-in",
            path_str(&fixture("uki-signed.efi")),
            "-out",
            path_str(&nested),
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (code, v) = verify_json(&nested, &["--cert", path_str(&snakeoil)]);
    assert_eq!(code, 0, "{v:#}");
    let list = sigs(&v);
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["nested_in"], 0);
    assert_eq!(list[1]["digest_algorithm"], "sha512");
    assert_eq!(list[1]["verdict"], "valid-untrusted");
    assert_eq!(
        v["image_digests"]["sha512"],
        pefile_digest(&nested, "sha512").as_str()
    );
    assert_eq!(
        v["image_digests"]["sha256"],
        pefile_digest(&nested, "sha256").as_str()
    );
}

#[test]
fn db_and_dbx_files_authorise_and_revoke() {
    let dir = tmpdir();
    let der = dir.join("snakeoil.der");
    let st = Command::new("openssl")
        .args([
            "x509",
            "-in",
            path_str(&fixture("snakeoil.pem")),
            "-outform",
            "DER",
            "-out",
            path_str(&der),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let efisiglist = |out: &Path, args: &[&str]| {
        let _ = std::fs::remove_file(out);
        let st = Command::new("efisiglist")
            .arg("-o")
            .arg(out)
            .arg("-a")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let db = dir.join("db.esl");
    efisiglist(&db, &["-c", path_str(&der)]);
    let signed = fixture("uki-signed.efi");
    let other = fixture("uki-other-signed.efi");
    let (code, v) = verify_json(&signed, &["--db", path_str(&db)]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("valid-trusted")),
        "{v:#}"
    );
    let (code, v) = verify_json(&other, &["--db", path_str(&db)]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("valid-untrusted")));

    // efivarfs (4-byte attributes first) and .auth (EFI_VARIABLE_AUTHENTICATION_2).
    let list = std::fs::read(&db).unwrap();
    let mut var = 0x27u32.to_le_bytes().to_vec();
    var.extend_from_slice(&list);
    let mut auth = vec![0u8; 16];
    auth.extend_from_slice(&24u32.to_le_bytes());
    auth.extend_from_slice(&[0x00, 0x02, 0xf1, 0x0e]);
    auth.extend_from_slice(&ukitool_core::siglist::EFI_CERT_TYPE_PKCS7_GUID.to_bytes_le());
    auth.extend_from_slice(&list);
    for (n, bytes) in [("db.var", var), ("db.auth", auth)] {
        let p = dir.join(n);
        std::fs::write(&p, bytes).unwrap();
        let (code, _) = verify_json(&signed, &["--db", path_str(&p)]);
        assert_eq!(code, 0, "{n}");
    }

    // A SHA-256 entry authorises the other-signed (untrusted) image directly.
    let hash = pefile_digest(&other, "sha256");
    let hdb = dir.join("hash.esl");
    efisiglist(&hdb, &["-h", &hash]);
    let (code, v) = verify_json(
        &other,
        &[
            "--db",
            path_str(&hdb),
            "--cert",
            path_str(&fixture("snakeoil.pem")),
        ],
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("valid-trusted")),
        "{v:#}"
    );
    // And an unsigned image too, as firmware allows.
    let unsigned = fixture("uki.efi");
    let uhash = pefile_digest(&unsigned, "sha256");
    let udb = dir.join("uhash.esl");
    efisiglist(&udb, &["-h", &uhash]);
    let (code, _) = verify_json(&unsigned, &["--db", path_str(&udb)]);
    assert_eq!(code, 0);

    // dbx: the certificate, or the image hash, revokes.
    let (code, v) = verify_json(&signed, &["--db", path_str(&db), "--dbx", path_str(&db)]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("revoked")));
    let shash = dir.join("shash.esl");
    efisiglist(&shash, &["-h", &pefile_digest(&signed, "sha256")]);
    let (code, v) = verify_json(&signed, &["--db", path_str(&db), "--dbx", path_str(&shash)]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("revoked")));
}

/// A mutated file, what was done, and whether the first WIN_CERTIFICATE now claims
/// more bytes than the table holds.
fn mutate(base: &[u8], rng: &mut XorShift) -> (String, Vec<u8>, bool) {
    let pe = PeFile::parse(base).unwrap();
    let headers = pe.opt.size_of_headers as usize;
    let table = pe.certificate_table().unwrap();
    let (ts, tl) = (table.virtual_address as usize, table.size as usize);
    let dir = pe.security_dir_offset.unwrap() as usize;
    let mut d = base.to_vec();
    let mut overrun = false;
    let kind = rng.below(7);
    let desc = match kind {
        0 => {
            let at = rng.below(headers);
            d[at] ^= 1 << rng.below(8);
            format!("header byte {at:#x}")
        }
        1 => {
            let at = headers + rng.below(ts - headers);
            d[at] ^= 1 << rng.below(8);
            format!("section byte {at:#x}")
        }
        2 => {
            let at = ts + rng.below(tl);
            d[at] ^= 1 << rng.below(8);
            format!("certificate table byte {at:#x}")
        }
        3 => {
            let delta = [-16i64, -8, -1, 1, 8, 4096, -4096][rng.below(7)];
            let v = (tl as i64 + delta).max(0) as u32;
            d[dir + 4..dir + 8].copy_from_slice(&v.to_le_bytes());
            format!("security directory size {tl} -> {v}")
        }
        4 => {
            let delta = [-8i64, -1, 1, 8, 100000][rng.below(5)];
            let old = u32::from_le_bytes(d[ts..ts + 4].try_into().unwrap());
            let v = (i64::from(old) + delta).max(0) as u32;
            d[ts..ts + 4].copy_from_slice(&v.to_le_bytes());
            overrun = v as usize > tl;
            format!("dwLength {old} -> {v}")
        }
        5 => {
            let n = 1 + rng.below(64);
            d.extend((0..n).map(|i| i as u8));
            format!("{n} trailing bytes")
        }
        _ => {
            let cut = rng.below(d.len());
            d.truncate(cut);
            format!("truncated to {cut}")
        }
    };
    (desc, d, overrun)
}

/// ukitool and sbverify on ≥ 200 mutated signed files: wherever sbverify can read
/// the file, the verdict and the digest agree.
///
/// sbverify accepts a chain whose root is missing once an intermediate is embedded
/// (its verify callback ignores "unable to get issuer"), so Microsoft-signed shim
/// "verifies" against snakeoil. For shim the comparison is therefore "signature
/// valid" (valid-trusted or valid-untrusted); for the snakeoil UKI it is
/// valid-trusted, which is what firmware holding snakeoil in db would decide.
#[test]
fn differential_against_sbverify_on_mutations() {
    let snakeoil = fixture("snakeoil.pem");
    let dir = tmpdir();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let mut compared = 0;
    let mut unreadable = Vec::new();
    let mut disagreements = Vec::new();
    let mut firmware_rule = Vec::new();
    for (name, count, trust_only) in [
        ("uki-signed.efi", 110, true),
        ("shimx64.efi.signed", 100, false),
    ] {
        let base = std::fs::read(fixture(name)).unwrap();
        for i in 0..count {
            let (desc, data, overrun) = mutate(&base, &mut rng);
            let p = dir.join(format!("m-{i}-{name}"));
            std::fs::write(&p, &data).unwrap();
            let referee = sbverify(&p, &snakeoil);
            let out = ukitool()
                .args(["verify", "--json", "--cert", path_str(&snakeoil)])
                .arg(&p)
                .output()
                .unwrap();
            let code = out.status.code();
            assert!(matches!(code, Some(0..=2)), "{name} {desc}: exit {code:?}");
            let v: Option<Value> = serde_json::from_slice(&out.stdout).ok();
            let _ = std::fs::remove_file(&p);
            if !referee.readable {
                unreadable.push(format!("{name}: {desc}"));
                continue;
            }
            let verdict = v
                .as_ref()
                .map(|v| v["verdict"].as_str().unwrap_or("").to_string())
                .unwrap_or_else(|| "error".into());
            if overrun {
                // sbverify hands OpenSSL the bytes past the table and accepts; EDK2
                // (DxeImageVerificationLib) stops at an entry whose dwLength exceeds
                // what is left of the table, so firmware refuses. Follow firmware.
                assert_ne!(verdict, "valid-trusted", "{name}: {desc}");
                assert_ne!(verdict, "valid-untrusted", "{name}: {desc}");
                firmware_rule.push(format!(
                    "{name}: {desc}: sbverify ok={}, ours {verdict}",
                    referee.ok
                ));
                continue;
            }
            compared += 1;
            let ours_ok = if trust_only {
                verdict == "valid-trusted"
            } else {
                verdict == "valid-trusted" || verdict == "valid-untrusted"
            };
            let mut problem = None;
            if ours_ok != referee.ok {
                problem = Some(format!("verdict {verdict} vs sbverify ok={}", referee.ok));
            }
            if let (Some(want), Some(v)) = (&referee.image_digest, &v) {
                if v["image_digests"]["sha256"].as_str() != Some(want) {
                    problem = Some(format!(
                        "digest {} vs sbverify {want}",
                        v["image_digests"]["sha256"]
                    ));
                }
            }
            if referee.hash_failed && verdict != "hash-mismatch" && verdict != "malformed" {
                problem = Some(format!("sbverify: hash check failed; ours {verdict}"));
            }
            if let Some(p) = problem {
                disagreements.push(format!("{name}: {desc}: {p}\n{}", referee.text));
            }
        }
    }
    eprintln!(
        "compared {compared} mutations; sbverify could not read {}:",
        unreadable.len()
    );
    for u in &unreadable {
        eprintln!("  {u}");
    }
    eprintln!(
        "{} dwLength overruns judged by the firmware rule:",
        firmware_rule.len()
    );
    for f in &firmware_rule {
        eprintln!("  {f}");
    }
    assert!(compared + unreadable.len() + firmware_rule.len() >= 200);
    assert!(compared >= 100, "only {compared} comparable cases");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn malformed_signatures_are_malformed_never_a_panic() {
    let signed = std::fs::read(fixture("uki-signed.efi")).unwrap();
    let entry = entries_of(&signed).remove(0);
    let der = &entry[8..];
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Truncated DER (the WIN_CERTIFICATE length follows the cut).
    for cut in [1usize, 2, 4, 16, 100, der.len() / 2, der.len() - 1] {
        let mut e = entry[..8 + cut].to_vec();
        e[..4].copy_from_slice(&((8 + cut) as u32).to_le_bytes());
        cases.push((format!("der cut at {cut}"), e));
    }
    // Wrong inner lengths: every length byte of the first 64 bytes set to extremes.
    for at in 0..64.min(der.len()) {
        for v in [0x00u8, 0x7f, 0x80, 0x84, 0xff] {
            let mut e = entry.clone();
            e[8 + at] = v;
            cases.push((format!("der byte {at} = {v:#x}"), e));
        }
    }
    // Absurd counts: a SET OF claiming 4 GiB.
    let mut e = entry.clone();
    e.extend_from_slice(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]);
    cases.push(("huge set".into(), e));
    for (desc, e) in cases {
        let file = with_entries(&signed, &[e]);
        let pe = PeFile::parse(&file).unwrap();
        let r = verify(&pe, &TrustStore::default());
        assert!(
            matches!(
                r.verdict,
                Verdict::Malformed
                    | Verdict::BadSignature
                    | Verdict::HashMismatch
                    | Verdict::ValidUntrusted
            ),
            "{desc}: {:?}",
            r.verdict
        );
        if desc.starts_with("der cut") {
            assert_eq!(r.verdict, Verdict::Malformed, "{desc}");
        }
    }
    // Through the CLI: exit 2 and one line, no backtrace.
    let dir = tmpdir();
    let mut e = entry.clone();
    e.truncate(40);
    e[..4].copy_from_slice(&40u32.to_le_bytes());
    let p = dir.join("bad.efi");
    std::fs::write(&p, with_entries(&signed, &[e])).unwrap();
    let (code, v) = verify_json(&p, &[]);
    assert_eq!((code, v["verdict"].as_str()), (2, Some("malformed")));
}
