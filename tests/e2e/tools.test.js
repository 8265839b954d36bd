// The page's signatures, PCR 11, disk image and UKI build tools in Debian's headless
// Chromium, each checked against the ukitool CLI on the same inputs; and issue 9's
// mutation cases fed through the page API.
// Run: node --test tests/e2e/   (after `make web`; fixtures are generated on demand)

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  artifact,
  downloadVia,
  fixture,
  openPage,
  pickFile,
  ukitool,
  ukitoolStatus,
  useBrowser,
} from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "ukitool-e2e-tools-"));
const env = useBrowser(() => rmSync(tmp, { recursive: true, force: true }));

/** Wait until the Worker has nothing more to do for the file shown. */
async function waitIdle(page) {
  await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 180000 });
}

async function openFixture(page, path) {
  await pickFile(page, path);
  await waitIdle(page);
}

/** The page's verify JSON (= `ukitool verify --json`), parsed. */
async function pageVerify(page) {
  const s = await page.evaluate(() => window.ukitool.state());
  assert.ok(s.verify, "the page has a verify result");
  return JSON.parse(s.verify);
}

/** The CLI's verify JSON: exit codes 0 and 1 are both answers. */
function cliVerify(...args) {
  const r = ukitoolStatus("verify", "--json", ...args);
  assert.ok(r.status === 0 || r.status === 1, `ukitool verify exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString());
}

/** Everything but the file name and the .pcrsig part (shown in the PCR panel). */
function comparable(v) {
  const { file: _f, pcrsig: _p, pcrsig_error: _e, ...rest } = v;
  return rest;
}

describe("signatures panel", () => {
  test("shim: two signatures, the CLI's signer CNs and verdicts", async () => {
    const shim = fixture("shimx64.efi.signed");
    const cli = cliVerify(shim);
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, shim);
    const got = await pageVerify(page);
    assert.equal(got.signatures.filter((s) => s.nested_in === null).length, 2);
    assert.deepEqual(comparable(got), comparable(cli));
    const cns = await page.$$eval("#signatures .sig .signer-cn", (e) => e.map((x) => x.textContent));
    assert.deepEqual(cns, cli.signatures.map((s) => s.signer.subject_cn));
    const verdicts = await page.$$eval("#signatures .sig .verdict", (e) => e.map((x) => x.dataset.verdict));
    assert.deepEqual(verdicts, cli.signatures.map((s) => s.verdict));
    assert.equal(await page.getAttribute("#verdict", "data-verdict"), cli.verdict);
    await page.locator("#p-signatures").screenshot({ path: artifact("signatures-shim.png") });
    await page.close();
  });

  for (const anchor of ["debian-ca.pem", "debian-ca.der"]) {
    test(`grub + ${anchor} anchor: valid-trusted, = ukitool verify --cert`, async () => {
      const grub = fixture("grubx64.efi.signed");
      const ca = fixture(anchor);
      const { page } = await openPage(env.browser.context, env.server.url);
      await openFixture(page, grub);
      const before = await pageVerify(page);
      assert.equal(before.verdict, "valid-untrusted");
      assert.deepEqual(comparable(before), comparable(cliVerify(grub)));
      await page.setInputFiles("#anchor-file", ca);
      await page.waitForSelector("#anchor-list li");
      const got = await pageVerify(page);
      const cli = cliVerify("--cert", ca, grub);
      assert.equal(cli.verdict, "valid-trusted");
      assert.deepEqual(comparable(got), comparable(cli));
      assert.equal(await page.getAttribute("#verdict", "data-verdict"), "valid-trusted");
      assert.equal(await page.textContent("#signatures .sig .signer-cn"), cli.signatures[0].signer.subject_cn);
      // The export is the CLI's JSON but for the file name.
      const dl = await downloadVia(page, page.locator("#verify-export"));
      assert.deepEqual(comparable(JSON.parse(dl.bytes.toString())), comparable(cli));
      if (anchor.endsWith(".pem")) await page.locator("#p-signatures").screenshot({ path: artifact("signatures-grub-trusted.png") });
      await page.close();
    });
  }

  test("signed UKI: snakeoil trusted, tampered copy hash-mismatch, garbage anchor refused", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    const cert = fixture("snakeoil.pem");
    for (const [name, want] of [["uki-signed.efi", "valid-trusted"], ["uki-tampered.efi", "hash-mismatch"], ["uki-other-signed.efi", "valid-untrusted"]]) {
      const path = fixture(name);
      await openFixture(page, path);
      await page.setInputFiles("#anchor-file", cert);
      await page.waitForSelector("#anchor-list li");
      const got = await pageVerify(page);
      const cli = cliVerify("--cert", cert, path);
      assert.equal(cli.verdict, want, `${name}: the CLI's verdict`);
      assert.deepEqual(comparable(got), comparable(cli), name);
    }
    // Not a certificate nor a signature list: a message, the panel still works.
    const junk = join(tmp, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    await page.setInputFiles("#anchor-file", junk);
    await page.waitForFunction(() => /neither a certificate/.test(document.getElementById("anchor-msg")?.textContent || ""));
    await page.close();
  });
});

