#!/usr/bin/env python3
"""Side-by-side benchmarks of ukitool against its peers (issue 8).

Runs ukitool and each peer on the same inputs with hyperfine (alternating, warm-up, several
runs), checks first that every command gives the correct answer (a fast wrong answer does not
count), measures peak RSS with GNU time, writes bench/results.json and regenerates
docs/benchmarks.md. Rows whose peer is not installed are reported as skipped, never faked.

    python3 bench/run.py [--quick] [--only ROW]...
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "out"
UKITOOL = ROOT / "target" / "release" / "ukitool"
SHA2SUM = ROOT / "target" / "release" / "sha2sum"
MEASURE = "/usr/lib/systemd/systemd-measure"
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, **kw)


def have(tool):
    return shutil.which(tool) is not None or Path(tool).exists()


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Bench:
    def __init__(self, runs, warmup, work):
        self.runs = runs
        self.warmup = warmup
        self.work = Path(work)
        self.rows = []

    def hyperfine(self, cmds, prepare=None):
        """Median seconds of each command, measured alternately in one hyperfine run."""
        out = self.work / "hf.json"
        args = ["hyperfine", "-N" if not any(c[1].startswith("sh:") for c in cmds) else "",
                "--style", "none", "--warmup", str(self.warmup), "--runs", str(self.runs),
                "--export-json", str(out)]
        args = [a for a in args if a]
        if prepare:
            args += ["--prepare", prepare]
        for name, cmd in cmds:
            args += ["-n", name, cmd.removeprefix("sh:")]
        subprocess.run(args, check=True, capture_output=True)
        data = json.loads(out.read_text())
        return {r["command"]: r["median"] for r in data["results"]}

    def rss(self, cmd):
        """Peak resident set size in KiB of one run, from GNU time -v."""
        r = subprocess.run(["/usr/bin/time", "-v", "sh", "-c", cmd], capture_output=True, text=True)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
        return int(m.group(1)) if m else None

    def row(self, name, ours, peers, goal=None, note="", prepare=None, with_rss=False):
        """ours = (label, cmd); peers = [(label, cmd), ...] already checked for correctness."""
        cmds = [ours] + [p for p in peers if p is not None]
        try:
            med = self.hyperfine(cmds, prepare=prepare)
        except subprocess.CalledProcessError as e:
            self.rows.append({"row": name, "error": (e.stderr or b"").decode(errors="replace")[-400:]})
            print(f"  {name}: FAILED to time", file=sys.stderr)
            return
        entry = {"row": name, "goal": goal, "note": note, "ukitool": {"label": ours[0], "median_s": med[ours[0]]}, "peers": []}
        if with_rss:
            entry["ukitool"]["peak_rss_kib"] = self.rss(ours[1].removeprefix("sh:"))
        for label, cmd in cmds[1:]:
            p = {"label": label, "median_s": med[label], "ratio_peer_over_ukitool": med[label] / med[ours[0]]}
            if with_rss:
                p["peak_rss_kib"] = self.rss(cmd.removeprefix("sh:"))
            entry["peers"].append(p)
        self.rows.append(entry)
        peers_txt = ", ".join(f"{p['label']} {p['median_s']*1000:.1f} ms (x{p['ratio_peer_over_ukitool']:.2f})" for p in entry["peers"])
        print(f"  {name}: ukitool {med[ours[0]]*1000:.2f} ms; {peers_txt}")


def check(cond, what):
    if not cond:
        raise SystemExit(f"bench: correctness check failed: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    ap.add_argument("--only", action="append", default=[])
    a = ap.parse_args()
    runs, warmup = (3, 1) if a.quick else (10, 2)

    sh(f"cargo build --release -p ukitool -p ukitool-tests --bins", cwd=ROOT)
    sh(f"bash {ROOT}/tests/fixtures/generate.sh big")
    small, big, bigs = FIX / "uki.efi", FIX / "uki-big.efi", FIX / "uki-big-signed.efi"
    shim, snake = FIX / "shimx64.efi.signed", FIX / "snakeoil.pem"
    U = str(UKITOOL)
    work = tempfile.mkdtemp(prefix="ukibench-")
    b = Bench(runs, warmup, work)
    want = lambda r: not a.only or r in a.only

    print(f"bench: {runs} runs after {warmup} warm-up, work dir {work}")

    if want("inspect"):
        for f in (small, big, shim):
            peers = [("pefile parse", f"python3 -c \"import pefile; pefile.PE('{f}')\"")]
            if have("pesign"):
                peers.append(("pesign -S", f"sh:pesign -S -i {f} >/dev/null 2>&1 || true"))
            b.row(f"inspect --no-hash {f.name}", ("ukitool", f"{U} inspect --no-hash --json {f}"), peers,
                  goal="<= 3 ms on 110 MiB")
        hashpy = ROOT / "bench" / "pefile_hash.py"
        ours = json.loads(sh(f"{U} inspect --json {big}").stdout)
        theirs = json.loads(sh(f"python3 {hashpy} {big}").stdout)
        check([s["sha256"] for s in ours["sections"]] == theirs, "section hashes equal pefile+hashlib")
        b.row(f"inspect with hashes {big.name}", ("ukitool", f"{U} inspect --json {big}"),
              [("pefile+hashlib", f"python3 {hashpy} {big}")], goal="<= 1.15x one sha256 pass")

    if want("verify"):
        r = subprocess.run([U, "verify", "--cert", str(snake), str(bigs)], capture_output=True)
        check(r.returncode == 0, "ukitool verify accepts uki-big-signed.efi")
        check(subprocess.run(["sbverify", "--cert", str(snake), str(bigs)], capture_output=True).returncode == 0,
              "sbverify accepts uki-big-signed.efi")
        peers = [("sbverify --cert", f"sbverify --cert {snake} {bigs}"),
                 ("openssl dgst -sha256", f"openssl dgst -sha256 {bigs}"),
                 ("sha2 one pass", f"{SHA2SUM} {bigs}")]
        if subprocess.run(["osslsigncode", "verify", "-CAfile", str(snake), "-in", str(bigs)], capture_output=True).returncode == 0:
            peers.append(("osslsigncode verify", f"osslsigncode verify -CAfile {snake} -in {bigs}"))
        b.row("verify 110 MiB signed UKI", ("ukitool", f"{U} verify --cert {snake} {bigs}"), peers,
              goal="<= 1.15x one sha2 pass; >= 1.9x faster than sbverify")
        check(subprocess.run([U, "verify", str(shim)], capture_output=True).returncode in (0, 1), "verify shim")
        b.row("verify dual-signed shim", ("ukitool", f"sh:{U} verify {shim} >/dev/null; true"),
              [("sbverify --list", f"sbverify --list {shim}")])

    if want("extract"):
        o1, o2 = Path(work) / "linux.ours", Path(work) / "linux.objcopy"
        sh(f"{U} extract {big} .linux -o {o1} --force")
        sh(f"objcopy -O binary --only-section=.linux {big} {o2}")
        check(o1.read_bytes() == o2.read_bytes(), "extract .linux equals objcopy's")
        b.row("extract .linux", ("ukitool", f"{U} extract {big} .linux -o {o1} --force"),
              [("objcopy --only-section", f"objcopy -O binary --only-section=.linux {big} {o2}")],
              goal="<= 0.5x objcopy")

    if want("build"):
        stub, k = FIX / "linuxx64.efi.stub", FIX / "vmlinuz"
        initrd = Path(work) / "initrd-big"
        sh(f"{U} extract {big} .initrd -o {initrd} --force")
        parts = f"--os-release @{FIX/'os-release'} --cmdline @{FIX/'cmdline'} --uname {(FIX/'uname').read_text().strip()}"
        ours = f"{U} build --stub {stub} --linux {k} --initrd {initrd} {parts} -o {work}/b.efi"
        recipe = ROOT / "bench" / "objcopy_build.sh"
        b.row("build UKI (100 MiB initrd)", ("ukitool", ours),
              [("objcopy recipe", f"bash {recipe} {stub} {k} {initrd} {FIX/'os-release'} {FIX/'cmdline'} {work}/o.efi")],
              goal="about one pass of writing the output")

    if want("sign"):
        key = FIX / "snakeoil.key"
        ours = f"{U} sign {big} --key {key} --cert {snake} -o {work}/s.efi --force"
        b.row("sign 110 MiB UKI", ("ukitool", f"sh:rm -f {work}/s.efi; {ours}"),
              [("sbsign", f"sbsign --key {key} --cert {snake} --output {work}/t.efi {big}")])

    if want("measure") and Path(MEASURE).exists():
        d = Path(work) / "parts"
        d.mkdir(exist_ok=True)
        sh(f"{U} extract {big} --all -o {d} --force")
        args = f"--linux={d/'vmlinuz'} --osrel={d/'os-release'} --cmdline={d/'cmdline'} --initrd={d/'initrd'} --uname={d/'uname'}"
        if (d / "splash.bmp").exists():
            args += f" --splash={d/'splash.bmp'}"
        theirs = json.loads(sh(f"{MEASURE} calculate --json=short {args} --bank=sha256").stdout)
        ours = json.loads(sh(f"{U} measure {big} --json --bank sha256").stdout)
        check(ours["sha256"] == theirs["sha256"], "measure equals systemd-measure")
        b.row("measure PCR 11", ("ukitool", f"{U} measure {big} --json --bank sha256"),
              [("systemd-measure calculate", f"{MEASURE} calculate --json=short {args} --bank=sha256")])

    if want("image"):
        for size in ("1G", "64G"):
            img, ref = f"{work}/u-{size}.img", f"{work}/c-{size}.img"
            classic = ROOT / "bench" / "classic_image.sh"
            peers = [("truncate+sgdisk+mkfs.vfat+mcopy", f"bash {classic} {big} {ref} {size}")]
            b.row(f"image {size} disk, 110 MiB UKI", ("ukitool", f"sh:rm -f {img}; {U} image --uki {big} -o {img} --size {size}"),
                  peers, goal="<= 1.2x writing the UKI once; RSS independent of disk size", with_rss=True)
        b.row("write the UKI bytes once (physical limit)", ("cp", f"sh:cp {big} {work}/copy.efi"), [])

    if want("write") and os.geteuid() == 0 and have("losetup"):
        img = f"{work}/w.img"
        sh(f"{U} image --uki {big} -o {img} --size 1G")
        dev_file = f"{work}/loopback"
        sh(f"truncate -s 1G {dev_file}")
        dev = sh(f"losetup --find --show {dev_file}").stdout.decode().strip()
        try:
            peers = [("dd bs=4M oflag=direct conv=fsync", f"dd if={img} of={dev} bs=4M oflag=direct conv=fsync status=none")]
            if have("bmaptool"):
                sh(f"bmaptool create -o {work}/w.bmap {img}")
                peers.append(("bmaptool copy", f"bmaptool -q copy --bmap {work}/w.bmap {img} {dev}"))
            b.row("write 1 GiB image (110 MiB data) to a loop device",
                  ("ukitool", f"{U} write {img} {dev} --yes"), peers, goal=">= 5x dd, no slower than bmaptool")
        finally:
            subprocess.run(["losetup", "-d", dev])

    browser = ROOT / "tests" / "artifacts" / "browser-bench.json"
    extra = json.loads(browser.read_text()) if browser.exists() else None

    machine = {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
        "sha_ni": "sha_ni" in open("/proc/cpuinfo").read(),
    }
    RESULTS.write_text(json.dumps({"machine": machine, "rows": b.rows, "browser": extra}, indent=2) + "\n")
    write_doc(machine, b.rows, extra)
    print(f"bench: wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


def write_doc(machine, rows, browser):
    old = DOC.read_text() if DOC.exists() else ""
    notes = old.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in old else "\n## Notes\n\n(analysis of missed goals goes here)\n"
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (bench/run.py): ukitool and its peers on the same inputs, alternating",
             "under hyperfine after a warm-up; medians; ratio = peer time / ukitool time (above 1: ukitool is faster).",
             "Every peer's output is checked for correctness before it is timed.", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, SHA-NI: {machine['sha_ni']}, {machine['date']}.", "",
             "| row | ukitool | peer | peer time | ratio | goal |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['row']} | failed | | | | |")
            continue
        u = r["ukitool"]
        ut = f"{u['median_s']*1000:.2f} ms" + (f", {u['peak_rss_kib']//1024} MiB RSS" if u.get("peak_rss_kib") else "")
        if not r["peers"]:
            lines.append(f"| {r['row']} | {ut} | | | | {r.get('goal') or ''} |")
        for i, p in enumerate(r["peers"]):
            pt = f"{p['median_s']*1000:.2f} ms" + (f", {p['peak_rss_kib']//1024} MiB RSS" if p.get("peak_rss_kib") else "")
            lines.append(f"| {r['row'] if i == 0 else ''} | {ut if i == 0 else ''} | {p['label']} | {pt} | {p['ratio_peer_over_ukitool']:.2f} | {(r.get('goal') or '') if i == 0 else ''} |")
    if browser:
        lines += ["", "## Browser", "", "```json", json.dumps(browser, indent=2), "```"]
    DOC.write_text("\n".join(lines) + "\n\n<!-- notes -->" + notes)


if __name__ == "__main__":
    main()
