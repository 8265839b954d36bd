// The Worker's comparison and UKI build tasks (TASK.DIFF = `ukitool diff --json A B`,
// TASK.BUILD_UKI = `ukitool build`; protocol.js describes the messages). worker.js
// routes them here with the wasm module.

import { TASK } from "./protocol.js";

const CHUNK = 8 * 1024 * 1024;

/** A File's bytes in a wasm FileBuf, read chunk by chunk (freed by the caller). */
async function fileBuf(wasm, file) {
  const buf = new wasm.FileBuf(file.size);
  try {
    for (let at = 0; at < file.size; at += CHUNK) {
      const n = Math.min(CHUNK, file.size - at);
      buf.write(at, new Uint8Array(await file.slice(at, at + n).arrayBuffer()));
    }
  } catch (e) {
    buf.free();
    throw e;
  }
  return buf;
}

async function diff(wasm, msg) {
  const a = await fileBuf(wasm, msg.a);
  try {
    const b = await fileBuf(wasm, msg.b);
    try {
      return { json: wasm.diff(a, b) };
    } finally {
      b.free();
    }
  } finally {
    a.free();
  }
}

async function buildUkiWith(wasm, msg) {
  const parts = [];
  for (const p of msg.parts) {
    const bytes = p.file ? new Uint8Array(await p.file.arrayBuffer()) : new TextEncoder().encode(p.text);
    parts.push([p.role, p.name || "", bytes]);
  }
  const out = wasm.buildUkiWith(parts, JSON.stringify(msg.options));
  return { blob: new Blob([out], { type: "application/vnd.microsoft.portable-executable" }) };
}

export const TOOL_TASKS = { [TASK.DIFF]: diff, [TASK.BUILD_UKI]: buildUkiWith };