describe("PCR 11 panel", () => {
  for (const name of ["uki.efi", "uki-signed.efi", "profiles.efi"]) {
    test(`${name}: the numbers of ukitool measure --json`, async () => {
      const path = fixture(name);
      const want = ukitool("measure", path, "--json").toString();
      const { page } = await openPage(env.browser.context, env.server.url);
      await openFixture(page, path);
      const s = await page.evaluate(() => window.ukitool.state());
      assert.equal(s.pcr + "\n", want);
      const cli = JSON.parse(want);
      for (const [bank, preds] of Object.entries(cli)) {
        for (const p of preds) {
          const cell = await page.textContent(`#pcr-table tr[data-bank="${bank}"][data-phase="${p.phase}"] .pcr-hash`);
          assert.equal(cell, p.hash, `${bank} ${p.phase}`);
        }
      }
      const dl = await downloadVia(page, page.locator("#pcr-export"));
      assert.equal(dl.bytes.toString(), want);
      if (name === "uki.efi") await page.locator("#p-pcr").screenshot({ path: artifact("pcr.png") });
      await page.close();
    });
  }
});

describe("disk image builder", () => {
  for (const [layout, sector] of [["uefi", "512"], ["uefi", "4096"]]) {
    test(`${layout}, 64M disk, 40M ESP, ${sector}-byte sectors: byte-identical to ukitool image`, async () => {
      const uki = fixture("uki-signed.efi");
      const out = join(tmp, `cli-${layout}-${sector}.img`);
      ukitool("image", "--uki", uki, "-o", out, "--layout", layout, "--size", "64M", "--esp-size", "40M", "--sector-size", sector, "--timestamp", "315532800", "--quiet");
      const want = readFileSync(out);
      const { page } = await openPage(env.browser.context, env.server.url);
      await openFixture(page, uki);
      await page.selectOption("#i-layout", layout);
      await page.fill("#i-size", "64M");
      await page.fill("#i-esp-size", "40M");
      await page.selectOption("#i-sector", sector);
      const got = await downloadVia(page, page.locator("#disk-download"));
      assert.equal(got.name, "uki-signed.img");
      assert.equal(got.bytes.length, want.length, "image size");
      assert.ok(got.bytes.equals(want), "image bytes");
      await page.waitForSelector("#image-partitions tbody tr");
      if (sector === "512") await page.locator("#p-image").screenshot({ path: artifact("disk-builder.png") });
      await page.close();
    });
  }

  test("systemd-boot layout with a dropped loader; a bad size is an error in place", async () => {
    const uki = fixture("uki.efi");
    const sdboot = fixture("systemd-bootx64.efi");
    const out = join(tmp, "cli-sdboot.img");
    ukitool("image", "--uki", uki, "-o", out, "--layout", "systemd-boot", "--systemd-boot", sdboot, "--timestamp", "315532800", "--quiet");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    await page.selectOption("#i-layout", "systemd-boot");
    await page.setInputFiles("#i-loader", sdboot);
    const got = await downloadVia(page, page.locator("#disk-download"));
    assert.ok(got.bytes.equals(readFileSync(out)), "systemd-boot image bytes");
    await page.selectOption("#i-layout", "uefi");
    await page.fill("#i-size", "1M");
    await page.locator("#disk-download").click();
    await page.waitForFunction(() => /Could not build/.test(document.getElementById("image-status").textContent));
    await page.close();
  });
});

