//! The release artifacts of `make dist` (docs/ship.md).
//!
//! The man pages, completions and `--version` are checked on every `cargo test`, from the
//! workspace's binary, which generates them exactly as pkg/deb.sh does for the package.
//! The package and the static binary need `dist/` and root: those tests are ignored by
//! default and `make dist-check` runs them once (`-- --ignored`), after building dist/
//! twice. `$UKITOOL_DIST` names another dist directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ukitool_core::disk::layout::Layout;
use ukitool_tests::{fixture, repo_root, run, run_logged, run_ok, tmpdir, ukitool, TmpDir};

/// The visible commands, as `ukitool --help` lists them.
fn commands() -> Vec<String> {
    let help = run_ok(ukitool().arg("--help"));
    let list = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .expect("--help has a Commands: list");
    // A command's line is indented by two spaces; a wrapped description, by more.
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Long and short options at the start of `--help`'s option lines.
fn help_options(args: &[&str]) -> BTreeSet<String> {
    let help = run_ok(ukitool().args(args).arg("--help"));
    let mut opts = BTreeSet::new();
    for line in help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
    {
        for word in line
            .split([',', ' '])
            .take_while(|w| w.starts_with('-') || w.is_empty())
        {
            if !word.is_empty() {
                opts.insert(word.to_string());
            }
        }
    }
    opts
}

fn man_pages() -> (TmpDir, Vec<PathBuf>) {
    let dir = tmpdir();
    run_ok(ukitool().arg("man-pages").arg(dir.path()));
    let mut pages: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("read man dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    pages.sort();
    (dir, pages)
}

/// A man page's text with roff's escaped hyphens plain, for searching.
fn man_text(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\\-", "-")
}

fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let next = text[at + word.len()..].chars().next();
        !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn man_pages_are_clean_under_man_and_mandoc() {
    let (_dir, pages) = man_pages();
    assert_eq!(
        pages.len(),
        commands().len() + 1,
        "ukitool.1 and one per command"
    );
    for page in &pages {
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat"));
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.is_empty(),
            "man --warnings -l {}: {warnings}",
            page.display()
        );
        let out = run(Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(page));
        let lint = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(lint.is_empty(), "mandoc -T lint {}: {lint}", page.display());
    }
}

#[test]
fn every_command_and_option_of_help_is_in_its_man_page() {
    let (dir, _) = man_pages();
    let top = man_text(&dir.join("ukitool.1"));
    for cmd in commands() {
        assert!(mentions(&top, &cmd), "ukitool.1 lists {cmd}");
        let page = man_text(&dir.join(format!("ukitool-{cmd}.1")));
        for opt in help_options(&[&cmd]) {
            assert!(mentions(&page, &opt), "ukitool-{cmd}.1 documents {opt}");
        }
        for section in ["EXIT STATUS", "EXAMPLES"] {
            assert!(page.contains(section), "ukitool-{cmd}.1 has {section}");
        }
    }
    for opt in help_options(&[]) {
        assert!(mentions(&top, &opt), "ukitool.1 documents {opt}");
    }
}

/// What bash's completion offers for the words typed so far (the last one being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = words[cword.saturating_sub(1)];
    let cur = words[cword];
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _ukitool ukitool '{cur}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" ")
    );
    run_ok(Command::new("bash").arg("-c").arg(program))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_offer_commands_and_layouts() {
    let dir = tmpdir();
    let script = dir.join("ukitool.bash");
    fs::write(&script, run_ok(ukitool().args(["completions", "bash"]))).expect("write script");
    let offered = bash_complete(&script, &["ukitool", ""]);
    for cmd in commands() {
        assert!(offered.contains(&cmd), "bash completes {cmd}: {offered:?}");
    }
    assert!(
        !offered.iter().any(|w| w == "man-pages"),
        "hidden commands are not offered"
    );
    for cmd in ["image", "write"] {
        let layouts = bash_complete(&script, &["ukitool", cmd, "--layout", ""]);
        assert_eq!(layouts, Layout::NAMES, "{cmd} --layout");
    }
    assert_eq!(
        bash_complete(&script, &["ukitool", "image", "--layout", "sys"]),
        ["systemd-boot"]
    );

    let zsh = run_ok(ukitool().args(["completions", "zsh"]));
    assert!(
        zsh.starts_with("#compdef ukitool"),
        "zsh: {}",
        &zsh[..40.min(zsh.len())]
    );
    let fish = run_ok(ukitool().args(["completions", "fish"]));
    for cmd in commands() {
        assert!(zsh.contains(&format!("'{cmd}:")), "zsh completes {cmd}");
        assert!(
            fish.contains(&format!("-a \"{cmd}\"")),
            "fish completes {cmd}"
        );
    }
}

/// The commit, when this is a git checkout, and whether the tree is clean.
fn git_state() -> Option<(String, bool)> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo_root())
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let clean = git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Some((commit, clean))
}

