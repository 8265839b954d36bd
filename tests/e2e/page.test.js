// index.html in Debian's headless Chromium, checked against the ukitool CLI.
// Run: node --test tests/e2e/   (after `make web`; fixtures are generated on demand)

import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import {
  artifact,
  downloadVia,
  dropFile,
  fixture,
  openPage,
  pickFile,
  ROOT,
  ukitool,
  useBrowser,
  waitDone,
} from "./harness.js";

const env = useBrowser();

// Every request must be the page's own static files (or blob:/data: URLs it made).
function assertOnlyOwnOrigin(requests) {
  const foreign = requests.filter(
    (u) => !u.startsWith(env.server.url) && !u.startsWith("blob:") && !u.startsWith("data:"),
  );
  assert.deepEqual(foreign, [], "requests outside the page's origin");
}

async function sectionNames(page) {
  return page.$$eval("#sections tbody tr[data-section]", (rows) => rows.map((r) => r.dataset.section));
}

describe("a real UKI", () => {
  let uki;
  let cli;
  let page;
  let requests;
  let consoleErrors;

  before(async () => {
    uki = fixture("uki.efi");
    cli = JSON.parse(ukitool("inspect", "--json", uki).toString());
    ({ page, requests, consoleErrors } = await openPage(env.browser.context, env.server.url));
    await pickFile(page, uki);
    await waitDone(page);
  });

  test("shows the CLI's kind, PRETTY_NAME, kernel version and sections", async () => {
    assert.equal(await page.locator("#error").isHidden(), true);
    assert.equal(cli.kind, "uki");
    assert.equal(await page.getAttribute("#kind", "data-kind"), cli.kind);
    assert.equal(await page.textContent("#pretty-name"), cli.os_release.PRETTY_NAME);
    const kernel = cli.kernel.version || cli.uname;
    assert.ok(kernel, "the CLI reports a kernel version");
    assert.equal(await page.textContent("#kernel-version"), kernel);
    assert.deepEqual(await sectionNames(page), cli.sections.map((s) => s.name));
    const titles = await page.$$eval("#sections tbody tr[data-section] td:nth-child(4)", (c) =>
      c.map((td) => Number(td.title.split(" ")[0])),
    );
    assert.deepEqual(titles, cli.sections.map((s) => s.virtual_size));
    await page.screenshot({ path: artifact("uki-desktop.png"), fullPage: true });
  });

  test("section downloads are byte-identical to `ukitool extract`, under their own names", async () => {
    // The conventional names of core::extract::file_name, never "vmlinuz.txt" (issue 19).
    const names = { ".osrel": "os-release", ".linux": "vmlinuz", ".cmdline": "cmdline" };
    for (const name of [".osrel", ".linux", ".cmdline"]) {
      const row = page.locator(`#sections tr[data-section="${name}"]`);
      const got = await downloadVia(page, row.locator("[data-action=download]"));
      assert.equal(got.name, names[name], `${name} file name`);
      const want = ukitool("extract", uki, name, "-o", "-");
      assert.equal(got.bytes.length, want.length, `${name} length`);
      assert.ok(got.bytes.equals(want), `${name} bytes`);
    }
  });

  test("the JSON export is byte-identical to `ukitool inspect --json`", async () => {
    const got = await downloadVia(page, page.locator("#export"));
    const want = ukitool("inspect", "--json", uki);
    writeFileSync(artifact("uki.page.json"), got.bytes);
    assert.equal(got.bytes.toString(), want.toString());
  });

  test("hex view and splash render", async () => {
    const row = page.locator('#sections tr[data-section=".linux"]');
    await row.getByRole("button", { name: "Hex" }).click();
    const hex = await page.textContent(".hex-row pre");
    assert.match(hex, /^[0-9a-f]{8} {2}4d 5a/, ".linux starts with MZ");
    // The browser decodes the .splash BMP at the size the CLI reads from its header.
    await page.waitForFunction(() => document.getElementById("splash")?.complete);
    const dims = await page.$eval("#splash", (i) => [i.naturalWidth, i.naturalHeight]);
    assert.deepEqual(dims, [cli.splash.width, Math.abs(cli.splash.height)]);
    await page.screenshot({ path: artifact("uki-hex.png") });
  });

  test("no request leaves the page's origin and nothing is logged as an error", async () => {
    assertOnlyOwnOrigin(requests);
    assert.deepEqual(consoleErrors, []);
    const longTasks = await page.evaluate(() => window.__longTasks);
    writeFileSync(artifact("uki.longtasks.json"), JSON.stringify(longTasks));
  });
});