describe("partitions with filesystems", () => {
  // `--add-partition` and `--add-file-to` in the page: an XFS BOOT holding Debian's
  // kernel and initrd under /A (picked as files, or as a folder that also holds
  // grub/grub.cfg) and a FAT DATA partition, at both sector sizes.
  const bootDir = join(tmp, "boot-src");
  mkdirSync(join(bootDir, "grub"), { recursive: true });
  copyFileSync(fixture("vmlinuz"), join(bootDir, "vmlinuz"));
  copyFileSync(fixture("initrd.cpio.gz"), join(bootDir, "initrd.cpio.gz"));
  writeFileSync(join(bootDir, "grub", "grub.cfg"), "set timeout=0\n");
  const cliArgs = (uki, out, sector, folder) => [
    "image", "--uki", uki, "-o", out, "--esp-size", "40M", "--sector-size", sector,
    "--timestamp", "315532800", "--quiet",
    "--add-partition", "BOOT:100M:linux:xfs", "--add-partition", "DATA:40M:linux:fat",
    ...(folder
      ? ["--add-file-to", `BOOT:${bootDir}:/A`]
      : ["--add-file-to", `BOOT:${fixture("initrd.cpio.gz")}:/A/initrd.cpio.gz`,
        "--add-file-to", `BOOT:${fixture("vmlinuz")}:/A/vmlinuz`]),
    "--add-file-to", `DATA:${fixture("os-release")}:/etc/os-release`,
  ];

  async function addPartition(page, n, { name, size, fs, files, folder, under }) {
    await page.locator("#i-part-add").click();
    const row = page.locator(`.part-row[data-part-row="${n}"]`);
    await row.locator(".p-name").fill(name);
    await row.locator(".p-size").fill(size);
    await row.locator(".p-fs").selectOption(fs);
    if (files) await row.locator(".p-files").setInputFiles(files);
    if (folder) await row.locator(".p-dir").setInputFiles(folder);
    await row.locator(".p-path").fill(under);
  }

  for (const [sector, folder] of [["512", false], ["4096", true]]) {
    const how = folder ? "a folder" : "files";
    test(`XFS (${how}) and FAT partitions, ${sector}-byte sectors: byte-identical to ukitool image`, async () => {
      const uki = fixture("uki.efi");
      const out = join(tmp, `cli-parts-${sector}.img`);
      ukitool(...cliArgs(uki, out, sector, folder));
      const want = readFileSync(out);
      const { page } = await openPage(env.browser.context, env.server.url);
      await openFixture(page, uki);
      await page.fill("#i-esp-size", "40M");
      await page.selectOption("#i-sector", sector);
      const boot = folder ? { folder: bootDir } : { files: [fixture("vmlinuz"), fixture("initrd.cpio.gz")] };
      await addPartition(page, 1, { name: "BOOT", size: "100M", fs: "xfs", under: "/A", ...boot });
      await addPartition(page, 2, { name: "DATA", size: "40M", fs: "fat", files: [fixture("os-release")], under: "/etc/" });
      const got = await downloadVia(page, page.locator("#disk-download"));
      assert.equal(got.bytes.length, want.length, "image size");
      assert.ok(got.bytes.equals(want), "image bytes");
      await page.waitForSelector("#image-partitions tbody tr");
      if (sector === "512") await page.locator("#p-image").screenshot({ path: artifact("disk-builder-partitions.png") });
      rmSync(out);
      await page.close();
    });
  }

  test("a dropped disk lists its XFS volume; any file opens or downloads as ukitool extract gives it", async () => {
    const uki = fixture("uki.efi");
    const img = join(tmp, "parts.img");
    ukitool(...cliArgs(uki, img, "512", true));
    const cli = JSON.parse(ukitool("inspect", "--json", img).toString());
    const { page } = await openPage(env.browser.context, env.server.url);
    await pickFile(page, img);
    await waitIdle(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "disk");
    const got = await downloadVia(page, page.locator("#export"));
    assert.equal(got.bytes.toString(), ukitool("inspect", "--json", img).toString());
    const x = cli.xfs_volumes[0];
    assert.equal(x.xfs.label, "BOOT");
    const text = await page.textContent("#disk");
    assert.ok(text.includes(`XFS volume “BOOT” (partition ${x.partition})`), text);
    assert.ok(text.includes(x.xfs.uuid), "the XFS UUID is shown");
    await page.evaluate(() => document.querySelectorAll("#disk details").forEach((d) => (d.open = true)));
    await page.screenshot({ path: artifact("disk-xfs.png"), fullPage: true });
    // Every file of every partition downloads as `ukitool extract DISK N:/PATH`.
    const rows = await page.$$eval("#disk tr[data-file]", (r) => r.map((x) => x.dataset.file));
    const want = [
      ...cli.filesystems.flatMap((f) => f.fat.entries.filter((e) => !e.is_dir).map((e) => `${f.partition}:/${e.path}`)),
      ...cli.xfs_volumes.flatMap((f) => f.xfs.entries.filter((e) => e.kind === "file").map((e) => `${f.partition}:/${e.path}`)),
    ];
    assert.deepEqual(rows.sort(), want.sort());
    for (const spec of rows) {
      const dl = await downloadVia(page, page.locator(`tr[data-file="${spec}"] button[data-action="download"]`));
      const expect = ukitool("extract", img, spec, "-o", "-");
      assert.equal(dl.name, spec.split("/").pop());
      assert.ok(dl.bytes.equals(expect), `${spec}: the page's bytes differ from ukitool extract`);
    }
    // Open: the kernel on XFS shows in the PE views, as `ukitool inspect` sees it.
    const kernel = join(tmp, "vmlinuz.from-xfs");
    ukitool("extract", img, "BOOT:/A/vmlinuz", "-o", kernel);
    await page.locator(`tr[data-file="${x.partition}:/A/vmlinuz"] button[data-action="open"]`).click();
    await page.waitForFunction(() => document.getElementById("kind")?.dataset.kind !== "disk", null, { timeout: 60000 });
    await waitIdle(page);
    const report = await downloadVia(page, page.locator("#export"));
    assert.equal(report.bytes.toString(), ukitool("inspect", "--json", kernel).toString());
    rmSync(img);
    await page.close();
  });
});

