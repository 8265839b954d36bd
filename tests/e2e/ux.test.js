// The page as people use it (issue 19): every panel at 390x844, 1280x800 and
// 1920x1080 in light and dark mode, checked by axe-core (WCAG 2.1 AA), reached by
// keyboard alone and photographed into tests/artifacts; then the behaviours the issue
// asked for, each against the CLI where there is a CLI answer.
// Run: node --test tests/e2e/ux.test.js   (after `make web`)
//
// Lean by design: one test per size and scheme does axe, screenshots, the sticky bar
// and the keyboard walk on the same page.

import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { artifact, fixture, openPage, pickFile, ukitool, ukitoolStatus, useBrowser } from "./harness.js";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = useBrowser();

const SIZES = [
  [390, 844],
  [1280, 800],
  [1920, 1080],
];
const PE_PANELS = ["p-build", "p-summary", "p-sections", "p-uki", "p-lints", "p-signatures", "p-pcr", "p-pe", "p-image"];
const DISK_PANELS = ["p-summary", "p-disk"];

async function waitIdle(page) {
  await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 180000 });
}

async function open(page, path) {
  await pickFile(page, path);
  await waitIdle(page);
}

/** axe-core over the whole page; the page's CSP does not apply to evaluate(). */
async function axe(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
  });
}

/** Screenshots of panels, with the sticky bar unstuck so it does not cover them. */
async function shoot(page, ids, name) {
  await page.evaluate(() => (document.querySelector(".toc").style.position = "static"));
  for (const id of ids) await page.locator(`#${id}`).screenshot({ path: artifact(name(id)) });
  await page.evaluate(() => (document.querySelector(".toc").style.position = ""));
}

/** Tab through the whole page: each stop's element, whether it ended under the sticky
 *  bar, and whether every visible, enabled control was reached. */
async function keyboardWalk(page) {
  await page.evaluate(() => {
    window.scrollTo(0, 0);
    document.activeElement?.blur();
  });
  const stops = [];
  for (let i = 0; i < 400; i++) {
    await page.keyboard.press("Tab");
    const s = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return null;
      const toc = document.querySelector(".toc").getBoundingClientRect();
      const r = a.getBoundingClientRect();
      const stuck = !document.getElementById("report").hidden && toc.top <= 0.5;
      const under = stuck && !a.closest(".toc") && r.top < toc.bottom - 1;
      if (!a.dataset.walk) a.dataset.walk = String(Math.random()).slice(2);
      return { key: a.dataset.walk, under, what: a.id || a.getAttribute("aria-label") || a.textContent.trim().slice(0, 30) };
    });
    if (!s) continue;
    if (stops.length && s.key === stops[0].key) break; // round the page once
    stops.push(s);
  }
  const missed = await page.evaluate(() => {
    const sel = "button, a[href], input, select, textarea, summary";
    return Array.from(document.querySelectorAll(sel))
      .filter((e) => !e.disabled && e.getClientRects().length && getComputedStyle(e).visibility !== "hidden")
      .filter((e) => e.tagName === "SUMMARY" || !e.closest("details:not([open])"))
      .filter((e) => !e.dataset.walk)
      .map((e) => e.id || e.getAttribute("aria-label") || e.textContent.trim().slice(0, 30));
  });
  return { stops, under: stops.filter((s) => s.under).map((s) => s.what), missed };
}

/** Contrast ratio of form field borders against their panel (WCAG 1.4.11: 3:1). */
async function fieldBorderContrast(page) {
  return page.evaluate(() => {
    const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => {
      const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
      return (x + 0.05) / (y + 0.05);
    };
    const input = document.querySelector("#i-size");
    const panel = getComputedStyle(input.closest(".panel")).backgroundColor;
    const own = getComputedStyle(input);
    return Math.min(ratio(own.borderTopColor, panel), ratio(own.borderTopColor, own.backgroundColor === "rgba(0, 0, 0, 0)" ? panel : own.backgroundColor));
  });
}

/** Jump to each panel from the contents bar: its heading must show below the bar. */
async function jumpsClearTheBar(page, ids) {
  const hidden = [];
  for (const id of ids) {
    if (id === "p-build") continue;
    await page.locator(`.toc a[href="#${id}"]`).first().click();
    await page.waitForTimeout(50);
    const gap = await page.evaluate((id) => {
      const toc = document.querySelector(".toc").getBoundingClientRect();
      const h = document.querySelector(`#${id} h2`).getBoundingClientRect();
      return h.top - toc.bottom;
    }, id);
    if (gap < 0) hidden.push(`${id} (${Math.round(gap)} px)`);
  }
  return hidden;
}

