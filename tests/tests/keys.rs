//! Issue 18: `ukitool keys create` and `keys export`, with outside referees.
//!
//! - openssl parses the keys and certificates and verifies the chain PK → KEK → db;
//! - efitools' `cert-to-efi-sig-list` and `sign-efi-sig-list`, given the same
//!   certificates, keys and timestamp, write the same `.esl` and `.auth` bytes, and
//!   `sig-list-to-certs` reads ours back;
//! - `openssl cms -verify` accepts each `.auth` signature over the bytes UEFI says it
//!   covers (name ‖ vendor GUID ‖ attributes ‖ timestamp ‖ lists), with the signer's
//!   issuer as the only anchor;
//! - `ukitool verify --db` trusts what db signed, through the `.auth` and the `.esl`.
//!
//! The firmware test (enrolment by systemd-boot under OVMF) is `keys_enrol_in_firmware`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ukitool_tests::der::tlv;
use ukitool_tests::tools::{build_command, objdump_sections, sign_command};
use ukitool_tests::{
    assert_one_line_error, boot_disk_secure_vars, fixture, run, run_ok, setup_mode_vars, tmpdir,
    ukitool, BootEnd, BootOptions,
};

/// 2025-01-02 03:04:05 UTC, as `sign-efi-sig-list -t` takes it.
const EXPORT_TIME: u64 = 1_735_787_045;
const EXPORT_TIME_TEXT: &str = "2025-01-02 03:04:05";
const CREATE_TIME: u64 = 1_700_000_000;

fn create(dir: &Path, extra: &[&str]) {
    run_ok(
        ukitool()
            .args(["keys", "create", "--timestamp", &CREATE_TIME.to_string()])
            .args(extra)
            .arg(dir),
    );
}

fn export(keys: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run(ukitool()
        .args(["keys", "export"])
        .arg(keys)
        .arg("-o")
        .arg(out)
        .args(["--timestamp", &EXPORT_TIME.to_string()])
        .args(extra))
}

fn openssl(args: &[&str]) -> String {
    run_ok(Command::new("openssl").args(args))
}

/// The `.auth` file's timestamp, PKCS#7 SignedData (bare, as efitools writes it) and
/// signature lists.
fn split_auth(auth: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let len = u32::from_le_bytes(auth[16..20].try_into().unwrap()) as usize;
    (&auth[..16], &auth[40..16 + len], &auth[16 + len..])
}