describe("disk image builder, talos layout", () => {
  // Talos's dual-boot image on the 1.10 size table (2247 MiB): systemd-boot, GRUB's
  // i386-pc folder through the directory picker, a META record. Compared with cmp(1)
  // on disk rather than in memory.
  test("dual-boot with systemd-boot and the GRUB i386-pc folder: byte-identical to ukitool image", async () => {
    const uki = fixture("uki.efi");
    const sdboot = fixture("systemd-bootx64.efi");
    const grubDir = "/usr/lib/grub/i386-pc";
    const out = join(tmp, "cli-talos.img");
    ukitool("image", "--uki", uki, "-o", out, "--layout", "talos", "--talos-version", "1.10", "--systemd-boot", sdboot, "--grub-bios", grubDir, "--meta", "0x0c=hello", "--timestamp", "315532800", "--quiet");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    await page.selectOption("#i-layout", "talos");
    assert.ok(await page.isVisible("#i-talos"), "the talos inputs are shown");
    assert.ok(await page.isHidden("#i-loader-label"), "no single loader for talos");
    await page.fill("#i-talos-version", "1.10");
    await page.setInputFiles("#i-systemd-boot", sdboot);
    await page.setInputFiles("#i-grub-bios-dir", grubDir);
    await page.fill("#i-meta", "0x0c=hello");
    const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 300000 }), page.locator("#disk-download").click()]);
    const got = await dl.path();
    const cmp = spawnSync("cmp", [got, out]);
    assert.equal(cmp.status, 0, `cmp: ${cmp.stdout}${cmp.stderr}`);
    await page.waitForSelector("#image-talos");
    assert.match(await page.textContent("#image-talos"), /Talos dual-boot image, size table 1\.10, version 1\.0/);
    await page.locator("#p-image").screenshot({ path: artifact("disk-builder-talos.png") });
    await dl.delete();
    await page.close();
  });
});

