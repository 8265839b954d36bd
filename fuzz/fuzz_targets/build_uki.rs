//! The build path with fuzzed section inputs: the real systemd stub (or, on a flag,
//! fuzzed stub bytes) plus fuzzed kernel, initrd, cmdline, os-release, uname, splash,
//! SBAT, extra sections and a profile. Whatever `build` returns must parse as a PE.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ukitool_core::build::{build, BuildSpec, NamedPart, ProfileSpec};
use ukitool_core::pe::PeFile;

fn stub() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        let here = env!("CARGO_MANIFEST_DIR");
        [
            format!("{here}/../tests/fixtures/out/linuxx64.efi.stub"),
            "/usr/lib/systemd/boot/efi/linuxx64.efi.stub".to_string(),
        ]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("linuxx64.efi.stub: apt-get install systemd-boot-efi")
    })
}

fn opt<'a>(u: &mut Unstructured<'a>) -> Result<Option<&'a [u8]>> {
    Ok(if u.arbitrary::<bool>()? {
        Some(u.arbitrary::<&[u8]>()?)
    } else {
        None
    })
}

fn spec(mut u: Unstructured<'_>) -> Result<BuildSpec<'_>> {
    let u = &mut u;
    let fuzzed_stub = u.arbitrary::<u8>()? == 0;
    let mut s = BuildSpec {
        stub: stub(),
        linux: opt(u)?,
        initrds: vec![u.arbitrary()?, u.arbitrary()?],
        ucode: opt(u)?,
        cmdline: opt(u)?,
        os_release: opt(u)?,
        uname: opt(u)?,
        splash: opt(u)?,
        sbat: vec![u.arbitrary()?],
        sections: vec![NamedPart {
            name: u.arbitrary()?,
            data: u.arbitrary()?,
        }],
        timestamp: u.arbitrary()?,
        ..BuildSpec::default()
    };
    if u.arbitrary::<bool>()? {
        s.profiles.push(ProfileSpec {
            text: u.arbitrary()?,
            sections: vec![NamedPart {
                name: ".cmdline",
                data: u.arbitrary()?,
            }],
        });
    }
    if fuzzed_stub {
        let n = u.len();
        s.stub = u.bytes(n)?;
    }
    Ok(s)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = spec(Unstructured::new(data)) {
        if let Ok(out) = build(&s) {
            if let Err(e) = PeFile::parse(&out) {
                panic!("build produced a PE that does not parse: {e}");
            }
        }
    }
});