/// Check `auth` with `openssl cms -verify`: the SignedData wrapped in a ContentInfo,
/// the content rebuilt as UEFI defines it, `anchor` the only trusted certificate.
fn cms_verify(dir: &Path, name: &str, auth: &[u8], anchor: &Path) {
    let (time, sd, lists) = split_auth(auth);
    let signed_data_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let ci = tlv(0x30, &[&signed_data_oid[..], &tlv(0xa0, sd)].concat());
    let guid: &[u8] = if name == "PK" || name == "KEK" {
        &[
            0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03,
            0x2b, 0x8c,
        ]
    } else {
        &[
            0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67,
            0x65, 0x6f,
        ]
    };
    let mut content: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    content.extend_from_slice(guid);
    content.extend_from_slice(&0x27u32.to_le_bytes());
    content.extend_from_slice(time);
    content.extend_from_slice(lists);
    let p7 = dir.join(format!("{name}.p7"));
    let data = dir.join(format!("{name}.signed"));
    std::fs::write(&p7, ci).unwrap();
    std::fs::write(&data, content).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let out = run(Command::new("openssl").args([
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        &p(&p7),
        "-content",
        &p(&data),
        "-CAfile",
        &p(anchor),
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ]));
    assert!(
        out.status.success(),
        "{name}.auth: openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keys_are_what_openssl_and_efitools_make_and_read() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(
        &keys,
        &[
            "--name",
            "Test Org",
            "--owner-guid",
            "11111111-2222-3333-4444-555555555555",
        ],
    );
    let f = |n: &str| keys.join(n).to_str().unwrap().to_string();
    for k in ["PK.key", "KEK.key", "db.key"] {
        assert!(openssl(&["pkey", "-in", &f(k), "-noout", "-text"]).contains("2048 bit"));
        let mode = std::fs::metadata(keys.join(k)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600, "{k}");
    }
    let chain = openssl(&[
        "verify",
        "-CAfile",
        &f("PK.crt"),
        "-untrusted",
        &f("KEK.crt"),
        &f("db.crt"),
    ]);
    assert!(chain.contains(": OK"), "{chain}");
    let kek = openssl(&["x509", "-in", &f("KEK.crt"), "-noout", "-text"]);
    assert!(
        kek.contains("CA:TRUE") && kek.contains("CN = Test Org Key Exchange Key"),
        "{kek}"
    );
    assert!(
        kek.contains("Not Before: Nov 14 22:13:20 2023 GMT"),
        "{kek}"
    );
    let db = openssl(&["x509", "-in", &f("db.crt"), "-noout", "-text"]);
    assert!(
        db.contains("CA:FALSE")
            && db.contains("Issuer: O = Test Org, CN = Test Org Key Exchange Key"),
        "{db}"
    );

    let out = dir.join("out");
    let o = export(
        &keys,
        &out,
        &["--append-db", fixture("snakeoil.pem").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let guid = "11111111-2222-3333-4444-555555555555";
    for (name, signer) in [("PK", "PK"), ("KEK", "PK"), ("db", "KEK")] {
        let esl = std::fs::read(out.join(format!("{name}.esl"))).unwrap();
        // efitools makes the same list from the same certificate (db: its own first).
        let theirs = dir.join(format!("{name}.ref.esl"));
        run_ok(
            Command::new("cert-to-efi-sig-list")
                .args(["-g", guid, &f(&format!("{name}.crt"))])
                .arg(&theirs),
        );
        let theirs = std::fs::read(&theirs).unwrap();
        assert_eq!(&esl[..theirs.len()], theirs.as_slice(), "{name}.esl");
        // and reads ours back: one DER certificate per entry.
        let prefix = dir.join(format!("{name}-back"));
        run_ok(
            Command::new("sig-list-to-certs")
                .arg(out.join(format!("{name}.esl")))
                .arg(&prefix),
        );
        let back = std::fs::read(format!("{}-0.der", prefix.display())).unwrap();
        let pem = std::fs::read(keys.join(format!("{name}.crt"))).unwrap();
        let ours = openssl(&[
            "x509",
            "-in",
            &f(&format!("{name}.crt")),
            "-outform",
            "DER",
            "-out",
            &format!("{}.der", prefix.display()),
        ]);
        assert!(ours.is_empty() && !pem.is_empty());
        assert_eq!(
            back,
            std::fs::read(format!("{}.der", prefix.display())).unwrap(),
            "{name}"
        );
        // sign-efi-sig-list signs the same list into the same bytes.
        let auth = std::fs::read(out.join(format!("{name}.auth"))).unwrap();
        let theirs = dir.join(format!("{name}.ref.auth"));
        run_ok(
            Command::new("sign-efi-sig-list")
                .args([
                    "-t",
                    EXPORT_TIME_TEXT,
                    "-k",
                    &f(&format!("{signer}.key")),
                    "-c",
                    &f(&format!("{signer}.crt")),
                    name,
                ])
                .arg(out.join(format!("{name}.esl")))
                .arg(&theirs),
        );
        assert!(
            std::fs::read(&theirs).unwrap() == auth,
            "{name}.auth differs from sign-efi-sig-list's"
        );
        cms_verify(&dir, name, &auth, &keys.join("PK.crt"));
    }
    // db holds our db certificate and the appended snakeoil one.
    run_ok(
        Command::new("sig-list-to-certs")
            .arg(out.join("db.esl"))
            .arg(dir.join("db-all")),
    );
    assert!(dir.join("db-all-1.der").exists() && !dir.join("db-all-2.der").exists());

    // inspect decodes them: entries, owners, certificates; the .auth signer, the
    // timestamp, and the variable the signature covers.
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&run_ok(ukitool().args(["inspect", "--json"]).arg(path))).unwrap()
    };
    let db = json(&out.join("db.auth"));
    assert_eq!(db["container"], "auth");
    assert_eq!(db["auth"]["timestamp"], "2025-01-02T03:04:05Z");
    assert_eq!(db["auth"]["signed_for"], "db");
    assert_eq!(
        db["auth"]["signer"]["subject_cn"],
        "Test Org Key Exchange Key"
    );
    assert_eq!(db["entries"][0]["owner"], guid);
    assert_eq!(
        db["entries"][0]["certificate"]["subject_cn"],
        "Test Org Signature Database Key"
    );
    assert!(db["entries"][1]["certificate"]["subject"]
        .as_str()
        .unwrap()
        .contains("O=SnakeOil"));
    let kek = json(&out.join("KEK.esl"));
    assert_eq!(kek["container"], "signature-list");
    assert_eq!(kek["entries"][0]["type"], "x509");
    // efitools' PK.auth for our KEK list, and a flipped payload byte.
    let mut bad = std::fs::read(out.join("KEK.auth")).unwrap();
    *bad.last_mut().unwrap() ^= 1;
    std::fs::write(dir.join("bad.auth"), &bad).unwrap();
    let human = run_ok(ukitool().arg("inspect").arg(dir.join("bad.auth")));
    assert!(human.contains("NOT VERIFIED"), "{human}");
    assert!(
        run_ok(ukitool().arg("inspect").arg(dir.join("KEK.ref.auth")))
            .contains("as an update of KEK by Test Org Platform Key")
    );

    // Hostile copies through the CLI: a report (exit 0) or one line (exit 2), never a
    // crash.
    let auth = std::fs::read(out.join("db.auth")).unwrap();
    for (i, n) in [0, 15, 17, 40, 41, 100, 1000, auth.len() - 1]
        .into_iter()
        .enumerate()
    {
        let cut = dir.join(format!("cut{i}.auth"));
        std::fs::write(&cut, &auth[..n]).unwrap();
        let o = run(ukitool().arg("inspect").arg(&cut));
        if o.status.code() != Some(0) {
            assert_one_line_error(&o, &format!("{n}-byte prefix"));
        }
        let mut m = auth.clone();
        m[n] = !m[n];
        std::fs::write(&cut, &m).unwrap();
        let o = run(ukitool().arg("inspect").arg(&cut));
        if o.status.code() != Some(0) {
            assert_one_line_error(&o, &format!("byte {n} flipped"));
        }
    }

    // Same keys, same timestamp: the same bytes.
    let again = dir.join("again");
    let o = export(
        &keys,
        &again,
        &["--append-db", fixture("snakeoil.pem").to_str().unwrap()],
    );
    assert!(o.status.success());
    for n in ["PK.auth", "KEK.auth", "db.auth", "db.esl"] {
        assert_eq!(
            std::fs::read(out.join(n)).unwrap(),
            std::fs::read(again.join(n)).unwrap(),
            "{n}"
        );
    }

    // verify --db trusts what the db key signed, through the .auth and the .esl, and
    // what the appended snakeoil certificate signed; not an image signed by another key.
    let uki = fixture("uki.efi");
    let signed = dir.join("signed.efi");
    run_ok(&mut sign_command(
        &uki,
        &keys.join("db.key"),
        &keys.join("db.crt"),
        &signed,
    ));
    for db in ["db.auth", "db.esl"] {
        for (efi, want) in [
            (signed.clone(), 0),
            (fixture("uki-signed.efi"), 0),
            (fixture("uki-other-signed.efi"), 1),
        ] {
            let v = run(ukitool()
                .arg("verify")
                .arg("--db")
                .arg(out.join(db))
                .arg(&efi));
            assert_eq!(
                v.status.code(),
                Some(want),
                "{db} {}: {}",
                efi.display(),
                String::from_utf8_lossy(&v.stdout)
            );
        }
    }

    // A CA appended as DER (Debian's, from shim): Debian's signed GRUB, which chains to
    // it, is trusted through the exported db; without it, it is not.
    let debian = dir.join("debian");
    let ca = fixture("debian-ca.der");
    assert!(
        export(&keys, &debian, &["--append-db", ca.to_str().unwrap()])
            .status
            .success()
    );
    let grub = fixture("grubx64.efi.signed");
    for (db, want) in [(debian.join("db.auth"), 0), (out.join("db.auth"), 1)] {
        let v = run(ukitool().arg("verify").arg("--db").arg(&db).arg(&grub));
        assert_eq!(
            v.status.code(),
            Some(want),
            "{}: {}",
            db.display(),
            String::from_utf8_lossy(&v.stdout)
        );
    }

    // dbx: signed by KEK as sign-efi-sig-list signs it; it revokes what it lists.
    let with_dbx = dir.join("dbx");
    let snakeoil = fixture("snakeoil.pem");
    let sn = snakeoil.to_str().unwrap();
    assert!(export(&keys, &with_dbx, &["--append-db", sn, "--dbx", sn])
        .status
        .success());
    let dbx = json(&with_dbx.join("dbx.auth"));
    assert_eq!(dbx["auth"]["signed_for"], "dbx");
    assert_eq!(
        dbx["auth"]["signer"]["subject_cn"],
        "Test Org Key Exchange Key"
    );
    let theirs = dir.join("dbx.ref.auth");
    run_ok(
        Command::new("sign-efi-sig-list")
            .args([
                "-t",
                EXPORT_TIME_TEXT,
                "-k",
                &f("KEK.key"),
                "-c",
                &f("KEK.crt"),
                "dbx",
            ])
            .arg(with_dbx.join("dbx.esl"))
            .arg(&theirs),
    );
    assert!(std::fs::read(&theirs).unwrap() == std::fs::read(with_dbx.join("dbx.auth")).unwrap());
    let v = run(ukitool()
        .arg("verify")
        .arg("--db")
        .arg(with_dbx.join("db.auth"))
        .arg("--dbx")
        .arg(with_dbx.join("dbx.auth"))
        .arg(fixture("uki-signed.efi")));
    assert_eq!(
        v.status.code(),
        Some(1),
        "revoked: {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// `--secure-boot-keys` without `--secure-boot-enroll`: the default if-safe, which
/// Debian 12's systemd-boot 252 rejects, becomes manual (and the summary says why);
/// if-safe asked for explicitly is refused with one line.
#[test]
fn the_enrol_mode_fits_the_systemd_boot_version() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &[]);
    let k = keys.to_str().unwrap();
    let sdboot = fixture("systemd-bootx64.efi");
    let img = dir.join("d.img");
    let args = |extra: &[&str]| {
        let mut c = ukitool();
        c.args(["image", "--layout", "systemd-boot", "--secure-boot-keys", k])
            .arg("--uki")
            .arg(fixture("uki-signed.efi"))
            .arg("--systemd-boot")
            .arg(&sdboot)
            .args(extra)
            .arg("-o")
            .arg(&img);
        c
    };
    let out = run_ok(&mut args(&[]));
    assert!(
        out.contains("secure-boot-enroll manual")
            && out.contains("systemd-boot 252 has no if-safe"),
        "{out}"
    );
    // The UKI was signed by snakeoil: db's signature is added after it.
    assert!(out.contains("UKI: db signature added to its own"), "{out}");
    let conf = dir.join("loader.conf");
    let esp = format!("{}@@1048576", img.display());
    run_ok(
        Command::new("mcopy")
            .args(["-n", "-i", &esp, "::/loader/loader.conf"])
            .arg(&conf),
    );
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .ends_with("secure-boot-enroll manual\n"));
    // The same keys and inputs: the same image, byte for byte.
    let first = std::fs::read(&img).unwrap();
    std::fs::remove_file(&img).unwrap();
    run_ok(&mut args(&[]));
    assert!(std::fs::read(&img).unwrap() == first, "not reproducible");
    std::fs::remove_file(&img).unwrap();
    // write takes the same options with a UKI source: the same bytes as image.
    run_ok(&mut args(&[]));
    let written = dir.join("written.img");
    let w = run(ukitool()
        .arg("write")
        .arg(fixture("uki-signed.efi"))
        .arg(&written)
        .args([
            "--yes",
            "--to-file",
            "--layout",
            "systemd-boot",
            "--secure-boot-keys",
            k,
        ])
        .arg("--systemd-boot")
        .arg(&sdboot));
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    assert!(
        std::fs::read(&written).unwrap() == std::fs::read(&img).unwrap(),
        "write differs from image"
    );
    std::fs::remove_file(&img).unwrap();
    let o = run(&mut args(&["--secure-boot-enroll", "if-safe"]));
    let e = assert_one_line_error(&o, "if-safe on 252");
    assert!(
        e.contains("systemd-boot 252 does not accept secure-boot-enroll if-safe"),
        "{e}"
    );
    assert!(!img.exists());
    // Without systemd-boot nothing would enrol the keys.
    let o = run(ukitool()
        .args(["image", "--secure-boot-keys", k, "--uki"])
        .arg(fixture("uki.efi"))
        .arg("-o")
        .arg(&img));
    assert!(
        assert_one_line_error(&o, "uefi layout").contains("--secure-boot-keys needs systemd-boot")
    );
}