describe("UKI builder", () => {
  test("unsigned and signed builds are byte-identical to ukitool build", async () => {
    const stub = fixture("linuxx64.efi.stub");
    const kernel = fixture("vmlinuz");
    const initrd = fixture("initrd.cpio.gz");
    const osrel = fixture("os-release");
    const key = fixture("snakeoil.key");
    const cert = fixture("snakeoil.pem");
    const cmdline = "console=ttyS0 quiet ukitool.test=1";
    const common = ["--stub", stub, "--linux", kernel, "--initrd", initrd, "--cmdline", cmdline, "--os-release", "@" + osrel, "--timestamp", "1700000000"];
    const { page } = await openPage(env.browser.context, env.server.url);
    await page.click("#build-toggle");
    await page.setInputFiles("#b-stub", stub);
    await page.setInputFiles("#b-linux", kernel);
    await page.setInputFiles("#b-initrd", initrd);
    await page.setInputFiles("#b-osrel", osrel);
    await page.fill("#b-cmdline", cmdline);
    await page.fill("#b-timestamp", "1700000000");
    const plain = join(tmp, "built.efi");
    ukitool("build", ...common, "-o", plain);
    const got = await downloadVia(page, page.locator("#build-download"));
    assert.ok(got.bytes.equals(readFileSync(plain)), "unsigned UKI bytes");
    await page.locator("#p-build").screenshot({ path: artifact("build-uki.png") });

    await page.setInputFiles("#b-key", key);
    await page.setInputFiles("#b-cert", cert);
    const signed = join(tmp, "built-signed.efi");
    ukitool("build", ...common, "--key", key, "--cert", cert, "-o", signed);
    const got2 = await downloadVia(page, page.locator("#build-download"));
    assert.ok(got2.bytes.equals(readFileSync(signed)), "signed UKI bytes");

    // The result opens in the page's own views, trusted by the snakeoil cert.
    await page.click("#build-open");
    await waitIdle(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "uki");
    await page.setInputFiles("#anchor-file", cert);
    await page.waitForSelector("#anchor-list li");
    assert.equal((await pageVerify(page)).verdict, "valid-trusted");
    await page.close();
  });
});

