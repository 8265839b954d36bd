// Issue 19, "Parity with the CLI": the page's hex view pages through a whole section
// and the whole file (bytes = `ukitool extract` and the file itself), its diff view
// exports `ukitool diff --json` byte for byte, and the image builder's further
// options (--entry-name, --timeout, --disk-guid, --grub-prefix, --shim, --add-file,
// --enroll-keys) give the CLI's image byte for byte.
// Run: node --test tests/e2e/parity.test.js   (after `make web`)

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { artifact, downloadVia, fixture, openPage, pickFile, ukitool, ukitoolStatus, useBrowser } from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "ukitool-e2e-parity-"));
const env = useBrowser(() => rmSync(tmp, { recursive: true, force: true }));
const PAGE = 1024; // web/app/panels/hexview.js

async function openFixture(page, path) {
  await pickFile(page, path);
  await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 180000 });
}

/** The bytes a hex dump shows, and the offset of its first line. */
function parseHex(text) {
  const lines = text.split("\n").filter((l) => l !== "");
  const first = parseInt(lines[0].slice(0, 8), 16);
  const bytes = lines.flatMap((l) =>
    l
      .slice(10, 57)
      .trim()
      .split(" ")
      .filter((h) => h !== "")
      .map((h) => parseInt(h, 16)),
  );
  return { first, bytes: Buffer.from(bytes) };
}

describe("hex view", () => {
  test("pages through a whole section: each page = those bytes of `ukitool extract`", async () => {
    const uki = fixture("uki.efi");
    const linux = ukitool("extract", uki, ".linux", "-o", "-");
    const report = JSON.parse(ukitool("inspect", "--json", "--no-hash", uki));
    const sec = report.sections.find((s) => s.name === ".linux");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    const row = page.locator('#sections tr[data-section=".linux"]');
    await row.getByRole("button", { name: "Hex" }).click();
    const view = page.locator(".hex-row .hex-view");
    await view.waitFor();
    const shown = async (n) => {
      await page.waitForFunction((n) => document.querySelector(".hex-row .hex-view").dataset.page === String(n), n);
      return parseHex(await view.locator("pre").textContent());
    };
    let p = await shown(0);
    assert.equal(p.first, sec.file_offset);
    assert.ok(p.bytes.equals(linux.subarray(0, PAGE)), "page 1");
    await view.getByRole("button", { name: /^Next page/ }).click();
    p = await shown(1);
    assert.equal(p.first, sec.file_offset + PAGE);
    assert.ok(p.bytes.equals(linux.subarray(PAGE, 2 * PAGE)), "page 2");
    const last = Math.ceil(linux.length / PAGE) - 1;
    await view.getByRole("button", { name: /^Last page/ }).click();
    p = await shown(last);
    assert.ok(p.bytes.equals(linux.subarray(last * PAGE)), "the last page ends with the section");
    // Go to a file offset by keyboard.
    await view.locator(".hex-goto").fill("0x" + (sec.file_offset + 3 * PAGE + 5).toString(16));
    await view.locator(".hex-goto").press("Enter");
    p = await shown(3);
    assert.ok(p.bytes.equals(linux.subarray(3 * PAGE, 4 * PAGE)), "page 4 by offset");
    await page.close();
  });

  test("the whole file in hex, to its last byte", async () => {
    const uki = fixture("uki.efi");
    const bytes = readFileSync(uki);
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    await page.locator("#file-hex summary").click();
    const view = page.locator("#file-hex .hex-view");
    await view.waitFor();
    await view.getByRole("button", { name: /^Last page/ }).click();
    const last = Math.ceil(bytes.length / PAGE) - 1;
    await page.waitForFunction((n) => document.querySelector("#file-hex .hex-view").dataset.page === String(n), last);
    const p = parseHex(await view.locator("pre").textContent());
    assert.equal(p.first, last * PAGE);
    assert.ok(p.bytes.equals(bytes.subarray(last * PAGE)), "the file's last page");
    await page.close();
  });
});

/** Drop a file on one element through a real DataTransfer, as a drag from the desktop. */
async function dropOn(page, selector, path) {
  const b64 = readFileSync(path).toString("base64");
  const name = path.split("/").pop();
  await page.evaluate(
    ({ selector, name, b64 }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.fromBase64(b64)], name));
      const target = document.querySelector(selector);
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(
          new DragEvent(type, {
            dataTransfer: dt,
            bubbles: true,
            cancelable: true,
          }),
        );
      }
    },
    { selector, name, b64 },
  );
}

