//! The QEMU harness: boot a kernel directly or a disk under OVMF (x86-64) or AAVMF
//! (arm64), and read what the fixtures' `/init` printed. docs/testing.md describes it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{fixtures_dir, tmpdir, FileLock};

/// Which OVMF build boots a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// OVMF_CODE_4M.fd with empty variables: no Secure Boot.
    Plain,
    /// OVMF_CODE_4M.secboot.fd (needs q35 with SMM) with OVMF_VARS_4M.snakeoil.fd: Secure
    /// Boot on, the Debian snakeoil certificate (fixtures' snakeoil.pem) in PK, KEK and db.
    SecureBoot,
    /// arm64: AAVMF_CODE.fd with a copy of AAVMF_VARS.fd (no Secure Boot), on
    /// qemu-system-aarch64 `-machine virt -cpu max` (package qemu-efi-aarch64).
    Aavmf,
    /// arm64: AAVMF_CODE.snakeoil.fd with AAVMF_VARS.snakeoil.fd: Secure Boot on, the
    /// snakeoil certificate enrolled as in [`Firmware::SecureBoot`].
    AavmfSecureBoot,
    /// arm64: AAVMF_CODE.ms.fd with AAVMF_VARS.ms.fd: Secure Boot on with Microsoft's
    /// keys enrolled (db holds the Microsoft UEFI CA that signs shim), as on a PC bought
    /// in a shop: the distribution's signed shim, GRUB and kernel boot, nothing else.
    AavmfMicrosoftKeys,
    /// arm64: [`Firmware::Aavmf`] on `virt,acpi=off`, so the firmware hands the kernel
    /// QEMU's device tree instead of ACPI tables. systemd-stub 252 installs a UKI's `.dtb`
    /// only in place of a firmware device tree, so this is how a `.dtb` gets used
    /// ([`dump_virt_dtb`] gives the machine's own tree to start from).
    AavmfDeviceTree,
}

/// QEMU's arm64 machine and CPU for AAVMF boots: `-machine virt` (with `acpi=off` for
/// [`Firmware::AavmfDeviceTree`]) and `-cpu max`. The IMPDEF pointer-authentication
/// algorithm is much cheaper to emulate than QARMA (QEMU's docs/system/arm/cpu-features).
fn virt_machine(device_tree: bool) -> [String; 4] {
    let machine = if device_tree { "virt,acpi=off" } else { "virt" };
    [
        "-machine".into(),
        machine.into(),
        "-cpu".into(),
        "max,pauth-impdef=on".into(),
    ]
}

/// Write the device tree QEMU gives a [`Firmware::AavmfDeviceTree`] guest with `opts`'s
/// memory to `out` (`-machine virt,dumpdtb=`): the base for a UKI's `.dtb`.
pub fn dump_virt_dtb(out: &Path, opts: &BootOptions) {
    let [m, machine, c, cpu] = virt_machine(true);
    let o = Command::new(Arch::Aarch64.qemu())
        .arg(m)
        .arg(format!(
            "{machine},dumpdtb={}",
            qemu_escape(out).to_string_lossy()
        ))
        .args([c, cpu, "-m".into(), opts.memory_mib.to_string()])
        .arg("-nographic")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", Arch::Aarch64.qemu()));
    assert!(
        o.status.success() && out.is_file(),
        "dumpdtb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The QEMU system emulator a firmware runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// What to install when the emulator is missing.
    fn package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        }
    }

    /// `-accel`: `UKITOOL_QEMU_ACCEL` where the guest is the host's architecture; TCG
    /// otherwise (KVM cannot run an arm64 guest on an x86-64 host).
    fn accel(self) -> String {
        let native = match self {
            Arch::X86_64 => cfg!(target_arch = "x86_64"),
            Arch::Aarch64 => cfg!(target_arch = "aarch64"),
        };
        if native {
            accel()
        } else {
            "tcg".into()
        }
    }
}

/// How long and with what a VM runs.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Hard limit from QEMU's start (waiting for a VM slot is not counted).
    pub timeout: Duration,
    pub memory_mib: u32,
    /// The virtio disk's logical (and physical) block size under OVMF; `None`: 512.
    pub logical_block_size: Option<u32>,
    /// Serial text that settles the outcome (e.g. systemd-boot's "Access Denied", after
    /// which it waits in its menu): the VM is stopped as [`BootEnd::Settled`].
    pub settled_by: Vec<&'static str>,
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
            logical_block_size: None,
            settled_by: Vec::new(),
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
    /// The serial log showed one of [`BootOptions::settled_by`].
    Settled,
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

fn aavmf_dir() -> PathBuf {
    std::env::var_os("UKITOOL_AAVMF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/AAVMF"))
}

