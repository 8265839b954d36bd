//! `ukitool diff A B`: reads both files, lets ukitool_core::command::diff compare
//! them, and prints the result (text, or `--json`). Exit 0 identical, 1 different,
//! 2 unreadable, as diff(1).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ukitool_core::command::diff::{Change, Compared, Diff, FileFacts};

use crate::input::Input;
use crate::inspect::Threads;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The old file (PE or UKI)
    pub a: PathBuf,
    /// The new file
    pub b: PathBuf,
    /// Print the comparison as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: DiffArgs) -> Result<ExitCode> {
    let da = Input::open(&a.a)?;
    let db = Input::open(&a.b)?;
    let d = ukitool_core::command::diff(&da, &db, &Threads)
        .with_context(|| format!("{} vs {}", a.a.display(), a.b.display()))?;
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &d)?;
        writeln!(out)?;
    } else {
        print_diff(
            &mut out,
            &a.a.display().to_string(),
            &a.b.display().to_string(),
            &d,
        )?;
    }
    out.flush()?;
    Ok(ExitCode::from(d.exit_code()))
}

fn print_file(w: &mut dyn Write, tag: &str, name: &str, f: &FileFacts) -> io::Result<()> {
    writeln!(
        w,
        "{tag} {name}: {}, {} bytes, {} sections, {} profiles, sha256 {}",
        f.kind.as_str(),
        f.size,
        f.sections,
        f.profiles,
        f.sha256
    )
}

fn compared<T>(
    w: &mut dyn Write,
    label: &str,
    c: &Compared<T>,
    show: impl Fn(&T) -> String,
) -> io::Result<()> {
    if c.changed {
        writeln!(w, "{label}: {} -> {}", show(&c.a), show(&c.b))
    } else {
        writeln!(w, "{label}: {} (unchanged)", show(&c.a))
    }
}

/// The text report: the two files, then each kind of difference.
pub fn print_diff(w: &mut dyn Write, a: &str, b: &str, d: &Diff) -> io::Result<()> {
    print_file(w, "---", a, &d.a)?;
    print_file(w, "+++", b, &d.b)?;
    if d.identical {
        return writeln!(w, "identical");
    }
    if let Some(at) = d.first_difference {
        writeln!(w, "first difference at byte {at:#x}")?;
    }
    for h in &d.headers {
        writeln!(w, "header {}: {} -> {}", h.field, h.a, h.b)?;
    }
    for s in &d.sections {
        let block = s
            .profile
            .map_or("base".to_string(), |p| format!("profile @{p}"));
        let copy = if s.copy > 0 {
            format!(" #{}", s.copy)
        } else {
            String::new()
        };
        let facts = |p: &Option<ukitool_core::command::diff::Payload>| {
            p.as_ref().map_or("-".to_string(), |p| {
                format!(
                    "{} bytes sha256 {}",
                    p.size,
                    p.sha256.as_deref().unwrap_or("-")
                )
            })
        };
        let what = match s.change {
            Change::Added => format!("added: {}", facts(&s.b)),
            Change::Removed => format!("removed: {}", facts(&s.a)),
            Change::Changed => format!("changed: {} -> {}", facts(&s.a), facts(&s.b)),
        };
        writeln!(w, "section {}{copy} ({block}) {what}", s.name)?;
        for line in s.text_diff.iter().flatten() {
            writeln!(w, "    {line}")?;
        }
    }
    let none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    compared(w, "kernel", &d.kernel, none)?;
    compared(w, "signers", &d.signers, |s| {
        if s.is_empty() {
            return "unsigned".into();
        }
        s.iter()
            .map(|s| s.subject.clone().unwrap_or_else(|| "?".into()))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    for p in &d.pcr11 {
        let c = Compared {
            a: p.a.clone(),
            b: p.b.clone(),
            changed: p.changed,
        };
        compared(
            w,
            &format!("pcr11 sha256 @{} {}", p.profile, p.phase),
            &c,
            none,
        )?;
    }
    Ok(())
}
