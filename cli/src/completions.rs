//! Shell completions and man pages, both generated from the clap definitions so they
//! never drift from `--help`. What clap does not know (exit codes, examples) is kept
//! here, next to the generator, and the tests parse every example with the real parser.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Command;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use ukitool_core::disk::layout::Layout;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum, hide_possible_values = true)]
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManPagesArgs {
    /// Directory to write ukitool.1 and ukitool-COMMAND.1 into
    dir: PathBuf,
}

/// Print the completion script for a shell.
pub fn run_completions(a: CompletionsArgs, cmd: Command) -> anyhow::Result<ExitCode> {
    let mut cmd = for_completion(cmd);
    clap_complete::generate(a.shell, &mut cmd, "ukitool", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Write one man page for `ukitool` and one per visible command.
pub fn run_man_pages(a: ManPagesArgs, cmd: Command) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(&a.dir).with_context(|| format!("{}", a.dir.display()))?;
    // The commit belongs to `--version`, not to the pages: they change only with a release.
    let mut cmd = cmd.long_version(None::<&str>).disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![("ukitool".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((sub.get_name().to_string(), sub.clone()));
    }
    for (name, page) in pages {
        let man = Man::new(page)
            .title(name_of(&name).to_uppercase())
            .date(env!("UKITOOL_DATE"))
            .source(concat!("ukitool ", env!("CARGO_PKG_VERSION")))
            .manual("ukitool manual");
        let path = a.dir.join(man.get_filename());
        let mut out = Vec::new();
        man.render(&mut out)?;
        let mut roff = Roff::new();
        exit_status(&mut roff, &name);
        examples(&mut roff, &name);
        see_also(&mut roff, &cmd, &name);
        roff.to_writer(&mut out)?;
        fs::write(&path, out).with_context(|| format!("{}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A page's name: `ukitool`, or `ukitool-COMMAND`.
fn name_of(command: &str) -> String {
    if command == "ukitool" {
        command.to_string()
    } else {
        format!("ukitool-{command}")
    }
}

/// The command as completions should see it. clap_complete offers hidden commands too, so
/// they are left out. `--layout` is a string, parsed by the core so that its error names
/// the valid ones; completions offer the core's names.
fn for_completion(cmd: Command) -> Command {
    let visible = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned();
    let mut out = Command::new("ukitool")
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .args(cmd.get_arguments().cloned())
        .subcommands(visible);
    let owners: Vec<String> = out
        .get_subcommands()
        .filter(|s| s.get_arguments().any(|a| a.get_id() == "layout"))
        .map(|s| s.get_name().to_string())
        .collect();
    for name in owners {
        out = out.mut_subcommand(name, |s| {
            s.mut_arg("layout", |a| {
                a.value_parser(PossibleValuesParser::new(Layout::NAMES))
            })
        });
    }
    out
}

/// The codes `main` returns (see the README), and what each command adds.
const EXIT_CODES: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "A negative verdict: unsigned, untrusted, a mismatch, a cancelled write.",
    ),
    ("2", "Unreadable or malformed input, or a usage error."),
    ("70", "Internal error: a bug, please report it."),
];

const EXIT_NOTES: &[(&str, &str)] = &[
    ("inspect", "inspect prints the whole report and exits 2 when a lint of severity error fires (e.g. overlapping sections)."),
    ("verify", "verify exits 0 when every check passed (and a signature is trusted when anchors were given); 1 for unsigned, untrusted, revoked, hash-mismatch or bad-signature, or a .pcrsig that fails; 2 for malformed input."),
    ("keys", "keys exits 2, before writing anything, when create would replace a key, or when export finds a signer (PK for PK and KEK, KEK for db and dbx) that is not a CA certificate or has expired at the timestamp."),
    ("write", "write exits 1 when the confirmation was not given or the read-back differs, 2 for every refusal (system disk, mounted, read-only, too small), before anything is written, and 130 when interrupted."),
];

fn exit_status(roff: &mut Roff, name: &str) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_CODES {
        roff.control("TP", [])
            .text([bold(*code)])
            .text([roman(*what)]);
    }
    for (_, note) in EXIT_NOTES.iter().filter(|(cmd, _)| *cmd == name) {
        roff.control("PP", []).text([roman(*note)]);
    }
}

/// Examples per page: a command line (no shell quoting: the tests split it on spaces and
/// parse it) and what it does.
pub(crate) const EXAMPLES: &[(&str, &str, &str)] = &[
    ("ukitool", "ukitool inspect uki.efi", "Show everything inside a UKI."),
    ("ukitool", "ukitool verify --cert db.pem uki.efi", "Check its signature against a certificate."),
    ("ukitool", "ukitool image --uki uki.efi -o disk.img", "Make a bootable disk image from it."),
    ("ukitool", "ukitool completions bash", "Print the bash completion script (the Debian package installs it)."),
    ("inspect", "ukitool inspect uki.efi", "PE facts, sections with their hashes, UKI metadata, signatures and lints."),
    ("inspect", "ukitool inspect --json uki.efi", "The same report as JSON."),
    ("inspect", "ukitool inspect --no-hash /boot/efi/EFI/Linux/debian.efi", "Headers and metadata only: fast on a large UKI."),
    ("inspect", "ukitool inspect disk.img", "Partitions, the files on each ESP and every EFI binary there."),
    ("extract", "ukitool extract uki.efi .linux -o vmlinuz", "Take the kernel out, byte-exact."),
    ("extract", "ukitool extract uki.efi .cmdline", "Print the kernel command line."),
    ("extract", "ukitool extract uki.efi --all -o parts", "Every section into the directory parts."),
    ("verify", "ukitool verify uki.efi", "Is it signed, and does the signature match the image?"),
    ("verify", "ukitool verify --cert db.pem uki.efi", "Is it signed by a key this certificate vouches for?"),
    ("verify", "ukitool verify --db db.esl --dbx dbx.esl --json shimx64.efi", "Against Secure Boot signature lists, as JSON."),
    ("build", "ukitool build --stub /usr/lib/systemd/boot/efi/linuxx64.efi.stub --linux /boot/vmlinuz --initrd /boot/initrd.img --cmdline @cmdline.txt --os-release @/etc/os-release -o uki.efi", "Assemble a UKI from Debian's stub and kernel."),
    ("build", "ukitool build --stub linuxx64.efi.stub --linux vmlinuz --key db.key --cert db.pem -o uki.efi", "Assemble and sign in one step."),
    ("sign", "ukitool sign --key db.key --cert db.pem -o uki.signed.efi uki.efi", "Add an Authenticode signature."),
    ("sign", "ukitool sign --append --key other.key --cert other.pem -o uki.dual.efi uki.signed.efi", "Add a second signature."),
    ("measure", "ukitool measure uki.efi", "Predict PCR 11 for every bank and phase."),
    ("measure", "ukitool measure --json --bank sha256 uki.efi", "The sha256 bank, in systemd-measure's JSON shape."),
    ("measure", "ukitool measure --sign tpm2-pcr-private.pem uki.efi", "Sign the PCR policies: the .pcrsig JSON."),
    ("measure", "ukitool measure policy-digest uki.efi", "The TPM2 policy digests to sign offline, as systemd-measure policy-digest prints them."),
    ("diff", "ukitool diff old.efi new.efi", "What changed between two UKIs: sections, text, kernel, signers and PCR 11."),
    ("diff", "ukitool diff --json a.efi b.efi", "The same as JSON; exit 0 when the two are identical."),
    ("image", "ukitool image --uki uki.efi -o disk.img", "A GPT disk whose ESP boots the UKI as the removable-media path."),
    ("image", "ukitool image --uki uki.efi --layout systemd-boot --systemd-boot /usr/lib/systemd/boot/efi/systemd-bootx64.efi --size 2G -o disk.img", "A 2 GiB disk with systemd-boot and the UKI as a Type #2 entry."),
    ("image", "ukitool image --uki uki.efi --layout systemd-boot --systemd-boot systemd-bootx64.efi --secure-boot-keys keys --secure-boot-enroll force -o disk.img", "A disk that enrols the key set in keys on its first boot in setup mode, with systemd-boot and the UKI signed by its db key."),
    ("keys", "ukitool keys create keys", "Make PK (self-signed), KEK (certified by PK) and db (certified by KEK) keys and certificates in the directory keys."),
    ("keys", "ukitool keys export keys -o enrol --append-db MicCorUEFCA2011_2011-06-27.crt", "PK, KEK and db as .esl and signed .auth files, db also trusting Microsoft's UEFI CA."),
    ("inspect", "ukitool inspect enrol/db.auth", "The entries of an .auth file, its signer, timestamp and the variable it updates."),
    ("write", "ukitool write disk.img /dev/sdb", "Write an image to a USB stick, asking first, then read it back."),
    ("write", "ukitool write --layout uefi uki.efi /dev/sdb", "Make the disk image on the fly from a UKI and write it."),
    ("disks", "ukitool disks", "Block devices, and whether each is a safe target."),
    ("disks", "ukitool disks --json", "The same as JSON."),
    ("completions", "ukitool completions zsh", "Print the zsh completion script."),
    ("completions", "ukitool completions fish", "Print the fish completion script."),
];

fn examples(roff: &mut Roff, name: &str) {
    let mine: Vec<_> = EXAMPLES
        .iter()
        .filter(|(page, _, _)| *page == name)
        .collect();
    if mine.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (_, line, what) in mine {
        roff.control("TP", [])
            .text([bold(*line)])
            .text([roman(*what)]);
    }
}

fn see_also(roff: &mut Roff, root: &Command, name: &str) {
    let others: Vec<String> = std::iter::once("ukitool")
        .chain(
            root.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| s.get_name()),
        )
        .filter(|other| *other != name)
        .map(|other| format!("{}(1)", name_of(other)))
        .collect();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(others.join(", "))]);
}

/// `ukitool --version`: the version, the commit and whether the build is reproducible
/// (cli/build.rs finds them out).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("UKITOOL_COMMIT"),
    " (",
    env!("UKITOOL_TREE"),
    ")\nbuild: ",
    env!("UKITOOL_BUILD"),
);

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::EXAMPLES;

    #[test]
    fn every_example_parses_and_every_command_has_one() {
        for (page, line, _) in EXAMPLES {
            let words: Vec<&str> = line.split(' ').collect();
            assert!(!line.contains(['"', '\'']), "{line}: no shell quoting");
            if let Err(e) = crate::Cli::command().try_get_matches_from(&words) {
                panic!("{line}: {e}");
            }
            assert!(
                *page == "ukitool" || words.get(1) == Some(page),
                "{line} on {page}'s page"
            );
        }
        for sub in crate::Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            let name = sub.get_name();
            assert!(
                EXAMPLES.iter().any(|(p, _, _)| *p == name),
                "{name} has no example"
            );
        }
    }
}