describe("diff view", () => {
  // One page for every comparison: each run replaces the previous result.
  let page;
  before(async () => {
    ({ page } = await openPage(env.browser.context, env.server.url));
    await page.click("#diff-toggle");
  });
  after(() => page.close());

  for (const [a, b] of [
    ["uki.efi", "uki-signed.efi"],
    ["uki-signed.efi", "uki-tampered.efi"],
    ["uki.efi", "uki.efi"],
  ]) {
    test(`${a} vs ${b}: the export = ukitool diff --json`, async () => {
      const fa = fixture(a);
      const fb = fixture(b);
      const cli = ukitoolStatus("diff", "--json", fa, fb);
      assert.ok(cli.status === 0 || cli.status === 1, `ukitool diff exit ${cli.status}: ${cli.stderr}`);
      // Dropped on the two slots: they take the files, the inspector does not open.
      await dropOn(page, "#d-a-drop", fa);
      await dropOn(page, "#d-b-drop", fb);
      assert.deepEqual(await page.$$eval("#d-a, #d-b", (i) => i.map((x) => x.files[0] && x.files[0].name)), [a, b]);
      assert.ok(await page.isHidden("#report"), "the drop did not open the inspector");
      assert.ok(await page.isHidden("#dropzone"));
      await page.click("#diff-run");
      await page.waitForSelector("#diff-export:not([disabled])");
      const got = await downloadVia(page, page.locator("#diff-export"));
      assert.equal(got.name, "diff.json");
      assert.equal(got.bytes.toString(), cli.stdout.toString());
      assert.match(await page.textContent("#diff-verdict"), cli.status === 0 ? /identical/ : /differ, first at byte/);
      if (b === "uki-signed.efi") await page.locator("#p-diff").screenshot({ path: artifact("diff.png") });
    });
  }

  test("a file that is not a PE is one error in place", async () => {
    await page.setInputFiles("#d-a", fixture("garbage.bin"));
    await page.setInputFiles("#d-b", fixture("uki.efi"));
    await page.click("#diff-run");
    await page.waitForSelector("#diff-error:not([hidden])");
    assert.match(await page.textContent("#diff-error"), /^Could not compare: /);
    assert.equal(await page.locator("#diff-export").isDisabled(), true);
  });
});

describe("image builder options", () => {
  test("grub layout with shim, --add-file, --entry-name, --timeout, --disk-guid, --grub-prefix: = ukitool image", async () => {
    const uki = fixture("uki.efi");
    const grub = fixture("grubx64.efi.signed");
    const shim = fixture("shimx64.efi.signed");
    const extra = join(tmp, "hello.txt");
    writeFileSync(extra, "hello from the page\n");
    const guid = "01234567-89ab-cdef-0123-456789abcdef";
    const out = join(tmp, "cli-grub.img");
    ukitool(
      "image",
      "--uki",
      uki,
      "-o",
      out,
      "--layout",
      "grub",
      "--grub",
      grub,
      "--shim",
      shim,
      "--add-file",
      `${extra}:tools/hello.txt`,
      "--entry-name",
      "custom",
      "--timeout",
      "7",
      "--disk-guid",
      guid,
      "--grub-prefix",
      "/EFI/debian",
      "--timestamp",
      "315532800",
      "--quiet",
    );
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    await page.selectOption("#i-layout", "grub");
    // The loader field says which binary the layout needs, and is labelled by it.
    await page.getByLabel("GRUB EFI binary (grubx64.efi, as --grub)").setInputFiles(grub);
    await page.locator("#i-more summary").click();
    await page.fill("#i-entry-name", "custom");
    await page.fill("#i-timeout", "7");
    await page.fill("#i-disk-guid", guid);
    await page.fill("#i-grub-prefix", "/EFI/debian");
    await page.setInputFiles("#i-shim-grub", shim);
    await page.setInputFiles("#i-esp-files", extra);
    await page.fill("#i-esp-dir", "tools");
    const got = await downloadVia(page, page.locator("#disk-download"));
    assert.ok(got.bytes.equals(readFileSync(out)), "image bytes");
    await page.locator("#p-image").screenshot({ path: artifact("disk-builder-more.png") });
    await page.close();
  });

  test("systemd-boot layout with --enroll-keys: = ukitool image", async () => {
    const uki = fixture("uki.efi");
    const sdboot = fixture("systemd-bootx64.efi");
    const keys = join(tmp, "keys");
    const auth = join(tmp, "auth");
    ukitool(
      "keys",
      "create",
      "--timestamp",
      "1700000000",
      "--owner-guid",
      "11111111-2222-3333-4444-555555555555",
      keys,
    );
    ukitool("keys", "export", keys, "-o", auth, "--timestamp", "1735787045");
    mkdirSync(auth, { recursive: true });
    const out = join(tmp, "cli-enrol.img");
    ukitool(
      "image",
      "--uki",
      uki,
      "-o",
      out,
      "--layout",
      "systemd-boot",
      "--systemd-boot",
      sdboot,
      "--enroll-keys",
      auth,
      "--timestamp",
      "315532800",
      "--quiet",
    );
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    await page.selectOption("#i-layout", "systemd-boot");
    await page.setInputFiles("#i-loader", sdboot);
    await page.locator("#i-more summary").click();
    // Picked in another order: the page puts them in the CLI's.
    await page.setInputFiles(
      "#i-enroll-keys",
      ["db.auth", "PK.auth", "KEK.auth"].map((n) => join(auth, n)),
    );
    const got = await downloadVia(page, page.locator("#disk-download"));
    assert.ok(got.bytes.equals(readFileSync(out)), "image bytes");
    await page.close();
  });
});

