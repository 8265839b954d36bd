//! Section tables and metadata sections shaped to make inspect, verify, extract and
//! measure slow or hungry: time and memory bounds.

use ukitool_tests::hostile::bytes::set;
use ukitool_tests::hostile::inputs::snakeoil_trust;
use ukitool_tests::hostile::worst::{
    assert_mem_bound, mini_pe, report, time_pe, timed_rows, Sec, Timed,
};

/// `names`: 0 cycles through UKI names (a .profile every 8th), 1 all .cmdline, 2 half
/// .cmdline in the base, a .profile, half .osrel in profile @0 (no name in common),
/// 3 all .profile.
fn many_sections(n: usize, overlapping: bool, names: u8) -> Vec<u8> {
    const NAMES: [&[u8]; 8] = [
        b".linux",
        b".initrd",
        b".cmdline",
        b".osrel",
        b".sbat",
        b".text",
        b".profile",
        b".uname",
    ];
    let data_at = 0x148 + 40 * n;
    let secs: Vec<Sec> = (0..n)
        .map(|i| Sec {
            name: match names {
                0 => NAMES[i % NAMES.len()],
                2 if i == n / 2 => b".profile",
                2 if i > n / 2 => b".osrel",
                3 => b".profile",
                _ => b".cmdline",
            },
            vsize: if overlapping { 1 << 20 } else { 16 },
            raw: if overlapping { 1 << 20 } else { 16 },
            ptr: (data_at + if overlapping { 0 } else { 16 * i }) as u32,
            ch: 0x4000_0040,
        })
        .collect();
    let tail = if overlapping { 1 << 20 } else { 16 * n };
    let mut d = mini_pe(&secs, tail, None);
    for (i, b) in d[data_at..].iter_mut().enumerate() {
        *b = b"ID=x\nfoo=bar \n"[i % 14];
    }
    d
}

#[test]
fn many_sections_stay_linear() {
    let trust = snakeoil_trust();
    let cases: Vec<(String, (usize, bool, u8))> = [
        (6553, false, 0),
        (65535, false, 0),
        (6553, true, 0),
        (65535, true, 0),
        (6553, false, 1),
        (65535, false, 1),
        (6553, false, 2),
        (65535, false, 2),
        (6553, true, 3),
        (65535, true, 3),
    ]
    .into_iter()
    .map(|(n, overlapping, same)| {
        let name = format!(
            "{n} sections{}{}",
            if overlapping {
                ", all on one 1 MiB payload"
            } else {
                ""
            },
            [
                "",
                ", all named .cmdline",
                ", .cmdline in the base, .osrel in profile @0",
                ", all named .profile"
            ][same as usize]
        );
        (name, (n, overlapping, same))
    })
    .collect();
    // Each input is made when its turn comes: ten tables of up to 65535 sections.
    let rows = timed_rows(cases, move |name, &(n, overlapping, same)| {
        time_pe(name, &many_sections(n, overlapping, same), &trust)
    });
    report(
        "many sections (inspect + verify + extract + measure)",
        &rows,
    );
    assert_mem_bound(&rows, true);
    for pair in rows.chunks(2) {
        println!(
            "  10x the sections took {:.1}x the time",
            pair[1].took.as_secs_f64() / pair[0].took.as_secs_f64().max(1e-6)
        );
    }
}

#[test]
fn claims_do_not_allocate() {
    // 1 KiB files whose headers claim 4 GiB: sections, the certificate table, the
    // symbol table, the data directories.
    let trust = snakeoil_trust();
    let big = u32::MAX;
    let mut cases = Vec::new();
    for name in [
        &b".linux"[..],
        b".cmdline",
        b".osrel",
        b".initrd",
        b".profile",
        b".pcrsig",
        b".sbat",
    ] {
        let secs = [Sec {
            name,
            vsize: big,
            raw: big,
            ptr: 0x200,
            ch: 0x4000_0040,
        }];
        cases.push((
            format!("{} claiming 4 GiB", String::from_utf8_lossy(name)),
            mini_pe(&secs, 1024 - 0x170, None),
        ));
    }
    let secs = [Sec {
        name: b".text",
        vsize: 16,
        raw: 16,
        ptr: 0x200,
        ch: 0x6000_0020,
    }];
    cases.push((
        "certificate table claiming 4 GiB".into(),
        mini_pe(&secs, 1024 - 0x170, Some((0x300, big))),
    ));
    let mut d = mini_pe(&secs, 1024 - 0x170, Some((0x300, 0x100)));
    set(&mut d, 0x300, 4, u64::from(big)); // WIN_CERTIFICATE.dwLength
    set(&mut d, 0x304, 4, 0x0002_0200);
    d[0x308..0x30e].copy_from_slice(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xf0]);
    cases.push(("WIN_CERTIFICATE and DER claiming 4 GiB".into(), d));
    let mut d = mini_pe(&secs, 1024 - 0x170, None);
    set(&mut d, 0x4c, 4, 0x200); // PointerToSymbolTable
    set(&mut d, 0x50, 4, big.into()); // NumberOfSymbols
    set(&mut d, 0x58 + 108, 4, big.into()); // NumberOfRvaAndSizes
    cases.push((
        "symbol table and data directories claiming 4G entries".into(),
        d,
    ));
    let rows: Vec<Timed> = cases
        .iter()
        .map(|(name, d)| time_pe(name, d, &trust))
        .collect();
    report("headers claiming 4 GiB in a 1 KiB file", &rows);
    assert_mem_bound(&rows, true);
}

