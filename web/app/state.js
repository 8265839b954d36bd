// The page's one state object. Panels render from it and nothing else; the Worker's
// answers (app.js) are the only writers of the per-file part, and reset() is the only
// place that clears it when another file is opened.

/** @typedef {{webcrypto: number, wasm: number}} Speeds */

export const state = {
  // Lasts for the page's life.
  /** @type {string|null} */ version: null,
  /** @type {Speeds|null} sha256 MB/s the Worker measured */ speeds: null,
  /** Trust anchor files added, kept across files (sent again to each new job). */
  /** @type {File[]} */ anchorFiles: [],

  // The file shown (reset() clears all of these).
  job: 0,
  /** @type {File|null} */ file: null,
  /** "pe" while a PE's report is shown, "disk" for a disk image, null before either */
  /** @type {"pe"|"disk"|null} */ view: null,
  /** @type {object|null} the parsed report (PE or disk) */ report: null,
  /** @type {string|null} its exact JSON text, for the export */ reportJson: null,
  final: false, // the report has every hash
  /** @type {string[]} download name per section index, from the core */ fileNames: [],
  /** @type {object|null} `ukitool verify --json`, parsed */ verify: null,
  /** @type {string|null} */ verifyJson: null,
  /** @type {number|null} ms the streamed Authenticode check took */ verifyMs: null,
  /** @type {object|null} {engine, read_ms, hash_ms, bytes} */ verifyTiming: null,
  /** @type {string[]} one line per trust anchor the Worker holds */ anchors: [],
  /** @type {{text: string, error: boolean}|null} the last anchor message */ anchorNote: null,
  /** @type {object|null} `ukitool measure --json`, parsed; {error} when it failed */ pcr: null,
  /** @type {string|null} */ pcrJson: null,
  /** @type {object|null} {pcrsig, pcrsig_error} */ pcrCheck: null,
  /** @type {number|null} the profile the PCR 11 table is for (null: base) */ pcrProfile: null,
  /** @type {{message: string, kind?: string, offset?: number}|null} */ error: null,
  /** @type {{text: string, busy: boolean}} */ status: { text: "", busy: false },
  /** @type {{done: number, total: number, what: string}|null} */ progress: null,
  busy: false, // the Worker is still working on this file
  /** @type {{name: string, job: number}|null} the disk a file was opened from */ parent: null,
};

/** Forget everything about the previous file; `file` is the one now shown. */
export function reset(file) {
  Object.assign(state, {
    job: state.job + 1,
    file,
    view: null,
    report: null,
    reportJson: null,
    final: false,
    fileNames: [],
    verify: null,
    verifyJson: null,
    verifyMs: null,
    verifyTiming: null,
    anchors: [],
    anchorNote: null,
    pcr: null,
    pcrJson: null,
    pcrCheck: null,
    pcrProfile: null,
    error: null,
    status: { text: "", busy: true },
    progress: null,
    busy: true,
    parent: null,
  });
  return state.job;
}

/** The shown file's name without its extension, for export names. */
export function baseName() {
  return (state.file && state.file.name ? state.file.name : "file").replace(/\.[^.]*$/, "");
}
