//! XFS volumes: ukitool-core's writer judged by outside referees, and its reader
//! checked against volumes mkfs.xfs makes.
//!
//! Referees on every volume the writer makes: `xfs_repair -n` (exit 0), `xfs_db -r`
//! (every CRC of the AG headers and btree roots, inodes and directory blocks reads
//! "correct"), the kernel (`mount -t xfs -o ro` on a loop device: every file reads
//! back byte-identical) and `grub-fstest` (lists every directory, compares files).
//! The kernel and loop-device checks need root; without it they are skipped (and
//! say so), the rest still runs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ukitool_core::disk::xfs::{self, ItemKind, XfsItem, XfsOptions};
use ukitool_core::guid::Guid;
use ukitool_tests::{fixture_bytes, run, tmpdir};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

// ---------------------------------------------------------------------------------------
// The expected tree

/// What a path holds, as the referees should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

type Tree = BTreeMap<String, Want>;

/// The tree `items` describe, parents included.
fn expected(items: &[XfsItem<'_>]) -> Tree {
    let mut t = Tree::new();
    for i in items {
        let path = i.path.trim_matches('/').to_string();
        let mut prefix = String::new();
        for c in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |x| x.1)
        {
            prefix = if prefix.is_empty() {
                c.to_string()
            } else {
                format!("{prefix}/{c}")
            };
            t.insert(prefix.clone(), Want::Dir);
        }
        let w = match &i.kind {
            ItemKind::Directory => Want::Dir,
            ItemKind::File(d) => Want::File(d.to_vec()),
            ItemKind::Symlink(s) => Want::Symlink(s.clone()),
        };
        if !path.is_empty() {
            t.insert(path, w);
        }
    }
    t
}

/// Deterministic bytes: SplitMix64 of a counter, so large files are not one pattern.
fn generated(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    for i in 0..len.div_ceil(8) as u64 {
        let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        v.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn opts(size: u64, sector: u64) -> XfsOptions {
    XfsOptions {
        size,
        sector_size: sector,
        label: "BOOT".into(),
        uuid: Guid::parse("24c73076-4092-85dd-9d98-686a2dbf6d81").unwrap(),
        timestamp: 1_735_787_046,
        ag_count: None,
    }
}

fn file<'a>(path: &str, data: &'a [u8]) -> XfsItem<'a> {
    XfsItem::file(path, data)
}

fn symlink(path: &str, target: &str) -> XfsItem<'static> {
    XfsItem {
        path: path.into(),
        mode: None,
        kind: ItemKind::Symlink(target.into()),
    }
}

fn dir(path: &str, mode: u16) -> XfsItem<'static> {
    XfsItem {
        path: path.into(),
        mode: Some(mode),
        kind: ItemKind::Directory,
    }
}

/// Talos's BOOT tree plus the corner cases: empty and odd-sized files, short and
/// long (remote) symlinks, an empty directory and a tree 20 levels deep.
fn sample<'a>(kernel: &'a [u8], initrd: &'a [u8], small: &'a [Vec<u8>]) -> Vec<XfsItem<'a>> {
    let mut items = vec![
        file("A/vmlinuz", kernel),
        file("A/initramfs.xz", initrd),
        dir("grub", 0o700),
        XfsItem {
            path: "grub/grub.cfg".into(),
            mode: Some(0o600),
            kind: ItemKind::File(Cow::Borrowed(b"set default=\"A - Talos\"\n")),
        },
        symlink("A/current", "vmlinuz"),
        symlink("long-link", &"x/".repeat(250)),
        dir("empty", 0o755),
    ];
    for (k, d) in small.iter().enumerate() {
        items.push(file(&format!("sizes/f{k}-{}", d.len()), d));
    }
    let deep: Vec<String> = (1..=20).map(|i| format!("d{i}")).collect();
    items.push(XfsItem::file(
        format!("deep/{}/leaf.txt", deep.join("/")),
        &b"bottom\n"[..],
    ));
    items
}