/// A PE whose sections all hold `payload` (one copy in the file).
fn sections_on(names: &[&'static [u8]], payload: &[u8]) -> Vec<u8> {
    let at = (0x148 + 40 * names.len()) as u32;
    let secs: Vec<Sec> = names
        .iter()
        .map(|&name| Sec {
            name,
            vsize: payload.len() as u32,
            raw: payload.len() as u32,
            ptr: at,
            ch: 0x4000_0040,
        })
        .collect();
    let mut d = mini_pe(&secs, payload.len(), None);
    d[at as usize..].copy_from_slice(payload);
    d
}

#[test]
fn decoded_metadata_stays_linear() {
    // Metadata sections of about 1 MiB shaped to make decoders allocate per byte.
    const MIB: usize = 1 << 20;
    let trust = snakeoil_trust();
    let lines = |f: &dyn Fn(usize) -> String| {
        let mut t = String::new();
        for i in 0.. {
            if t.len() >= MIB {
                break;
            }
            t += &f(i);
        }
        t.into_bytes()
    };
    let json = |head: &str, f: &dyn Fn(usize) -> String, tail: &str| {
        let mut t = head.to_string();
        let mut i = 0;
        while t.len() < MIB {
            if i > 0 {
                t.push(',');
            }
            t += &f(i);
            i += 1;
        }
        t += tail;
        t.into_bytes()
    };
    // .hwids: 4096 entries all naming one string that fills the rest of the section.
    let mut hwids = vec![0u8; 28 * 4097];
    let strings = hwids.len() as u32;
    for e in hwids.chunks_exact_mut(28).take(4096) {
        e[0..4].copy_from_slice(&(1u32 << 28).to_le_bytes());
        e[20..24].copy_from_slice(&strings.to_le_bytes());
        e[24..28].copy_from_slice(&strings.to_le_bytes());
    }
    hwids.resize(MIB - 1, b'x');
    hwids.push(0);
    // .efifw: one header that 65535 sections share.
    let mut efifw = Vec::new();
    for v in [0xfeed_deadu32, 16, 4, 0] {
        efifw.extend_from_slice(&v.to_le_bytes());
    }
    efifw.extend_from_slice(b"fw\0\0");
    // os-release and .profile of distinct keys: the same payload for both.
    let keys = lines(&|i| format!("K{i}=\n"));
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            ".sbat: 1 MiB of 2-byte lines".into(),
            sections_on(
                &[b".sbat"],
                &lines(&|_| {
                    "a
"
                    .into()
                }),
            ),
        ),
        (
            ".osrel: 1 MiB of distinct keys".into(),
            sections_on(&[b".osrel"], &keys),
        ),
        (
            ".profile: 1 MiB of distinct keys".into(),
            sections_on(&[b".profile"], &keys),
        ),
        (
            ".cmdline: 1 MiB of invalid UTF-8".into(),
            sections_on(&[b".cmdline"], &vec![0xff; MIB]),
        ),
        (
            ".hwids: 4096 entries naming one 900 KiB string".into(),
            sections_on(&[b".hwids"], &hwids),
        ),
        (
            ".pcrsig: 1 MiB list of entries".into(),
            sections_on(&[b".pcrsig"], &json("{\"sha256\":[", &|_| "0".into(), "]}")),
        ),
        (
            ".pcrsig: 1 MiB of distinct PCRs".into(),
            sections_on(
                &[b".pcrsig"],
                &json("{\"sha256\":[{\"pcrs\":[", &|i| i.to_string(), "]}]}"),
            ),
        ),
        (
            ".pcrsig: 1 MiB of banks".into(),
            sections_on(&[b".pcrsig"], &json("{", &|i| format!("\"{i}\":0"), "}")),
        ),
        (
            ".pcrsig: 1 MiB of distinct key fingerprints".into(),
            sections_on(
                &[b".pcrsig"],
                &json("{\"sha256\":[", &|i| format!("{{\"pkfp\":\"{i}\"}}"), "]}"),
            ),
        ),
        (
            "65535 .efifw sections on one header".into(),
            sections_on(&vec![&b".efifw"[..]; 65535], &efifw),
        ),
        (
            "65535 empty .profile sections (nothing but the table)".into(),
            sections_on(&vec![&b".profile"[..]; 65535], &[]),
        ),
        (
            "65535 .profile sections on one 1 MiB of keys".into(),
            sections_on(
                &vec![&b".profile"[..]; 65535],
                &lines(&|i| format!("K{i}=\n")),
            ),
        ),
    ];
    let rows = timed_rows(cases, move |name, d| time_pe(name, d, &trust));
    report(
        "decoded metadata (inspect + verify + extract + measure)",
        &rows,
    );
    assert_mem_bound(&rows, true);
}