describe("UKI builder options", () => {
  test("ucode, splash, devicetree, uname, sbat, an extra section, a profile, .pcrsig, initrds reordered: = ukitool build", async () => {
    const stub = fixture("linuxx64.efi.stub");
    const kernel = fixture("vmlinuz");
    const initrdA = fixture("initrd.cpio.gz");
    const initrdB = join(tmp, "extra.cpio");
    writeFileSync(initrdB, Buffer.from("070701" + "0".repeat(104) + "TRAILER!!!\0", "latin1"));
    const ucode = join(tmp, "ucode.cpio");
    writeFileSync(ucode, Buffer.from("070701" + "1".repeat(104), "latin1"));
    // A flattened device tree header (magic 0xd00dfeed): the builder copies it as is.
    const dtb = join(tmp, "test.dtb");
    writeFileSync(
      dtb,
      Buffer.from(
        "d00dfeed00000048000000380000004800000028000000110000001000000000000000000000000000000000000000000000000000000000000000000000000000000009",
        "hex",
      ),
    );
    const splash = fixture("splash.bmp");
    const key = fixture("snakeoil.key");
    const sbat =
      "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nukitool-test,1,ukitool,ukitool-test,1,https://example.org/\n";
    const profile = "ID=debug\nTITLE=Debug";
    const extra = join(tmp, "extra.bin");
    writeFileSync(extra, "an extra section\n");
    const profileCmdline = join(tmp, "debug.cmdline");
    writeFileSync(profileCmdline, "console=ttyS0 debug");
    const out = join(tmp, "cli-built.efi");
    ukitool(
      "build",
      "--stub",
      stub,
      "--linux",
      kernel,
      "--initrd",
      initrdB,
      "--initrd",
      initrdA,
      "--ucode",
      ucode,
      "--splash",
      splash,
      "--devicetree",
      dtb,
      "--uname",
      "6.1.0-test",
      "--sbat",
      sbat,
      "--cmdline",
      "console=ttyS0",
      "--pcr-key",
      key,
      "--pcr-bank",
      "sha256",
      "--pcr-bank",
      "sha384",
      "--section",
      `.extra:${extra}`,
      "--profile",
      profile,
      "--section",
      `.cmdline:${profileCmdline}`,
      "--timestamp",
      "1700000000",
      "-o",
      out,
    );
    const { page } = await openPage(env.browser.context, env.server.url);
    await page.click("#build-toggle");
    await page.setInputFiles("#b-stub", stub);
    await page.setInputFiles("#b-linux", kernel);
    await page.setInputFiles("#b-initrd", [initrdA, initrdB]);
    assert.deepEqual(await page.$$eval("#b-initrd-order li", (l) => l.map((x) => x.dataset.name)), [
      "initrd.cpio.gz",
      "extra.cpio",
    ]);
    // Keyboard: focus "Move extra.cpio up" and press Enter.
    await page.getByRole("button", { name: "Move extra.cpio up" }).focus();
    await page.keyboard.press("Enter");
    assert.deepEqual(await page.$$eval("#b-initrd-order li", (l) => l.map((x) => x.dataset.name)), [
      "extra.cpio",
      "initrd.cpio.gz",
    ]);
    await page.setInputFiles("#b-ucode", ucode);
    await page.setInputFiles("#b-splash", splash);
    await page.setInputFiles("#b-dtb", dtb);
    await page.fill("#b-uname", "6.1.0-test");
    await page.fill("#b-sbat", sbat);
    await page.fill("#b-cmdline", "console=ttyS0");
    await page.setInputFiles("#b-pcr-key", key);
    await page.check(".b-bank[value=sha384]");
    await page.fill("#b-section-name", ".extra");
    await page.setInputFiles("#b-section-file", extra);
    await page.click("#b-profile-add");
    await page.fill(".profile-row .pr-text", profile);
    await page.fill(".profile-row .pr-cmdline", "console=ttyS0 debug");
    await page.fill("#b-timestamp", "1700000000");
    const got = await downloadVia(page, page.locator("#build-download"));
    assert.equal(got.name, "uki.efi");
    assert.ok(got.bytes.equals(readFileSync(out)), "UKI bytes = ukitool build");
    // And the result is what was asked for: the CLI's inspect of it.
    const report = JSON.parse(ukitool("inspect", "--json", "--no-hash", out));
    const names = report.sections.map((x) => x.name);
    for (const n of [".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrsig", ".pcrpkey", ".profile", ".extra"])
      assert.ok(names.includes(n), `${n} in ${names}`);
    await page.locator("#p-build").screenshot({ path: artifact("build-uki-more.png") });
    await page.close();
  });
});

