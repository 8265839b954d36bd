// ukitool.html, the one-file page of `make dist` (web/bundle.mjs), opened from disk as
// file:// in Debian's headless Chromium, with no server: it inspects, verifies and builds
// a disk image as the CLI does, and makes no request.
// Run: node --test tests/e2e/dist.test.js   (after `make web`; $UKITOOL_HTML names a
// built ukitool.html, else the page is bundled here from index.html, web/app and web/pkg)

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  artifact,
  downloadVia,
  dropFile,
  fixture,
  openPage,
  requireWebBuild,
  ROOT,
  ukitool,
  ukitoolStatus,
  useBrowser,
  waitDone,
} from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "ukitool-e2e-dist-"));
const env = useBrowser(() => rmSync(tmp, { recursive: true, force: true }));

function bundled() {
  if (process.env.UKITOOL_HTML) return process.env.UKITOOL_HTML;
  requireWebBuild();
  const out = artifact("ukitool.html");
  execFileSync("node", [join(ROOT, "web/bundle.mjs"), out], { stdio: "inherit" });
  return out;
}

/** Everything but the file name and the .pcrsig part (shown in the PCR panel). */
function comparable(v) {
  const { file: _f, pcrsig: _p, pcrsig_error: _e, ...rest } = v;
  return rest;
}

describe("ukitool.html from file://", () => {
  let url;
  let page;
  let requests;
  let consoleErrors;

  before(async () => {
    const html = bundled();
    url = pathToFileURL(html).href;
    const text = readFileSync(html, "utf8");
    assert.doesNotMatch(text, /<script[^>]* src=|<link[^>]* href="(?!data:)/, "nothing loaded from beside the file");
    ({ page, requests, consoleErrors } = await openPage(env.browser.context, url));
  });

  test("the policy forbids every network request", async () => {
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', "content");
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'none'/);
    assert.doesNotMatch(csp, /'self'|'unsafe-inline'|https?:/);
  });

  test("inspects a dropped UKI: the report of `ukitool inspect --json`", async () => {
    const uki = fixture("uki.efi");
    await dropFile(page, "uki.efi", readFileSync(uki));
    await waitDone(page);
    assert.equal(await page.locator("#error").isHidden(), true);
    const got = await downloadVia(page, page.locator("#export"));
    assert.equal(got.bytes.toString(), ukitool("inspect", "--json", uki).toString());
    await page.screenshot({ path: artifact("dist-uki.png") });
  });

  test("verifies a dropped signed UKI against a dropped certificate", async () => {
    const uki = fixture("uki-signed.efi");
    const cert = fixture("snakeoil.pem");
    await dropFile(page, "uki-signed.efi", readFileSync(uki));
    await waitDone(page);
    await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 180000 });
    await page.setInputFiles("#anchor-file", cert);
    await page.waitForSelector("#anchor-list li");
    const got = JSON.parse((await page.evaluate(() => window.ukitool.state())).verify);
    const cli = ukitoolStatus("verify", "--json", "--cert", cert, uki);
    assert.equal(cli.status, 0, String(cli.stderr));
    const want = JSON.parse(cli.stdout.toString());
    assert.equal(want.verdict, "valid-trusted");
    assert.deepEqual(comparable(got), comparable(want));
  });

  test("builds a disk image byte-identical to `ukitool image`", async () => {
    const uki = fixture("uki-signed.efi");
    const out = join(tmp, "cli.img");
    ukitool("image", "--uki", uki, "-o", out, "--size", "64M", "--esp-size", "40M", "--timestamp", "315532800", "--quiet");
    await page.selectOption("#i-layout", "uefi");
    await page.fill("#i-size", "64M");
    await page.fill("#i-esp-size", "40M");
    const got = await downloadVia(page, page.locator("#disk-download"));
    const want = readFileSync(out);
    assert.equal(got.bytes.length, want.length, "image size");
    assert.ok(got.bytes.equals(want), "image bytes");
  });

  test("creates Secure Boot keys offline: openssl verifies the chain", async () => {
    await page.click("#keys-toggle");
    await page.fill("#k-not-before", "1700000000");
    await page.click("#keys-create");
    await page.waitForSelector("#keys-files li", { timeout: 120000 });
    for (const name of ["PK.crt", "KEK.crt", "db.crt"]) {
      const got = await downloadVia(page, page.getByRole("button", { name: `Download ${name}`, exact: true }));
      writeFileSync(join(tmp, name), got.bytes);
    }
    const v = execFileSync("openssl", ["verify", "-CAfile", join(tmp, "PK.crt"), "-untrusted", join(tmp, "KEK.crt"), join(tmp, "db.crt")], { encoding: "utf8" });
    assert.match(v, /: OK/);
  });

  test("makes no request and logs no error", () => {
    // The recorder sees file:// and blob: loads (the page, the Worker): proof it listens.
    assert.ok(requests.includes(url), `the page's own load is recorded: ${requests}`);
    const foreign = requests.filter((u) => u !== url && !u.startsWith("blob:") && !u.startsWith("data:"));
    assert.deepEqual(foreign, [], "requests other than the page itself");
    assert.deepEqual(consoleErrors, []);
  });
});
