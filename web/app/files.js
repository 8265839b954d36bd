// Downloads and blob: URLs. Every URL made for the file shown is revoked when another
// file is opened (revokeAll, from app.js's open).

import { el } from "./dom.js";

const objectUrls = [];

export function blobUrl(blob) {
  const u = URL.createObjectURL(blob);
  objectUrls.push(u);
  return u;
}

export function revokeAll() {
  for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
}

export function download(blob, name) {
  const a = el("a", { href: blobUrl(blob), download: name, hidden: "" });
  document.body.append(a);
  a.click();
  a.remove();
}
