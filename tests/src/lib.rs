//! Shared helpers for ukitool's integration tests (`tests/tests/*.rs`); docs/testing.md
//! describes the whole set-up.
//!
//! - [`fixture`]: a file from `tests/fixtures/out/`, made by `tests/fixtures/generate.sh`
//!   on first use (once per process, under a file lock so parallel test binaries don't race).
//! - [`ukitool`]: a `Command` for the CLI built from this workspace.
//! - [`run`], [`run_ok`], [`run_logged`]: run a `Command`, panicking with its output.
//! - [`sha256_hex`], [`tmpdir`].
//! - The QEMU harness: [`boot_kernel`] (`-kernel/-initrd/-append`), [`boot_disk`] (OVMF,
//!   plain or Secure Boot with the snakeoil keys), [`esp_disk`] (a GPT disk whose ESP holds
//!   one EFI binary as the removable-media boot path) and [`BootLog`], which finds the line
//!   the fixtures' busybox `/init` prints:
//!   `UKITOOL-MARKER booted secureboot=<enabled|disabled|unknown> cmdline=<...>`.
//!
//! Environment knobs: `UKITOOL_FIXTURES` (fixture directory), `UKITOOL_BIN` (CLI binary),
//! `UKITOOL_QEMU_ACCEL` (`tcg` by default: KVM cannot run OVMF's SMM build on the CI hosts),
//! `UKITOOL_BOOT_TIMEOUT` (seconds per boot, default 120), `UKITOOL_QEMU_JOBS` (concurrent
//! VMs across all test processes, default 1), `UKITOOL_KEEP_TMP` (keep temporary dirs).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

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
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
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

// ---------------------------------------------------------------------------------------
// QEMU harness

/// Which OVMF build boots a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// OVMF_CODE_4M.fd with empty variables: no Secure Boot.
    Plain,
    /// OVMF_CODE_4M.secboot.fd (needs q35 with SMM) with OVMF_VARS_4M.snakeoil.fd: Secure
    /// Boot on, the Debian snakeoil certificate (fixtures' snakeoil.pem) in PK, KEK and db.
    SecureBoot,
}

/// How long and with what a VM runs.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Hard limit from QEMU's start (waiting for a VM slot is not counted).
    pub timeout: Duration,
    pub memory_mib: u32,
}

impl Default for BootOptions {
    fn default() -> Self {
        let secs = std::env::var("UKITOOL_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120);
        BootOptions {
            timeout: Duration::from_secs(secs),
            memory_mib: 1024,
        }
    }
}

/// Why the harness stopped the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootEnd {
    /// QEMU exited by itself (the marker's `poweroff -f`, or a crash: see `exit_code`).
    Exited,
    /// Firmware ran out of boot options ("No bootable option", or it fell into the EFI
    /// shell): waiting longer cannot help, so the VM was killed.
    NoBootableOption,
    /// The hard timeout hit.
    TimedOut,
}

/// What a VM printed on its serial port, and how it ended.
#[derive(Clone, Debug)]
pub struct BootLog {
    pub serial: String,
    /// QEMU's own stderr (bad options, missing firmware, ...).
    pub qemu_stderr: String,
    pub end: BootEnd,
    pub exit_code: Option<i32>,
    pub elapsed: Duration,
}

pub const MARKER: &str = "UKITOOL-MARKER booted ";

impl BootLog {
    /// The marker line, from `UKITOOL-MARKER` to the end of the line.
    pub fn marker(&self) -> Option<String> {
        self.serial.lines().find_map(|l| {
            l.find(MARKER)
                .map(|i| l[i..].trim_end_matches(['\r', '\n', ' ']).to_string())
        })
    }

    /// Some(true) when the booted kernel saw Secure Boot enabled, Some(false) when disabled,
    /// None when it could not tell (a BIOS `-kernel` boot) or there is no marker.
    pub fn secure_boot(&self) -> Option<bool> {
        let m = self.marker()?;
        let state = m
            .split_whitespace()
            .find_map(|w| w.strip_prefix("secureboot="))?;
        match state {
            "enabled" => Some(true),
            "disabled" => Some(false),
            _ => None,
        }
    }

    /// The kernel command line the marker reported (`/proc/cmdline`).
    pub fn cmdline(&self) -> Option<String> {
        let m = self.marker()?;
        m.split_once(" cmdline=").map(|(_, c)| c.to_string())
    }

    /// Firmware refused to start an image (Secure Boot verification failed).
    pub fn firmware_refused(&self) -> bool {
        self.serial.contains("Access Denied") || self.serial.contains("Security Violation")
    }