// A deterministic PRNG (mulberry32) shared by the mutation generator.
const MUTATOR = `
function mulberry32(a) {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// Structure-aware: the fields issue 9 names (section counts and sizes, offsets,
// VirtualSize vs raw size, data directories, certificate lengths, DER lengths),
// plus truncation and random header bytes.
function mutate(base, seed) {
  const rnd = mulberry32(seed);
  const int = (n) => Math.floor(rnd() * n);
  const dv = new DataView(base.buffer, base.byteOffset, base.byteLength);
  const pe = dv.getUint32(0x3c, true);
  const opt = pe + 24;
  const magic = dv.getUint16(opt, true);
  const dirs = opt + (magic === 0x20b ? 112 : 96);
  const nsec = dv.getUint16(pe + 6, true);
  const secs = opt + dv.getUint16(pe + 20, true);
  const certOff = dv.getUint32(dirs + 4 * 8, true);
  const certLen = dv.getUint32(dirs + 4 * 8 + 4, true);
  const nasty = [0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xfff, 0x1000, base.length, base.length + 8];
  const val = () => (rnd() < 0.5 ? nasty[int(nasty.length)] : int(0x100000000));
  let out = base.slice();
  const o = new DataView(out.buffer);
  const kind = seed % 10;
  let what;
  if (kind === 0) {
    const n = int(base.length);
    out = out.slice(0, n);
    what = "truncate at " + n;
  } else if (kind === 1) {
    o.setUint16(pe + 6, [0, 1, nsec + 1, 0x800, 96][int(5)], true);
    what = "NumberOfSections";
  } else if (kind === 2 || kind === 3) {
    const s = secs + 40 * int(nsec);
    const field = [8, 12, 16, 20][int(4)];
    o.setUint32(s + field, val(), true);
    what = "section header +" + field;
  } else if (kind === 4) {
    const d = int(16);
    o.setUint32(dirs + 8 * d + int(2) * 4, val(), true);
    what = "data directory " + d;
  } else if (kind === 5 && certLen >= 8) {
    o.setUint32(certOff, val(), true);
    what = "WIN_CERTIFICATE dwLength";
  } else if (kind === 6 && certLen > 32) {
    // A DER length byte inside the PKCS#7 blob.
    const at = certOff + 8 + int(Math.min(certLen - 8, 2048));
    out[at] = [0x80, 0x81, 0x82, 0x84, 0xff, 0x00][int(6)];
    what = "DER byte at " + at;
  } else if (kind === 7) {
    o.setUint32(0x3c, [0, 2, base.length, 0xfffffff0, pe + 1][int(5)], true);
    what = "e_lfanew";
  } else if (kind === 8) {
    o.setUint16(pe + 20, [0, 2, 0xffff, 240, 224][int(5)], true);
    what = "SizeOfOptionalHeader";
  } else {
    for (let k = 0; k < 8; k++) out[int(Math.min(out.length, 4096))] = int(256);
    what = "random header bytes";
  }
  return { bytes: out, what };
}
`;

describe("issue 9: mutation cases through the page API", () => {
  test("~200 mutated signed UKIs and shims: each a result or an error, the page survives", async () => {
    const { page, consoleErrors } = await openPage(env.browser.context, env.server.url);
    const outcomes = {};
    const cases = [];
    for (const [name, count] of [["uki-signed.efi", 100], ["shimx64.efi.signed", 100]]) {
      const b64 = readFileSync(fixture(name)).toString("base64");
      await page.evaluate(({ b64, src }) => {
        window.__base = Uint8Array.fromBase64(b64);
        // eslint-disable-next-line no-new-func
        window.__mutate = new Function(src + "; return mutate;")();
      }, { b64, src: MUTATOR });
      for (let seed = 1; seed <= count; seed++) {
        const r = await page.evaluate(async (seed) => {
          const { bytes, what } = window.__mutate(window.__base, seed);
          const jobBefore = window.ukitool.state().job;
          window.ukitool.openFile(new File([bytes], `case-${seed}.efi`));
          const deadline = performance.now() + 60000;
          while (performance.now() < deadline) {
            await new Promise((r) => setTimeout(r, 20));
            const s = window.ukitool.state();
            if (s.job > jobBefore && document.body.dataset.work === "idle") {
              return { what, error: s.error, report: !!s.report, verdict: s.verify ? JSON.parse(s.verify).verdict : null };
            }
          }
          return { what, hang: true };
        }, seed);
        assert.ok(!r.hang, `${name} case ${seed} (${r.what}) did not finish`);
        assert.ok(r.error || r.report, `${name} case ${seed} (${r.what}): neither a result nor an error`);
        assert.doesNotMatch(r.error || "", /internal error/, `${name} case ${seed} (${r.what}) trapped the wasm`);
        const key = r.error ? "error" : `report, ${r.verdict}`;
        outcomes[key] = (outcomes[key] || 0) + 1;
        cases.push({ file: name, seed, what: r.what, outcome: key, error: r.error });
      }
    }
    writeFileSync(artifact("mutations.page.json"), JSON.stringify({ outcomes, cases }, null, 1));
    // The page still works after all of them.
    await openFixture(page, fixture("uki-signed.efi"));
    assert.equal(await page.locator("#error").isHidden(), true);
    assert.equal((await pageVerify(page)).verdict, "valid-untrusted");
    assert.deepEqual(consoleErrors.filter((e) => /panic|RuntimeError|unreachable/i.test(e)), []);
    await page.close();
  });
});
