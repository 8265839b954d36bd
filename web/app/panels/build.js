// Build a UKI (= `ukitool build`): stub, kernel, initrds, texts, optional signing.

import { size } from "../dom.js";
import { download } from "../files.js";
import { TASK } from "../protocol.js";
import { $ } from "./common.js";

let ctx = null;

export function setup(c) {
  ctx = c;
  $("build-toggle").addEventListener("click", () => {
    const p = $("p-build");
    p.hidden = !p.hidden;
    $("build-toggle").setAttribute("aria-expanded", String(!p.hidden));
    if (!p.hidden) p.scrollIntoView({ block: "start" });
  });
  $("build-form").addEventListener("submit", (e) => {
    e.preventDefault();
    buildUki();
  });
  $("build-open").addEventListener("click", () => builtUki && ctx.openFile(builtUki));
}

export function render() {}

let builtUki = null;

async function buildUki() {
  const status = $("build-status");
  status.classList.remove("tone-err");
  const stub = $("b-stub").files[0];
  if (!stub) {
    status.textContent = "A stub is needed (e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub).";
    status.classList.add("tone-err");
    return;
  }
  const key = $("b-key").files[0];
  const cert = $("b-cert").files[0];
  const ts = $("b-timestamp").value.trim();
  const cmdline = $("b-cmdline").value;
  status.textContent = "Building…";
  $("build-download").disabled = true;
  try {
    const r = await ctx.runTask({
      type: TASK.BUILD_UKI,
      stub,
      linux: $("b-linux").files[0],
      initrds: Array.from($("b-initrd").files),
      cmdline: cmdline === "" ? undefined : cmdline,
      osRelease: $("b-osrel").files[0],
      timestamp: ts === "" ? null : Number(ts),
      key,
      cert,
    });
    const name = $("b-linux").files[0] ? "uki.efi" : "addon.efi";
    builtUki = new File([r.blob], name);
    download(r.blob, name);
    $("build-open").disabled = false;
    status.textContent = `Built ${name}: ${size(r.blob.size)}${key ? ", signed" : ""}.`;
  } catch (e) {
    status.textContent = "Could not build: " + e.message;
    status.classList.add("tone-err");
  } finally {
    $("build-download").disabled = false;
  }
}