let disk;
before(() => {
  // A systemd-boot disk holding the UKI: both EFI binaries are listed on its ESP.
  disk = artifact("ux-disk.img");
  rmSync(disk, { force: true });
  ukitool("image", "--uki", fixture("uki.efi"), "-o", disk, "--esp-size", "16M", "--layout", "systemd-boot", "--systemd-boot", fixture("systemd-bootx64.efi"), "--quiet");
});

describe("every panel at three sizes, light and dark", () => {
  const figures = {};
  for (const [width, height] of SIZES) {
    for (const scheme of ["light", "dark"]) {
      const tag = `${width}x${height}-${scheme}`;
      test(tag, async () => {
        const { page, consoleErrors } = await openPage(env.browser.context, env.server.url, { width, height });
        await page.emulateMedia({ colorScheme: scheme });
        await open(page, fixture("uki-signed.efi"));
        await page.click("#build-toggle");
        await page.selectOption("#i-layout", "talos");
        await page.click("#i-part-add");
        const found = { pe: await axe(page) };
        await shoot(page, PE_PANELS, (id) => `ux-${tag}-${id}.png`);
        const toc = await page.evaluate(() => Math.round(document.querySelector(".toc").getBoundingClientRect().height));
        const hidden = await jumpsClearTheBar(page, PE_PANELS);
        // Tab order does not change with the colour scheme: the walk runs once a size.
        const walk = scheme === "light" ? await keyboardWalk(page) : { stops: [], under: [], missed: [] };
        const contrast = await fieldBorderContrast(page);
        const mobile = await page.evaluate(() => {
          const wrap = document.querySelector("#sections").parentElement;
          const cell = document.querySelector("#pcr-table .pcr-hash");
          return { sectionsOverflow: wrap.scrollWidth - wrap.clientWidth, pcrHashWidth: Math.round(cell.getBoundingClientRect().width), pcrPanel: Math.round(document.getElementById("p-pcr").getBoundingClientRect().height) };
        });

        await open(page, disk);
        found.disk = await axe(page);
        await shoot(page, DISK_PANELS, (id) => `ux-${tag}-disk-${id}.png`);
        const diskWalk = scheme === "light" ? await keyboardWalk(page) : { stops: [], under: [], missed: [] };
        figures[tag] = { toc, hidden, under: walk.under, missed: walk.missed, stops: walk.stops.length, contrast, mobile, diskMissed: diskWalk.missed, diskUnder: diskWalk.under, axe: found };
        writeFileSync(artifact(`ux-${tag}.json`), JSON.stringify(figures[tag], null, 1));

        assert.deepEqual(found.pe, [], `axe on the PE panels (${tag})`);
        assert.deepEqual(found.disk, [], `axe on the disk panels (${tag})`);
        assert.deepEqual(hidden, [], "a jump hides a panel's heading under the contents bar");
        assert.deepEqual(walk.under, [], "focus stops under the contents bar");
        assert.deepEqual(walk.missed, [], "controls Tab never reaches");
        assert.deepEqual(diskWalk.missed, [], "disk controls Tab never reaches");
        assert.deepEqual([...diskWalk.under], [], "disk focus stops under the bar");
        assert.ok(contrast >= 3, `field border contrast ${contrast.toFixed(2)}:1`);
        assert.ok(mobile.sectionsOverflow <= 1, `the section table overflows by ${mobile.sectionsOverflow} px`);
        assert.ok(mobile.pcrHashWidth >= 250, `PCR hash column ${mobile.pcrHashWidth} px wide`);
        assert.ok(toc <= (width < 600 ? 56 : 64), `contents bar ${toc} px tall`);
        assert.deepEqual(consoleErrors, []);
        await page.close();
      });
    }
  }
  test("figures", () => writeFileSync(artifact("ux-figures.json"), JSON.stringify(figures, null, 1)));
});