#[test]
fn an_expired_or_non_ca_signer_is_refused_and_nothing_is_written() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &["--valid-days", "1"]);
    let out = dir.join("out");
    // Two days after the keys were made: expired.
    let o = run(ukitool()
        .args(["keys", "export"])
        .arg(&keys)
        .arg("-o")
        .arg(&out)
        .args(["--timestamp", &(CREATE_TIME + 2 * 86_400).to_string()]));
    let e = assert_one_line_error(&o, "expired");
    assert!(e.contains("PK.crt expired"), "{e}");
    assert!(!out.exists());
    // A KEK that is not a CA (the db leaf in its place).
    let leaf = dir.join("leaf");
    std::fs::create_dir(&leaf).unwrap();
    for (from, to) in [("PK", "PK"), ("db", "KEK"), ("db", "db")] {
        for ext in ["key", "crt"] {
            std::fs::copy(
                keys.join(format!("{from}.{ext}")),
                leaf.join(format!("{to}.{ext}")),
            )
            .unwrap();
        }
    }
    let o = run(ukitool()
        .args(["keys", "export"])
        .arg(&leaf)
        .arg("-o")
        .arg(&out)
        .args(["--timestamp", &(CREATE_TIME + 60).to_string()]));
    let e = assert_one_line_error(&o, "non-CA");
    assert!(e.contains("KEK.crt is not a CA certificate"), "{e}");
    assert!(!out.exists());
    // create refuses to replace keys.
    let o = run(ukitool().args(["keys", "create"]).arg(&keys));
    assert!(assert_one_line_error(&o, "replace").contains("refusing to replace a key"));
}

