// The Worker's Secure Boot tasks (issue 18, "the page"): keys, their .esl/.auth
// export, and Authenticode signing of a PE, each one core call through the wasm
// adapter. worker.js routes the TASK kinds below here (protocol.js describes their
// messages); each handler returns what TASK_REPLY.DONE carries.
//
// Key generation is WebCrypto's (RSASSA-PKCS1-v1_5, extractable): the private keys
// are exported as PKCS#8 only to hand them to the core, which certifies them as
// `ukitool keys create` does, and come back as the files offered for download.
// Nothing here makes a request.

import { TASK } from "./protocol.js";

const BITS = { rsa2048: 2048, rsa3072: 3072, rsa4096: 4096 };

async function bytesOf(blob) {
  return new Uint8Array(await blob.arrayBuffer());
}

// Typed Blobs keep their names: Chromium saves an untyped or text/plain "GUID" as
// "GUID.txt" (issue 19).
const TYPES = { key: "application/x-pem-file", crt: "application/x-pem-file" };

function blobs(files) {
  return files.map(([name, bytes]) => [
    name,
    new Blob([bytes], { type: TYPES[name.split(".").pop()] || "application/octet-stream" }),
  ]);
}

async function named(list) {
  const out = [];
  for (const x of list || []) out.push([x.name, await bytesOf(x.file)]);
  return out;
}

/** A new RSA private key of `bits`, as PKCS#8 DER. */
async function rsaKey(bits) {
  const pair = await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  );
  return new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
}

async function keysCreate(wasm, msg) {
  const o = msg.options || {};
  const bits = BITS[o.algorithm || "rsa2048"];
  if (!bits) throw new Error(`key algorithm ${JSON.stringify(o.algorithm)}: expected rsa2048, rsa3072 or rsa4096`);
  const [pk, kek, db] = await Promise.all([rsaKey(bits), rsaKey(bits), rsaKey(bits)]);
  const r = wasm.keysCreate(pk, kek, db, JSON.stringify(o));
  return { files: blobs(r.files), created: r.created };
}

async function keysExport(wasm, msg) {
  const r = wasm.keysExport(await named(msg.keys), await named(msg.appendDb), await named(msg.dbx), msg.timestamp);
  return { files: blobs(r.files), exported: r.exported };
}

const time = (t) => (t === null || t === undefined ? undefined : t);
const pe = (bytes) => new Blob([bytes], { type: "application/vnd.microsoft.portable-executable" });

async function signPe(wasm, msg) {
  const key = new TextDecoder().decode(await bytesOf(msg.key));
  return {
    blob: pe(wasm.signPe(await bytesOf(msg.file), key, await bytesOf(msg.cert), !!msg.append, time(msg.signingTime))),
  };
}

async function signAttributes(wasm, msg) {
  const der = wasm.signedAttributes(await bytesOf(msg.file), !!msg.append, time(msg.signingTime));
  return { blob: new Blob([der], { type: "application/octet-stream" }) };
}

async function signAttach(wasm, msg) {
  const out = wasm.attachSignature(
    await bytesOf(msg.file),
    await bytesOf(msg.cert),
    await bytesOf(msg.signature),
    !!msg.append,
    time(msg.signingTime),
  );
  return { blob: pe(out) };
}

export const SECURE_BOOT_TASKS = {
  [TASK.KEYS_CREATE]: keysCreate,
  [TASK.KEYS_EXPORT]: keysExport,
  [TASK.SIGN_PE]: signPe,
  [TASK.SIGN_ATTRIBUTES]: signAttributes,
  [TASK.SIGN_ATTACH]: signAttach,
};
