//! Shared helpers for ukitool's integration tests (`tests/tests/*.rs`); docs/testing.md
//! describes the whole set-up.
//!
//! - [`fixture`]: a file from `tests/fixtures/out/`, made by `tests/fixtures/generate.sh`
//!   on first use (once per process, under a file lock so parallel test binaries don't race).
//! - [`ukitool`]: a `Command` for the CLI built from this workspace.
//! - [`run`], [`run_ok`], [`run_logged`]: run a `Command`, panicking with its output;
//!   [`assert_one_line_error`] for the refusals.
//! - [`sha256_hex`], [`tmpdir`], [`noise`].
//! - [`qemu`]: the QEMU harness, [`boot_kernel`] (`-kernel/-initrd/-append`), [`boot_disk`]
//!   (OVMF, plain or Secure Boot with the snakeoil keys), [`esp_disk`] (a GPT disk whose
//!   ESP holds one EFI binary as the removable-media boot path) and [`BootLog`], which
//!   finds the line the fixtures' busybox `/init` prints:
//!   `UKITOOL-MARKER booted secureboot=<enabled|disabled|unknown> cmdline=<...>`.
//! - [`blockdev`]: loop devices and mounts that are undone on drop.
//! - [`tools`]: outside referees (objdump, objcopy) and the fixture UKI's build arguments.
//! - [`synthetic`]: PEs built in memory (a stub, a kernel, UKIs) for golden outputs.
//! - [`golden`]: golden files with the `UPDATE_GOLDEN=1` switch.
//! - [`der`]: DER elements, to take signatures apart and build hostile ones.
//! - [`hostile`]: the machinery of the robustness tests.
//!
//! Environment knobs: `UKITOOL_FIXTURES` (fixture directory), `UKITOOL_BIN` (CLI binary),
//! `UKITOOL_QEMU_ACCEL` (`tcg` by default: KVM cannot run OVMF's SMM build on the CI hosts),
//! `UKITOOL_BOOT_TIMEOUT` (seconds per boot, default 120), `UKITOOL_QEMU_JOBS` (concurrent
//! VMs across all test processes, default 1), `UKITOOL_OVMF_DIR` and `UKITOOL_AAVMF_DIR`
//! (firmware images), `UKITOOL_KEEP_TMP` (keep temporary dirs).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub mod blockdev;
pub mod der;
pub mod golden;
pub mod hostile;
pub mod qemu;
pub mod synthetic;
pub mod tools;

pub use qemu::{
    boot_disk, boot_disk_secure_vars, boot_disk_with, boot_kernel, boot_kernel_with, dump_virt_dtb,
    esp_disk, setup_mode_vars, BootEnd, BootLog, BootOptions, Firmware, MARKER,
};

/// The workspace root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The fixture directory: `$UKITOOL_FIXTURES` or `tests/fixtures/out`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("UKITOOL_FIXTURES") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("tests/fixtures/out"),
    }
}

/// An exclusive `flock(2)` on a file, released on drop (or when the process dies, so a
/// crashed test never leaves a stale lock behind).
pub struct FileLock(#[allow(dead_code)] File);

impl FileLock {
    /// Block until the lock on `path` is ours.
    pub fn acquire(path: &Path) -> FileLock {
        let f = lock_file(path);
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        FileLock(f)
    }

    /// Take the lock on `path` if nobody holds it.
    pub fn try_acquire(path: &Path) -> Option<FileLock> {
        let f = lock_file(path);
        // SAFETY: as above.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        (rc == 0).then_some(FileLock(f))
    }
}

fn lock_file(path: &Path) -> File {
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open lock {}: {e}", path.display()))
}

fn run_generator(big: bool) {
    let dir = fixtures_dir();
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let _lock = FileLock::acquire(&dir.join(".generate.lock"));
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("tests/fixtures/generate.sh"));
    if big {
        cmd.arg("big");
    }
    let out = cmd
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run generate.sh: {e}"));
    assert!(
        out.status.success(),
        "tests/fixtures/generate.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of a generated fixture, e.g. `fixture("uki.efi")`. The generator runs once per
/// process; it is a no-op (a stamp check) when the fixtures are current.
pub fn fixture(name: &str) -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| run_generator(false));
    existing_fixture(name)
}

