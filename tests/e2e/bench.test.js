// Browser benchmark evidence (issues 7 and 19, "Speed") on the 110 MiB signed UKI:
// - verify in Chromium against one in-page WebCrypto SHA-256 pass over the same file
//   (the page's own limit; goal: at most 1.5x), and against the native CLI;
// - PCR 11 in Chromium against `ukitool measure` (goal: at most 3x);
// - the sha256 throughputs the page's Worker measured.
// Writes tests/artifacts/browser-bench.json, which bench/run.py (`make bench`) folds
// into docs/benchmarks.md with both ratios. Figures are recorded, never asserted.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { artifact, fixture, openPage, pickFile, ROOT, useBrowser } from "./harness.js";

const env = useBrowser();

/** A release CLI for native timings: $UKITOOL_RELEASE, else the target dir's. */
function releaseBin() {
  if (process.env.UKITOOL_RELEASE) return process.env.UKITOOL_RELEASE;
  const dir = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, "target");
  const bin = join(dir, "release/ukitool");
  return existsSync(bin) ? bin : null;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

test("verify of the 110 MiB signed UKI: Chromium vs native", async (t) => {
  const path = fixture("uki-big-signed.efi", "big");
  const cert = fixture("snakeoil.pem");
  const runs = [];
  const timings = [];
  const pcrRuns = [];
  const passes = [];
  let speeds = null;
  for (let i = 0; i < 3; i++) {
    const { page } = await openPage(env.browser.context, env.server.url);
    await pickFile(page, path);
    await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 300000 });
    const s = await page.evaluate(() => window.ukitool.state());
    assert.ok(s.verify, "the page verified the file");
    assert.equal(JSON.parse(s.verify).verdict, "valid-untrusted");
    runs.push(s.verifyMs);
    timings.push(s.verifyTiming);
    speeds = s.speeds;
    assert.ok(s.pcrTiming, "the page predicted PCR 11");
    pcrRuns.push(s.pcrTiming.ms);
    // One WebCrypto SHA-256 pass over the file, in the same page: the browser's limit.
    passes.push(
      await page.evaluate(async () => {
        const buf = await window.ukitool.file().arrayBuffer();
        await crypto.subtle.digest("SHA-256", buf.slice(0, 1 << 20)); // warm
        const t0 = performance.now();
        await crypto.subtle.digest("SHA-256", buf);
        return performance.now() - t0;
      }),
    );
    const longTasks = await page.evaluate(() => window.__longTasks);
    if (i === 0) writeFileSync(artifact("verify-big.longtasks.json"), JSON.stringify(longTasks));
    await page.close();
  }
  const bin = releaseBin();
  const native = [];
  if (bin) {
    for (let i = 0; i < 6; i++) {
      const t0 = process.hrtime.bigint();
      try {
        execFileSync(bin, ["verify", "--cert", cert, path], { stdio: "ignore" });
      } catch {
        // exit 1 (valid-untrusted against snakeoil would be 0): timing is all we want
      }
      native.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    native.shift(); // warm-up
  }
  const nativeMeasure = [];
  if (bin) {
    for (let i = 0; i < 6; i++) {
      const t0 = process.hrtime.bigint();
      execFileSync(bin, ["measure", path, "--json"], { stdio: "ignore" });
      nativeMeasure.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    nativeMeasure.shift(); // warm-up
  }
  const chromiumMs = median(runs);
  const nativeMs = native.length ? median(native) : null;
  const pcrMs = median(pcrRuns);
  const passMs = median(passes);
  const nativeMeasureMs = nativeMeasure.length ? median(nativeMeasure) : null;
  const result = {
    file: "tests/fixtures/out/uki-big-signed.efi",
    size_bytes: 114214568,
    chromium: { verify_ms_runs: runs.map((x) => Math.round(x)), verify_ms_median: Math.round(chromiumMs), breakdown: timings.map((x) => x && { ...x, read_ms: Math.round(x.read_ms), hash_ms: Math.round(x.hash_ms) }), engine: speeds && speeds.webcrypto >= speeds.wasm ? "webcrypto" : "wasm" },
    native: { binary: bin, verify_ms_runs: native.map((x) => Math.round(x)), verify_ms_median: nativeMs && Math.round(nativeMs) },
    ratio_chromium_over_native: nativeMs ? Number((chromiumMs / nativeMs).toFixed(2)) : null,
    goal: "verify <= 1.5x one in-page WebCrypto SHA-256 pass (issue 19; the CLI's 2x native goal cannot hold in a browser)",
    verify_vs_webcrypto: {
      verify_ms_median: Math.round(chromiumMs),
      webcrypto_sha256_pass_ms_runs: passes.map((x) => Math.round(x)),
      webcrypto_sha256_pass_ms_median: Math.round(passMs),
      ratio: Number((chromiumMs / passMs).toFixed(2)),
      goal: 1.5,
    },
    pcr: {
      chromium_ms_runs: pcrRuns.map((x) => Math.round(x)),
      chromium_ms_median: Math.round(pcrMs),
      native_measure_ms_runs: nativeMeasure.map((x) => Math.round(x)),
      native_measure_ms_median: nativeMeasureMs && Math.round(nativeMeasureMs),
      ratio: nativeMeasureMs ? Number((pcrMs / nativeMeasureMs).toFixed(2)) : null,
      goal: 3,
      note: "chromium: Worker time of the section pass (every section's sha256 and the measured ones in all four banks, WebCrypto in parallel, from the bytes the Authenticode pass already read) plus the core's PCR arithmetic; native: wall time of `ukitool measure --json` (read included)",
    },
    sha256_mb_per_s: {
      webcrypto: speeds && speeds.webcrypto,
      wasm_sha2: speeds && speeds.wasm,
      wasm_sha2_simd128: "same as wasm_sha2: sha2 0.10 has no simd128 path (node, same V8: 374 vs 364 MB/s; docs/web.md)",
    },
    note: "chromium: Worker time from the header prefix to the verdict (Authenticode digest streamed from the File, core verify in wasm); native: wall time of `ukitool verify --cert`, median of 5 after a warm-up",
  };
  // Throughputs measured outside this test (wasm simd128 build) are merged in by hand
  // from docs/web.md; keep what is there.
  writeFileSync(artifact("browser-bench.json"), JSON.stringify(result, null, 2) + "\n");
  t.diagnostic(JSON.stringify(result));
});
