// The one description of what the page (app.js) and the Worker (worker.js) say to each
// other. Both import the kinds from here; nothing else names a message type.
//
// Three families, kept apart on both sides:
// - JOB messages are about the file shown. Each carries the page's `job` number, which
//   grows with every file opened; an answer for an older job is dropped by the page, and
//   the Worker stops an older job at its next read ("superseded").
// - TASK messages are tool runs (build a disk image, a UKI; take a file out of a disk).
//   Each carries a `task` number and gets exactly one answer: TASK_DONE or TASK_ERROR.
// - LIFE messages are the Worker's own: READY once after start-up, CRASH when the wasm
//   instance trapped (the page then restarts the Worker; pending tasks fail).

/** Page -> Worker, about the file shown. */
export const JOB = Object.freeze({
  /** @type {"open"} {type, job, file: File} start a new job: headers, verify, hashes, PCR 11 */
  OPEN: "open",
  /** @type {"anchor"} {type, job, name: string, file: File} add a trust anchor, verify again */
  ANCHOR: "anchor",
  /** @type {"clear-anchors"} {type, job} drop every trust anchor, verify again */
  CLEAR_ANCHORS: "clear-anchors",
  /** @type {"profile"} {type, job, profile: number|null} PCR 11 for one profile (null: base) */
  PROFILE: "profile",
});

/** Worker -> page, answers to a job (all carry `job`). */
export const JOB_REPLY = Object.freeze({
  /** {json: string, names: string[]} the report without hashes; names: download names */
  HEADERS: "headers",
  /** {done: number, total: number, what: string} total 0: a step with no bar */
  PROGRESS: "progress",
  /** {json, anchors: string[], ms: number|null, timing} = `ukitool verify --json` */
  VERIFY: "verify",
  /** {message} an anchor file could not be used; the previous verdict stands */
  ANCHOR_ERROR: "anchor-error",
  /** {json} the final report, = `ukitool inspect --json` */
  REPORT: "report",
  /** {json, check, profile, error} = `ukitool measure --json [--profile N]` and the .pcrsig check */
  PCR: "pcr",
  /** {json} a disk image's report, = `ukitool inspect --json DISK` */
  DISK: "disk",
  /** {message, kind, offset} the file could not be read */
  ERROR: "error",
  /** nothing more will come for this job */
  FINISHED: "finished",
});

/** Page -> Worker, tool runs (all carry `task`, and `job` when they use the file shown). */
export const TASK = Object.freeze({
  /** {job, options, loader?: File, inputs: [{role, name, file, path?}]} = `ukitool image` */
  DISK_IMAGE: "disk-image",
  /** {job, partition: string, path: string} = `ukitool extract DISK P:/PATH` */
  DISK_FILE: "disk-file",
  /** {stub, linux, initrds, cmdline, osRelease, timestamp, key, cert} = `ukitool build` */
  BUILD_UKI: "build-uki",
});

/** Worker -> page, the one answer to a task. */
export const TASK_REPLY = Object.freeze({
  /** {task, blob: Blob, name?: string, summary?: string} */
  DONE: "task-done",
  /** {task, message, kind?, offset?} */
  ERROR: "task-error",
});

/** Worker -> page, the Worker's own life. */
export const LIFE = Object.freeze({
  /** {version: string, speeds: {webcrypto: number, wasm: number}} sha256 MB/s measured */
  READY: "ready",
  /** {job, message} the wasm instance trapped: restart the Worker */
  CRASH: "crash",
});

const JOB_REPLIES = new Set(Object.values(JOB_REPLY));
const TASK_REPLIES = new Set(Object.values(TASK_REPLY));
const LIVES = new Set(Object.values(LIFE));
const JOBS = new Set(Object.values(JOB));
const TASKS = new Set(Object.values(TASK));

/**
 * Which family a message belongs to.
 * @param {{type: string}} msg
 * @returns {"job"|"task"|"life"|null}
 */
export function family(msg) {
  const t = msg && msg.type;
  if (JOB_REPLIES.has(t) || JOBS.has(t)) return "job";
  if (TASK_REPLIES.has(t) || TASKS.has(t)) return "task";
  if (LIVES.has(t)) return "life";
  return null;
}

/** The text the page shows for a task whose file was replaced while it ran. */
export const SUPERSEDED = "the file it was for was replaced by another; run it again";