/// `ukitool image --layout systemd-boot` of `uki` with `sdboot`, and `extra` options.
fn sd_image(dir: &Path, name: &str, uki: &Path, sdboot: &Path, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    let out = run_ok(
        ukitool()
            .args(["image", "--layout", "systemd-boot", "--entry-name", "linux"])
            .arg("--uki")
            .arg(uki)
            .arg("--systemd-boot")
            .arg(sdboot)
            .args(extra)
            .arg("-o")
            .arg(&img),
    );
    eprintln!("{out}");
    img
}

/// Issue 18's acceptance: OVMF's Secure Boot build with empty variables (setup mode)
/// boots an image made with `--secure-boot-keys` and `force`; systemd-boot 252 enrols
/// db, KEK and PK and resets. With the same variables the firmware is then in user mode:
/// the UKI boots with Secure Boot on, and systemd-boot refuses a UKI db did not sign
/// and a tampered one. Four TCG boots (about a minute).
#[test]
fn keys_enrol_in_firmware() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &[]);
    let sdboot = fixture("systemd-bootx64.efi");
    let uki = fixture("uki.efi");
    let img = sd_image(
        &dir,
        "enrol.img",
        &uki,
        &sdboot,
        &[
            "--secure-boot-keys",
            keys.to_str().unwrap(),
            "--secure-boot-enroll",
            "force",
        ],
    );
    // The ESP holds what systemd-boot reads: the .auth files and the mode.
    let conf = dir.join("loader.conf");
    let esp = format!("{}@@1048576", img.display());
    run_ok(
        Command::new("mcopy")
            .args(["-n", "-i", &esp, "::/loader/loader.conf"])
            .arg(&conf),
    );
    let conf = std::fs::read_to_string(&conf).unwrap();
    assert!(conf.contains("secure-boot-enroll force\n"), "{conf}");
    let listing = run_ok(Command::new("mdir").args(["-b", "-i", &esp, "::/loader/keys/auto"]));
    for f in ["PK.auth", "KEK.auth", "db.auth"] {
        assert!(listing.contains(f), "{listing}");
    }

    let vars = setup_mode_vars(&dir);
    let opts = BootOptions::default();
    let enrol = boot_disk_secure_vars(&img, &vars, &opts);
    assert!(
        enrol.serial.contains("Enrolling secure boot keys") && enrol.marker().is_none(),
        "first boot (setup mode) should enrol and reset: {enrol}"
    );
    assert_eq!(enrol.end, BootEnd::Exited, "{enrol}");

    let boot = boot_disk_secure_vars(&img, &vars, &opts);
    assert_eq!(
        boot.secure_boot(),
        Some(true),
        "second boot (user mode): {boot}"
    );

    // systemd-boot signed by db, with a UKI db did not sign, then with a tampered one.
    let sd_signed = dir.join("sd-signed.efi");
    run_ok(&mut sign_command(
        &sdboot,
        &keys.join("db.key"),
        &keys.join("db.crt"),
        &sd_signed,
    ));
    let signed = dir.join("uki-db.efi");
    run_ok(&mut sign_command(
        &uki,
        &keys.join("db.key"),
        &keys.join("db.crt"),
        &signed,
    ));
    let mut bytes = std::fs::read(&signed).unwrap();
    let (_, size, _, off) = objdump_sections(&signed)
        .into_iter()
        .find(|s| s.0 == ".cmdline")
        .unwrap();
    bytes[(off + size - 1) as usize] ^= 0x01;
    let tampered = dir.join("uki-tampered.efi");
    std::fs::write(&tampered, bytes).unwrap();
    let refuse = BootOptions {
        settled_by: vec!["Access Denied"],
        ..BootOptions::default()
    };
    for (what, efi) in [
        ("other-signed", fixture("uki-other-signed.efi")),
        ("tampered", tampered),
    ] {
        let img = sd_image(&dir, &format!("{what}.img"), &efi, &sd_signed, &[]);
        let log = boot_disk_secure_vars(&img, &vars, &refuse);
        assert!(
            log.marker().is_none() && log.serial.contains("Access Denied"),
            "{what}: systemd-boot should refuse it: {log}"
        );
    }
}