/// `--version`: the version, the commit and the build's reproducibility.
fn assert_long_version(bin: &Path, reproducible_if_clean: bool) {
    let text = run_ok(Command::new(bin).arg("--version"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        concat!("ukitool ", env!("CARGO_PKG_VERSION")),
        "{text}"
    );
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert!(lines[2].starts_with("build: "), "{text}");
    if let Some((commit, clean)) = git_state() {
        assert!(
            lines[1].starts_with(&format!("commit: {commit} (")),
            "{text}"
        );
        if clean && reproducible_if_clean {
            assert!(
                lines[2].starts_with("build: reproducible (SOURCE_DATE_EPOCH="),
                "{text}"
            );
        }
    }
}

#[test]
fn version_names_the_commit_and_the_build() {
    assert_long_version(&ukitool_tests::ukitool_bin(), false);
}

// ---- The artifacts in dist/ (`make dist-check` runs these) --------------------------------

fn dist_file(prefix: &str, suffix: &str) -> PathBuf {
    let dir = std::env::var_os("UKITOOL_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"));
    let found: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make dist` first)", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

fn deb() -> PathBuf {
    dist_file("ukitool_", "_amd64.deb")
}

#[test]
#[ignore = "needs `make dist`; run by `make dist-check`"]
fn deb_is_lintian_clean_and_complete() {
    let deb = deb();
    let out = run_logged(
        Command::new("lintian")
            .args(["--fail-on", "error"])
            .arg(&deb),
    );
    assert!(out.status.success(), "lintian reports an error");
    let listing = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let mut want = vec![
        "./usr/bin/ukitool".to_string(),
        "./usr/share/man/man1/ukitool.1.gz".into(),
        "./usr/share/bash-completion/completions/ukitool".into(),
        "./usr/share/zsh/vendor-completions/_ukitool".into(),
        "./usr/share/fish/vendor_completions.d/ukitool.fish".into(),
        "./usr/share/doc/ukitool/copyright".into(),
        "./usr/share/doc/ukitool/changelog.gz".into(),
    ];
    want.extend(
        commands()
            .iter()
            .map(|c| format!("./usr/share/man/man1/ukitool-{c}.1.gz")),
    );
    for path in want {
        assert!(
            listing.lines().any(|l| l.ends_with(&path)),
            "{path} in the package:\n{listing}"
        );
    }
    let depends = run_ok(
        Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&deb)
            .arg("Depends"),
    );
    assert!(
        depends.contains("libc6 (>="),
        "Depends from dpkg-shlibdeps: {depends}"
    );
}

/// The mirror of the system's apt sources (Debian 12's), or `$UKITOOL_DEBIAN_MIRROR`.
fn debian_mirror() -> String {
    if let Some(m) = std::env::var("UKITOOL_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
    {
        return m;
    }
    let mut text = String::new();
    for path in [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ] {
        text.push_str(&fs::read_to_string(path).unwrap_or_default());
    }
    // deb822 ("URIs: http://.../debian") or one-line ("deb http://.../debian bookworm main").
    text.lines()
        .filter_map(|l| l.strip_prefix("URIs:").or_else(|| l.strip_prefix("deb ")))
        .flat_map(str::split_whitespace)
        .find(|w| w.starts_with("http") && !w.contains("security"))
        .expect("a Debian mirror in the apt sources (or set UKITOOL_DEBIAN_MIRROR)")
        .to_string()
}

/// Run a bash script in a private mount namespace: mounts it makes (debootstrap's /proc,
/// ours) vanish with it, even when it fails or is killed, so removing the tree is safe.
fn in_mount_namespace(script: &str, args: &[&Path]) -> std::process::Output {
    run_logged(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-euxc",
                script,
                "bash",
            ])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

#[test]
#[ignore = "needs `make dist`, root and the Debian mirror; run by `make dist-check`"]
fn deb_installs_into_a_fresh_debian_12_and_inspects_a_uki() {
    let deb = deb();
    let uki = fixture("uki.efi");
    let dir = tmpdir();
    let root = dir.join("root");
    let mirror = debian_mirror();
    let script = r#"
        root=$1 deb=$2 uki=$3 mirror=$4
        debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
            || { tail -n 30 "$root.log"; exit 1; }
        mount -t proc proc "$root/proc"
        cp "$deb" "$root/tmp/ukitool.deb"
        cp "$uki" "$root/tmp/uki.efi"
        chroot "$root" apt-get install -y /tmp/ukitool.deb
        chroot "$root" ukitool inspect /tmp/uki.efi
        test -f "$root/usr/share/bash-completion/completions/ukitool"
        test -f "$root/usr/share/man/man1/ukitool-inspect.1.gz"
    "#;
    let out = in_mount_namespace(script, &[&root, &deb, &uki, Path::new(&mirror)]);
    assert!(
        out.status.success(),
        "install and inspect in a Debian 12 chroot"
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let want = run_ok(ukitool().arg("inspect").arg(&uki));
    let first = want.lines().nth(1).expect("the report's second line");
    assert!(report.contains(first), "the chroot's report has {first:?}");
}

#[test]
#[ignore = "needs `make dist` and root; run by `make dist-check`"]
fn musl_binary_is_static_and_runs_alone_in_an_empty_chroot() {
    let bin = dist_file("ukitool-", "-x86_64-linux-musl");
    let file = run_ok(Command::new("file").arg(&bin));
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "{file}"
    );
    assert_long_version(&bin, true);
    let help = run_ok(Command::new(&bin).arg("--help"));
    for cmd in commands() {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "the static binary offers {cmd}"
        );
    }

    let dir = tmpdir();
    fs::copy(&bin, dir.join("ukitool")).expect("copy the binary");
    fs::copy(fixture("uki.efi"), dir.join("uki.efi")).expect("copy the UKI");
    let entries = fs::read_dir(dir.path()).expect("read chroot").count();
    assert_eq!(entries, 2, "the chroot holds only the binary and the UKI");
    let inside = run_ok(
        Command::new("chroot")
            .arg(dir.path())
            .args(["/ukitool", "inspect", "--json", "uki.efi"]),
    );
    let outside = run_ok(
        Command::new(&bin)
            .args(["inspect", "--json", "uki.efi"])
            .current_dir(dir.path()),
    );
    assert_eq!(inside, outside, "the report inside the empty chroot");
    let json: serde_json::Value = serde_json::from_str(&inside).expect("inspect --json");
    assert_eq!(json["kind"], "uki");
}
