//! Loop devices and mounts for the tests that write real block devices: each is undone
//! on drop, so a failing test leaves no attached device or mount behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::run_logged;

/// `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Root and working loop devices and `tools`; otherwise print why the test is skipped.
pub fn can_use_loop_devices(tools: &[&str]) -> bool {
    let uid0 = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !uid0 {
        eprintln!("SKIP: needs root (loop devices)");
        return false;
    }
    if !Path::new("/dev/loop-control").exists() {
        eprintln!("SKIP: no /dev/loop-control");
        return false;
    }
    for t in ["losetup"].iter().chain(tools) {
        if !have(t) {
            eprintln!("SKIP: {t} is not installed");
            return false;
        }
    }
    true
}

/// A loop device over a file, always detached on drop (even when the test fails).
pub struct Loop {
    pub dev: String,
}

impl Loop {
    /// `losetup --find --show EXTRA FILE`, or losetup's output when it fails.
    pub fn try_attach(file: &Path, extra: &[&str]) -> Result<Loop, String> {
        let out = run_logged(
            Command::new("losetup")
                .args(["--find", "--show"])
                .args(extra)
                .arg(file),
        );
        if !out.status.success() {
            return Err(crate::text(&out));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Loop { dev })
    }

    pub fn attach(file: &Path, extra: &[&str]) -> Loop {
        Loop::try_attach(file, extra).unwrap_or_else(|e| panic!("losetup failed: {e}"))
    }

    /// The kernel's name for it (`loop0`).
    pub fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    pub fn size(&self) -> u64 {
        let s = fs::read_to_string(format!("/sys/block/{}/size", self.name())).unwrap();
        s.trim().parse::<u64>().unwrap() * 512
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A mount, always unmounted on drop (declare it after its loop device, so it is dropped
/// first).
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