/// The two-step flow: `sign --export-signed-attributes` writes what the key must sign,
/// openssl (the outside signer) signs it, `sign --attach` completes the signature.
/// sbverify accepts the result, which is the one-step `sign --key` output byte for byte.
/// A signature by another key is refused with one line and no output file.
#[test]
fn two_step_signing_with_openssl_as_the_outside_signer() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &[]);
    let uki = fixture("uki.efi");
    let (db_key, db_crt) = (keys.join("db.key"), keys.join("db.crt"));
    let attrs = dir.join("attrs.der");
    run_ok(
        ukitool()
            .arg("sign")
            .arg(&uki)
            .arg("--cert")
            .arg(&db_crt)
            .arg("--export-signed-attributes")
            .arg(&attrs),
    );
    // The attributes are a DER SET OF (tag 0x31), as the signature covers them.
    assert_eq!(std::fs::read(&attrs).unwrap()[0], 0x31);
    let sign_with = |key: &Path, sig: &Path| {
        let digest = dir.join("attrs.sha256");
        run_ok(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-binary", "-out"])
                .arg(&digest)
                .arg(&attrs),
        );
        run_ok(
            Command::new("openssl")
                .args(["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey"])
                .arg(key)
                .arg("-in")
                .arg(&digest)
                .arg("-out")
                .arg(sig),
        );
    };
    let sig = dir.join("sig.bin");
    sign_with(&db_key, &sig);
    let two = dir.join("two.efi");
    let attach = |sig: &Path, out: &Path| {
        run(ukitool()
            .arg("sign")
            .arg(&uki)
            .arg("--cert")
            .arg(&db_crt)
            .arg("--attach")
            .arg(sig)
            .arg("-o")
            .arg(out))
    };
    assert!(attach(&sig, &two).status.success());
    let v = run_ok(
        Command::new("sbverify")
            .arg("--cert")
            .arg(&db_crt)
            .arg(&two),
    );
    assert!(v.contains("Signature verification OK"), "{v}");
    let one = dir.join("one.efi");
    run_ok(&mut sign_command(&uki, &db_key, &db_crt, &one));
    assert!(std::fs::read(&one).unwrap() == std::fs::read(&two).unwrap());

    let other = dir.join("other.sig");
    sign_with(&keys.join("KEK.key"), &other);
    let bad = dir.join("bad.efi");
    let e = assert_one_line_error(&attach(&other, &bad), "mismatched signature");
    assert!(e.contains("the signature does not verify"), "{e}");
    assert!(!bad.exists());
}