describe("drop targets", () => {
  test("a kernel and initrds dropped on the UKI builder's fields go there, not to the inspector", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    await page.click("#build-toggle");
    await dropOn(page, "#b-linux", fixture("vmlinuz"));
    await dropOn(page, "#b-initrd", fixture("initrd.cpio.gz"));
    assert.equal(await page.$eval("#b-linux", (i) => i.files[0] && i.files[0].name), "vmlinuz");
    assert.deepEqual(await page.$$eval("#b-initrd-order li", (l) => l.map((x) => x.dataset.name)), ["initrd.cpio.gz"]);
    assert.ok(await page.isHidden("#report"), "the inspector did not open");
    assert.ok(await page.isHidden("#dropzone"));
    await page.close();
  });

  test("a certificate dropped on the Signatures panel is a trust anchor: = ukitool verify --cert", async () => {
    const uki = fixture("uki-signed.efi");
    const cert = fixture("snakeoil.pem");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, uki);
    const job = (await page.evaluate(() => window.ukitool.state())).job;
    await dropOn(page, "#p-signatures h2", cert);
    await page.waitForSelector("#anchor-list li");
    const s = await page.evaluate(() => window.ukitool.state());
    assert.equal(s.job, job, "the same file is still shown");
    const got = JSON.parse(s.verify);
    const cli = JSON.parse(ukitoolStatus("verify", "--json", "--cert", cert, uki).stdout);
    const comparable = ({ file: _f, pcrsig: _p, pcrsig_error: _e, ...rest }) => rest;
    assert.equal(got.verdict, "valid-trusted");
    assert.deepEqual(comparable(got), comparable(cli));
    await page.close();
  });
});

describe("accessibility of the panels added here", () => {
  // axe-core (npm, tests/e2e/package.json) run in the page through the DevTools
  // protocol, which the page's CSP does not govern.
  const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  test("axe-core: no WCAG 2.1 A/AA violation in the keys, diff and builder panels, light and dark", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    await openFixture(page, fixture("uki.efi"));
    await page.click("#keys-toggle");
    await page.click("#diff-toggle");
    await page.click("#build-toggle");
    await page.click("#b-profile-add");
    await page.locator("#i-more summary").click();
    await page.locator('#sections tr[data-section=".cmdline"] [data-action=hex]').click();
    await page.locator("#file-hex summary").click();
    await page.waitForSelector("#file-hex .hex-view");
    await page.evaluate(axeSource);
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      const found = await page.evaluate(async () => {
        const include = ["#p-keys", "#p-diff", "#p-build", "#image-form", "#p-sections", "#file-hex"].map((x) => [x]);
        const r = await window.axe.run({ include }, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
        return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      });
      assert.deepEqual(found, [], scheme);
    }
    await page.close();
  });
});
