use super::*;

/// A minimal PE32+ "stub": one .text section and a .sbat, FileAlignment 0x200,
/// SectionAlignment 0x1000, room for 6 section headers, a symbol table after the body.
pub(crate) fn tiny_stub() -> Vec<u8> {
    let mut d = vec![0u8; 0x800];
    d[0..2].copy_from_slice(b"MZ");
    d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    d[0x80..0x84].copy_from_slice(b"PE\0\0");
    let c = 0x84;
    d[c..c + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    d[c + 2..c + 4].copy_from_slice(&2u16.to_le_bytes());
    d[c + 4..c + 8].copy_from_slice(&0x1234u32.to_le_bytes());
    d[c + 8..c + 12].copy_from_slice(&0x600u32.to_le_bytes()); // symbol table
    d[c + 12..c + 16].copy_from_slice(&1u32.to_le_bytes());
    d[c + 16..c + 18].copy_from_slice(&240u16.to_le_bytes());
    let o = c + 20;
    d[o..o + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    d[o + 32..o + 36].copy_from_slice(&0x1000u32.to_le_bytes());
    d[o + 36..o + 40].copy_from_slice(&0x200u32.to_le_bytes());
    d[o + 56..o + 60].copy_from_slice(&0x3000u32.to_le_bytes());
    d[o + 60..o + 64].copy_from_slice(&0x200u32.to_le_bytes());
    d[o + 68..o + 70].copy_from_slice(&10u16.to_le_bytes());
    d[o + 70..o + 72].copy_from_slice(&0x0160u16.to_le_bytes()); // NX_COMPAT|...
    d[o + 108..o + 112].copy_from_slice(&16u32.to_le_bytes());
    let mut s = o + 240;
    for (name, va, ptr, len, fl) in [
        (b".text\0\0\0", 0x1000u32, 0x200u32, 5u32, 0x6000_0020u32),
        (b".sbat\0\0\0", 0x2000, 0x400, 8, 0x4000_0040),
    ] {
        d[s..s + 8].copy_from_slice(name);
        d[s + 8..s + 12].copy_from_slice(&len.to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&va.to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&0x200u32.to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&ptr.to_le_bytes());
        d[s + 36..s + 40].copy_from_slice(&fl.to_le_bytes());
        s += 40;
    }
    d[0x200..0x205].copy_from_slice(b"hello");
    d[0x400..0x408].copy_from_slice(b"sbat,1,\n");
    d[0x600..0x612].copy_from_slice(b"SYMBOLTABLE.......");
    d
}

fn spec<'a>(stub: &'a [u8], linux: &'a [u8]) -> BuildSpec<'a> {
    BuildSpec {
        stub,
        linux: Some(linux),
        cmdline: Some(b"quiet"),
        os_release: Some(b"ID=test\n"),
        initrds: vec![b"one", b"two"],
        timestamp: Some(7),
        ..Default::default()
    }
}

#[test]
fn builds_a_parseable_uki_with_exact_payloads() {
    let stub = tiny_stub();
    let out = build(&spec(&stub, b"KERNEL")).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    let names: Vec<_> = pe.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [".text", ".sbat", ".osrel", ".cmdline", ".linux", ".initrd"]
    );
    let p = |n| pe.section_payload(n).unwrap().unwrap();
    assert_eq!(p(".cmdline"), b"quiet");
    assert_eq!(p(".initrd"), b"onetwo");
    assert_eq!(p(".linux"), b"KERNEL");
    assert_eq!(p(".text"), b"hello");
    assert!(p(".sbat").ends_with(
        SBAT_DEFAULT_UKI
            .as_bytes()
            .iter()
            .chain(b"\n\0")
            .copied()
            .collect::<Vec<_>>()
            .as_slice()
    ));
    // Layout: ascending, aligned, contiguous in SectionAlignment steps.
    for w in pe.sections.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(b.virtual_address as u64 >= a.virtual_end());
        assert_eq!(b.virtual_address % 0x1000, 0);
        assert_eq!(b.pointer_to_raw_data % 0x200, 0);
    }
    let last = pe.sections.last().unwrap();
    assert_eq!(
        pe.opt.size_of_image as u64,
        crate::bytes::align_up(last.virtual_end(), 0x1000).unwrap()
    );
    assert_eq!(out.len() as u64, last.raw_end());
    assert_eq!(pe.coff.pointer_to_symbol_table, 0);
    assert_eq!(pe.coff.time_date_stamp, 7);
    assert!(!pe.nx_compat(), "kernel lacks NX_COMPAT");
    assert_eq!(pe.opt.checksum, pe_checksum(&out, pe.checksum_offset));
    assert_eq!(pe.sections[4].characteristics, 0x4000_0020);
    // Deterministic.
    assert_eq!(out, build(&spec(&stub, b"KERNEL")).unwrap());
}

