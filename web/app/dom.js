// Small DOM helpers. Text always goes in through text nodes (strings from a file
// are hostile), and no inline styles are used (the CSP has style-src 'self').

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === "") continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function hexNum(n) {
  return "0x" + Number(n).toString(16);
}

export function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function copyButton(text, label) {
  const b = el("button", { type: "button", class: "copy small", "aria-label": label, title: label }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Copy failed";
    }
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
  return b;
}

// A <dl> of [label, value] rows; rows with a null value are left out.
export function factList(dl, rows) {
  clear(dl);
  for (const [k, v] of rows) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(el("div", { class: "fact" }, el("dt", {}, k), el("dd", {}, v)));
  }
  return dl;
}

export function table(t, head, rows) {
  clear(t);
  if (head) {
    t.append(el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))));
  }
  t.append(el("tbody", {}, ...rows));
  return t;
}

export function emptyState(text) {
  return el("p", { class: "empty" }, text);
}