describe("hostile input", () => {
  test("a garbage file shows an error in place and the next file still works", async () => {
    const { page, requests } = await openPage(env.browser.context, env.server.url);
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
    await dropFile(page, "garbage.bin", garbage);
    await waitDone(page);
    const err = await page.textContent("#error");
    assert.match(err, /offset 0x0/);
    assert.match(err, /MZ/);
    await page.screenshot({ path: artifact("error.png") });

    // A PE truncated inside its section table: the error names the rule.
    const stub = readFileSync("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    await dropFile(page, "truncated.efi", stub.subarray(0, 0x190));
    await waitDone(page);
    assert.match(await page.textContent("#error"), /truncated at offset 0x[0-9a-f]+/);

    const uki = fixture("uki.efi");
    const cli = JSON.parse(ukitool("inspect", "--json", uki).toString());
    await dropFile(page, "uki.efi", readFileSync(uki));
    await waitDone(page);
    assert.equal(await page.locator("#error").isHidden(), true);
    assert.equal(await page.textContent("#pretty-name"), cli.os_release.PRETTY_NAME);
    assertOnlyOwnOrigin(requests);
  });
});

describe("other EFI binaries", () => {
  for (const [name, path] of [
    ["systemd-boot", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"],
    ["shim", "/usr/lib/shim/shimx64.efi.signed"],
    ["grub", "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"],
    // Long section names: the COFF string table is read separately, at the end.
    ["longnames", join(ROOT, "tests/fixtures/out/longnames.efi")],
  ]) {
    test(`${name}: same sections and JSON as the CLI`, async () => {
      if (name === "longnames") fixture("longnames.efi");
      const { page } = await openPage(env.browser.context, env.server.url);
      await pickFile(page, path);
      await waitDone(page);
      const cli = JSON.parse(ukitool("inspect", "--json", path).toString());
      assert.equal(await page.getAttribute("#kind", "data-kind"), cli.kind);
      assert.deepEqual(await sectionNames(page), cli.sections.map((s) => s.name));
      const got = await downloadVia(page, page.locator("#export"));
      assert.equal(got.bytes.toString(), ukitool("inspect", "--json", path).toString());
      await page.close();
    });
  }
});

describe("layout", () => {
  test("phone width and dark mode screenshots", async () => {
    const uki = fixture("uki.efi");
    const { page } = await openPage(env.browser.context, env.server.url, { width: 390, height: 844 });
    await page.screenshot({ path: artifact("welcome-phone.png") });
    await pickFile(page, uki);
    await waitDone(page);
    await page.screenshot({ path: artifact("uki-phone.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: artifact("uki-dark.png"), fullPage: true });
    // Keyboard: the open button is reachable with Tab.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "pick");
    await page.close();
  });
});

describe("a disk image made by `ukitool image`", () => {
  test("shows partitions and the ESP's UKI, exports the CLI's JSON, opens the UKI", async () => {
    const uki = fixture("uki.efi");
    const img = artifact("disk.img");
    rmSync(img, { force: true });
    ukitool("image", "--uki", uki, "-o", img);
    const cli = JSON.parse(ukitool("inspect", "--json", img).toString());
    const { page, requests } = await openPage(env.browser.context, env.server.url);
    await pickFile(page, img);
    await waitDone(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "disk");
    const parts = await page.$$eval("#partitions tbody tr", (r) => r.map((x) => Number(x.dataset.partition)));
    assert.deepEqual(parts, cli.partition_table.partitions.map((p) => p.index));
    const got = await downloadVia(page, page.locator("#export"));
    assert.equal(got.bytes.toString(), ukitool("inspect", "--json", img).toString());
    await page.screenshot({ path: artifact("disk.png"), fullPage: true });

    // The UKI on the ESP opens in the same views, with the same facts.
    const bin = cli.filesystems[0].efi_binaries[0];
    await page.locator(`tr[data-efi="${bin.path}"] button`).click();
    await waitDone(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "uki");
    assert.equal(await page.textContent("#pretty-name"), bin.report.os_release.PRETTY_NAME);
    assertOnlyOwnOrigin(requests);
    await page.close();
  });
});

describe("a Talos disk made by `ukitool image --layout talos`", () => {
  test("shows its Talos facts and META, exports the CLI's JSON", async () => {
    const img = artifact("talos-sd-boot.img");
    rmSync(img, { force: true });
    ukitool("image", "--uki", fixture("uki.efi"), "-o", img, "--layout", "talos", "--talos-bootloader", "sd-boot", "--talos-version", "1.10", "--systemd-boot", fixture("systemd-bootx64.efi"), "--meta", "0x0c=hello", "--quiet");
    const { page } = await openPage(env.browser.context, env.server.url);
    await pickFile(page, img);
    await waitDone(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "disk");
    assert.match(await page.textContent("#disk-talos"), /sd-boot image · version 1\.0 · UKI EFI\/Linux\/Talos-1\.0\.efi/);
    assert.match(await page.textContent('#meta-records tr[data-meta-tag="12"]'), /user-reserved-1\s*hello/);
    const got = await downloadVia(page, page.locator("#export"));
    assert.equal(got.bytes.toString(), ukitool("inspect", "--json", img).toString());
    await page.close();
    rmSync(img, { force: true });
  });
});

describe("a 110 MiB UKI", () => {
  // Long tasks are recorded as evidence (tests/artifacts/*.longtasks.json), not
  // asserted: timing assertions are flaky on a shared machine.
  for (const name of ["uki-big.efi", "uki-big-signed.efi"]) {
    test(`${name}: headers first, then the CLI's exact JSON`, async (t) => {
      const path = fixture(name, "big");
      const { page, requests } = await openPage(env.browser.context, env.server.url);
      const t0 = Date.now();
      await pickFile(page, path);
      await page.waitForSelector("#sections tbody tr");
      const firstMs = Date.now() - t0;
      await waitDone(page);
      const doneMs = Date.now() - t0;
      assert.equal(await page.locator("#error").isHidden(), true);
      const got = await downloadVia(page, page.locator("#export"));
      assert.equal(got.bytes.toString(), ukitool("inspect", "--json", path).toString());
      const longTasks = await page.evaluate(() => window.__longTasks);
      const engine = await page.textContent("#engine");
      const evidence = { firstMs, doneMs, longTasks, engine };
      writeFileSync(artifact(`${name}.longtasks.json`), JSON.stringify(evidence, null, 1));
      t.diagnostic(JSON.stringify(evidence));
      assertOnlyOwnOrigin(requests);
      await page.close();
    });
  }
});