/// Path of a `generate.sh big` fixture (`uki-big.efi`, `uki-big-signed.efi`): ~110 MiB,
/// for benchmarks and the few tests that need a large input.
pub fn big_fixture(name: &str) -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| run_generator(true));
    existing_fixture(name)
}

/// `name` in the fixture directory, which the generator has already filled.
fn existing_fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(
        p.exists(),
        "no fixture {name} in {}",
        fixtures_dir().display()
    );
    p
}

/// A text fixture (`cmdline`, `os-release`, `uname`).
pub fn fixture_text(name: &str) -> String {
    let p = fixture(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Read a fixture into memory.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let p = fixture(name);
    fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The `ukitool` binary: `$UKITOOL_BIN`, else `target/<profile>/ukitool` next to this test
/// binary (so it shares the test's target dir and profile). `cargo test` does not build
/// another package's binary, so it is built (or refreshed) here once per process.
pub fn ukitool_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("UKITOOL_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(b);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // <target>/<profile>/deps/<test>-<hash>  ->  <target>/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("debug");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "ukitool"])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(repo_root())
            .stdin(Stdio::null());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build -p ukitool");
        assert!(status.success(), "cargo build -p ukitool failed");
        let bin = profile_dir.join("ukitool");
        assert!(bin.exists(), "{} missing after cargo build", bin.display());
        bin
    })
    .clone()
}

/// A `Command` for the CLI with stdin closed (tests never wait for a prompt).
pub fn ukitool() -> Command {
    let mut c = Command::new(ukitool_bin());
    c.stdin(Stdio::null());
    c
}

/// Run `cmd` to completion and capture its output; panics (naming the command) only if it
/// cannot be started. The exit status is the caller's to check.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `ukitool ARGS...` run to completion (see [`run`]).
pub fn run_ukitool(args: &[&str]) -> Output {
    run(ukitool().args(args))
}

/// A path as the `&str` a `&[&str]` of arguments wants; the tests' paths are UTF-8.
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// [`run`], asserting success (the failure message carries stdout and stderr); returns
/// stdout as text.
pub fn run_ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// [`run`], and echo the command, exit code, stdout and stderr to stderr, so a failing
/// test's captured output shows every step it took.
pub fn run_logged(cmd: &mut Command) -> Output {
    let out = run(cmd);
    eprintln!(
        "$ {cmd:?}\n  exit {:?}\n  stdout: {}\n  stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// Lowercase hex sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    sha256_prefix(path, u64::MAX)
}

/// Lowercase hex sha256 of the first `len` bytes of a file or device (all of it when
/// shorter), streamed.
pub fn sha256_prefix(path: &Path, len: u64) -> String {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut f = f.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh directory, removed on drop unless `UKITOOL_KEEP_TMP` is set.
pub struct TmpDir(PathBuf);

impl TmpDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if std::env::var_os("UKITOOL_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A new empty directory under `$TMPDIR`, unique per process and call.
pub fn tmpdir() -> TmpDir {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("ukitool-test-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    TmpDir(p)
}

/// stdout then stderr, as text: what a command said, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A refusal as the CLI prints one: exit 2 and exactly one `ukitool: error:` line on
/// stderr, which is returned.
pub fn assert_one_line_error(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("ukitool: error: "), "{what}: {err}");
    err
}

/// xorshift64 (13, 7, 17): numbers and bytes that are the same on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `len` pseudo-random bytes from `seed`: incompressible, reproducible filler.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = XorShift(seed | 1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&x.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}
