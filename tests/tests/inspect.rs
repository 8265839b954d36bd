//! `ukitool inspect` against real Debian artifacts (objdump and Python as referees),
//! golden output on synthetic PEs built here, and hostile inputs.
//!
//! Golden files live in tests/golden/; rewrite them with `UPDATE_GOLDEN=1 cargo test`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use ukitool_tests::golden::golden;
use ukitool_tests::synthetic::{build_pe, fake_kernel, synthetic_bad, synthetic_uki};
use ukitool_tests::tools::objdump_sections;
use ukitool_tests::{
    assert_one_line_error, fixture, fixture_text, run_ok, run_ukitool, tmpdir, ukitool_bin,
};

fn json(path: &Path, hash: bool) -> Value {
    let p = path.to_str().unwrap();
    let args: Vec<&str> = if hash {
        vec!["inspect", "--json", p]
    } else {
        vec!["inspect", "--json", "--no-hash", p]
    };
    let out = run_ukitool(&args);
    assert!(
        out.status.success(),
        "inspect {p}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ours(v: &Value) -> Vec<(String, u64, u64, u64)> {
    let base = v["pe"]["image_base"].as_u64().unwrap();
    v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["payload_size"].as_u64().unwrap(),
                base + s["virtual_address"].as_u64().unwrap(),
                s["file_offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

const REAL: &[&str] = &[
    "uki.efi",
    "uki-signed.efi",
    "shimx64.efi.signed",
    "grubx64.efi.signed",
    "vmlinuz",
    "linuxx64.efi.stub",
    "systemd-bootx64.efi",
    "profiles.efi",
    "longnames.efi",
    "addon.efi",
];

#[test]
fn section_tables_match_objdump() {
    for name in REAL {
        let p = fixture(name);
        let want = objdump_sections(&p);
        assert!(!want.is_empty(), "{name}: objdump saw no sections");
        assert_eq!(ours(&json(&p, false)), want, "{name}");
    }
}

#[test]
fn longnames_resolve_through_the_string_table() {
    let v = json(&fixture("longnames.efi"), false);
    let names: Vec<&str> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // objdump (checked above) resolves the same name; here: no "/N" is left.
    assert!(names.iter().all(|n| !n.starts_with('/')), "{names:?}");
    assert!(names.iter().any(|n| n.len() > 8), "{names:?}");
}

/// sha256 of `len` bytes at `off` of each file, computed by Python's hashlib.
fn python_sha256(path: &Path, ranges: &[(u64, u64)]) -> Vec<String> {
    let spec: Vec<String> = ranges.iter().map(|(o, n)| format!("{o}:{n}")).collect();
    run_ok(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import hashlib,sys\nf=open(sys.argv[1],'rb')\nfor r in sys.argv[2:]:\n o,n=map(int,r.split(':'))\n f.seek(o)\n print(hashlib.sha256(f.read(n)).hexdigest())",
            )
            .arg(path)
            .args(&spec),
    )
    .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn section_hashes_match_an_independent_sha256() {
    for name in ["uki.efi", "shimx64.efi.signed", "vmlinuz", "profiles.efi"] {
        let p = fixture(name);
        let v = json(&p, true);
        // Offsets and sizes from objdump, bytes hashed by Python.
        let ranges: Vec<(u64, u64)> = objdump_sections(&p)
            .iter()
            .map(|(_, size, _, off)| (*off, *size))
            .collect();
        let want = python_sha256(&p, &ranges);
        let got: Vec<String> = v["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sha256"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{name}");
        // --no-hash leaves them out.
        let nh = json(&p, false);
        assert!(nh["sections"][0]["sha256"].is_null());
    }
}

#[test]
fn kinds_follow_the_reference_rules() {
    for (name, kind) in [
        ("uki.efi", "uki"),
        ("uki-signed.efi", "uki"),
        ("profiles.efi", "uki"),
        ("addon.efi", "addon"),
        ("vmlinuz", "efi-stub-kernel"),
        ("shimx64.efi.signed", "pe"),
        ("grubx64.efi.signed", "pe"),
        ("linuxx64.efi.stub", "pe"),
        ("systemd-bootx64.efi", "pe"),
    ] {
        assert_eq!(json(&fixture(name), false)["kind"], kind, "{name}");
    }
}

#[test]
fn uki_metadata_matches_the_parts_it_was_built_from() {
    let v = json(&fixture("uki.efi"), false);
    assert_eq!(v["cmdline"], fixture_text("cmdline").trim_end());
    assert_eq!(v["uname"], fixture_text("uname").trim());
    for line in fixture_text("os-release")
        .lines()
        .filter(|l| l.contains('='))
    {
        let (k, val) = line.split_once('=').unwrap();
        assert_eq!(v["os_release"][k], val.trim_matches('"'), "{k}");
    }
    // The stub's own .sbat survives; its first line is the SBAT header.
    assert_eq!(v["sbat"][0]["component"], "sbat");
    assert!(v["stub"].as_str().unwrap().starts_with("systemd-stub "));
    // splash.bmp header read by Python.
    let bmp = std::fs::read(fixture("splash.bmp")).unwrap();
    let w = i32::from_le_bytes(bmp[18..22].try_into().unwrap());
    let h = i32::from_le_bytes(bmp[22..26].try_into().unwrap());
    assert_eq!(v["splash"]["width"], w);
    assert_eq!(v["splash"]["height"], h);
    assert_eq!(
        v["splash"]["bits_per_pixel"],
        u16::from_le_bytes([bmp[28], bmp[29]])
    );
    // Numbers are numbers; hashes are lowercase hex.
    assert!(v["pe"]["size_of_image"].is_u64());
    let full = json(&fixture("uki.efi"), true);
    for s in full["sections"].as_array().unwrap() {
        let h = s["sha256"].as_str().unwrap();
        assert!(h.len() == 64 && h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    }
}

#[test]
fn kernel_facts_come_from_the_setup_header() {
    let vmlinuz = std::fs::read(fixture("vmlinuz")).unwrap();
    let proto = u16::from_le_bytes([vmlinuz[0x206], vmlinuz[0x207]]);
    let want_proto = format!("{}.{}", proto >> 8, proto & 0xff);
    // `objdump -p` names the certificate table "Security Directory".
    let od = Command::new("objdump")
        .arg("-p")
        .arg(fixture("vmlinuz"))
        .output()
        .unwrap();
    let od = String::from_utf8(od.stdout).unwrap();
    let signed = od
        .lines()
        .find(|l| l.contains("Security Directory"))
        .map(|l| {
            !l.split_whitespace()
                .nth(2)
                .unwrap()
                .chars()
                .all(|c| c == '0')
        })
        .unwrap();
    let nx = od.lines().any(|l| l.contains("NX_COMPAT"));
    for name in ["uki.efi", "vmlinuz"] {
        let k = &json(&fixture(name), false)["kernel"];
        assert_eq!(k["boot_protocol"], want_proto.as_str(), "{name}");
        let version = k["version"].as_str().unwrap();
        assert!(
            version.starts_with(fixture_text("uname").trim()),
            "{name}: {version}"
        );
        assert_eq!(k["signed"], signed, "{name}");
        assert_eq!(k["nx_compat"], nx, "{name}");
    }
}

#[test]
fn profiles_are_kept_apart_from_the_base() {
    let p = fixture("profiles.efi");
    let v = json(&p, false);
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    let table = objdump_sections(&p);
    let first = table.iter().position(|s| s.0 == ".profile").unwrap();
    let base: Vec<&str> = table[..first].iter().map(|s| s.0.as_str()).collect();
    assert_eq!(v["base_sections"], serde_json::json!(base));
    for (i, prof) in profiles.iter().enumerate() {
        assert_eq!(prof["index"], i);
        assert_eq!(prof["sections"][0], ".profile");
        // The ID= line of this profile's .profile, read by Python from objdump's offsets.
        let starts: Vec<&(String, u64, u64, u64)> =
            table.iter().filter(|s| s.0 == ".profile").collect();
        let (_, size, _, off) = starts[i];
        let bytes = std::fs::read(&p).unwrap();
        let text =
            String::from_utf8_lossy(&bytes[*off as usize..(*off + *size) as usize]).to_string();
        let id = text.lines().find_map(|l| l.strip_prefix("ID=")).unwrap();
        assert_eq!(prof["id"], id.trim_matches('"'));
    }
}

fn lint_ids(v: &Value, min: &[&str]) -> BTreeSet<String> {
    v["lints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| min.contains(&l["severity"].as_str().unwrap()))
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lints_fire_on_overlap_and_not_on_the_clean_uki() {
    let out = run_ukitool(&[
        "inspect",
        "--json",
        "--no-hash",
        fixture("overlap.efi").to_str().unwrap(),
    ]);
    // The report is printed; the file is broken, so the exit is 2 with one line.
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(lint_ids(&v, &["error"]).contains("sections-overlap"));

    for name in ["uki.efi", "uki-signed.efi", "profiles.efi"] {
        let v = json(&fixture(name), false);
        assert_eq!(
            lint_ids(&v, &["warning", "error"]),
            BTreeSet::new(),
            "{name}"
        );
        // The only notes left are inherited from Debian's stub itself.
        let stub = json(&fixture("linuxx64.efi.stub"), false);
        assert!(
            lint_ids(&v, &["info"]).is_subset(&lint_ids(&stub, &["info"])),
            "{name}"
        );
    }
}

#[test]
fn hostile_inputs_give_one_line_and_exit_2() {
    for name in ["truncated.efi", "overlap.efi", "garbage.bin"] {
        for extra in [&[][..], &["--json"][..]] {
            let mut args = vec!["inspect"];
            args.extend_from_slice(extra);
            let p = fixture(name);
            args.push(p.to_str().unwrap());
            assert_one_line_error(&run_ukitool(&args), name);
        }
    }
    // Every prefix of the header region of a real UKI, and some corrupted headers.
    let uki = std::fs::read(fixture("uki.efi")).unwrap();
    let dir = tmpdir();
    let f = dir.join("x.efi");
    let mut cases: Vec<Vec<u8>> = [
        0usize, 1, 2, 0x3c, 0x40, 0x80, 0x90, 0x100, 0x1a0, 0x300, 0x400, 0x20000,
    ]
    .iter()
    .map(|&n| uki[..n].to_vec())
    .collect();
    let pe = u32::from_le_bytes(uki[0x3c..0x40].try_into().unwrap()) as usize;
    for (at, val) in [
        (0x3c, &[0xff, 0xff, 0xff, 0x7f][..]), // e_lfanew past the end
        (pe + 6, &[0xff, 0xff][..]),           // 65535 sections
        (pe + 20, &[0xff, 0xff][..]),          // huge optional header
        (pe + 24, &[0x07, 0x01][..]),          // bad optional magic
        (pe + 24 + 240 + 20, &[0xff, 0xff, 0xff, 0xff][..]), // section raw offset past EOF
    ] {
        let mut d = uki[..0x20000].to_vec();
        d[at..at + val.len()].copy_from_slice(val);
        cases.push(d);
    }
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(&f, c).unwrap();
        assert_one_line_error(
            &run_ukitool(&["inspect", f.to_str().unwrap()]),
            &format!("case {i}"),
        );
    }
}

#[test]
fn stdin_is_read_with_a_dash() {
    let bytes = std::fs::read(fixture("addon.efi")).unwrap();
    let mut child = Command::new(ukitool_bin())
        .args(["inspect", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "addon");
}

// ---------------------------------------------------------------------------------------
// Synthetic PEs and golden output

#[test]
fn golden_output_of_synthetic_pes() {
    let dir = tmpdir();
    for (name, bytes, ok) in [
        ("synthetic-uki.efi", synthetic_uki(), true),
        ("synthetic-bad.efi", synthetic_bad(), false),
    ] {
        std::fs::write(dir.join(name), &bytes).unwrap();
        for (suffix, json) in [("txt", false), ("json", true)] {
            let mut c = Command::new(ukitool_bin());
            c.current_dir(&dir).arg("inspect");
            if json {
                c.arg("--json");
            }
            let out = c.arg(name).output().unwrap();
            assert_eq!(
                out.status.success(),
                ok,
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            golden(
                &format!("{name}.{suffix}"),
                &String::from_utf8(out.stdout).unwrap(),
            );
        }
    }
}

#[test]
fn synthetic_lints_each_fire() {
    let dir = tmpdir();
    let p = dir.join("bad.efi");
    std::fs::write(&p, synthetic_bad()).unwrap();
    let out = run_ukitool(&["inspect", "--json", p.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = lint_ids(&v, &["info", "warning", "error"]);
    for id in [
        "virtual-size-exceeds-raw",
        "sections-overlap",
        "sections-not-ascending",
        "duplicate-section",
        "missing-sbat",
        "pcrsig-without-pcrpkey",
        "nx-compat-without-kernel-support",
        // Its 2-symbol COFF table after the sections (docs/json.md's rule).
        "coff-symbol-table",
    ] {
        assert!(ids.contains(id), "{id} missing from {ids:?}");
    }
    let good = dir.join("good.efi");
    std::fs::write(&good, synthetic_uki()).unwrap();
    let v = json(&good, false);
    assert_eq!(lint_ids(&v, &["info", "warning", "error"]), BTreeSet::new());
    assert_eq!(v["profiles"].as_array().unwrap().len(), 2);
    assert_eq!(v["profiles"][0]["cmdline"], "console=ttyS0 one");
}

// ---------------------------------------------------------------------------------------
// The core API over a partial file (what the web page has after reading a Blob's head)

#[test]
fn a_header_prefix_plus_the_needed_ranges_gives_the_same_report() {
    use ukitool_core::inspect::{self, Chunks, InspectOptions};
    use ukitool_core::pe::PeFile;
    let no_hash = InspectOptions::NO_HASH;
    for name in [
        "uki.efi",
        "profiles.efi",
        "vmlinuz",
        "shimx64.efi.signed",
        "addon.efi",
    ] {
        let data = std::fs::read(fixture(name)).unwrap();
        let head = &data[..data.len().min(64 * 1024)];
        let mut pe = PeFile::parse_prefix(head, data.len() as u64).unwrap();
        // shim's long names live in the string table at the end of the file.
        if let Some(at) = pe.string_table_offset() {
            pe.resolve_long_names(&data[at as usize..]).unwrap();
        }
        let mut chunks = Chunks {
            file_len: data.len() as u64,
            chunks: vec![(0, head.to_vec())],
        };
        let ranges = inspect::needed_ranges(&pe);
        // Only small metadata and a bounded prefix of .linux are asked for.
        let total: u64 = ranges.iter().map(|r| r.1).sum();
        assert!(total <= 256 * 1024, "{name}: {total} bytes wanted");
        for (off, len) in ranges {
            let (o, l) = (off as usize, len as usize);
            chunks.chunks.push((off, data[o..o + l].to_vec()));
        }
        let partial = inspect::inspect_pe(&pe, &chunks, &no_hash);
        let full = inspect::inspect(&data, &no_hash).unwrap();
        assert_eq!(
            serde_json::to_value(&partial).unwrap(),
            serde_json::to_value(&full).unwrap(),
            "{name}"
        );
    }
}

/// A hostile table: 20000 sections, all `.profile`, all pointing at one 1 MiB payload.
/// Decoding and hashing are bounded by the file size, not by sections x payload.
#[test]
fn many_overlapping_sections_stay_bounded() {
    let n: u32 = 20000;
    let mut d = build_pe(&[(".profile", vec![b'x'; 16])], 0);
    let table = 0x44 + 20 + 240;
    let headers = (table + n as usize * 40).div_ceil(0x200) * 0x200;
    let payload_at = headers as u32;
    let mut payload = b"ID=hostile\nTITLE=same\n".to_vec();
    payload.resize(1 << 20, b'#');
    d.truncate(0x400);
    d.resize(headers, 0);
    d[0x44 + 2..0x44 + 4].copy_from_slice(&(n as u16).to_le_bytes());
    d[0x58 + 60..0x58 + 64].copy_from_slice(&(headers as u32).to_le_bytes());
    for i in 0..n as usize {
        let s = table + i * 40;
        d[s..s + 8].copy_from_slice(b".profile");
        d[s + 8..s + 12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&(0x1000u32 + i as u32 * 0x1000).to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&payload_at.to_le_bytes());
    }
    d.extend_from_slice(&payload);
    let dir = tmpdir();
    let p = dir.join("many.efi");
    std::fs::write(&p, &d).unwrap();
    // The CLI without hashing: the Authenticode digest (also skipped by --no-hash)
    // hashes every section's raw data as EDK2 does, overlaps included.
    let out = run_ukitool(&["inspect", "--json", "--no-hash", p.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The report lists the first MAX_LISTED_SECTIONS and says how many it left out;
    // the lints still cover the whole table.
    let listed = ukitool_core::inspect::MAX_LISTED_SECTIONS;
    assert!((n as usize) > listed);
    assert_eq!(v["sections"].as_array().unwrap().len(), listed);
    assert_eq!(v["profiles"].as_array().unwrap().len(), listed);
    assert!(lint_ids(&v, &["warning"]).contains("report-truncated"));
    assert!(lint_ids(&v, &["error"]).contains("sections-overlap"));
    assert!(lint_ids(&v, &["error"]).contains("too-many-profiles"));
    // Section hashes through the core: bounded by the file size.
    let opts = ukitool_core::inspect::InspectOptions {
        hash: true,
        signatures: false,
    };
    let v = serde_json::to_value(ukitool_core::inspect::inspect(&d, &opts).unwrap()).unwrap();
    let hashed = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["sha256"].is_null())
        .count();
    assert!(hashed <= 2, "{hashed} sections hashed");
}

fn openssl(args: &[&str], input: Option<&Path>) -> Vec<u8> {
    let mut c = Command::new("openssl");
    c.args(args);
    if let Some(i) = input {
        c.arg("-in").arg(i);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// .pcrpkey against openssl (DER fingerprint, key size), .pcrsig, .hwids and .efifw
/// decoded from a synthetic UKI.
#[test]
fn pcr_key_and_firmware_sections_are_decoded() {
    let dir = tmpdir();
    let rsa_pem = openssl(
        &["x509", "-pubkey", "-noout"],
        Some(&fixture("snakeoil.pem")),
    );
    let ec_key = dir.join("ec.key");
    std::fs::write(
        &ec_key,
        openssl(&["ecparam", "-genkey", "-name", "secp384r1"], None),
    )
    .unwrap();
    let ec_pem = openssl(&["pkey", "-pubout"], Some(&ec_key));
    for (pem, key_type) in [(rsa_pem, "rsa"), (ec_pem, "ec-p384")] {
        let pem_path = dir.join("key.pem");
        std::fs::write(&pem_path, &pem).unwrap();
        let der = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&pem_path));
        // systemd's pkfp hashes i2d_PublicKey: the SubjectPublicKeyInfo's key bits
        // (RSA: the RSAPublicKey DER; EC: the point), which end the DER.
        let key_bits = match key_type {
            "rsa" => openssl(
                &["rsa", "-pubin", "-RSAPublicKey_out", "-outform", "DER"],
                Some(&pem_path),
            ),
            _ => der[der.len() - 97..].to_vec(),
        };
        let fp = ukitool_tests::sha256_hex(&key_bits);
        let text = String::from_utf8(openssl(
            &["pkey", "-pubin", "-noout", "-text"],
            Some(&pem_path),
        ))
        .unwrap();
        let bits: u64 = text
            .split_once('(')
            .and_then(|(_, r)| r.split_once(" bit"))
            .map(|(n, _)| n.trim().parse().unwrap())
            .unwrap();
        let pcrsig = format!(
            "{{\"sha256\":[{{\"pcrs\":[11],\"pkfp\":\"{fp}\",\"pol\":\"00\",\"sig\":\"\"}}],\"sha1\":[{{\"pcrs\":[11,4],\"pkfp\":\"{fp}\",\"pol\":\"00\",\"sig\":\"\"}}]}}"
        );
        // One .hwids entry (type 1, a CHID, two strings) and its terminator.
        let mut hwids = Vec::new();
        hwids.extend_from_slice(&((1u32 << 28) | 28).to_le_bytes());
        hwids.extend_from_slice(&[
            0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        hwids.extend_from_slice(&56u32.to_le_bytes());
        hwids.extend_from_slice(&60u32.to_le_bytes());
        hwids.extend_from_slice(&[0u8; 28]);
        hwids.extend_from_slice(b"Box\0vendor,box\0");
        let mut efifw = Vec::new();
        for v in [0xFEED_DEADu32, 16, 8, 5] {
            efifw.extend_from_slice(&v.to_le_bytes());
        }
        efifw.extend_from_slice(b"fw-1234\0hello");
        let p = dir.join("keyed.efi");
        std::fs::write(
            &p,
            build_pe(
                &[
                    (".sbat", b"sbat,1,SBAT Version,sbat,1,https://x/\n".to_vec()),
                    (".linux", fake_kernel(false)),
                    (".pcrsig", pcrsig.into_bytes()),
                    (".pcrpkey", pem.clone()),
                    (".hwids", hwids),
                    (".efifw", efifw),
                ],
                0,
            ),
        )
        .unwrap();
        let v = json(&p, false);
        assert_eq!(v["pcrpkey"]["key_type"], key_type);
        assert_eq!(v["pcrpkey"]["bits"], bits);
        assert_eq!(v["pcrpkey"]["fingerprint"], fp.as_str());
        assert_eq!(v["pcrsig"]["pcrs"], serde_json::json!([4, 11]));
        assert_eq!(v["pcrsig"]["pkfp"], serde_json::json!([fp]));
        assert_eq!(v["pcrsig"]["entries"], 2);
        assert_eq!(
            v["hwids"][0]["chid"],
            "76543210-ba98-fedc-0102-030405060708"
        );
        assert_eq!(v["hwids"][0]["name"], "Box");
        assert_eq!(v["hwids"][0]["compatible"], "vendor,box");
        assert_eq!(v["efifw"][0]["fwid"], "fw-1234");
        assert_eq!(v["efifw"][0]["payload_size"], 5);
        assert_eq!(lint_ids(&v, &["info", "warning", "error"]), BTreeSet::new());
    }
}
