//! PEs built in memory, the same on every machine: the inputs of the golden tests.

/// A PE32+ laid out the way a correct builder does (reference "Layout rules"):
/// headers 0x400, FileAlignment 0x200, SectionAlignment 0x1000, fixed timestamp.
pub fn build_pe(sections: &[(&str, Vec<u8>)], dll_characteristics: u16) -> Vec<u8> {
    let fa = 0x200u32;
    let sa = 0x1000u32;
    let headers = 0x400u32;
    let n = sections.len();
    let mut d = vec![0u8; headers as usize];
    let put = |d: &mut Vec<u8>, at: usize, b: &[u8]| d[at..at + b.len()].copy_from_slice(b);
    put(&mut d, 0, b"MZ");
    put(&mut d, 0x3c, &0x40u32.to_le_bytes());
    put(&mut d, 0x40, b"PE\0\0");
    let c = 0x44;
    put(&mut d, c, &0x8664u16.to_le_bytes());
    put(&mut d, c + 2, &(n as u16).to_le_bytes());
    put(&mut d, c + 4, &1_700_000_000u32.to_le_bytes());
    put(&mut d, c + 16, &240u16.to_le_bytes());
    put(&mut d, c + 18, &0x0206u16.to_le_bytes());
    let o = c + 20;
    put(&mut d, o, &0x20bu16.to_le_bytes());
    put(&mut d, o + 16, &sa.to_le_bytes()); // entry point: the first section
    put(&mut d, o + 32, &sa.to_le_bytes());
    put(&mut d, o + 36, &fa.to_le_bytes());
    put(&mut d, o + 60, &headers.to_le_bytes());
    put(&mut d, o + 68, &10u16.to_le_bytes());
    put(&mut d, o + 70, &dll_characteristics.to_le_bytes());
    put(&mut d, o + 108, &16u32.to_le_bytes());
    let up = |v: u32, a: u32| v.div_ceil(a) * a;
    let mut va = sa;
    for (i, (name, data)) in sections.iter().enumerate() {
        let s = o + 240 + i * 40;
        let mut nm = [0u8; 8];
        nm[..name.len()].copy_from_slice(name.as_bytes());
        let off = d.len() as u32;
        let raw = up(data.len() as u32, fa);
        put(&mut d, s, &nm);
        put(&mut d, s + 8, &(data.len() as u32).to_le_bytes());
        put(&mut d, s + 12, &va.to_le_bytes());
        put(&mut d, s + 16, &raw.to_le_bytes());
        put(&mut d, s + 20, &off.to_le_bytes());
        put(&mut d, s + 36, &0x4000_0040u32.to_le_bytes());
        d.extend_from_slice(data);
        d.resize((off + raw) as usize, 0);
        va = up(va + data.len() as u32, sa);
    }
    put(&mut d, o + 56, &va.to_le_bytes());
    d
}

/// A fake bzImage: a PE with the Linux setup header and a version string.
pub fn fake_kernel(nx: bool) -> Vec<u8> {
    let mut k = build_pe(&[(".text", vec![0xc3; 64])], if nx { 0x100 } else { 0 });
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    k[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let v = b"6.1.0-synthetic (ukitool@example.org) #1 SMP\0";
    k[0x300..0x300 + v.len()].copy_from_slice(v);
    k
}

/// A UKI with every metadata section the report prints, and two profiles.
pub fn synthetic_uki() -> Vec<u8> {
    build_pe(
        &[
            (".sdmagic", b"#### LoaderInfo: systemd-stub 999 ####\0".to_vec()),
            (".osrel", b"NAME=\"Synthetic OS\"\nID=synth\nPRETTY_NAME=\"Synthetic OS 1\"\n".to_vec()),
            (".cmdline", b"console=ttyS0 quiet\0".to_vec()),
            (".uname", b"6.1.0-synthetic\n".to_vec()),
            (
                ".sbat",
                b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nsynth,1,Synth,synth,1,https://example.org/\n".to_vec(),
            ),
            (".linux", fake_kernel(true)),
            (".initrd", vec![0x07; 300]),
            (".profile", b"ID=one\nTITLE=\"Profile one\"\n".to_vec()),
            (".cmdline", b"console=ttyS0 one\0".to_vec()),
            (".profile", b"ID=two\nTITLE=\"Profile two\"\n".to_vec()),
        ],
        0x100,
    )
}

/// Everything the lints look for, in one file.
pub fn synthetic_bad() -> Vec<u8> {
    let mut d = build_pe(
        &[
            (".osrel", b"ID=bad\n".to_vec()),
            (".osrel", b"ID=again\n".to_vec()),
            (".cmdline", b"quiet".to_vec()),
            (".linux", fake_kernel(false)),
            (
                ".pcrsig",
                b"{\"sha256\":[{\"pcrs\":[11],\"pkfp\":\"00\",\"pol\":\"00\",\"sig\":\"\"}]}"
                    .to_vec(),
            ),
        ],
        0x100,
    );
    let sec = |i: usize| 0x44 + 20 + 240 + i * 40;
    // .cmdline: VirtualSize larger than its raw data, and a VA back inside .osrel.
    let s = sec(2);
    d[s + 8..s + 12].copy_from_slice(&0x400u32.to_le_bytes());
    d[s + 12..s + 16].copy_from_slice(&0x1004u32.to_le_bytes());
    // A trailing symbol table.
    let at = d.len() as u32;
    d[0x44 + 8..0x44 + 12].copy_from_slice(&at.to_le_bytes());
    d[0x44 + 12..0x44 + 16].copy_from_slice(&2u32.to_le_bytes());
    d.extend_from_slice(&[0u8; 40]);
    d
}

/// A systemd-stub look-alike: code, `.sdmagic` and `.sbat`, enough for `ukitool build`.
pub fn synthetic_stub() -> Vec<u8> {
    build_pe(
        &[
            (".text", vec![0xc3; 16]),
            (".sdmagic", b"#### LoaderInfo: systemd-stub 999 ####\0".to_vec()),
            (
                ".sbat",
                b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nsynth,1,Synth,synth,1,https://example.org/\n".to_vec(),
            ),
        ],
        0x100,
    )
}