/// One of `UKITOOL_QEMU_JOBS` machine-wide VM slots: TCG is CPU-bound, and boots that
/// starve each other hit their timeouts. The slots' lock files live next to the
/// generator's lock in the fixture directory, which every test process shares and which
/// outlives them; in `$TMPDIR` they would be left behind.
fn vm_slot() -> FileLock {
    let jobs: usize = std::env::var("UKITOOL_QEMU_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let dir = fixtures_dir();
    loop {
        for i in 0..jobs {
            if let Some(l) = FileLock::try_acquire(&dir.join(format!(".qemu-slot-{i}.lock"))) {
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
fn run_qemu(arch: Arch, args: &[OsString], opts: &BootOptions) -> BootLog {
    let mut log = run_qemu_once(arch, args, opts);
    for _ in 0..2 {
        if log.marker().is_some() || !log.serial.contains(TIMER_PANIC) {
            break;
        }
        eprintln!("ukitool-tests: guest hit the TCG timer-check panic; booting again");
        log = run_qemu_once(arch, args, opts);
    }
    log
}

/// A running QEMU, killed and reaped when dropped: a test that panics (or returns early)
/// leaves no VM behind.
struct Vm(Child);

impl Vm {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

/// Run QEMU with `args` plus the harness's serial/monitor/display options; watch the serial
/// log, stop early when the outcome is settled.
fn run_qemu_once(arch: Arch, args: &[OsString], opts: &BootOptions) -> BootLog {
    // flock locks belong to an open file description, and each attempt opens the slot file
    // afresh, so the slots also serialize threads of one test binary.
    let _slot = vm_slot();
    let dir = tmpdir();
    let serial_path = dir.join("serial.log");
    let stderr_path = dir.join("qemu.stderr");
    let mut cmd = Command::new(arch.qemu());
    cmd.args(["-accel", &arch.accel(), "-m"])
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
    let mut vm = Vm(cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "spawn {} (apt-get install {}): {e}",
            arch.qemu(),
            arch.package()
        )
    }));
    let mut marker_seen: Option<Instant> = None;
    let (end, exit_code) = loop {
        if let Ok(Some(st)) = vm.0.try_wait() {
            break (BootEnd::Exited, st.code());
        }
        let serial =
            String::from_utf8_lossy(&fs::read(&serial_path).unwrap_or_default()).into_owned();
        if serial.contains(MARKER) {
            // /init powers off right after the marker; give it a moment to do so.
            let t = *marker_seen.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_secs(15) {
                vm.stop();
                break (BootEnd::Exited, None);
            }
        } else if opts.settled_by.iter().any(|t| serial.contains(t)) {
            vm.stop();
            break (BootEnd::Settled, None);
        } else if serial.contains("No bootable option or device was found")
            || serial.contains("Shell> ")
        {
            vm.stop();
            break (BootEnd::NoBootableOption, None);
        }
        if start.elapsed() > opts.timeout {
            vm.stop();
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
    let args: Vec<OsString> = vec![
        "-kernel".into(),
        kernel.into(),
        "-initrd".into(),
        initrd.into(),
        "-append".into(),
        append.into(),
    ];
    run_qemu(Arch::X86_64, &args, opts)
}

/// Boot a raw disk image under OVMF or AAVMF (`firmware` picks the machine). The image
/// is attached with `snapshot=on` (never modified) and the firmware gets a private copy
/// of its variable store.
pub fn boot_disk(image: &Path, firmware: Firmware) -> BootLog {
    boot_disk_with(image, firmware, &BootOptions::default())
}

pub fn boot_disk_with(image: &Path, firmware: Firmware, opts: &BootOptions) -> BootLog {
    let (_, dir, _, vars) = firmware_files(firmware);
    let vars_dir = tmpdir();
    let vars_copy = vars_dir.join("vars.fd");
    fs::copy(dir.join(vars), &vars_copy).unwrap_or_else(|e| {
        panic!(
            "copy {} (apt-get install ovmf qemu-efi-aarch64): {e}",
            dir.join(vars).display()
        )
    });
    boot_firmware(image, firmware, &vars_copy, opts)
}

/// Boot under OVMF's Secure Boot build (`OVMF_CODE_4M.secboot.fd`) with the variable
/// store `vars` used in place: what the firmware writes there (keys systemd-boot
/// enrolled) is there at the next boot. A copy of `OVMF_VARS_4M.fd` starts in setup
/// mode, with no keys.
pub fn boot_disk_secure_vars(image: &Path, vars: &Path, opts: &BootOptions) -> BootLog {
    boot_firmware(image, Firmware::SecureBoot, vars, opts)
}

/// A fresh copy of OVMF's empty variable store (`OVMF_VARS_4M.fd`: setup mode, no
/// keys) at `dir/vars.fd`, for [`boot_disk_secure_vars`].
pub fn setup_mode_vars(dir: &Path) -> PathBuf {
    let vars = dir.join("vars.fd");
    fs::copy(ovmf_dir().join("OVMF_VARS_4M.fd"), &vars)
        .expect("copy OVMF_VARS_4M.fd (apt-get install ovmf)");
    vars
}

/// The architecture, firmware directory, code and variable-store files of `firmware`.
fn firmware_files(firmware: Firmware) -> (Arch, PathBuf, &'static str, &'static str) {
    match firmware {
        Firmware::Plain => (
            Arch::X86_64,
            ovmf_dir(),
            "OVMF_CODE_4M.fd",
            "OVMF_VARS_4M.fd",
        ),
        Firmware::SecureBoot => (
            Arch::X86_64,
            ovmf_dir(),
            "OVMF_CODE_4M.secboot.fd",
            "OVMF_VARS_4M.snakeoil.fd",
        ),
        Firmware::Aavmf | Firmware::AavmfDeviceTree => {
            (Arch::Aarch64, aavmf_dir(), "AAVMF_CODE.fd", "AAVMF_VARS.fd")
        }
        Firmware::AavmfSecureBoot => (
            Arch::Aarch64,
            aavmf_dir(),
            "AAVMF_CODE.snakeoil.fd",
            "AAVMF_VARS.snakeoil.fd",
        ),
        Firmware::AavmfMicrosoftKeys => (
            Arch::Aarch64,
            aavmf_dir(),
            "AAVMF_CODE.ms.fd",
            "AAVMF_VARS.ms.fd",
        ),
    }
}

/// Boot `image` under `firmware` with the variable store `vars_copy` (written in place).
fn boot_firmware(
    image: &Path,
    firmware: Firmware,
    vars_copy: &Path,
    opts: &BootOptions,
) -> BootLog {
    let (arch, dir, code, _) = firmware_files(firmware);
    let mut args: Vec<OsString> = match firmware {
        Firmware::Plain => vec!["-machine".into(), "q35".into()],
        // The secboot build keeps its variables behind SMM: q35 with smm=on and a secure
        // pflash, or it refuses to start.
        Firmware::SecureBoot => vec!["-machine".into(), "q35,smm=on".into()],
        // arm64 has no SMM: AAVMF's snakeoil build runs on the plain virt machine.
        Firmware::Aavmf
        | Firmware::AavmfSecureBoot
        | Firmware::AavmfMicrosoftKeys
        | Firmware::AavmfDeviceTree => virt_machine(firmware == Firmware::AavmfDeviceTree)
            .into_iter()
            .map(OsString::from)
            .collect(),
    };
    if firmware == Firmware::SecureBoot {
        args.extend([
            "-global".into(),
            "driver=cfi.pflash01,property=secure,value=on".into(),
        ]);
    }
    let pflash = |unit: u32, ro: bool, file: &Path| -> OsString {
        let mut s = OsString::from(format!(
            "if=pflash,format=raw,unit={unit},{}file=",
            if ro { "readonly=on," } else { "" }
        ));
        s.push(qemu_escape(file));
        s
    };
    args.extend(["-drive".into(), pflash(0, true, &dir.join(code))]);
    args.extend(["-drive".into(), pflash(1, false, vars_copy)]);
    match opts.logical_block_size {
        None => {
            let mut disk = OsString::from("if=virtio,format=raw,snapshot=on,file=");
            disk.push(qemu_escape(image));
            args.extend(["-drive".into(), disk]);
        }
        // A 4096-byte-sector disk: the drive on its own virtio-blk device, which tells
        // the firmware and the kernel its block size.
        Some(bs) => {
            let mut disk = OsString::from("if=none,id=disk0,format=raw,snapshot=on,file=");
            disk.push(qemu_escape(image));
            args.extend(["-drive".into(), disk]);
            args.extend([
                "-device".into(),
                format!(
                    "virtio-blk-pci,drive=disk0,logical_block_size={bs},physical_block_size={bs}"
                )
                .into(),
            ]);
        }
    }
    run_qemu(arch, &args, opts)
}

/// Boot a raw disk from legacy BIOS: QEMU's default firmware, SeaBIOS, with the disk on
/// IDE. `-vga none` makes SeaBIOS copy the BIOS text console to the serial port, so what
/// GRUB i386-pc prints on its `console` terminal reaches the log.
pub fn boot_bios_disk_with(image: &Path, opts: &BootOptions) -> BootLog {
    let mut disk = OsString::from("if=ide,format=raw,snapshot=on,file=");
    disk.push(qemu_escape(image));
    run_qemu(
        Arch::X86_64,
        &["-vga".into(), "none".into(), "-drive".into(), disk],
        opts,
    )
}

/// QEMU's -drive splits on commas; a literal comma is written twice.
fn qemu_escape(p: &Path) -> OsString {
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