/** Drop files on an element through a real DataTransfer, as a user's drag does. */
async function dropOn(page, selector, paths) {
  const files = paths.map((p) => ({ name: p.split("/").pop(), b64: readFileSync(p).toString("base64") }));
  await page.evaluate(
    ({ selector, files }) => {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(new File([Uint8Array.fromBase64(f.b64)], f.name));
      const target = document.querySelector(selector);
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    { selector, files },
  );
}

const state = (page) => page.evaluate(() => window.ukitool.state());

describe("what a new user hit (issue 19)", () => {
  let page;
  before(async () => {
    ({ page } = await openPage(env.browser.context, env.server.url, { width: 1280, height: 800 }));
  });

  test("drops do what their target says; trust anchors outlive the file", async () => {
    await open(page, fixture("uki-signed.efi"));
    const job = (await state(page)).job;
    await dropOn(page, "#p-signatures", [fixture("snakeoil.pem")]);
    await page.waitForSelector("#anchor-list li");
    assert.equal((await state(page)).job, job, "the .pem did not open as a file");
    assert.equal(await page.getAttribute("#verdict", "data-verdict"), "valid-trusted");
    // A kernel dropped on the UKI builder's Kernel field goes into that field.
    await page.click("#build-toggle");
    await dropOn(page, "#b-linux", [fixture("vmlinuz")]);
    assert.equal(await page.evaluate(() => document.getElementById("b-linux").files[0]?.name), "vmlinuz");
    assert.equal((await state(page)).job, job, "the kernel did not open in the inspector");
    // Another file: the anchor is still there, and still decides.
    await open(page, fixture("uki-tampered.efi"));
    assert.match(await page.textContent("#anchor-list"), /snakeoil\.pem/);
    await open(page, fixture("uki-signed.efi"));
    assert.equal(await page.getAttribute("#verdict", "data-verdict"), "valid-trusted");
    await page.click("#anchor-clear");
    await page.waitForFunction(() => !document.getElementById("anchor-list"));
  });

  test("a private key as anchor: one clear error; a self-signed chain listed once", async () => {
    await open(page, fixture("uki-other-signed.efi"));
    await page.setInputFiles("#anchor-file", fixture("snakeoil.key"));
    await page.waitForFunction(() => /private key/.test(document.getElementById("anchor-msg")?.textContent || ""));
    const msg = await page.textContent("#anchor-msg");
    assert.doesNotMatch(msg, /neither|signature list/, msg);
    const chain = await page.$$eval("#signatures ol.chain li", (l) => l.map((x) => x.textContent));
    assert.deepEqual(chain, ["ukitool other test key (not an anchor)"]);
  });

  test("truncated.efi is an error, as the CLI's exit 2; the builder warns before it builds", async () => {
    const path = fixture("truncated.efi");
    const cli = ukitoolStatus("inspect", path);
    assert.equal(cli.status, 2);
    await open(page, path);
    assert.match(await page.textContent("#status-text"), /exits 2/);
    assert.equal(await page.getAttribute("#kind", "data-damaged"), "");
    assert.match(await page.textContent("#lint-count"), /2 errors, 0 warnings/);
    assert.ok(await page.isVisible("#image-warning"));
    assert.ok(await page.isDisabled("#disk-download"), "no silent build of a damaged file");
    await page.check("#image-anyway");
    assert.ok(await page.isEnabled("#disk-download"));
    for (const [name, why] of [["addon.efi", /addon/], ["shimx64.efi.signed", /not a UKI/], ["uki-tampered.efi", /hash-mismatch/]]) {
      await open(page, fixture(name));
      assert.match(await page.textContent("#image-warning"), why, name);
      assert.ok(await page.isDisabled("#disk-download"), name);
    }
    assert.match(await page.textContent("#kind"), /Unified Kernel Image/);
    await open(page, fixture("shimx64.efi.signed"));
    assert.match(await page.textContent("#kind"), /shim/);
  });

  test("a multi-profile UKI: the profile selector gives `ukitool measure --profile N`", async () => {
    const path = fixture("profiles.efi");
    await open(page, path);
    const n = JSON.parse(ukitool("inspect", "--json", path).toString()).profiles.length;
    assert.ok(n >= 2, "profiles.efi has profiles");
    assert.equal(await page.locator("#pcr-profile option").count(), n);
    for (const p of [1, 0]) {
      await page.selectOption("#pcr-profile", String(p));
      await page.waitForFunction((p) => window.ukitool.state().pcrProfile === p && window.ukitool.state().pcr, p);
      const want = ukitool("measure", path, "--profile", String(p), "--json").toString();
      assert.equal((await state(page)).pcr + "\n", want, `profile @${p}`);
    }
  });

  test("naming and the way back: the disk's binaries by name, Open then back", async () => {
    await open(page, disk);
    assert.ok(await page.isHidden("#p-image"), "no builder for a disk");
    const what = await page.textContent('#disk tr[data-efi="EFI/BOOT/BOOTX64.EFI"]');
    assert.match(what, /systemd-boot/);
    await page.locator('#disk tr[data-efi="EFI/Linux/uki.efi"] button').click();
    await waitIdle(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "uki");
    assert.ok(await page.isHidden("#p-disk"), "no empty disk panel for a PE");
    await page.click("#back-disk");
    await waitIdle(page);
    assert.equal(await page.getAttribute("#kind", "data-kind"), "disk");
    const toc = await page.$$eval(".toc a", (a) => a.map((x) => x.textContent));
    assert.equal(new Set(toc).size, toc.length, "contents entries are distinct");
  });

  test("stale text: a failed build clears the last one; a replaced file hears nothing of it", async () => {
    await open(page, fixture("uki.efi"));
    await page.fill("#i-size", "");
    await page.locator("#disk-download").click();
    await page.waitForSelector("#image-partitions");
    await page.fill("#i-size", "1M");
    await page.locator("#disk-download").click();
    await page.waitForFunction(() => /Could not build/.test(document.getElementById("image-status").textContent));
    assert.equal(await page.locator("#image-partitions").count(), 0);
    await page.fill("#i-size", "");
    // Build, then open another file at once: its panel shows nothing of that build.
    await page.locator("#disk-download").click();
    await pickFile(page, fixture("uki-signed.efi"));
    await waitIdle(page);
    await page.waitForTimeout(1500);
    assert.equal(await page.textContent("#image-status"), "");
    assert.match(await page.textContent("#i-size + *, label:has(#i-size)"), /100M/);
  });

  test("accessibility: live status, labelled bar, unique names, a short way to Add trust anchor", async () => {
    await open(page, fixture("uki-signed.efi"));
    if (await page.isVisible("#p-build")) await page.click("#build-toggle"); // the UKI builder, closed
    assert.equal(await page.getAttribute("#status-text", "role"), "status");
    assert.ok(await page.getAttribute("#progress", "aria-label"));
    const names = await page.$$eval("#sections button", (b) => b.map((x) => x.getAttribute("aria-label") || x.textContent));
    assert.equal(new Set(names).size, names.length, "section buttons have distinct names");
    await page.evaluate(() => {
      window.scrollTo(0, 0);
      document.activeElement?.blur();
    });
    let presses = 0;
    while (presses < 30 && (await page.evaluate(() => document.activeElement.id)) !== "toc-anchors") {
      await page.keyboard.press("Tab");
      presses++;
    }
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.id), "anchor-add");
    assert.ok(presses + 1 <= 15, `${presses + 1} key presses to Add trust anchor…`);
  });

  test("progress on the 110 MiB signed UKI: a bar from the start, no flipping, a prompt next file", async (t) => {
    const big = fixture("uki-big-signed.efi", "big");
    await page.evaluate(() => {
      window.__log = [];
      const note = () => {
        const p = document.getElementById("progress");
        window.__log.push({
          t: performance.now(),
          busy: document.body.dataset.work === "busy",
          text: document.getElementById("status-text").textContent,
          bar: !p.hidden,
          value: p.hasAttribute("value") ? p.value / p.max : null,
        });
      };
      new MutationObserver(note).observe(document.getElementById("status"), { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await pickFile(page, big);
    await page.waitForFunction(() => /Hashing sections/.test(document.getElementById("status-text").textContent), null, { timeout: 60000 });
    await page.waitForFunction(() => (document.getElementById("progress").value || 0) > 0.2 * document.getElementById("progress").max, null, { timeout: 60000 });
    // Another file while the big one hashes: how soon its headers show.
    const small = fixture("uki.efi");
    const cut = await page.evaluate(() => performance.now());
    const t0 = Date.now();
    await pickFile(page, small);
    await page.waitForFunction(() => JSON.parse(window.ukitool.state().report || "{}").file_size < 50e6, null, { timeout: 10000 });
    const answerMs = Date.now() - t0;
    await waitIdle(page);
    const log = await page.evaluate(() => window.__log);
    const bigLog = log.filter((e) => e.t < cut);
    const bare = bigLog.filter((e) => e.busy && !e.bar && !/^Reading/.test(e.text));
    const steps = [];
    for (const e of bigLog) {
      const step = e.text.replace(/…$/, "");
      if (e.busy && step && steps[steps.length - 1] !== step) steps.push(step);
    }
    const hashing = bigLog.filter((e) => /Hashing sections/.test(e.text) && e.value > 0 && e.value < 1);
    writeFileSync(artifact("ux-progress.json"), JSON.stringify({ answerMs, steps, log: bigLog.slice(0, 400) }, null, 1));
    t.diagnostic(JSON.stringify({ answerMs, steps }));
    assert.deepEqual(bare, [], "busy with no bar");
    assert.equal(new Set(steps).size, steps.length, `a step came back: ${steps.join(" → ")}`);
    assert.ok(hashing.length >= 1, "section hashing shows a value between 0 and 100%");
    // How soon the next file answered is recorded (ux-progress.json), not asserted:
    // the repo asserts no timings (docs/testing.md); make bench has the speed figures.
    assert.equal(JSON.parse((await state(page)).report).file_size, readFileSync(small).length);
  });
});