    /// The last `n` lines of serial output, for assertion messages.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.serial.lines().collect();
        let start = lines.len().saturating_sub(n);
        let mut s = lines[start..].join("\n");
        if !self.qemu_stderr.trim().is_empty() {
            s.push_str("\n[qemu stderr] ");
            s.push_str(self.qemu_stderr.trim());
        }
        s
    }
}

impl std::fmt::Display for BootLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "boot ended {:?} (exit {:?}) after {:.1}s; last serial lines:\n{}",
            self.end,
            self.exit_code,
            self.elapsed.as_secs_f64(),
            self.tail(25)
        )
    }
}

fn accel() -> String {
    std::env::var("UKITOOL_QEMU_ACCEL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tcg".into())
}

fn ovmf_dir() -> PathBuf {
    std::env::var_os("UKITOOL_OVMF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/OVMF"))
}

/// One of `UKITOOL_QEMU_JOBS` machine-wide VM slots: TCG is CPU-bound, and boots that
/// starve each other hit their timeouts.
fn vm_slot() -> FileLock {
    let jobs: usize = std::env::var("UKITOOL_QEMU_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let dir = std::env::temp_dir();
    loop {
        for i in 0..jobs {
            if let Some(l) = FileLock::try_acquire(&dir.join(format!("ukitool-qemu-slot-{i}.lock")))
            {
                return l;
            }
        }
        sleep(Duration::from_millis(250));
    }
}

/// The kernel's boot-time check that the IO-APIC timer ticks fails when a loaded host
/// starves a TCG guest; the panic says nothing about the image under test.
const TIMER_PANIC: &str = "timer doesn't work";

/// Run QEMU (see [`run_qemu_once`]); boot again, at most twice, if the guest died of
/// [`TIMER_PANIC`] before the marker.
fn run_qemu(args: &[std::ffi::OsString], opts: &BootOptions) -> BootLog {
    let mut log = run_qemu_once(args, opts);
    for _ in 0..2 {
        if log.marker().is_some() || !log.serial.contains(TIMER_PANIC) {
            break;
        }
        eprintln!("ukitool-tests: guest hit the TCG timer-check panic; booting again");
        log = run_qemu_once(args, opts);
    }
    log
}

/// Run QEMU with `args` plus the harness's serial/monitor/display options; watch the serial
/// log, stop early when the outcome is settled.
fn run_qemu_once(args: &[std::ffi::OsString], opts: &BootOptions) -> BootLog {
    // flock locks belong to an open file description, and each attempt opens the slot file
    // afresh, so the slots also serialize threads of one test binary.
    let _slot = vm_slot();
    let dir = tmpdir();
    let serial_path = dir.join("serial.log");
    let stderr_path = dir.join("qemu.stderr");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", &accel(), "-m"])
        .arg(opts.memory_mib.to_string())
        .args([
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
            "-monitor",
            "none",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial_path.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).expect("create qemu stderr log"));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .expect("spawn qemu-system-x86_64 (apt-get install qemu-system-x86)");
    let mut marker_seen: Option<Instant> = None;
    let (end, exit_code) = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break (BootEnd::Exited, st.code());
        }
        let serial =
            String::from_utf8_lossy(&fs::read(&serial_path).unwrap_or_default()).into_owned();
        if serial.contains(MARKER) {
            // /init powers off right after the marker; give it a moment to do so.
            let t = *marker_seen.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                break (BootEnd::Exited, None);
            }
        } else if serial.contains("No bootable option or device was found")
            || serial.contains("Shell> ")
        {
            let _ = child.kill();
            let _ = child.wait();
            break (BootEnd::NoBootableOption, None);
        }
        if start.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            break (BootEnd::TimedOut, None);
        }
        sleep(Duration::from_millis(200));
    };
    let serial = String::from_utf8_lossy(&fs::read(&serial_path).unwrap_or_default()).into_owned();
    let qemu_stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    BootLog {
        serial,
        qemu_stderr,
        end,
        exit_code,
        elapsed: start.elapsed(),
    }
}

/// Boot a kernel directly (`-kernel/-initrd/-append`, SeaBIOS): the GRUB path, with no
/// firmware in the way. Secure Boot state is `unknown` here.
pub fn boot_kernel(kernel: &Path, initrd: &Path, append: &str) -> BootLog {
    boot_kernel_with(kernel, initrd, append, &BootOptions::default())
}

