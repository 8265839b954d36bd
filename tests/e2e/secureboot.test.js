// Issue 18's page: Secure Boot keys made in Debian's headless Chromium (WebCrypto key
// generation, certified by the core), their .esl/.auth export, an image that enrols
// them, and Authenticode signing by key file and in two steps. Every download is
// judged by outside referees: openssl parses and chains the keys; efitools'
// sig-list-to-certs reads the lists and sign-efi-sig-list signs the same bytes;
// openssl cms -verify accepts each .auth as tests/tests/keys.rs checks it; sbverify
// accepts the signed PEs; the image is byte-identical to `ukitool image
// --secure-boot-keys` with the same keys.
// Run: node --test tests/e2e/secureboot.test.js   (after `make web`)

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { artifact, downloadVia, fixture, openPage, pickFile, ukitool, useBrowser } from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "ukitool-e2e-sb-"));
const env = useBrowser(() => rmSync(tmp, { recursive: true, force: true }));

const CREATE_TIME = 1700000000;
// 2025-01-02 03:04:05 UTC, as sign-efi-sig-list -t takes it.
const EXPORT_TIME = 1735787045;
const EXPORT_TIME_TEXT = "2025-01-02 03:04:05";
const KEY_FILES = ["PK.key", "PK.crt", "KEK.key", "KEK.crt", "db.key", "db.crt", "GUID"];
const OWNER = "11111111-2222-3333-4444-555555555555";

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

async function openKeysPanel(page) {
  await page.click("#keys-toggle");
  await page.waitForSelector("#p-keys:not([hidden])");
}

/** Create a key set in the page and download every file into `dir`. */
async function createKeysInPage(page, dir, algorithm = "rsa2048") {
  await page.fill("#k-name", "Page Org");
  await page.selectOption("#k-algorithm", algorithm);
  await page.fill("#k-owner", OWNER);
  await page.fill("#k-not-before", String(CREATE_TIME));
  await page.click("#keys-create");
  await page.waitForSelector("#keys-files li", { timeout: 120000 });
  mkdirSync(dir, { recursive: true });
  for (const name of KEY_FILES) {
    const got = await downloadVia(page, page.getByRole("button", { name: `Download ${name}`, exact: true }));
    assert.equal(got.name, name);
    writeFileSync(join(dir, name), got.bytes);
  }
}