#[test]
fn grows_the_headers_when_the_table_does_not_fit() {
    let stub = tiny_stub();
    let mut s = spec(&stub, b"KERNEL");
    s.uname = Some(b"6.1");
    s.hwids = Some(b"h");
    s.pcrpkey = Some(b"k");
    s.ucode = Some(b"u");
    s.sections = vec![NamedPart {
        name: ".extra",
        data: b"x",
    }];
    let out = build(&s).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    assert_eq!(pe.sections.len(), 11);
    assert_eq!(pe.opt.size_of_headers, 0x400);
    assert_eq!(pe.section_payload(".text").unwrap().unwrap(), b"hello");
    assert_eq!(pe.section_payload(".extra").unwrap().unwrap(), b"x");
}

#[test]
fn bad_inputs_are_refused_with_a_reason() {
    let stub = tiny_stub();
    let mut s = spec(&stub, b"K");
    s.splash = Some(b"GIF89a");
    assert!(build(&s).unwrap_err().to_string().contains("BMP"));
    let mut s = spec(&stub, b"K");
    s.sections = vec![NamedPart {
        name: ".toolongname",
        data: b"x",
    }];
    assert!(build(&s).unwrap_err().to_string().contains("1 to 8"));
    let s = spec(b"not a pe at all", b"K");
    assert!(build(&s)
        .unwrap_err()
        .to_string()
        .starts_with("invalid input: stub"));
    let mut signed = stub.clone();
    let dir = 0x98 + 112 + 4 * 8;
    signed[dir..dir + 4].copy_from_slice(&0x600u32.to_le_bytes());
    signed[dir + 4..dir + 8].copy_from_slice(&8u32.to_le_bytes());
    let s = spec(&signed, b"K");
    assert!(build(&s).unwrap_err().to_string().contains("signed"));
    let mut s = spec(&stub, b"K");
    s.sections = vec![NamedPart {
        name: ".text",
        data: b"x",
    }];
    assert!(build(&s).unwrap_err().to_string().contains("already has"));
}

#[test]
fn sbat_merge_follows_ukify() {
    let stub = b"sbat,1,SBAT Version,sbat,1,x\nsystemd,1,a\n\0";
    let got = merge_sbat(&[stub], &[], SBAT_DEFAULT_UKI.as_bytes()).unwrap();
    let want = format!("{SBAT_HEADER}\nsystemd,1,a\n{SBAT_DEFAULT_UKI}\n\0");
    assert_eq!(got, want.as_bytes());
    let got = merge_sbat(&[stub], &[b"sbat,1,x\nmine,2,b\n"], b"").unwrap();
    assert_eq!(
        got,
        format!("{SBAT_HEADER}\nsystemd,1,a\nmine,2,b\n\0").as_bytes()
    );
    assert!(merge_sbat(&[], &[b"mine,2,b\n"], b"").is_err());
}

#[test]
fn sbat_that_does_not_fit_moves_to_the_end() {
    let stub = tiny_stub();
    let long = format!("sbat,1,x\n{}\n", "a,1,b,c,d,e".repeat(100));
    let mut s = spec(&stub, b"K");
    s.sbat = vec![long.as_bytes()];
    // .sbat is the stub's last section, so it grows in place.
    let out = build(&s).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    assert_eq!(pe.sections[1].name, ".sbat");
    assert!(pe.section_payload(".sbat").unwrap().unwrap().len() > 1000);
    assert_eq!(pe.sections_named(".sbat").count(), 1);
}

#[test]
fn reads_the_kernel_release_from_the_setup_header() {
    let mut k = vec![0u8; 0x400];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    k[0x300..0x320].copy_from_slice(b"6.1.0-56-amd64 (debian@x) #1\0\0\0\0");
    assert_eq!(kernel_release(&k).as_deref(), Some("6.1.0-56-amd64"));
    assert_eq!(kernel_release(&k[..0x300]), None);
    assert_eq!(kernel_release(b"MZ"), None);
}

