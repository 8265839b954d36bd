// Drop targets do what they say (issue 19, problem 4): a file dropped on a file field
// (anywhere on its label), or on an element marked data-drop-for="INPUT_ID" (the
// Signatures panel: its trust anchor field), goes to that field as if picked there (a
// change event fires), not to the inspector. The page's window-level drop handler
// sees defaultPrevented and leaves the drop alone. Listening on the document runs
// before the window's listeners.

function fieldOf(e) {
  const t = e.target instanceof Element ? e.target : null;
  if (!t) return null;
  const marked = t.closest("[data-drop-for]");
  const input = marked
    ? document.getElementById(marked.dataset.dropFor)
    : t.closest("label") && (t.closest("label").control || t.closest("label").querySelector("input[type=file]"));
  return input && input.type === "file" && !input.disabled ? input : null;
}

export function setupDropTargets() {
  document.addEventListener("dragover", (e) => {
    if (fieldOf(e)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    }
  });
  document.addEventListener("drop", (e) => {
    const input = fieldOf(e);
    if (!input || e.defaultPrevented || !e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    const dt = new DataTransfer();
    for (const f of input.multiple ? Array.from(e.dataTransfer.files) : [e.dataTransfer.files[0]]) dt.items.add(f);
    input.files = dt.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}