pub fn boot_kernel_with(kernel: &Path, initrd: &Path, append: &str, opts: &BootOptions) -> BootLog {
    let args: Vec<std::ffi::OsString> = vec![
        "-kernel".into(),
        kernel.into(),
        "-initrd".into(),
        initrd.into(),
        "-append".into(),
        append.into(),
    ];
    run_qemu(&args, opts)
}

/// Boot a raw disk image under OVMF. The image is attached with `snapshot=on` (never
/// modified) and the firmware gets a private copy of its variable store.
pub fn boot_disk(image: &Path, firmware: Firmware) -> BootLog {
    boot_disk_with(image, firmware, &BootOptions::default())
}

pub fn boot_disk_with(image: &Path, firmware: Firmware, opts: &BootOptions) -> BootLog {
    let ovmf = ovmf_dir();
    let (code, vars, machine) = match firmware {
        Firmware::Plain => ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "q35"),
        // The secboot build keeps its variables behind SMM: q35 with smm=on and a secure
        // pflash, or it refuses to start.
        Firmware::SecureBoot => (
            "OVMF_CODE_4M.secboot.fd",
            "OVMF_VARS_4M.snakeoil.fd",
            "q35,smm=on",
        ),
    };
    let vars_dir = tmpdir();
    let vars_copy = vars_dir.join("vars.fd");
    fs::copy(ovmf.join(vars), &vars_copy).unwrap_or_else(|e| {
        panic!(
            "copy {} (apt-get install ovmf): {e}",
            ovmf.join(vars).display()
        )
    });
    let mut args: Vec<std::ffi::OsString> = vec!["-machine".into(), machine.into()];
    if firmware == Firmware::SecureBoot {
        args.extend([
            "-global".into(),
            "driver=cfi.pflash01,property=secure,value=on".into(),
        ]);
    }
    let pflash = |unit: u32, ro: bool, file: &Path| -> std::ffi::OsString {
        let mut s = std::ffi::OsString::from(format!(
            "if=pflash,format=raw,unit={unit},{}file=",
            if ro { "readonly=on," } else { "" }
        ));
        s.push(qemu_escape(file));
        s
    };
    args.extend(["-drive".into(), pflash(0, true, &ovmf.join(code))]);
    args.extend(["-drive".into(), pflash(1, false, &vars_copy)]);
    let mut disk = std::ffi::OsString::from("if=virtio,format=raw,snapshot=on,file=");
    disk.push(qemu_escape(image));
    args.extend(["-drive".into(), disk]);
    run_qemu(&args, opts)
}

/// QEMU's -drive splits on commas; a literal comma is written twice.
fn qemu_escape(p: &Path) -> std::ffi::OsString {
    p.as_os_str().to_string_lossy().replace(',', ",,").into()
}

/// Make `out`: a GPT disk with one EFI System Partition (FAT, made by mkfs.vfat and filled
/// by mtools) holding `efi` as `EFI/BOOT/BOOTX64.EFI`, the path firmware boots without any
/// boot entry. Sized to the binary plus 8 MiB of room.
pub fn esp_disk(efi: &Path, out: &Path) {
    const MIB: u64 = 1 << 20;
    let len = fs::metadata(efi)
        .unwrap_or_else(|e| panic!("{}: {e}", efi.display()))
        .len();
    let esp_mib = len.div_ceil(MIB) + 8;
    let esp = out.with_extension("esp.tmp");
    let _ = fs::remove_file(&esp);
    let _ = fs::remove_file(out);
    let ok = |what: &str, cmd: &mut Command| {
        let o = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            o.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(
        "mkfs.vfat",
        Command::new("mkfs.vfat")
            .args(["-C", "-n", "ESP", "-i", "0badcafe"])
            .arg(&esp)
            .arg((esp_mib * 1024).to_string()),
    );
    ok(
        "mmd",
        Command::new("mmd")
            .arg("-i")
            .arg(&esp)
            .args(["::/EFI", "::/EFI/BOOT"]),
    );
    ok(
        "mcopy",
        Command::new("mcopy")
            .arg("-i")
            .arg(&esp)
            .arg(efi)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
    );
    // 1 MiB before the partition (GPT + alignment) and 1 MiB after (backup GPT).
    let f = File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    f.set_len((esp_mib + 2) * MIB).expect("size disk image");
    drop(f);
    ok(
        "sgdisk",
        Command::new("sgdisk")
            .arg(format!("--new=1:2048:+{esp_mib}M"))
            .args(["--typecode=1:ef00", "--change-name=1:ESP"])
            .arg(out),
    );
    ok(
        "dd",
        Command::new("dd")
            .arg(format!("if={}", esp.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]),
    );
    let _ = fs::remove_file(&esp);
}