fn small_files() -> Vec<Vec<u8>> {
    [0usize, 1, 511, 4095, 4096, 4097, 65536, 1_000_001]
        .iter()
        .map(|&n| generated(n, n as u64))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Writing a volume and running the referees

fn write_plan(plan: &xfs::XfsPlan<'_>, path: &Path) {
    let f = File::create(path).unwrap();
    f.set_len(plan.size).unwrap();
    for (off, data) in &plan.extents {
        f.write_all_at(data, *off).unwrap();
    }
}

/// Is `tool` installed? (It runs: xfsprogs and grub-fstest all take `-V`.)
fn have(tool: &str) -> bool {
    let quiet = || Stdio::null();
    Command::new(tool)
        .arg("-V")
        .stdout(quiet())
        .stderr(quiet())
        .status()
        .is_ok()
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `xfs_repair -n`: exit 0 and no "would" (a change it would make).
fn repair(img: &Path) {
    let out = run(Command::new("xfs_repair").arg("-n").arg("-f").arg(img));
    let t = text(&out);
    assert!(
        out.status.success(),
        "xfs_repair -n {}:\n{t}",
        img.display()
    );
    assert!(
        !t.contains("would"),
        "xfs_repair -n {}:\n{t}",
        img.display()
    );
}

fn xfs_db(img: &Path, cmds: &[String]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r").arg("-f");
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    let out = run(c.arg(img));
    assert!(out.status.success(), "xfs_db: {}", text(&out));
    text(&out)
}

/// Every CRC xfs_db prints reads "(correct)"; returns how many it checked.
fn all_crcs_correct(out: &str, what: &str) -> usize {
    let crcs: Vec<&str> = out.lines().filter(|l| l.contains("crc = ")).collect();
    let bad: Vec<&&str> = crcs.iter().filter(|l| !l.ends_with("(correct)")).collect();
    assert!(bad.is_empty(), "{what}: bad CRCs {bad:?}");
    assert!(
        out.lines().all(|l| !l.contains("Metadata CRC error")),
        "{what}: {out}"
    );
    crcs.len()
}

/// xfs_db's CRC verdict on the headers of every AG, the btree roots, each inode in
/// `inodes` and every block of each directory in `dirs`.
fn db_crcs(img: &Path, ag_count: u32, inodes: &[u64], dirs: &[u64]) {
    let mut cmds = Vec::new();
    for ag in 0..ag_count {
        for h in ["sb", "agf", "agi", "agfl"] {
            cmds.push(format!("{h} {ag}"));
            cmds.push("print crc".into());
        }
        for (h, root) in [("agf", "bnoroot"), ("agf", "cntroot"), ("agi", "root")] {
            cmds.push(format!("{h} {ag}"));
            cmds.push(format!("addr {root}"));
            cmds.push("print crc".into());
        }
    }
    let n = all_crcs_correct(&xfs_db(img, &cmds), "AG headers");
    assert_eq!(n, ag_count as usize * 7);
    for chunk in inodes.chunks(2000) {
        let cmds: Vec<String> = chunk
            .iter()
            .flat_map(|i| [format!("inode {i}"), "print v3.crc".into()])
            .collect();
        let n = all_crcs_correct(&xfs_db(img, &cmds), "inodes");
        assert_eq!(n, chunk.len());
    }
    for &d in dirs {
        let map = xfs_db(img, &[format!("inode {d}"), "bmap".into()]);
        let mut cmds = vec![format!("inode {d}")];
        for l in map.lines().filter(|l| l.starts_with("data offset")) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (off, count): (u64, u64) = (f[2].parse().unwrap(), f[7].parse().unwrap());
            for b in off..off + count {
                cmds.push(format!("dblock {b}"));
                cmds.push("print".into());
            }
        }
        if cmds.len() > 1 {
            let n = all_crcs_correct(&xfs_db(img, &cmds), "directory blocks");
            assert_eq!(n, (cmds.len() - 1) / 2, "directory {d}");
        }
    }
}

/// A loop device, detached on drop.
struct Loop(String);

impl Loop {
    fn attach(img: &Path, sector: u64) -> Loop {
        let out = run(Command::new("losetup")
            .args(["-f", "--show", "-b", &sector.to_string()])
            .arg(img));
        assert!(out.status.success(), "losetup: {}", text(&out));
        Loop(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A read-only mount, unmounted on drop (before its loop device is detached).
struct Mount {
    dir: PathBuf,
    _dev: Loop,
}

impl Mount {
    fn new(img: &Path, sector: u64, at: &Path) -> Mount {
        let dev = Loop::attach(img, sector);
        fs::create_dir_all(at).unwrap();
        // nouuid: the writer's volumes share one UUID, and tests run in parallel;
        // XFS refuses a second mount of a UUID already mounted.
        let out = run(Command::new("mount")
            .args(["-t", "xfs", "-o", "ro,nouuid", &dev.0])
            .arg(at));
        assert!(
            out.status.success(),
            "mount {}: {}",
            img.display(),
            text(&out)
        );
        Mount {
            dir: at.to_path_buf(),
            _dev: dev,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // umount can fail for a moment (EBUSY) while something else on this shared
        // machine looks into the directory: retry, then detach it lazily rather than
        // leave a mount behind.
        for _ in 0..10 {
            let quiet = Command::new("umount")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status();
            if quiet.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// What a mounted tree holds: every path with its kind (file bytes left empty) and
/// permission bits, and the inode numbers of everything and of the directories.
struct Mounted {
    tree: BTreeMap<String, (Want, u32)>,
    inodes: Vec<u64>,
    dirs: Vec<u64>,
}

fn walk(root: &Path) -> Mounted {
    let mut out = BTreeMap::new();
    let mut inodes = vec![fs::metadata(root).unwrap().ino()];
    let mut dirs = inodes.clone();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            inodes.push(m.ino());
            let mode = m.permissions().mode() & 0o7777;
            let w = if m.file_type().is_symlink() {
                Want::Symlink(fs::read_link(&p).unwrap().to_string_lossy().into_owned())
            } else if m.is_dir() {
                dirs.push(m.ino());
                stack.push(p.clone());
                Want::Dir
            } else {
                Want::File(Vec::new())
            };
            out.insert(rel, (w, mode));
        }
    }
    Mounted {
        tree: out,
        inodes,
        dirs,
    }
}

/// The kernel's view: same paths, kinds, symlink targets and file bytes; returns
/// the inode numbers of everything and of the directories for xfs_db.
fn kernel_agrees(
    img: &Path,
    sector: u64,
    want: &Tree,
    modes: &BTreeMap<String, u32>,
    scratch: &Path,
) -> Option<(Vec<u64>, Vec<u64>)> {
    if !is_root() || !Path::new("/dev/loop-control").exists() {
        eprintln!("SKIP: the kernel check needs root and loop devices");
        return None;
    }
    let m = Mount::new(img, sector, &scratch.join("mnt"));
    let Mounted {
        tree: got,
        inodes,
        dirs,
    } = walk(&m.dir);
    let got_paths: Vec<&String> = got.keys().collect();
    let want_paths: Vec<&String> = want.keys().collect();
    assert_eq!(got_paths, want_paths, "mounted tree of {}", img.display());
    for (p, w) in want {
        let (g, mode) = &got[p];
        let default = match w {
            Want::Dir => 0o755,
            Want::File(_) => 0o644,
            Want::Symlink(_) => 0o777,
        };
        assert_eq!(
            *mode,
            modes.get(p).copied().unwrap_or(default),
            "mode of {p}"
        );
        match w {
            Want::File(data) => {
                let bytes = fs::read(m.dir.join(p)).unwrap();
                assert!(bytes == *data, "{p}: the kernel reads other bytes");
            }
            other => assert_eq!(g, other, "{p}"),
        }
    }
    Some((inodes, dirs))
}

/// GRUB's view: each directory lists the same names (directories with a trailing
/// '/'), and the files in `cmp` compare equal.
fn grub_agrees(img: &Path, want: &Tree, cmp: &dyn Fn(&str) -> bool, scratch: &Path) {
    if !have("grub-fstest") {
        eprintln!("SKIP: grub-fstest is not installed");
        return;
    }
    let mut listing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    listing.insert(String::new(), Vec::new());
    for (p, w) in want {
        let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
        let shown = if *w == Want::Dir {
            format!("{name}/")
        } else {
            name.to_string()
        };
        listing.entry(parent.to_string()).or_default().push(shown);
        if *w == Want::Dir {
            listing.entry(p.clone()).or_default();
        }
    }
    for (d, mut names) in listing {
        let out = run(Command::new("grub-fstest")
            .arg(img)
            .arg("ls")
            .arg(format!("/{d}")));
        assert!(out.status.success(), "grub-fstest ls /{d}: {}", text(&out));
        let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        got.sort();
        names.sort();
        assert_eq!(got, names, "grub-fstest ls /{d}");
    }
    let local = scratch.join("grub-cmp");
    for (p, w) in want {
        let Want::File(data) = w else { continue };
        if !cmp(p) {
            continue;
        }
        fs::write(&local, data).unwrap();
        let out = run(Command::new("grub-fstest")
            .arg(img)
            .arg("cmp")
            .arg(format!("/{p}"))
            .arg(&local));
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "grub-fstest cmp /{p}: {}",
            text(&out)
        );
    }
}

/// Our own reader: the same tree, the same bytes.
fn reader_agrees(img: &[u8], want: &Tree) {
    let v = xfs::read_volume(img).unwrap();
    assert_eq!(v.problems, Vec::<String>::new());
    let got: Vec<&str> = v.entries.iter().map(|e| e.path.as_str()).collect();
    let want_paths: Vec<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(got, want_paths);
    for e in &v.entries {
        match &want[&e.path] {
            Want::Dir => assert_eq!(e.kind, xfs::FileType::Directory, "{}", e.path),
            Want::File(d) => {
                assert_eq!(e.kind, xfs::FileType::File, "{}", e.path);
                let bytes = v.file_bytes(img, e).unwrap();
                assert!(
                    bytes.as_ref() == d.as_slice(),
                    "{}: our reader reads other bytes",
                    e.path
                );
            }
            Want::Symlink(t) => assert_eq!(e.target.as_deref(), Some(t.as_str()), "{}", e.path),
        }
    }
}

/// Write `items` with `o` and run every referee; `cmp` picks the files GRUB
/// compares. Returns the image path (inside `scratch`).
fn check(
    o: &XfsOptions,
    items: Vec<XfsItem<'_>>,
    scratch: &Path,
    cmp: &dyn Fn(&str) -> bool,
) -> PathBuf {
    let want = expected(&items);
    let modes: BTreeMap<String, u32> = items
        .iter()
        .filter_map(|i| Some((i.path.clone(), u32::from(i.mode?))))
        .collect();
    let plan = xfs::format(o, items).unwrap();
    let img = scratch.join("volume.img");
    write_plan(&plan, &img);
    repair(&img);
    if let Some((inodes, dirs)) = kernel_agrees(&img, o.sector_size, &want, &modes, scratch) {
        db_crcs(&img, plan.ag_count, &inodes, &dirs);
    }
    grub_agrees(&img, &want, cmp, scratch);
    img
}

fn map_file(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()
}

// ---------------------------------------------------------------------------------------
// Writer tests

#[test]
fn empty_volumes_at_both_sector_sizes() {
    for sector in [512, 4096] {
        let dir = tmpdir();
        let img = check(&opts(300 * MIB, sector), Vec::new(), &dir, &|_| true);
        reader_agrees(&map_file(&img), &Tree::new());
    }
}

#[test]
fn talos_tree_with_corner_cases_at_both_sector_sizes() {
    let kernel = fixture_bytes("vmlinuz");
    let initrd = fixture_bytes("initrd.cpio.gz");
    let small = small_files();
    for sector in [512, 4096] {
        let dir = tmpdir();
        let items = sample(&kernel, &initrd, &small);
        let want = expected(&items);
        let img = check(&opts(300 * MIB, sector), items, &dir, &|_| true);
        reader_agrees(&map_file(&img), &want);
    }
}

/// Children of a directory named so that shortform, block, leaf and node forms all
/// appear: 10, 40, 300 and 5,000 entries, with files and subdirectories mixed.
fn wide_dirs(data: &[u8]) -> Vec<XfsItem<'_>> {
    let mut items = Vec::new();
    for n in [10usize, 40, 300, 5000] {
        for i in 0..n {
            let path = format!("w{n}/entry-{i:05}-{}", "n".repeat(i % 40));
            if i % 7 == 0 {
                items.push(dir(&path, 0o755));
            } else {
                items.push(XfsItem::file(path, &data[..i % data.len()]));
            }
        }
    }
    items
}

#[test]
fn directories_of_every_form_at_both_sector_sizes() {
    let data = generated(10_000, 7);
    for sector in [512, 4096] {
        let dir = tmpdir();
        let items = wide_dirs(&data);
        let want = expected(&items);
        // GRUB lists every directory; it compares a sample of the files.
        let img = check(&opts(300 * MIB, sector), items, &dir, &|p| {
            p.ends_with("0-") || p.contains("w10/")
        });
        reader_agrees(&map_file(&img), &want);
    }
}

#[test]
fn large_files_in_a_sparse_64_gib_volume_at_both_sector_sizes() {
    let big = generated(110 * MIB as usize, 110);
    let kernel = fixture_bytes("vmlinuz");
    let initrd = fixture_bytes("initrd.cpio.gz");
    for sector in [4096, 512] {
        let dir = tmpdir();
        let items = vec![
            file("A/vmlinuz", &kernel),
            file("A/initramfs.xz", &initrd),
            file("big/110mib.bin", &big),
        ];
        let want = expected(&items);
        let img = check(&opts(64 * GIB, sector), items, &dir, &|_| true);
        let map = Mapped::new(&img);
        reader_agrees(map.bytes(), &want);
    }
}

#[test]
fn a_file_in_more_extents_than_its_inode_holds_gets_a_block_map() {
    // 64 AGs of 16 MiB: a 350 MiB file spans 22 of them, one extent each.
    let big = generated(350 * MIB as usize, 350);
    let dir = tmpdir();
    let o = XfsOptions {
        ag_count: Some(64),
        ..opts(GIB, 512)
    };
    let items = vec![file("mapped.bin", &big), file("small.txt", b"small\n")];
    let want = expected(&items);
    let plan = xfs::format(&o, items.clone()).unwrap();
    assert!(plan.files[0].runs.len() > 21);
    // GRUB misreads block-mapped forks (docs/xfs.md): it compares only the small file.
    let img = check(&o, items, &dir, &|p| p == "small.txt");
    reader_agrees(&map_file(&img), &want);
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let small = small_files();
    let kernel = fixture_bytes("vmlinuz");
    let a = xfs::format(&opts(300 * MIB, 512), sample(&kernel, &kernel, &small)).unwrap();
    let b = xfs::format(&opts(300 * MIB, 512), sample(&kernel, &kernel, &small)).unwrap();
    assert_eq!(a.extents, b.extents);
    // Input order does not matter: children are sorted.
    let mut rev = sample(&kernel, &kernel, &small);
    rev.reverse();
    let c = xfs::format(&opts(300 * MIB, 512), rev).unwrap();
    assert_eq!(a.extents, c.extents);
}

#[test]
fn metadata_stays_small_for_a_2000_mib_boot_volume() {
    let big = generated(110 * MIB as usize, 3);
    let plan = xfs::format(&opts(2000 * MIB, 512), vec![file("A/initramfs.xz", &big)]).unwrap();
    let owned: usize = plan
        .extents
        .iter()
        .filter(|(_, d)| matches!(d, Cow::Owned(_)))
        .map(|(_, d)| d.len())
        .sum();
    eprintln!("{owned} bytes of metadata buffers for a 2000 MiB volume");
    assert!(
        owned < 32 * MIB as usize,
        "{owned} bytes of metadata buffers"
    );
    // The file is one extent, borrowed.
    assert_eq!(plan.files[0].runs.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Reader tests: volumes mkfs.xfs makes, filled through the kernel

/// A file mapped read-only, so a reader test does not copy a whole volume.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn new(path: &Path) -> Mapped {
        let f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        // SAFETY: a private read-only mapping of a file nobody writes while it lives
        // (the tests unmount it first); unmapped on drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap {}", path.display());
        Mapped { ptr, len }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A read-write mount for filling a volume (unmounted on drop).
fn mount_rw(img: &Path, at: &Path) -> Mount {
    let dev = Loop::attach(img, 512);
    fs::create_dir_all(at).unwrap();
    let out = run(Command::new("mount").args(["-t", "xfs", &dev.0]).arg(at));
    assert!(out.status.success(), "mount: {}", text(&out));
    Mount {
        dir: at.to_path_buf(),
        _dev: dev,
    }
}

/// Fill a mounted volume: the sample tree, two files written in interleaved synced
/// chunks (hundreds of extents each: a block map), a file with holes, and a
/// directory whose blocks interleave with its files' data (many extents).
fn populate(root: &Path, kernel: &[u8], initrd: &[u8], small: &[Vec<u8>]) {
    for item in sample(kernel, initrd, small) {
        let p = root.join(&item.path);
        match item.kind {
            ItemKind::Directory => fs::create_dir_all(&p).unwrap(),
            ItemKind::File(d) => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, &d).unwrap();
            }
            ItemKind::Symlink(t) => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(t, &p).unwrap();
            }
        }
        if let Some(m) = item.mode {
            fs::set_permissions(&p, fs::Permissions::from_mode(u32::from(m))).unwrap();
        }
    }
    fs::create_dir_all(root.join("frag")).unwrap();
    let a = File::create(root.join("frag/a.bin")).unwrap();
    let b = File::create(root.join("frag/b.bin")).unwrap();
    for i in 0..300u64 {
        for (f, seed) in [(&a, 1), (&b, 2)] {
            f.write_all_at(&generated(4096, i * 2 + seed), i * 4096)
                .unwrap();
            f.sync_data().unwrap();
        }
    }
    let h = File::create(root.join("frag/holes.bin")).unwrap();
    for i in 0..40u64 {
        h.write_all_at(&generated(5000, i), i * 65536).unwrap();
        h.sync_data().unwrap();
    }
    h.set_len(41 * 65536 + 123).unwrap();
    fs::create_dir_all(root.join("spread")).unwrap();
    for i in 0..2000 {
        let p = root.join(format!("spread/file-with-a-long-name-{i:05}"));
        fs::write(&p, generated(100 + i % 3000, i as u64)).unwrap();
        if i % 25 == 0 {
            File::open(root.join("spread")).unwrap().sync_all().unwrap();
            File::open(&p).unwrap().sync_all().unwrap();
        }
    }
}

/// The tree of a mounted volume as the referees' `Tree`, with file bytes.
fn mounted_tree(root: &Path) -> Tree {
    walk(root)
        .tree
        .into_iter()
        .map(|(p, (w, _))| {
            let w = match w {
                Want::File(_) => Want::File(fs::read(root.join(&p)).unwrap()),
                other => other,
            };
            (p, w)
        })
        .collect()
}

/// The data fork format xfs_db reports for `path`.
fn fork_format(img: &Path, path: &str) -> String {
    let out = xfs_db(img, &[format!("path /{path}"), "print core.format".into()]);
    out.trim()
        .rsplit('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn mkfs(img: &Path, size: u64, args: &[&str]) {
    File::create(img).unwrap().set_len(size).unwrap();
    let out = run(Command::new("mkfs.xfs")
        .args(["-q", "-f"])
        .args(args)
        .arg(img));
    assert!(out.status.success(), "mkfs.xfs {args:?}: {}", text(&out));
}

#[test]
fn reader_lists_and_extracts_what_the_kernel_shows_on_mkfs_volumes() {
    if !is_root() || !have("mkfs.xfs") {
        eprintln!("SKIP: needs root (loop mounts) and mkfs.xfs");
        return;
    }
    let kernel = fixture_bytes("vmlinuz");
    let initrd = fixture_bytes("initrd.cpio.gz");
    let small = small_files();
    let variants: &[&[&str]] = &[
        &[],
        &["-m", "reflink=0,rmapbt=1"],
        &["-i", "sparse=0"],
        &["-n", "size=8192"],
        &["-i", "nrext64=1"],
        &["-s", "size=4096"],
    ];
    let mut btree_dirs = 0;
    for args in variants {
        let dir = tmpdir();
        let img = dir.join("mkfs.img");
        mkfs(&img, 512 * MIB, args);
        let want = {
            let m = mount_rw(&img, &dir.join("rw"));
            populate(&m.dir, &kernel, &initrd, &small);
            mounted_tree(&m.dir)
        };
        let map = Mapped::new(&img);
        let v = xfs::read_volume(map.bytes()).unwrap();
        assert_eq!(v.problems, Vec::<String>::new(), "{args:?}");
        reader_agrees(map.bytes(), &want);
        assert_eq!(fork_format(&img, "frag/a.bin"), "3 (btree)", "{args:?}");
        let holes = v.find("frag/holes.bin").unwrap();
        assert!(holes.extents.iter().map(|e| e.blocks).sum::<u64>() * 4096 < holes.size);
        let spread = fork_format(&img, "spread");
        btree_dirs += usize::from(spread == "3 (btree)");
        eprintln!("{args:?}: features {:?}, spread/ is {spread}", v.features);
    }
    // The interleaved directory ends up block-mapped: the reader read btree dirs.
    assert!(btree_dirs > 0);
}

/// A mkfs.xfs protofile for `tree` (whose files are in `src`): directories list
/// their entries and end with `$`.
fn protofile(tree: &Tree, src: &Path) -> String {
    fn dir(tree: &Tree, prefix: &str, src: &Path, out: &mut String) {
        let kids = tree.iter().filter(|(p, _)| match p.rsplit_once('/') {
            Some((parent, _)) => parent == prefix,
            None => prefix.is_empty(),
        });
        for (p, w) in kids {
            let name = p.rsplit('/').next().unwrap();
            match w {
                Want::Dir => {
                    out.push_str(&format!("{name} d--755 0 0\n"));
                    dir(tree, p, src, out);
                    out.push_str("$\n");
                }
                Want::File(_) => {
                    out.push_str(&format!("{name} ---644 0 0 {}\n", src.join(p).display()))
                }
                Want::Symlink(t) => out.push_str(&format!("{name} l--777 0 0 {t}\n")),
            }
        }
    }
    let mut out = String::from("/dev/null\n0 0\nd--755 0 0\n");
    dir(tree, "", src, &mut out);
    out.push_str("$\n");
    out
}

#[test]
fn reader_reads_a_protofile_volume_with_a_5000_entry_directory() {
    if !have("mkfs.xfs") {
        eprintln!("SKIP: mkfs.xfs is not installed");
        return;
    }
    let data = generated(10_000, 9);
    let kernel = fixture_bytes("vmlinuz");
    let mut items = wide_dirs(&data);
    items.push(file("A/vmlinuz", &kernel));
    items.push(symlink("A/current", "vmlinuz"));
    let want = expected(&items);
    let dir = tmpdir();
    let src = dir.join("src");
    for (p, w) in &want {
        if let Want::File(d) = w {
            fs::create_dir_all(src.join(p).parent().unwrap()).unwrap();
            fs::write(src.join(p), d).unwrap();
        }
    }
    let proto = dir.join("proto");
    fs::write(&proto, protofile(&want, &src)).unwrap();
    let img = dir.join("proto.img");
    mkfs(
        &img,
        512 * MIB,
        &["-n", "ftype=1", "-L", "BOOT", "-p", proto.to_str().unwrap()],
    );
    let map = Mapped::new(&img);
    reader_agrees(map.bytes(), &want);
    if let Some((inodes, _)) = kernel_agrees(&img, 512, &want, &BTreeMap::new(), &dir) {
        assert!(inodes.len() > 5000);
    }
}
