#!/usr/bin/env python3
"""Side-by-side benchmarks of ukitool against its peers (issue 8). Run through `make bench`
(bench/run.sh installs the peers first).

For each row, every command's output is first checked against an outside referee (same
digest, same extracted bytes, same measurement JSON, same bytes on the device...): a fast
wrong answer does not count, and a peer that fails its check is reported, not timed. The
commands are then timed with hyperfine (-N: no shell), ALTERNATING: each round runs every
command once, in an order rotated from round to round, after warm-up rounds; so a burst of
load on this shared machine hits all commands of a row alike. Medians of the rounds and
ratios come from the same rounds. Peak RSS is GNU `time -v`'s "Maximum resident set size"
from one extra run. Results go to bench/results.json; docs/benchmarks.md is regenerated,
keeping everything after its `<!-- notes -->` marker (the hand-written analysis).

    bench/run.sh [--quick] [--only ROW]...     ROW: inspect verify extract build sign
                                               measure image xfs talos write compress write-zst
                                               inspect-big
    bench/run.sh --doc-only                    docs/benchmarks.md from bench/results.json

--quick and --only write target/bench-partial.json and leave the published figures alone.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FIX = ROOT / "tests" / "fixtures" / "out"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
UKITOOL = TARGET / "release" / "ukitool"
SHA2SUM = TARGET / "release" / "sha2sum"
MEASURE = "/usr/lib/systemd/systemd-measure"
PY = "/usr/bin/python3"  # Debian's, which has python3-pefile
LIEF_PY = os.environ.get("UKITOOL_BENCH_LIEF_PYTHON", "")
RESULTS = BENCH / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
ROWS = ("inspect", "verify", "extract", "build", "sign", "measure", "image", "xfs", "talos", "write",
        "compress", "write-zst", "inspect-big")


def run(cmd, check=True, **kw):
    """Run an argv list or a shell-words string (never through a shell)."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
    r = subprocess.run(argv, capture_output=True, **kw)
    if check and r.returncode != 0:
        raise CheckFailed(f"`{' '.join(argv)}` exited {r.returncode}: "
                          f"{r.stderr.decode(errors='replace').strip()[-300:]}")
    return r


def out(cmd):
    return run(cmd).stdout.decode()


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def same_file(a, b):
    return run(["cmp", "-s", a, b], check=False).returncode == 0


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


class Cmd:
    """One command of a row. `check` returns a one-line description of what was verified
    or raises CheckFailed; `kind` is ukitool, peer or reference (a physical limit)."""

    def __init__(self, label, cmd, check=None, kind="peer"):
        self.label, self.cmd, self.check, self.kind = label, cmd, check, kind


class Bench:
    def __init__(self, rounds, warmup, work):
        self.rounds, self.warmup, self.work = rounds, warmup, Path(work)
        self.rows = []
        self.failed = False

    def _round(self, cmds, prepare, runs=1):
        out_json = self.work / "hf.json"
        args = ["hyperfine", "-N", "--style", "none", "--runs", str(runs),
                "--export-json", str(out_json)]
        for c in cmds:
            if prepare:
                args += ["--prepare", prepare]
            args += ["-n", c.label, c.cmd]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip()[-400:])
        # With one run per command, hyperfine's user/system means are that run's CPU time.
        return {x["command"]: (x["times"], [(x["user"] + x["system"]) / len(x["times"])] * len(x["times"]))
                for x in json.loads(out_json.read_text())["results"]}

    def row(self, rid, title, cmds, goal=None, prepare=None, rounds=None, warmup=None,
            skipped=(), note=""):
        """Check then time `cmds` (the first is ukitool's). Returns the row dict."""
        rounds = rounds or self.rounds
        warmup = self.warmup if warmup is None else warmup
        row = {"id": rid, "title": title, "goal": goal, "note": note, "rounds": rounds,
               "warmup_rounds": warmup, "commands": [], "skipped": list(skipped)}
        self.rows.append(row)
        print(f"== {title}", flush=True)
        ok = []
        for c in cmds:
            try:
                if prepare:
                    run(prepare, check=False)
                what = c.check() if c.check else "not checked"
                ok.append((c, what))
            except (CheckFailed, OSError) as e:
                print(f"   {c.label}: CHECK FAILED, not timed: {e}", flush=True)
                row["skipped"].append({"label": c.label, "reason": f"wrong output: {e}"})
                if c.kind == "ukitool":
                    self.failed = True
                    row["error"] = f"ukitool's own output failed its check: {e}"
                    return row
        for s in row["skipped"]:
            print(f"   {s['label']}: skipped: {s['reason']}")
        cmds = [c for c, _ in ok]
        row["load_before"] = list(os.getloadavg())
        times = {c.label: [] for c in cmds}
        cpu = {c.label: [] for c in cmds}
        try:
            for _ in range(warmup):
                self._round(cmds, prepare)
            for i in range(rounds):
                k = i % len(cmds)
                for label, (t, u) in self._round(cmds[k:] + cmds[:k], prepare).items():
                    times[label] += t
                    cpu[label] += u
        except RuntimeError as e:
            row["error"] = f"timing failed: {e}"
            print(f"   timing FAILED: {e}", flush=True)
            return row
        row["load_after"] = list(os.getloadavg())
        base = median(times[cmds[0].label])
        base_cpu = median(cpu[cmds[0].label])
        for c, what in ok:
            t = times[c.label]
            entry = {"label": c.label, "kind": c.kind, "command": c.cmd, "checked": what,
                     "median_s": median(t), "min_s": min(t), "times_s": t,
                     "ratio_vs_ukitool": median(t) / base if base else None,
                     "cpu_median_s": median(cpu[c.label]),
                     "cpu_ratio_vs_ukitool": median(cpu[c.label]) / base_cpu if base_cpu else None,
                     "peak_rss_kib": peak_rss(c.cmd, prepare)}
            row["commands"].append(entry)
            print(f"   {c.label:<34} {fmt_s(entry['median_s']):>10}  x{entry['ratio_vs_ukitool']:.2f}"
                  f"  cpu {fmt_s(entry['cpu_median_s']):>10}  x{entry['cpu_ratio_vs_ukitool'] or 0:.2f}"
                  f"  {fmt_kib(entry['peak_rss_kib'])}", flush=True)
        return row