#[test]
fn addon_needs_a_payload_and_gets_the_addon_sbat() {
    let stub = tiny_stub();
    let s = BuildSpec {
        stub: &stub,
        cmdline: Some(b"debug"),
        ..Default::default()
    };
    let out = build(&s).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    let sbat = pe.section_payload(".sbat").unwrap().unwrap();
    assert!(String::from_utf8_lossy(sbat).contains("uki-addon,1"));
    assert!(!String::from_utf8_lossy(sbat).contains("sbat,1,\n"));
    let s = BuildSpec {
        stub: &stub,
        os_release: Some(b"ID=x"),
        ..Default::default()
    };
    assert!(build(&s).is_err());
}

#[test]
fn profiles_follow_the_base_and_override_it_when_measured() {
    let stub = tiny_stub();
    let mut s = spec(&stub, b"K");
    s.profiles = vec![
        ProfileSpec {
            text: b"ID=a",
            sections: vec![],
        },
        ProfileSpec {
            text: b"ID=b",
            sections: vec![NamedPart {
                name: ".cmdline",
                data: b"rescue",
            }],
        },
    ];
    let p = plan(&s).unwrap();
    let out = p.write(&[]).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    let names: Vec<_> = pe.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names[names.len() - 3..],
        [".profile", ".profile", ".cmdline"]
    );
    let m = p.measured_parts(Some(1)).unwrap();
    let cmd = m.iter().find(|(n, _)| *n == ".cmdline").unwrap();
    assert_eq!(cmd.1, vec![&b"rescue"[..]]);
    assert!(p.measured_parts(Some(2)).is_err());
}

#[test]
fn an_empty_section_inside_a_moved_sbat_points_where_it_was_cut() {
    // .sbat at 0x400..0xc00 is followed in memory by an empty section whose
    // PointerToRawData (0x600) lies inside it and below its size: the .sbat moves to
    // the end, its bytes are cut, and the empty section must not underflow.
    let mut stub = tiny_stub();
    stub.resize(0x1000, 0);
    stub[0x86..0x88].copy_from_slice(&3u16.to_le_bytes());
    let sbat = 0x98 + 240 + 40;
    stub[sbat + 16..sbat + 20].copy_from_slice(&0x800u32.to_le_bytes());
    let e = sbat + 40;
    stub[e..e + 8].copy_from_slice(b".empty\0\0");
    stub[e + 8..e + 12].copy_from_slice(&0x10u32.to_le_bytes());
    stub[e + 12..e + 16].copy_from_slice(&0x3000u32.to_le_bytes());
    stub[e + 20..e + 24].copy_from_slice(&0x600u32.to_le_bytes());
    stub[e + 36..e + 40].copy_from_slice(&0x4000_0040u32.to_le_bytes());
    let long = format!("sbat,1,x\n{}\n", "a,1,b,c,d,e".repeat(100));
    let mut s = spec(&stub, b"K");
    s.sbat = vec![long.as_bytes()];
    let out = build(&s).unwrap();
    let pe = PeFile::parse(&out).unwrap();
    let names: Vec<_> = pe.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.first(), Some(&".text"));
    assert_eq!(names.last(), Some(&".sbat"));
    let text = pe.section(".text").unwrap();
    let empty = pe.section(".empty").unwrap();
    assert_eq!(u64::from(empty.pointer_to_raw_data), text.raw_end());
    assert_eq!(pe.section_payload(".text").unwrap().unwrap(), b"hello");
}

#[test]
fn a_kernel_for_another_machine_than_the_stubs_is_refused() {
    let stub = tiny_stub();
    // A PE "kernel" for arm64 (0xaa64) under the x86-64 stub.
    let mut kernel = tiny_stub();
    kernel[0x84..0x86].copy_from_slice(&0xaa64u16.to_le_bytes());
    let err = build(&spec(&stub, &kernel)).unwrap_err().to_string();
    assert!(
        err.contains("0xaa64 (arm64)") && err.contains("0x8664 (x86_64)"),
        "{err}"
    );
    // The same machine, or a kernel that is not a PE, builds.
    assert!(build(&spec(&stub, &tiny_stub())).is_ok());
    assert!(build(&spec(&stub, b"KERNEL")).is_ok());
}
