//! Release facts for `ukitool --version` and the man pages' date: the git commit, whether
//! the tree was clean, SOURCE_DATE_EPOCH. A tree without git (a source tarball) builds
//! too: the commit is then "unknown", or `$UKITOOL_COMMIT` when the packager sets it.
//!
//! Reruns only when what it reads changes: HEAD, the branch it points to, the index (a
//! `git add` or `git commit`; an edit not yet staged is noticed at the next of those or
//! at `git status`, which refreshes the index) and the two variables below, not on
//! every edit of a source file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["SOURCE_DATE_EPOCH", "UKITOOL_COMMIT"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let git = Git { dir: manifest };
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());

    let commit = std::env::var("UKITOOL_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git.run(&["rev-parse", "--short=12", "HEAD"]));
    let clean = commit.as_ref().and_then(|_| git.clean());
    if commit.is_some() {
        git.watch();
    }

    let tree = match clean {
        Some(true) => "clean tree",
        Some(false) => "tree with local changes",
        None => "no git: tree state unknown",
    };
    let build = match (epoch, clean) {
        (Some(e), Some(true) | None) => format!("reproducible (SOURCE_DATE_EPOCH={e})"),
        (Some(_), Some(false)) => "not reproducible (local changes)".to_string(),
        (None, _) => "not reproducible (SOURCE_DATE_EPOCH unset)".to_string(),
    };
    let commit = commit.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=UKITOOL_COMMIT={commit}");
    println!("cargo:rustc-env=UKITOOL_TREE={tree}");
    println!("cargo:rustc-env=UKITOOL_BUILD={build}");

    // The man pages' date: the release's, else the commit's; empty when neither is known.
    let date = match epoch {
        Some(e) => iso_date(e),
        None => git
            .run(&["log", "-1", "--format=%cs", "HEAD"])
            .unwrap_or_default(),
    };
    println!("cargo:rustc-env=UKITOOL_DATE={date}");
}

struct Git {
    dir: PathBuf,
}

impl Git {
    /// The trimmed output of a git command that succeeded, else None (no git, no repository).
    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    }

    /// Whether the tracked files match HEAD (untracked files such as dist/ do not count).
    fn clean(&self) -> Option<bool> {
        self.run(&["status", "--porcelain", "--untracked-files=no"])
            .map(|s| s.is_empty())
    }

    /// Rerun when HEAD moves, its branch moves or the index changes.
    fn watch(&self) {
        let mut paths = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
        if let Some(branch) = self.run(&["symbolic-ref", "-q", "HEAD"]) {
            paths.push(branch);
        }
        for p in paths {
            if let Some(path) = self.run(&["rev-parse", "--path-format=absolute", "--git-path", &p])
            {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
    }
}

/// YYYY-MM-DD (UTC) of a Unix time: Howard Hinnant's days-to-civil algorithm.
fn iso_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