/// A SoftHSM2 token in `dir` holding `keys` as (PKCS#8 PEM file, label, id); the
/// returned SOFTHSM2_CONF is set on each command that uses it.
fn softhsm(dir: &Path, keys: &[(&Path, &str, &str)]) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let hsm = |args: &[&str]| {
        run_ok(
            Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(args),
        );
    };
    hsm(&[
        "--init-token",
        "--free",
        "--label",
        "ukitool",
        "--pin",
        "1234",
        "--so-pin",
        "5678",
    ]);
    for (key, label, id) in keys {
        hsm(&[
            "--import",
            key.to_str().unwrap(),
            "--token",
            "ukitool",
            "--label",
            label,
            "--id",
            id,
            "--pin",
            "1234",
        ]);
    }
    conf
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// `sign --key pkcs11:...` through SoftHSM2 (the tests initialise the token): RSA (the
/// db key) and ECDSA P-256. sbverify accepts both; the RSA result is the key-file
/// signature byte for byte. A wrong PIN, a missing token and a key the certificate does
/// not certify each give one line, exit 2 and no output file.
#[test]
fn pkcs11_signing_through_softhsm2() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &[]);
    let ec_key = dir.join("ec.key");
    let ec_crt = dir.join("ec.crt");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=ukitool ECDSA test/",
                "-days",
                "30",
                "-keyout",
            ])
            .arg(&ec_key)
            .arg("-out")
            .arg(&ec_crt),
    );
    let conf = softhsm(
        &dir,
        &[(&keys.join("db.key"), "db", "01"), (&ec_key, "ec", "02")],
    );
    let uki = fixture("uki.efi");
    let sign = |uri: &str, cert: &Path, out: &Path| {
        run(ukitool()
            .env("SOFTHSM2_CONF", &conf)
            .arg("sign")
            .arg(&uki)
            .args(["--key", uri, "--pkcs11-module", SOFTHSM, "--cert"])
            .arg(cert)
            .arg("-o")
            .arg(out))
    };
    for (uri, cert) in [
        (
            "pkcs11:token=ukitool;object=db?pin-value=1234",
            keys.join("db.crt"),
        ),
        ("pkcs11:token=ukitool;id=%02?pin-value=1234", ec_crt.clone()),
    ] {
        let out = dir.join("hsm.efi");
        let o = sign(uri, &cert, &out);
        assert!(
            o.status.success(),
            "{uri}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = run_ok(Command::new("sbverify").arg("--cert").arg(&cert).arg(&out));
        assert!(v.contains("Signature verification OK"), "{uri}: {v}");
        if cert.ends_with("db.crt") {
            let file = dir.join("file.efi");
            run_ok(&mut sign_command(&uki, &keys.join("db.key"), &cert, &file));
            assert!(
                std::fs::read(&file).unwrap() == std::fs::read(&out).unwrap(),
                "{uri}"
            );
        }
        std::fs::remove_file(&out).unwrap();
    }
    // Without --pkcs11-module: p11-kit's proxy, which reaches SoftHSM2 through the
    // module file Debian's softhsm2 installs for p11-kit.
    let proxied = dir.join("proxied.efi");
    run_ok(
        ukitool()
            .env("SOFTHSM2_CONF", &conf)
            .arg("sign")
            .arg(&uki)
            .args([
                "--key",
                "pkcs11:token=ukitool;object=db?pin-value=1234",
                "--cert",
            ])
            .arg(keys.join("db.crt"))
            .arg("-o")
            .arg(&proxied),
    );
    let v = run_ok(
        Command::new("sbverify")
            .arg("--cert")
            .arg(keys.join("db.crt"))
            .arg(&proxied),
    );
    assert!(v.contains("Signature verification OK"), "p11-kit: {v}");

    // build --key takes the same URI: the built UKI is signed by the token's key.
    let built = dir.join("built.efi");
    run_ok(
        build_command(&["linux", "initrd", "cmdline", "os-release"])
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--key",
                "pkcs11:token=ukitool;object=db?pin-value=1234",
                "--pkcs11-module",
                SOFTHSM,
                "--cert",
            ])
            .arg(keys.join("db.crt"))
            .arg("-o")
            .arg(&built),
    );
    let v = run_ok(
        Command::new("sbverify")
            .arg("--cert")
            .arg(keys.join("db.crt"))
            .arg(&built),
    );
    assert!(v.contains("Signature verification OK"), "build: {v}");

    // .pcrsig policies signed in the token: measure --sign and build
    // --pcr-private-key give what the key file gives (RSA PKCS#1 v1.5 is deterministic).
    let db_pub = dir.join("db.pub");
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(keys.join("db.key"))
            .arg("-out")
            .arg(&db_pub),
    );
    let uri = "pkcs11:token=ukitool;object=db?pin-value=1234";
    let measure = |key: &str, extra: &[&str]| {
        run_ok(
            ukitool()
                .env("SOFTHSM2_CONF", &conf)
                .arg("measure")
                .arg(fixture("uki.efi"))
                .args(["--sign", key])
                .args(extra),
        )
    };
    let db_key = keys.join("db.key");
    assert_eq!(
        measure(
            uri,
            &[
                "--public-key",
                db_pub.to_str().unwrap(),
                "--pkcs11-module",
                SOFTHSM
            ]
        ),
        measure(db_key.to_str().unwrap(), &[])
    );
    let pcr_build = |key: &str, out: &Path| {
        run_ok(
            build_command(&["linux", "initrd", "cmdline", "os-release"])
                .env("SOFTHSM2_CONF", &conf)
                .args([
                    "--pcr-private-key",
                    key,
                    "--pcr-public-key",
                    db_pub.to_str().unwrap(),
                    "--pkcs11-module",
                    SOFTHSM,
                    "-o",
                ])
                .arg(out),
        );
        std::fs::read(out).unwrap()
    };
    assert!(
        pcr_build(uri, &dir.join("pcr-hsm.efi"))
            == pcr_build(db_key.to_str().unwrap(), &dir.join("pcr-file.efi"))
    );

    let bad = dir.join("bad.efi");
    let db_crt = keys.join("db.crt");
    for (uri, cert, what, says) in [
        (
            "pkcs11:token=ukitool;object=db?pin-value=0000",
            &db_crt,
            "wrong PIN",
            "the PIN is incorrect",
        ),
        (
            "pkcs11:token=absent;object=db?pin-value=1234",
            &db_crt,
            "missing token",
            "no PKCS#11 token matches token=absent",
        ),
        (
            "pkcs11:token=ukitool;object=db?pin-value=1234",
            &ec_crt,
            "other key",
            "is not the one the certificate (or public key) names",
        ),
    ] {
        let e = assert_one_line_error(&sign(uri, cert, &bad), what);
        assert!(e.contains(says), "{what}: {e}");
        assert!(!bad.exists(), "{what}");
    }
}

/// Without `--secure-boot-enroll`, Debian 12's systemd-boot 252 gets `manual` (it has no
/// if-safe): in setup mode it offers the keys in its menu but does not enrol them, and
/// the UKI boots with Secure Boot off. One TCG boot.
#[test]
fn default_mode_on_systemd_boot_252_does_not_enrol() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    create(&keys, &[]);
    let img = sd_image(
        &dir,
        "manual.img",
        &fixture("uki.efi"),
        &fixture("systemd-bootx64.efi"),
        &["--secure-boot-keys", keys.to_str().unwrap()],
    );
    let vars = setup_mode_vars(&dir);
    let log = boot_disk_secure_vars(&img, &vars, &BootOptions::default());
    assert_eq!(log.secure_boot(), Some(false), "{log}");
    assert!(!log.serial.contains("Enrolling secure boot keys"), "{log}");
}