/** The subjects, issuers, validity and extensions openssl reads, serials aside. */
function certShape(path) {
  return sh("openssl", ["x509", "-in", path, "-noout", "-subject", "-issuer", "-dates", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier"])
    .replace(/[0-9A-F]{2}(:[0-9A-F]{2}){19}/g, "KEYID");
}

/** DER TLV with a definite length. */
function tlv(tag, content) {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

/** `openssl cms -verify` of an .auth's signature over the bytes UEFI says it covers
 *  (name, vendor GUID, attributes, timestamp, lists), `anchor` the only trust. */
function cmsVerify(dir, name, auth, anchor) {
  const len = auth.readUInt32LE(16);
  const time = auth.subarray(0, 16);
  const sd = auth.subarray(40, 16 + len);
  const lists = auth.subarray(16 + len);
  const oid = Buffer.from([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
  const ci = tlv(0x30, Buffer.concat([oid, tlv(0xa0, sd)]));
  const guid = name === "PK" || name === "KEK" ? "61dfe48bca93d211aa0d00e098032b8c" : "cbb219d73a3d9645a3bcdad00e67656f";
  const attrs = Buffer.alloc(4);
  attrs.writeUInt32LE(0x27);
  const content = Buffer.concat([Buffer.from(name, "utf16le"), Buffer.from(guid, "hex"), attrs, time, lists]);
  writeFileSync(join(dir, `${name}.p7`), ci);
  writeFileSync(join(dir, `${name}.signed`), content);
  const r = spawnSync("openssl", ["cms", "-verify", "-binary", "-inform", "DER", "-in", join(dir, `${name}.p7`), "-content", join(dir, `${name}.signed`), "-CAfile", anchor, "-purpose", "any", "-out", "/dev/null"], { encoding: "utf8" });
  assert.equal(r.status, 0, `${name}.auth: openssl cms -verify: ${r.stderr}`);
}

/** The one error shown in place for `prefix` (keys-create, keys-export, sign). */
async function errorOf(page, prefix) {
  await page.waitForSelector(`#${prefix}-error:not([hidden])`);
  const alerts = await page.$$eval("#p-keys [role=alert]:not([hidden])", (a) => a.map((x) => x.textContent));
  assert.equal(alerts.length, 1, `one error: ${alerts}`);
  return alerts[0];
}

describe("Secure Boot keys in the page", () => {
  const keys = join(tmp, "keys");
  const exported = join(tmp, "exported");

  test("create (WebCrypto RSA 2048): openssl parses and chains them, shaped as ukitool keys create", async () => {
    const { page, requests } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    await createKeysInPage(page, keys);
    const f = (n) => join(keys, n);
    for (const k of ["PK", "KEK", "db"]) {
      assert.match(sh("openssl", ["pkey", "-in", f(`${k}.key`), "-noout", "-text"]), /2048 bit/);
      // The certificate is the key's.
      assert.equal(sh("openssl", ["x509", "-in", f(`${k}.crt`), "-noout", "-pubkey"]), sh("openssl", ["pkey", "-in", f(`${k}.key`), "-pubout"]));
    }
    assert.match(sh("openssl", ["verify", "-CAfile", f("PK.crt"), "-untrusted", f("KEK.crt"), f("db.crt")]), /: OK/);
    assert.equal(readFileSync(f("GUID"), "utf8"), `${OWNER}\n`);
    // The CLI's key set with the same options: the same certificates but for serials
    // and keys.
    const cli = join(tmp, "cli-keys");
    ukitool("keys", "create", "--name", "Page Org", "--owner-guid", OWNER, "--timestamp", String(CREATE_TIME), cli);
    for (const k of ["PK", "KEK", "db"]) assert.equal(certShape(f(`${k}.crt`)), certShape(join(cli, `${k}.crt`)), k);
    assert.match(await page.textContent("#keys-create-status"), /Created PK, KEK and db \(rsa2048\)/);
    assert.deepEqual(requests.filter((u) => !u.startsWith(env.server.url) && !u.startsWith("blob:")), [], "no outside request");
    await page.locator("#p-keys").screenshot({ path: artifact("secureboot-keys.png") });
    await page.close();
  });

  test("create with RSA 4096: openssl reads 4096-bit keys and the chain verifies", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    const dir = join(tmp, "keys4096");
    await createKeysInPage(page, dir, "rsa4096");
    for (const k of ["PK", "KEK", "db"]) assert.match(sh("openssl", ["pkey", "-in", join(dir, `${k}.key`), "-noout", "-text"]), /4096 bit/);
    assert.match(sh("openssl", ["verify", "-CAfile", join(dir, "PK.crt"), "-untrusted", join(dir, "KEK.crt"), join(dir, "db.crt")]), /: OK/);
    await page.close();
  });

  test("export .esl and .auth with an appended db certificate and a dbx: efitools and openssl cms agree, = ukitool keys export", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    await page.setInputFiles("#k-load", KEY_FILES.map((n) => join(keys, n)));
    await page.fill("#k-export-timestamp", String(EXPORT_TIME));
    await page.setInputFiles("#k-append-db", fixture("snakeoil.pem"));
    await page.setInputFiles("#k-dbx", fixture("other.pem"));
    await page.click("#keys-export");
    await page.waitForSelector("#keys-export-files li");
    mkdirSync(exported, { recursive: true });
    for (const v of ["PK", "KEK", "db", "dbx"]) {
      for (const ext of ["esl", "auth"]) {
        const got = await downloadVia(page, page.getByRole("button", { name: `Download ${v}.${ext}`, exact: true }));
        writeFileSync(join(exported, `${v}.${ext}`), got.bytes);
      }
    }
    const cli = join(tmp, "cli-export");
    ukitool("keys", "export", keys, "-o", cli, "--timestamp", String(EXPORT_TIME), "--append-db", fixture("snakeoil.pem"), "--dbx", fixture("other.pem"));
    const own = (n) => join(keys, `${n}.crt`);
    for (const [name, signer, first] of [["PK", "PK", own("PK")], ["KEK", "PK", own("KEK")], ["db", "KEK", own("db")], ["dbx", "KEK", fixture("other.pem")]]) {
      const esl = readFileSync(join(exported, `${name}.esl`));
      const auth = readFileSync(join(exported, `${name}.auth`));
      assert.ok(esl.equals(readFileSync(join(cli, `${name}.esl`))), `${name}.esl = the CLI's`);
      assert.ok(auth.equals(readFileSync(join(cli, `${name}.auth`))), `${name}.auth = the CLI's`);
      // efitools reads the list back: its certificate first.
      const prefix = join(tmp, `${name}-back`);
      sh("sig-list-to-certs", [join(exported, `${name}.esl`), prefix]);
      const der = execFileSync("openssl", ["x509", "-in", first, "-outform", "DER"]);
      assert.ok(readFileSync(`${prefix}-0.der`).equals(der), `${name}.esl holds ${first}`);
      // and signs the same list into the same bytes, with the signer's page-made key.
      const theirs = join(tmp, `${name}.ref.auth`);
      sh("sign-efi-sig-list", ["-t", EXPORT_TIME_TEXT, "-k", join(keys, `${signer}.key`), "-c", join(keys, `${signer}.crt`), name, join(exported, `${name}.esl`), theirs]);
      assert.ok(readFileSync(theirs).equals(auth), `${name}.auth = sign-efi-sig-list's`);
      // PK is the root: db's signature (by KEK) chains to it, as tests/tests/keys.rs checks.
      cmsVerify(tmp, name, auth, join(keys, "PK.crt"));
    }
    assert.ok(readFileSync(`${join(tmp, "db-back")}-1.der`).length > 0, "db also holds the appended certificate");
    await page.close();
  });

  test("a non-CA signer is one clear error in place, and nothing is offered", async () => {
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    // db's leaf key and certificate posing as PK and KEK.
    const bad = join(tmp, "bad-keys");
    mkdirSync(bad, { recursive: true });
    for (const n of KEY_FILES) writeFileSync(join(bad, n), readFileSync(join(keys, n.replace(/^(PK|KEK)\./, "db."))));
    await page.setInputFiles("#k-load", KEY_FILES.map((n) => join(bad, n)));
    await page.fill("#k-export-timestamp", String(EXPORT_TIME));
    await page.click("#keys-export");
    assert.match(await errorOf(page, "keys-export"), /^Could not export: .*PK\.crt is not a CA certificate/);
    assert.equal(await page.locator("#keys-export-files li").count(), 0);
    await page.close();
  });

  test("images that enrol the keys (default mode, force): byte-identical to ukitool image --secure-boot-keys", async () => {
    const uki = fixture("uki.efi");
    const sdboot = fixture("systemd-bootx64.efi");
    const cli = (mode) => {
      const out = join(tmp, `cli-sb-${mode || "default"}.img`);
      const enroll = mode ? ["--secure-boot-enroll", mode] : [];
      ukitool("image", "--uki", uki, "-o", out, "--layout", "systemd-boot", "--systemd-boot", sdboot, "--secure-boot-keys", keys, ...enroll, "--timestamp", "315532800", "--quiet");
      return readFileSync(out);
    };
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    await page.setInputFiles("#k-load", KEY_FILES.map((n) => join(keys, n)));
    await pickFile(page, uki);
    await page.waitForFunction(() => document.body.dataset.work === "idle", null, { timeout: 180000 });
    await page.selectOption("#i-layout", "systemd-boot");
    await page.setInputFiles("#i-loader", sdboot);
    await page.check("#i-sb-use");
    // "" is the page's "default" choice: the CLI without --secure-boot-enroll.
    for (const mode of ["", "force"]) {
      await page.selectOption("#i-sb-enroll", mode);
      const got = await downloadVia(page, page.locator("#disk-download"));
      assert.ok(got.bytes.equals(cli(mode)), `the enrolling image's bytes (${mode || "default"})`);
    }
    const files = await page.$$eval("#image-summary .files code", (c) => c.map((x) => x.textContent));
    for (const v of ["PK", "KEK", "db"]) assert.ok(files.includes(`/loader/keys/auto/${v}.auth`), `${v}.auth on the ESP: ${files}`);
    await page.close();
  });
});

describe("signing a PE in the page", () => {
  const keys = join(tmp, "keys");

  test("with a key file: sbverify --cert db.crt accepts it, = ukitool sign", async () => {
    const pe = fixture("uki.efi");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    await page.setInputFiles("#s-file", pe);
    await page.setInputFiles("#s-key", join(keys, "db.key"));
    await page.setInputFiles("#s-cert", join(keys, "db.crt"));
    const got = await downloadVia(page, page.locator("#sign-key"));
    assert.equal(got.name, "uki.signed.efi");
    const signed = join(tmp, "page-signed.efi");
    writeFileSync(signed, got.bytes);
    assert.match(sh("sbverify", ["--cert", join(keys, "db.crt"), signed]), /Signature verification OK/);
    const cli = join(tmp, "cli-signed.efi");
    ukitool("sign", pe, "--key", join(keys, "db.key"), "--cert", join(keys, "db.crt"), "-o", cli);
    assert.ok(got.bytes.equals(readFileSync(cli)), "= ukitool sign");
    await page.close();
  });

  test("in two steps with openssl pkeyutl as the outside signer; a mismatched signature is refused in place", async () => {
    const pe = fixture("uki.efi");
    const { page } = await openPage(env.browser.context, env.server.url);
    await openKeysPanel(page);
    await page.setInputFiles("#s-file", pe);
    await page.setInputFiles("#s-cert", join(keys, "db.crt"));
    const attrs = await downloadVia(page, page.locator("#sign-attributes"));
    assert.equal(attrs.name, "uki.signed-attributes.der");
    const cliAttrs = join(tmp, "cli-attrs.der");
    ukitool("sign", pe, "--cert", join(keys, "db.crt"), "--export-signed-attributes", cliAttrs);
    assert.ok(attrs.bytes.equals(readFileSync(cliAttrs)), "= sign --export-signed-attributes");
    const attrsPath = join(tmp, "attrs.der");
    writeFileSync(attrsPath, attrs.bytes);
    const signWith = (key, out) => {
      const digest = join(tmp, "attrs.sha256");
      sh("openssl", ["dgst", "-sha256", "-binary", "-out", digest, attrsPath]);
      sh("openssl", ["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey", key, "-in", digest, "-out", out]);
    };
    const sig = join(tmp, "attrs.sig");
    signWith(join(keys, "db.key"), sig);
    await page.setInputFiles("#s-signature", sig);
    const got = await downloadVia(page, page.locator("#sign-attach"));
    const signed = join(tmp, "page-two-step.efi");
    writeFileSync(signed, got.bytes);
    assert.match(sh("sbverify", ["--cert", join(keys, "db.crt"), signed]), /Signature verification OK/);
    assert.ok(got.bytes.equals(readFileSync(join(tmp, "cli-signed.efi"))), "= the one-step signature");
    // KEK's signature over the same attributes does not match db.crt.
    const other = join(tmp, "other.sig");
    signWith(join(keys, "KEK.key"), other);
    await page.setInputFiles("#s-signature", other);
    let downloads = 0;
    page.on("download", () => downloads++);
    await page.click("#sign-attach");
    assert.match(await errorOf(page, "sign"), /^Could not sign: .*the signature does not verify over these signed attributes/);
    assert.equal(downloads, 0, "nothing downloaded");
    await page.locator("#p-keys").screenshot({ path: artifact("secureboot-sign-error.png") });
    await page.close();
  });
});