def median(xs):
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] + s[(n - 1) // 2]) / 2 if n else None


def peak_rss(cmd, prepare=None):
    """Peak resident set size (KiB) of one run, from GNU time -v."""
    if prepare:
        run(prepare, check=False)
    r = subprocess.run(["/usr/bin/time", "-v"] + shlex.split(cmd), capture_output=True, text=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return int(m.group(1)) if m else None


def fmt_s(s):
    if s is None:
        return "-"
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"


def fmt_kib(k):
    return "-" if not k else (f"{k / 1024:.1f} MiB" if k >= 1024 else f"{k} KiB")


def gpt_partition(img, index=0):
    """(byte offset, byte length) of GPT entry `index` (512-byte sectors)."""
    with open(img, "rb") as f:
        f.seek(512)
        hdr = f.read(92)
        expect(hdr[:8] == b"EFI PART", f"{img}: no GPT header")
        entries_lba, _, entry_size = struct.unpack_from("<QII", hdr, 72)
        f.seek(entries_lba * 512 + index * entry_size + 32)
        first, last = struct.unpack("<QQ", f.read(16))
    return first * 512, (last + 1 - first) * 512


def gpt_partition_offset(img, index=0):
    return gpt_partition(img, index)[0]


def esp_is_clean(dev):
    """fsck.fat -n finds nothing wrong with the ESP of `dev` (a block device or an image)."""
    off, size = gpt_partition(dev)
    part = out(["losetup", "--find", "--show", "-o", str(off), "--sizelimit", str(size), "--read-only", dev]).strip()
    try:
        r = run(["fsck.fat", "-n", part], check=False)
    finally:
        subprocess.run(["losetup", "-d", part])
    text = (r.stdout + r.stderr).decode(errors="replace")
    noise = [l for l in text.splitlines() if l.strip() and not re.match(r"fsck\.fat |\S+: \d+ files, ", l)]
    expect(r.returncode == 0 and not noise, f"fsck.fat -n on the ESP: {' / '.join(noise)[:200]}")


def esp_file(img, path, dest):
    """Copy `path` out of the image's first partition with mtools (an outside reader)."""
    off = gpt_partition_offset(img)
    run(["mcopy", "-n", "-i", f"{img}@@{off}", f"::{path}", dest],
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 rounds after 1 warm-up, for a smoke test")
    ap.add_argument("--only", action="append", default=[], choices=ROWS)
    ap.add_argument("--doc-only", action="store_true",
                    help="only regenerate docs/benchmarks.md from bench/results.json (and the browser figures)")
    a = ap.parse_args()
    if a.doc_only:
        res = json.loads(RESULTS.read_text())
        res["browser"] = browser_figures() or res.get("browser")
        res["goals"] = evaluate_goals(res["rows"], res["browser"])
        RESULTS.write_text(json.dumps(res, indent=1) + "\n")
        write_doc(res["machine"], res["goals"], res["rows"], res["browser"])
        print(f"bench: regenerated {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
        return 0
    rounds, warmup = (3, 1) if a.quick else (11, 2)
    started = time.time()
    load_start = list(os.getloadavg())

    print("bench: cargo build --release (ukitool, sha2sum)", flush=True)
    subprocess.run(["cargo", "build", "--release", "-p", "ukitool", "-p", "ukitool-tests", "--bins"],
                   cwd=ROOT, check=True)
    # The talos and compress rows use the standard fixtures only.
    big_needed = not a.only or set(a.only) - {"talos", "compress"}
    print(f"bench: fixtures (tests/fixtures/generate.sh{' big' if big_needed else ''})", flush=True)
    subprocess.run(["bash", str(ROOT / "tests/fixtures/generate.sh")] + (["big"] if big_needed else []),
                   check=True)

    small, big, bigs = FIX / "uki.efi", FIX / "uki-big.efi", FIX / "uki-big-signed.efi"
    smalls, shim = FIX / "uki-signed.efi", FIX / "shimx64.efi.signed"
    snake, key = FIX / "snakeoil.pem", FIX / "snakeoil.key"
    U = str(UKITOOL)
    work = Path(tempfile.mkdtemp(prefix="ukibench-", dir=os.environ.get("UKITOOL_BENCH_TMP")))
    b = Bench(rounds, warmup, work)
    want = lambda r: not a.only or r in a.only
    lief_ok = bool(LIEF_PY) and run([LIEF_PY, "-c", "import lief"], check=False).returncode == 0
    print(f"bench: {rounds} alternating rounds after {warmup} warm-up round(s); work dir {work}")

    def ours_json(*args, exit_ok=(0,)):
        r = run([U, *args], check=False)
        if r.returncode not in exit_ok:
            raise CheckFailed(f"ukitool {args[0]} exited {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
        return json.loads(r.stdout)

    if want("inspect"):
        for f in (small, big, shim):
            table = [[s["name"], s["file_offset"], s["raw_size"]]
                     for s in ours_json("inspect", "--json", "--no-hash", f)["sections"]]
            # verify exits 1 on an unsigned file (a negative verdict), still printing the report.
            nsig = len(ours_json("verify", "--json", f, exit_ok=(0, 1))["signatures"])

            def sections_match(engine, f=f, table=table):
                py = LIEF_PY if engine == "lief" else PY
                theirs = json.loads(out([py, BENCH / "pe_sections.py", engine, f]))
                # A peer may leave a long name as its "/N" string-table reference.
                theirs = [[ours[0] if t[0].startswith("/") else t[0], *t[1:]]
                          for t, ours in zip(theirs, table)] + theirs[len(table):]
                expect(theirs == table, f"{engine} section table differs from ukitool's")
                return f"same section table as ukitool ({len(table)} sections)"

            def pesign_sigs(f=f, nsig=nsig):
                o = out(["pesign", "-S", "-i", f])
                n = 0 if "No signatures found" in o else o.count("certificate address is")
                expect(n == nsig, f"pesign lists {n} signatures, ukitool verify {nsig}")
                return f"same signature count as ukitool verify ({nsig})"

            cmds = [Cmd("ukitool inspect --no-hash", f"{U} inspect --no-hash --json {f}",
                        lambda: sections_match("pefile"), "ukitool"),
                    Cmd("pesign -S", f"pesign -S -i {f}", pesign_sigs),
                    Cmd("pefile parse (fast_load, as ukify)", f"{PY} {BENCH}/pe_sections.py pefile {f}",
                        lambda: sections_match("pefile"))]
            skipped = []
            if lief_ok:
                cmds.append(Cmd("LIEF parse", f"{LIEF_PY} {BENCH}/pe_sections.py lief {f}",
                                lambda: sections_match("lief")))
            else:
                skipped.append({"label": "LIEF parse", "reason": "`pip install lief` did not work here"})
            b.row(f"inspect-no-hash-{f.name}", f"inspect --no-hash, {f.name} ({f.stat().st_size / 2**20:.0f} MiB)",
                  cmds, goal={"kind": "abs_max", "s": 0.003} if f == big else None, skipped=skipped)

        for f in (small, big, bigs):
            def hashes_match(f=f):
                ours = [s["sha256"] for s in ours_json("inspect", "--json", f)["sections"]]
                theirs = json.loads(out([PY, BENCH / "pefile_hash.py", f]))
                expect(ours == theirs, "section sha256 differ between ukitool and pefile+hashlib")
                return f"same {len(ours)} section sha256 as pefile+hashlib"

            def sha_ok(f=f):
                expect(out([SHA2SUM, f]).split()[0] == sha256_file(f), "sha2sum differs from hashlib")
                return "equals hashlib.sha256 of the file"

            b.row(f"inspect-hash-{f.name}", f"inspect with section hashes, {f.name} ({f.stat().st_size / 2**20:.0f} MiB)", [
                Cmd("ukitool inspect", f"{U} inspect --json {f}", hashes_match, "ukitool"),
                Cmd("pefile+hashlib", f"{PY} {BENCH}/pefile_hash.py {f}", hashes_match),
                Cmd("sha2 one pass (limit)", f"{SHA2SUM} {f}", sha_ok, "reference"),
            ], goal={"kind": "ratio_max", "vs": "sha2 one pass (limit)", "max": 1.15})

    if want("verify"):
        for f in (smalls, bigs):
            digest = ours_json("verify", "--json", "--cert", snake, f)["image_digests"]["sha256"]

            def ours_ok(f=f, digest=digest):
                r = ours_json("verify", "--json", "--cert", snake, f)
                expect(r["verdict"] == "valid-trusted", f"verdict {r['verdict']}")
                h = out(["pesign", "-h", "-i", f]).split()[-1]
                expect(h == digest, f"Authenticode sha256 {digest} but pesign -h says {h}")
                return "valid-trusted; Authenticode digest equals pesign -h's"

            def sbv_ok(f=f):
                run(["sbverify", "--cert", snake, f])
                return "exit 0 (Signature verification OK)"

            def ossl_ok(f=f, digest=digest):
                o = run(["osslsigncode", "verify", "-CAfile", snake, "-in", f]).stdout.decode()
                m = re.search(r"Calculated message digest\s*:\s*([0-9A-Fa-f]+)", o)
                expect(m and m.group(1).lower() == digest, "calculated digest differs from ukitool's")
                return "exit 0; calculated digest equals ukitool's"

            def sum_ok(cmd, f=f):
                # sha2sum prints "HEX  PATH", openssl dgst -r "HEX *PATH".
                h = out(cmd).split()[0]
                expect(h.lower() == sha256_file(f), "digest differs from hashlib")
                return "equals hashlib.sha256 of the file"

            sha2 = f"{SHA2SUM} {f}"
            ossl = f"openssl dgst -sha256 -r {f}"
            b.row(f"verify-{f.name}", f"verify (full Authenticode), {f.name} ({f.stat().st_size / 2**20:.0f} MiB)", [
                Cmd("ukitool verify --cert", f"{U} verify --cert {snake} {f}", ours_ok, "ukitool"),
                Cmd("sbverify --cert", f"sbverify --cert {snake} {f}", sbv_ok),
                Cmd("osslsigncode verify", f"osslsigncode verify -CAfile {snake} -in {f}", ossl_ok),
                Cmd("sha2 one pass (limit)", sha2, lambda sha2=sha2: sum_ok(sha2), "reference"),
                Cmd("openssl dgst -sha256 (limit)", ossl, lambda ossl=ossl: sum_ok(ossl), "reference"),
            ], goal={"kind": "verify"} if f == bigs else None)

        shim_sigs = ours_json("verify", "--json", shim)["signatures"]

        def shim_ours():
            expect(len(shim_sigs) == 2, f"{len(shim_sigs)} signatures, want 2")
            return "2 signatures found and checked (no anchor given)"

        def shim_sbv():
            o = out(["sbverify", "--list", shim])
            expect(len(re.findall(r"^signature \d+$", o, re.M)) == 2, "sbverify --list does not list 2 signatures")
            return "lists 2 signatures (parses only, checks nothing)"

        ossl_shim = run(["osslsigncode", "verify", "-in", shim], check=False)
        b.row("verify-shim", "verify, dual-signed shim (1 MiB, no anchor)", [
            Cmd("ukitool verify", f"{U} verify {shim}", shim_ours, "ukitool"),
            Cmd("sbverify --list", f"sbverify --list {shim}", shim_sbv),
        ], skipped=[] if ossl_shim.returncode == 0 else [
            {"label": "osslsigncode verify", "reason": "cannot read the file: " + "; ".join(
                l.strip() for l in (ossl_shim.stdout + ossl_shim.stderr).decode(errors="replace").splitlines()
                if re.search(r"Corrupt|Unable|Failed|rror", l))[:160]}])

    if want("extract"):
        ref = work / "linux.ref"
        run(["objcopy", "-O", "binary", "--only-section=.linux", big, ref])
        o1, o2 = work / "linux.ours", work / "linux.objcopy"

        def same_as_kernel(p, cmd):
            run(cmd)
            expect(same_file(p, FIX / "vmlinuz"), f"{p.name} differs from the kernel built into the UKI")
            return "byte-identical to tests/fixtures/out/vmlinuz"

        ours = f"{U} extract {big} .linux -o {o1} --force"
        theirs = f"objcopy -O binary --only-section=.linux {big} {o2}"
        # -o FILE writes a temporary file, fsyncs it and renames it into place (a crash never
        # leaves a half-written output); objcopy does not fsync. To stdout there is no fsync.
        o3 = work / "linux.stdout"
        piped = f"sh -c '{U} extract {big} .linux -o - > {o3}'"
        b.row("extract", "extract .linux (8 MiB) from the 110 MiB UKI", [
            Cmd("ukitool extract -o FILE", ours, lambda: same_as_kernel(o1, ours), "ukitool"),
            Cmd("objcopy --only-section", theirs, lambda: same_as_kernel(o2, theirs)),
            Cmd("ukitool extract > FILE (no fsync)", piped, lambda: same_as_kernel(o3, piped), "ukitool-variant"),
        ], goal={"kind": "ratio_max", "vs": "objcopy --only-section", "max": 0.5})

    parts = work / "parts"
    if want("build") or want("measure"):
        run([U, "extract", big, "--all", "-o", parts, "--force"])

    if want("build"):
        stub, k, initrd = FIX / "linuxx64.efi.stub", FIX / "vmlinuz", parts / "initrd"
        osrel, cmdline = FIX / "os-release", FIX / "cmdline"
        o1, o2 = work / "b-ours.efi", work / "b-objcopy.efi"

        def built_ok(p, cmd):
            run(["rm", "-f", p])
            run(cmd)
            for sec, want_file in ((".linux", k), (".initrd", initrd), (".osrel", osrel)):
                x = work / "sec.bin"
                run(["objcopy", "-O", "binary", f"--only-section={sec}", p, x])
                expect(same_file(x, want_file), f"{sec} read back by objcopy differs from its input")
            return "objcopy reads .linux, .initrd, .osrel back byte-identical"

        ours = (f"{U} build --stub {stub} --linux {k} --initrd {initrd} --os-release @{osrel} "
                f"--cmdline @{cmdline} --uname {(FIX / 'uname').read_text().strip()} -o {o1}")
        theirs = f"bash {BENCH}/objcopy_build.sh {stub} {k} {initrd} {osrel} {cmdline} {o2}"
        skipped = [] if shutil.which("dracut") else [{"label": "dracut --uefi", "reason": "dracut is not installed"}]
        b.row("build", "build a UKI (8 MiB kernel, 100 MiB initrd)", [
            Cmd("ukitool build", ours, lambda: built_ok(o1, ours), "ukitool"),
            Cmd("objcopy recipe", theirs, lambda: built_ok(o2, theirs)),
        ], prepare=f"rm -f {o1} {o2}", skipped=skipped, rounds=max(3, rounds // 2))

    if want("sign"):
        o1, o2 = work / "s-ours.efi", work / "s-sbsign.efi"
        want_digest = ours_json("verify", "--json", bigs)["image_digests"]["sha256"]

        def signed_ok(p, cmd):
            run(["rm", "-f", p])
            run(cmd)
            run(["sbverify", "--cert", snake, p])
            h = out(["pesign", "-h", "-i", p]).split()[-1]
            expect(h == want_digest, "signed image's Authenticode digest differs from uki-big-signed.efi's")
            return "sbverify --cert accepts it; pesign -h digest as uki-big-signed.efi"

        ours = f"{U} sign {big} --key {key} --cert {snake} -o {o1}"
        theirs = f"sbsign --key {key} --cert {snake} --output {o2} {big}"
        b.row("sign", "sign the 110 MiB UKI", [
            Cmd("ukitool sign", ours, lambda: signed_ok(o1, ours), "ukitool"),
            Cmd("sbsign", theirs, lambda: signed_ok(o2, theirs)),
        ], prepare=f"rm -f {o1} {o2}", rounds=max(3, rounds // 2))

    if want("measure"):
        if Path(MEASURE).exists():
            # systemd 252's measure has no --uname; both tools get the same parts.
            p = (f"--linux={parts}/vmlinuz --osrel={parts}/os-release --cmdline={parts}/cmdline "
                 f"--initrd={parts}/initrd --splash={parts}/splash.bmp")
            theirs = f"{MEASURE} calculate --json=short {p} --bank=sha256"
            ours = f"{U} measure {p} --json --bank sha256"

            def measure_ok():
                a_, b_ = json.loads(out(ours)), json.loads(out(theirs))
                expect(a_ == b_, "PCR 11 predictions differ")
                return "same JSON (4 phases, sha256) as systemd-measure"

            b.row("measure", "measure PCR 11 from parts (100 MiB initrd)", [
                Cmd("ukitool measure", ours, measure_ok, "ukitool"),
                Cmd("systemd-measure calculate", theirs, measure_ok),
            ])

    if want("image"):
        for size in ("1G", "64G"):
            o1, o2, o3 = work / f"i-ours-{size}.img", work / f"i-classic-{size}.img", work / f"i-repart-{size}.img"
            x = work / "bootx64.efi"

            def image_ok(img, cmd):
                run(["rm", "-f", img, x])
                run(cmd)
                expect(os.path.getsize(img) == (1 << 30) * int(size[:-1]), "wrong image size")
                v = out(["sgdisk", "-v", img])
                expect("No problems found" in v, f"sgdisk -v: {v.strip()[-200:]}")
                esp_is_clean(img)
                esp_file(img, "/EFI/BOOT/BOOTX64.EFI", x)
                expect(same_file(x, big), "BOOTX64.EFI read back by mtools differs from the UKI")
                return "sgdisk -v, fsck.fat -n clean; mtools reads BOOTX64.EFI back byte-identical"

            def copy_ok():
                run(["cp", big, work / "copy.efi"])
                expect(same_file(work / "copy.efi", big), "copy differs")
                return "byte-identical"

            ours = f"{U} image --uki {big} -o {o1} --size {size} --esp-size 512M -q"
            classic = f"bash {BENCH}/classic_image.sh {big} {o2} {size}"
            cmds = [Cmd("ukitool image", ours, lambda ours=ours, o1=o1: image_ok(o1, ours), "ukitool"),
                    Cmd("truncate+sgdisk+mkfs.vfat+mcopy", classic, lambda c=classic, o2=o2: image_ok(o2, c))]
            skipped = []
            repart_d = work / "repart.d"
            repart_d.mkdir(exist_ok=True)
            (repart_d / "10-esp.conf").write_text(
                "[Partition]\nType=esp\nFormat=vfat\nLabel=EFI\nSizeMinBytes=512M\nSizeMaxBytes=512M\n"
                f"CopyFiles={big}:/EFI/BOOT/BOOTX64.EFI\n")
            repart = (f"systemd-repart --empty=create --size={size} --definitions={repart_d} "
                      f"--dry-run=no --no-pager {o3}")
            try:
                cmds.append(Cmd("systemd-repart CopyFiles=", repart, None))
                cmds[-1].check = (lambda r=repart, o3=o3: image_ok(o3, r))
                run(["rm", "-f", o3])
                run(repart)
            except CheckFailed as e:
                cmds.pop()
                why = str(e)
                m = re.search(r"Failed to mount[^\n]*", why)
                skipped.append({"label": "systemd-repart CopyFiles=",
                                "reason": "cannot run here: " + (m.group(0) if m else why[-200:]) +
                                " (systemd 252 mounts the new vfat to copy files; this kernel has no vfat)"})
            cmds.append(Cmd("cp the UKI once (limit)", f"cp {big} {work}/copy.efi", copy_ok, "reference"))
            b.row(f"image-{size}", f"image, {size} disk, 110 MiB UKI on a 512 MiB ESP", cmds,
                  goal={"kind": "image"}, prepare=f"rm -f {o1} {o2} {o3} {work}/copy.efi", skipped=skipped,
                  rounds=max(3, rounds // 2))
            for p in (o1, o2, o3):
                run(["rm", "-f", p])

    if want("xfs"):
        bench_xfs(b, U, small, work, rounds)

    if want("talos"):
        bench_talos(b, U, small, work, rounds)

    if want("compress"):
        bench_compress(b, U, small, work, rounds)

    if want("inspect-big"):
        bench_inspect_big(b, U, bigs, work, rounds)

    if want("write"):
        if os.geteuid() != 0 or not shutil.which("losetup"):
            b.rows.append({"id": "write", "title": "write to a loop device", "error": "needs root and losetup"})
        else:
            bench_write(b, U, big, work, rounds)

    if want("write-zst"):
        if os.geteuid() != 0 or not shutil.which("losetup"):
            b.rows.append({"id": "write-zst", "title": "write metal.raw.zst", "error": "needs root and losetup"})
        else:
            bench_write_zst(b, U, small, work, rounds)

    browser = browser_figures()

    machine = machine_info()
    machine["load_average_start"] = load_start
    machine["load_average_end"] = list(os.getloadavg())
    machine["duration_s"] = round(time.time() - started, 1)
    goals = evaluate_goals(b.rows, browser)
    result = json.dumps({"machine": machine, "goals": goals, "rows": b.rows, "browser": browser}, indent=1) + "\n"
    shutil.rmtree(work, ignore_errors=True)
    if a.only or a.quick:
        # A partial or smoke run must not replace the published figures.
        partial = TARGET / "bench-partial.json"
        partial.write_text(result)
        print(f"bench: wrote {partial} in {machine['duration_s']} s (bench/results.json and the docs untouched)")
    else:
        RESULTS.write_text(result)
        write_doc(machine, goals, b.rows, browser)
        print(f"bench: wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)} in {machine['duration_s']} s")
    for g in goals:
        print(f"   goal {'MET   ' if g['met'] else 'MISSED' if g['met'] is False else '  ?   '} {g['goal']}: {g['figure']}")
    return 1 if b.failed else 0


def bench_xfs(b, U, uki, work, rounds):
    """An XFS BOOT volume of 2000 MiB holding 110 MiB of files (Debian's kernel and initrd
    and a 101 MiB initramfs): `ukitool image --add-partition ... --add-file-to` against
    `mkfs.xfs -p PROTOFILE` on a file. ukitool's image also holds the ESP (the 9 MiB
    uki.efi) and the GPT; mkfs.xfs writes the volume alone."""
    src = work / "xfs-src"
    src.mkdir(exist_ok=True)
    shutil.copy(FIX / "vmlinuz", src / "vmlinuz")
    shutil.copy(FIX / "initrd.cpio.gz", src / "initrd.cpio.gz")
    import random
    (src / "initramfs.xz").write_bytes(random.Random(110).randbytes(101 << 20))
    names = sorted(p.name for p in src.iterdir())
    proto = work / "xfs.proto"
    proto.write_text("/dev/null\n0 0\nd--755 0 0\nA d--755 0 0\n" +
                     "".join(f"{n} ---644 0 0 {src / n}\n" for n in names) + "$\n$\n")
    o1, o2, part = work / "x-ours.img", work / "x-mkfs.img", work / "x-part.xfs"

    def volume_ok(vol):
        r = run(["xfs_repair", "-n", "-f", vol], check=False)
        text = (r.stdout + r.stderr).decode(errors="replace")
        expect(r.returncode == 0 and "would" not in text, f"xfs_repair -n: {text.strip()[-200:]}")
        for n in names:
            c = run(["grub-fstest", vol, "cmp", f"/A/{n}", src / n], check=False)
            expect(c.returncode == 0 and not c.stdout, f"grub-fstest cmp /A/{n}: {c.stdout[-200:]}")
        return f"xfs_repair -n clean; grub-fstest reads the {len(names)} files back byte-identical"

    def ours_ok(cmd):
        run(["rm", "-f", o1])
        run(cmd)
        off, size = gpt_partition(o1, 1)
        run(["dd", f"if={o1}", f"of={part}", "bs=1M", f"skip={off >> 20}", f"count={size >> 20}",
             "conv=sparse", "status=none"])
        try:
            return volume_ok(part)
        finally:
            run(["rm", "-f", part])

    def mkfs_ok(cmd):
        run(cmd)
        return volume_ok(o2)

    ours = (f"{U} image -q --uki {uki} -o {o1} --timestamp 1 --add-partition BOOT:2000M:linux:xfs "
            f"--add-file-to BOOT:{src}:/A")
    theirs = f"bash {BENCH}/xfs_mkfs.sh {proto} {o2} 2000M"
    copy = f"cp -r {src} {work}/xfs-copy"
    b.row("xfs", "XFS BOOT volume, 2000 MiB, 110 MiB of files", [
        Cmd("ukitool image (ESP + XFS BOOT)", ours, lambda: ours_ok(ours), "ukitool"),
        Cmd("truncate + mkfs.xfs -p protofile", theirs, lambda: mkfs_ok(theirs)),
        Cmd("cp the files once (limit)", copy, lambda: "byte-identical (cp)", "reference"),
    ], prepare=f"rm -rf {o1} {o2} {work}/xfs-copy", rounds=max(3, rounds // 2))
    for p in (o1, o2):
        run(["rm", "-f", p])
    shutil.rmtree(work / "xfs-copy", ignore_errors=True)


def bench_talos(b, U, uki, work, rounds):
    """Talos's dual-boot metal image (4247 MiB) from the fixture UKI: ukitool against the
    classic chain Talos 1.13+ runs on a file (bench/classic_talos.sh)."""
    sdboot, grub_dir = FIX / "systemd-bootx64.efi", "/usr/lib/grub/i386-pc"
    o1, o2 = work / "t-ours.img", work / "t-classic.img"
    esp_uki = work / "talos-uki.efi"
    boot = work / "t-boot.xfs"

    def talos_ok(img, cmd):
        run(["rm", "-f", img])
        run(cmd)
        expect(os.path.getsize(img) == 4247 << 20, "not the 4247 MiB dual-boot size")
        v = out(["sgdisk", "-v", img])
        expect("No problems found" in v, f"sgdisk -v: {v.strip()[-200:]}")
        esp_is_clean(img)
        esp_file(img, "/EFI/Linux/Talos-1.0.efi", esp_uki)
        expect(same_file(esp_uki, uki), "EFI/Linux/Talos-1.0.efi read back by mtools differs from the UKI")
        off, size = gpt_partition(img, 2)
        run(["dd", f"if={img}", f"of={boot}", "bs=1M", f"skip={off >> 20}", f"count={size >> 20}",
             "conv=sparse", "status=none"])
        r = run(["xfs_repair", "-n", "-f", boot], check=False)
        run(["rm", "-f", boot])
        expect(r.returncode == 0, f"xfs_repair -n on BOOT: {r.stderr.decode(errors='replace')[-200:]}")
        return "4247 MiB; sgdisk -v, fsck.fat -n, xfs_repair -n clean; mtools reads the UKI back byte-identical"

    ours = (f"{U} image --uki {uki} -o {o1} --layout talos --systemd-boot {sdboot} "
            f"--grub-bios {grub_dir} -q")
    classic = f"bash {BENCH}/classic_talos.sh {uki} {sdboot} {grub_dir} {o2}"
    cmds = [Cmd("ukitool image --layout talos", ours, lambda: talos_ok(o1, ours), "ukitool"),
            Cmd("truncate+sgdisk+mkfs.vfat+mkfs.xfs -p+mcopy+grub-mkimage+dd", classic,
                lambda: talos_ok(o2, classic))]
    b.row("talos", "Talos dual-boot metal image (4247 MiB), 9 MiB UKI", cmds,
          prepare=f"rm -f {o1} {o2}", rounds=max(3, rounds // 2),
          note="the classic chain writes no META (no command-line writer); ukitool's image has it")
    for p in (o1, o2):
        run(["rm", "-f", p])


def bench_compress(b, U, uki, work, rounds):
    """`image -o x.raw.zst` (zstd in-process, one worker per core) against `image -o - |
    zstd -T0` on Talos's dual-boot metal image (4247 MiB, mostly zeros). Both must
    decompress to the raw image ukitool writes with the same options."""
    sdboot, grub_dir = FIX / "systemd-bootx64.efi", "/usr/lib/grub/i386-pc"
    raw, o1, o2 = work / "z.img", work / "z-ours.raw.zst", work / "z-pipe.raw.zst"
    args = (f"{U} image --uki {uki} --layout talos --systemd-boot {sdboot} "
            f"--grub-bios {grub_dir}")
    run(f"{args} -o {raw} -q")

    def zst_ok(o, cmd):
        run(["rm", "-f", o])
        run(cmd)
        run(["zstd", "-t", "-q", o])
        r = subprocess.run(f"zstd -dc {shlex.quote(str(o))} | cmp - {shlex.quote(str(raw))}",
                           shell=True, capture_output=True)
        expect(r.returncode == 0, f"zstd -dc differs from the raw image: {r.stdout[-200:]!r}")
        return f"zstd -t passes; decompresses to the raw image ({os.path.getsize(o)} bytes)"

    ours = f"{args} -o {o1} -q"
    pipe = f"bash {BENCH}/image_zstd_pipe.sh {o2} {args}"
    b.row("image-zst", "image -o x.raw.zst, Talos metal image (4247 MiB), 9 MiB UKI", [
        Cmd("ukitool image -o x.raw.zst", ours, lambda: zst_ok(o1, ours), "ukitool"),
        Cmd("ukitool image -o - | zstd -T0", pipe, lambda: zst_ok(o2, pipe)),
    ], prepare=f"rm -f {o1} {o2}", rounds=max(3, rounds // 2))
    for p in (raw, o1, o2):
        run(["rm", "-f", p])


def bench_write(b, U, big, work, rounds):
    img = work / "w.img"
    run([U, "image", "--uki", big, "-o", img, "--size", "1G", "-q"])
    bmap = work / "w.bmap"
    run(["bmaptool", "create", "-o", bmap, img])
    backing = work / "loopback"
    run(["truncate", "-s", "1G", backing])
    # Direct I/O to the backing file, as on a real disk: no page cache absorbing the writes.
    dev = out(["losetup", "--find", "--show", "--direct-io=on", backing]).strip()
    junk = bytes([0xA5]) * (1 << 20)

    def dirty():
        # Stale bytes over the whole ESP (the image's first 160 MiB) and every 32 MiB after:
        # a writer that skips zeros the file system needs (a FAT's free entries) leaves a
        # corrupt FAT, which fsck.fat then reports.
        with open(dev, "r+b") as f:
            for off in list(range(0, 160 << 20, 1 << 20)) + list(range(160 << 20, 1 << 30, 32 << 20)):
                f.seek(off)
                f.write(junk)
            os.fsync(f.fileno())

    def written_ok(cmd):
        # On a device full of stale bytes: the GPT, the ESP's FAT and the UKI must come out
        # right. Bytes in the image's holes (free clusters, unpartitioned space) may stay
        # stale: sparse writers (ukitool, bmaptool) skip them by design.
        dirty()
        run(cmd)
        v = out(["sgdisk", "-v", dev])
        expect("No problems found" in v, f"sgdisk -v on the device: {v.strip()[-200:]}")
        esp_is_clean(dev)
        x = work / "w-bootx64.efi"
        run(["rm", "-f", x])
        esp_file(dev, "/EFI/BOOT/BOOTX64.EFI", x)
        expect(same_file(x, big), "BOOTX64.EFI read back from the device differs from the UKI")
        same = run(["cmp", "-n", str(1 << 30), img, dev], check=False).returncode == 0
        return ("sgdisk -v, fsck.fat -n clean; BOOTX64.EFI reads back identical; device " +
                ("byte-identical to the image" if same else "keeps stale bytes in the image's holes only"))

    try:
        ours = f"{U} write {img} {dev} --yes"
        ours_nv = f"{U} write {img} {dev} --yes --no-verify"
        dd = f"dd if={img} of={dev} bs=4M oflag=direct conv=fsync status=none"
        bt = f"bmaptool -q copy --bmap {bmap} {img} {dev}"
        b.row("write", "write a 1 GiB image (113 MiB of data) to a loop device", [
            Cmd("ukitool write (verifies)", ours, lambda: written_ok(ours), "ukitool"),
            Cmd("ukitool write --no-verify", ours_nv, lambda: written_ok(ours_nv), "ukitool-variant"),
            Cmd("dd bs=4M oflag=direct conv=fsync", dd, lambda: written_ok(dd)),
            Cmd("bmaptool copy (bmap made beforehand)", bt, lambda: written_ok(bt)),
        ], goal={"kind": "write"}, rounds=3, warmup=1)
    finally:
        subprocess.run(["losetup", "-d", dev])


def bench_write_zst(b, U, uki, work, rounds):
    """Issue 17: Talos's 4247 MiB metal image as Talos ships it (metal-amd64.raw.zst, made
    here by the zstd CLI from ukitool's talos layout), written to a loop device: ukitool
    decodes it in-process and zeroes the zero runs (BLKZEROOUT), against the by-hand
    `zstd -dc | dd` and bmaptool with a bmap made beforehand."""
    sdboot, grub_dir = FIX / "systemd-bootx64.efi", "/usr/lib/grub/i386-pc"
    raw, zst = work / "metal.raw", work / "metal.raw.zst"
    bdir = work / "bmaps"  # away from the image, so `write` does not find it by itself
    bdir.mkdir(exist_ok=True)
    bmap = bdir / "metal.bmap"
    run([U, "image", "--uki", uki, "-o", raw, "--layout", "talos", "--systemd-boot", sdboot,
         "--grub-bios", grub_dir, "-q"])
    run(["rm", "-f", zst])
    run(["zstd", "-q", "-T0", raw, "-o", zst])
    run(["bmaptool", "create", "-o", bmap, raw])
    size = os.path.getsize(raw)
    backing = work / "loopback-zst"
    run(["rm", "-f", backing])
    run(["truncate", "-s", str(size), backing])
    dev = out(["losetup", "--find", "--show", "--direct-io=on", backing]).strip()
    junk = bytes([0xA5]) * (1 << 20)

    def dirty():
        # Stale bytes every 256 MiB, in the image's zero runs too: a full writer must zero them.
        with open(dev, "r+b") as f:
            for off in range(0, size, 256 << 20):
                f.seek(off)
                f.write(junk)
            os.fsync(f.fileno())

    def full_ok(cmd):
        dirty()
        run(["bash", "-c", cmd] if "|" in cmd else cmd)
        expect(run(["cmp", "-n", str(size), raw, dev], check=False).returncode == 0,
               "the device differs from metal.raw")
        return "the device reads back byte-identical to metal.raw (stale bytes zeroed)"

    def mapped_ok(cmd):
        dirty()
        run(cmd)
        v = out(["sgdisk", "-v", dev])
        expect("No problems found" in v, f"sgdisk -v on the device: {v.strip()[-200:]}")
        esp_is_clean(dev)
        return "sgdisk -v, fsck.fat -n clean (mapped ranges only; holes keep stale bytes)"

    try:
        ours = f"{U} write {zst} {dev} --yes --no-bmap"
        ours_nv = f"{U} write {zst} {dev} --yes --no-bmap --no-verify"
        ours_bmap = f"{U} write {zst} {dev} --yes --bmap {bmap}"
        dd = f"zstd -dc {zst} | dd of={dev} bs=4M oflag=direct iflag=fullblock conv=fsync status=none"
        bt = f"bmaptool -q copy --bmap {bmap} {zst} {dev}"
        b.row("write-zst", f"write metal.raw.zst ({size >> 20} MiB image, "
              f"{os.path.getsize(zst) >> 20} MiB compressed) to a loop device", [
            Cmd("ukitool write (verifies)", ours, lambda: full_ok(ours), "ukitool"),
            Cmd("ukitool write --no-verify", ours_nv, lambda: full_ok(ours_nv), "ukitool-variant"),
            Cmd("ukitool write --bmap (verifies)", ours_bmap, lambda: mapped_ok(ours_bmap), "ukitool-variant"),
            Cmd("zstd -dc | dd bs=4M oflag=direct", f"bash -c {shlex.quote(dd)}", lambda: full_ok(dd)),
            Cmd("bmaptool copy (bmap made beforehand)", bt, lambda: mapped_ok(bt)),
        ], goal={"kind": "write-zst"}, rounds=3, warmup=1)
    finally:
        subprocess.run(["losetup", "-d", dev])
        for p in (raw, zst, backing):
            run(["rm", "-f", p])


def bench_inspect_big(b, U, big, work, rounds):
    """`ukitool inspect` of the 4247 MiB Talos dual-boot image with the 110 MiB signed UKI
    on its ESP, raw (pread) and compressed by the zstd and xz tools (one streaming pass,
    ukitool_core::stream): time and peak RSS. Goal (issue 17): under 64 MiB plus the
    codec's window (8 MiB for zstd -3 and xz -1 here). The reference is decoding alone."""
    sdboot, grub = FIX / "systemd-bootx64.efi", FIX / "grubx64.efi.signed"
    img = work / "talos-big.raw"
    run(["rm", "-f", img])
    run([U, "image", "--uki", big, "-o", img, "--layout", "talos", "--systemd-boot", sdboot,
         "--grub", grub, "--grub-bios", "/usr/lib/grub/i386-pc", "-q"])
    run(["zstd", "-q", "-f", "-3", "-T0", "-k", img])
    run(["xz", "-f", "-1", "-T0", "-k", img])
    want = out([U, "inspect", img])

    def same(cmd):
        got = out(shlex.split(cmd))
        # The first two lines name the file and its compression.
        expect(got.splitlines()[2:] == want.splitlines()[2:], "listing differs from the raw image's")
        expect("valid-untrusted" in got, "the UKI's signature was not checked")
        return "listing identical to the raw image's; the UKI's signature checked over a streamed digest"

    cmds = []
    for ext in ("zst", "xz"):
        c = f"{U} inspect {img}.{ext}"
        cmds.append(Cmd(f"ukitool inspect .raw.{ext}", c, lambda c=c: same(c), "ukitool" if ext == "zst" else "ukitool-variant"))
    raw = f"{U} inspect {img}"
    cmds.append(Cmd("ukitool inspect .raw (pread)", raw, lambda: same(raw), "ukitool-variant"))
    cmds.append(Cmd("zstd -dc > /dev/null (decoding alone)", f"bash -c 'zstd -dc {img}.zst > /dev/null'", None, "reference"))
    b.row("inspect-big", "inspect of the 4247 MiB Talos image (110 MiB signed UKI), .raw.zst / .raw.xz / .raw",
          cmds, rounds=max(1, rounds // 5), warmup=0,
          note="peak RSS goal: < 64 MiB + the codec's window; one streaming pass, restarted only to re-read the UKI")
    for p in (img, f"{img}.zst", f"{img}.xz"):
        run(["rm", "-f", p])


def browser_figures():
    """The browser tests' figures (tests/e2e/bench.test.js and bigdisk.test.js), not
    re-measured here."""
    f = ROOT / "tests" / "artifacts" / "browser-bench.json"
    try:
        figures = json.loads(f.read_text())
    except (OSError, ValueError):
        figures = None
    try:
        big = json.loads((ROOT / "tests" / "artifacts" / "bigdisk-bench.json").read_text())
        figures = {**(figures or {}), "big_disks_in_the_page_ms": big}
    except (OSError, ValueError):
        pass
    return figures


def machine_info():
    cpuinfo = open("/proc/cpuinfo").read()
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)

    def version(cmd):
        try:
            return subprocess.run(shlex.split(cmd), capture_output=True, text=True).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            return None

    return {
        "cpu": next((l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")),
                    platform.processor()),
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**20, 1),
        "kernel": platform.release(),
        "sha_ni": bool(re.search(r"\bsha_ni\b", cpuinfo)),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "ukitool": version(f"{UKITOOL} --version"),
        "rustc": version("rustc --version"),
        "hyperfine": version("hyperfine --version"),
        "systemd": version("systemd-repart --version"),
        "openssl": version("openssl version"),
    }


def find(rows, rid):
    return next((r for r in rows if r.get("id") == rid and r.get("commands")), None)


def cmd_of(row, label):
    return next((c for c in row["commands"] if c["label"] == label), None) if row else None


def cpu_ratio(a, b):
    """ " (CPU a/b)" for a goal's figure; '' when a figure is missing."""
    if not (a and b and a.get("cpu_median_s") and b.get("cpu_median_s")):
        return ""
    return f" (CPU {a['cpu_median_s'] / b['cpu_median_s']:.2f}x)"


def evaluate_goals(rows, browser=None):
    goals = []

    def add(goal, met, figure):
        goals.append({"goal": goal, "met": met, "figure": figure})

    try:
        c, n = browser["chromium"]["verify_ms_median"], browser["native"]["verify_ms_median"]
        add("browser verify vs native (recorded; the browser's goal is the next line)", None,
            f"{c} ms in Chromium, {n} ms native: {c / n:.2f}x ({browser['chromium'].get('engine', '?')})")
    except (TypeError, KeyError, ZeroDivisionError):
        pass
    try:
        v = browser["verify_vs_webcrypto"]
        add("browser verify <= 1.5x one in-page WebCrypto SHA-256 pass (110 MiB signed UKI)",
            v["ratio"] <= v["goal"],
            f"{v['ratio']:.2f}x: {v['verify_ms_median']} ms verify, {v['webcrypto_sha256_pass_ms_median']} ms one pass")
    except (TypeError, KeyError):
        pass
    try:
        p = browser["pcr"]
        add("browser PCR 11 <= 3x `ukitool measure` (110 MiB signed UKI)",
            p["ratio"] <= p["goal"] if p["ratio"] is not None else None,
            f"{p['ratio']}x: {p['chromium_ms_median']} ms in Chromium, {p['native_measure_ms_median']} ms native")
    except (TypeError, KeyError):
        pass

    r = find(rows, "inspect-no-hash-uki-big.efi")
    if r:
        t = r["commands"][0]["median_s"]
        add("inspect --no-hash <= 3 ms on 110 MiB", t <= 0.003, f"{fmt_s(t)} (process start included)")
    r = find(rows, "inspect-hash-uki-big.efi")
    if r and cmd_of(r, "sha2 one pass (limit)"):
        x = r["commands"][0]["median_s"] / cmd_of(r, "sha2 one pass (limit)")["median_s"]
        add("inspect with hashes <= 1.15x one sha2 pass (110 MiB, unsigned)", x <= 1.15,
            f"{x:.2f}x" + cpu_ratio(r["commands"][0], cmd_of(r, "sha2 one pass (limit)")))
    r = find(rows, "verify-uki-big-signed.efi")
    if r:
        ours = r["commands"][0]["median_s"]
        s = cmd_of(r, "sha2 one pass (limit)")
        if s:
            add("verify <= 1.15x one sha2 pass (110 MiB)", ours / s["median_s"] <= 1.15,
                f"{ours / s['median_s']:.2f}x" + cpu_ratio(r["commands"][0], s))
        s = cmd_of(r, "sbverify --cert")
        if s:
            add("verify >= 1.9x faster than sbverify", s["median_s"] / ours >= 1.9,
                f"{s['median_s'] / ours:.2f}x faster" + cpu_ratio(s, r["commands"][0]))
    r = find(rows, "extract")
    if r and cmd_of(r, "objcopy --only-section"):
        x = r["commands"][0]["median_s"] / cmd_of(r, "objcopy --only-section")["median_s"]
        add("extract <= 0.5x objcopy", x <= 0.5,
            f"{x:.2f}x" + cpu_ratio(r["commands"][0], cmd_of(r, "objcopy --only-section")))
        v = cmd_of(r, "ukitool extract > FILE (no fsync)")
        if v:
            y = v["median_s"] / cmd_of(r, "objcopy --only-section")["median_s"]
            add("extract <= 0.5x objcopy, to stdout (no fsync, as objcopy)", y <= 0.5,
                f"{y:.2f}x" + cpu_ratio(v, cmd_of(r, "objcopy --only-section")))
    rss = {}
    for size in ("1G", "64G"):
        r = find(rows, f"image-{size}")
        if r and cmd_of(r, "cp the UKI once (limit)"):
            x = r["commands"][0]["median_s"] / cmd_of(r, "cp the UKI once (limit)")["median_s"]
            add(f"image {size} <= 1.2x writing the data once", x <= 1.2,
                f"{x:.2f}x cp" + cpu_ratio(r["commands"][0], cmd_of(r, "cp the UKI once (limit)")))
            rss[size] = r["commands"][0]["peak_rss_kib"]
    if rss.get("1G") and rss.get("64G"):
        d = rss["64G"] - rss["1G"]
        add("image memory independent of disk size", abs(d) <= max(1024, rss["1G"] // 20),
            f"{fmt_kib(rss['1G'])} at 1 GiB, {fmt_kib(rss['64G'])} at 64 GiB")
    r = find(rows, "image-zst")
    if r and cmd_of(r, "ukitool image -o - | zstd -T0"):
        x = r["commands"][0]["median_s"] / cmd_of(r, "ukitool image -o - | zstd -T0")["median_s"]
        add("image -o x.raw.zst <= 1.0x image -o - | zstd -T0", x <= 1.0,
            f"{x:.2f}x" + cpu_ratio(r["commands"][0], cmd_of(r, "ukitool image -o - | zstd -T0")))
    r = find(rows, "write")
    if r:
        ours = r["commands"][0]["median_s"]
        d = cmd_of(r, "dd bs=4M oflag=direct conv=fsync")
        if d:
            add("write >= 5x faster than dd", d["median_s"] / ours >= 5, f"{d['median_s'] / ours:.2f}x faster (with read-back verify)")
            nv = cmd_of(r, "ukitool write --no-verify")
            if nv:
                add("write --no-verify >= 5x faster than dd (dd does not verify)", d["median_s"] / nv["median_s"] >= 5,
                    f"{d['median_s'] / nv['median_s']:.2f}x faster")
        bt = cmd_of(r, "bmaptool copy (bmap made beforehand)")
        if bt:
            add("write no slower than bmaptool", ours <= bt["median_s"], f"{bt['median_s'] / ours:.2f}x faster (with read-back verify)")
    r = find(rows, "write-zst")
    if r and r.get("commands"):
        ours = r["commands"][0]["median_s"]
        d = cmd_of(r, "zstd -dc | dd bs=4M oflag=direct")
        if d:
            add("write metal.raw.zst >= 2x faster than zstd -dc | dd", d["median_s"] / ours >= 2,
                f"{d['median_s'] / ours:.2f}x faster (with read-back verify)")
        bt = cmd_of(r, "bmaptool copy (bmap made beforehand)")
        bm = cmd_of(r, "ukitool write --bmap (verifies)")
        if bt and bm:
            add("write metal.raw.zst --bmap no slower than bmaptool copy", bm["median_s"] <= bt["median_s"],
                f"{bt['median_s'] / bm['median_s']:.2f}x faster (with read-back verify); "
                f"without a bmap {bt['median_s'] / ours:.2f}x")
    return goals


def write_doc(machine, goals, rows, browser):
    old = DOC.read_text() if DOC.exists() else ""
    notes = old.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in old else \
        "\n\n## Notes\n\n(analysis of missed goals goes here; this part is kept when the file is regenerated)\n"
    m = machine
    la = lambda v: " / ".join(f"{x:.2f}" for x in v)
    L = ["# Benchmarks", "",
         "<!-- Generated by `make bench` (bench/run.py) down to the notes marker; edit the notes only. -->", "",
         "ukitool and its peers on the same inputs. Each row's commands run alternately (one run each",
         "per round, order rotated every round) under hyperfine -N after warm-up rounds; figures are",
         "medians, and `x ukitool` is the command's median over ukitool's (above 1: ukitool is faster).",
         "CPU is user+system time (it leaves out waiting for a busy CPU or for the disk, so on a loaded",
         "machine it shows each tool's own cost better than the wall-clock median; goals are judged on",
         "the wall-clock medians). Peak RSS is GNU `time -v`'s maximum resident set size (it counts the",
         "file pages a tool maps, so a tool that mmaps its 110 MiB input shows about 110 MiB).",
         "Every command's output was checked against an outside referee before it was timed; a",
         "command that failed its check is listed as skipped, never timed.", "",
         "## Machine", "",
         f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, SHA-NI: "
         f"{'yes' if m['sha_ni'] else 'no'}; {m['date']}; {m.get('ukitool')}, {m.get('rustc')}, "
         f"{m.get('hyperfine')}, {m.get('systemd')}, {m.get('openssl')}.", "",
         f"Load average (1/5/15 min) at start {la(m['load_average_start'])}, at end "
         f"{la(m['load_average_end'])}; the whole run took {m['duration_s']:.0f} s. With a load above",
         "the core count the absolute times are inflated; the ratios, taken from the same rounds, hold better.", "",
         "## Goals", "", "| goal | result | figure |", "|---|---|---|"]
    for g in goals:
        L.append(f"| {g['goal']} | {'met' if g['met'] else 'MISSED' if g['met'] is False else '-'} | {g['figure']} |")
    L += ["", "## Results", "",
          "| row | command | median | min | x ukitool | CPU (user+sys) | CPU x ukitool | peak RSS | checked |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        title = r.get("title", r["id"])
        if r.get("error"):
            L.append(f"| {title} | | | | | | | | not run: {r['error']} |")
        for i, c in enumerate(r.get("commands", [])):
            L.append(f"| {title if i == 0 else ''} | {c['label']} | {fmt_s(c['median_s'])} | {fmt_s(c['min_s'])} | "
                     f"{c['ratio_vs_ukitool']:.2f} | {fmt_s(c['cpu_median_s'])} | {c['cpu_ratio_vs_ukitool'] or 0:.2f} | "
                     f"{fmt_kib(c['peak_rss_kib'])} | {c['checked']} |")
        for s in r.get("skipped", []):
            L.append(f"| {title if not r.get('commands') else ''} | {s['label']} | | | | | | | skipped: {s['reason']} |")
    L += ["", "Rounds per row: " + ", ".join(f"{r['id']} {r.get('rounds', '-')}" for r in rows) + ".", ""]
    L += ["## Browser", ""]
    if browser:
        L += ["From tests/artifacts/browser-bench.json, written by the browser tests",
              "(tests/e2e/bench.test.js), not measured by this harness:", "", "```json",
              json.dumps(browser, indent=2), "```"]
    else:
        L += ["No tests/artifacts/browser-bench.json: the browser tests did not record timings on this run."]
    DOC.write_text("\n".join(L) + "\n\n<!-- notes -->" + notes)


if __name__ == "__main__":
    sys.exit(main())
