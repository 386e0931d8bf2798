#!/usr/bin/env node
/**
 * The reload benchmark: `npm run bench:reload` (or `node bench/reload.mjs`).
 * Issue #5's speed figures. See bench/README.md for what each figure means.
 *
 * In one run, on 127.0.0.1 only, it measures
 *   1. save -> the first response served by the new code: the example app
 *      (examples/hello/app.ts, copied into a temporary folder with a version
 *      marker and the answering pid added to its body) is edited --edits times
 *      (default 20); t0 = performance.now() just before writeFileSync, t1 = the
 *      arrival of the first response whose body shows the new version. A poller
 *      sends GET / every 5 ms, each on a fresh connection (agent: false, at most
 *      8 in flight), for the whole run of each case, and counts every request
 *      that failed (non-200 or socket error). Cases:
 *        - `tsgi-stack up --watch`, the app at instances 1, then at instances 2
 *          (watch: ["*.ts"], route /, proxy on 127.0.0.1:0, state_dir in the
 *          temporary folder): its zero-downtime rolling reload;
 *        - nodemon restarting `tsgi-stack serve APP --http 127.0.0.1:PORT
 *          --no-arbiter` (our gateway worker alone: "nodemon plus a restart");
 *        - nodemon restarting `node --import tsx server.ts`, a bare node:http
 *          server (bench/apps/node-hello.mjs with the same marker).
 *      Between two edits the script waits for the reload to be over (the
 *      stack's "reloaded N workers" line, or the new process serving), for
 *      the old worker process(es) to be gone, then 300 ms more.
 *   2. a full rolling reload of a 4-instance pool: `up` (no --watch), then
 *      `tsgi-stack reload -c FILE` --reloads times (default 5), the app's
 *      version bumped before each: the CLI's wall clock and the "reloaded 4
 *      workers in N ms" it prints, while a light load runs (100 req/s, one
 *      GET every 10 ms on a keep-alive agent) whose failed requests are counted.
 * It prints Markdown tables (figures, goals met/MISSED) and writes
 * bench/results/reload.json.
 *
 * Every process it starts is stopped by its pid after each case, at the end,
 * on error and on SIGINT/SIGTERM: the stack with SIGINT as a user would (its
 * workers and pm2 daemon go with it), nodemon with SIGINT too (it stops its
 * whole process tree; on SIGTERM it leaves the server behind), SIGKILL after
 * a grace period. Then any process whose command line or environment names
 * the temporary folder is SIGKILLed by its pid (and said), and the folder is
 * removed.
 *
 * Options: --edits N       edits per case of part 1 (default 20; --quick: 3)
 *          --reloads N     `reload` runs of part 2 (default 5; --quick: 2)
 *          --quick         a smoke check: 3 edits, 2 reloads, no waiting for
 *                          quiet, no JSON unless --out
 *          --only LIST     watch, nodemon, reload (comma-separated; default all);
 *                          writes no JSON unless --out
 *          --out PATH      where the JSON goes (default bench/results/reload.json)
 *          --quiet-wait N  before each case, wait up to N seconds (default 3;
 *                          --quick: 0) for other processes to leave the CPUs
 *                          alone; a case that started on a busy machine is
 *                          flagged with ⚠
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import {
  CLI,
  freePort,
  HOST,
  Proc,
  QUIET_CPUS,
  ROOT,
  alive,
  killRunningNow,
  log,
  machineCpu,
  machineInfo,
  running,
  runBenchmark,
  sleep,
  startTime,
  stopRunning,
  waitForQuiet as waitForQuietUpTo,
  processesNaming,
  sweepProcessesNaming,
} from "./lib.mjs";

const NODEMON = path.join(ROOT, "node_modules/.bin/nodemon");
/** Part 1's poller: one GET every 5 ms, each on a fresh connection. */
const POLL_MS = 5;
const POLL_MAX_IN_FLIGHT = 8;
/** Part 2's light load: one GET every 10 ms (100 req/s) on a keep-alive agent. */
const LOAD_MS = 10;
const LOAD_MAX_IN_FLIGHT = 16;
const REQUEST_TIMEOUT_MS = 2000;
/** After an edit's reload is over and the old worker gone, this long before the next edit. */
const SETTLE_MS = 300;
const START_TIMEOUT_MS = 60_000;
const EDIT_TIMEOUT_MS = 30_000;
const RELOAD_CLI_TIMEOUT_MS = 120_000;
/** SIGINT to `up` drains the workers: this long at most before SIGKILL. */
const STOP_GRACE_MS = 60_000;
const APP = "hello";
const GOALS = { save_to_served_ms: 500, failed: 0 };
const PARTS = ["watch", "nodemon", "reload"];

const { values: flags } = parseArgs({
  options: {
    edits: { type: "string" },
    reloads: { type: "string" },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    "quiet-wait": { type: "string" },
  },
});
const QUICK = flags.quick;
const EDITS = count(flags.edits ?? (QUICK ? "3" : "20"), "--edits", 1, 50);
const RELOADS = count(flags.reloads ?? (QUICK ? "2" : "5"), "--reloads", 1, 20);
const QUIET_WAIT_S = count(flags["quiet-wait"] ?? (QUICK ? "0" : "3"), "--quiet-wait", 0, 600);
const ONLY = flags.only ? flags.only.split(",").map((name) => name.trim()) : undefined;
for (const name of ONLY ?? []) if (!PARTS.includes(name)) fail(`--only ${flags.only}: the parts are ${PARTS.join(", ")}`);
const selected = (part) => !ONLY || ONLY.includes(part);
const OUT = flags.out ?? (QUICK || ONLY ? undefined : path.join(ROOT, "bench/results/reload.json"));

function count(value, flag, min, max) {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) fail(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return Number(value);
}

function fail(message) {
  process.stderr.write(`bench/reload: ${message}\n`);
  process.exit(2);
}

const sorted = (values) => values.filter((v) => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
const median = (values) => {
  const s = sorted(values);
  if (s.length === 0) return undefined;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
/** Nearest-rank percentile. */
const percentile = (values, p) => {
  const s = sorted(values);
  return s.length ? s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] : undefined;
};
const max = (values) => {
  const s = sorted(values);
  return s.length ? s[s.length - 1] : undefined;
};
const sum = (values) => values.reduce((a, b) => a + (b ?? 0), 0);
const round = (n, digits = 0) => (n === undefined ? undefined : +n.toFixed(digits));
const stats = (values) => ({ median: round(median(values)), p90: round(percentile(values, 90)), max: round(max(values)) });
const loadAverage = () => os.loadavg().map((v) => +v.toFixed(2));

// ---------------------------------------------------------------- the apps

/** The version marker both apps put in their body: `Hello from TSGI (version v3, pid 1234): GET /`. */
const MARKER = /\(version (v\d+), pid (\d+)\)/;
const HELLO = "Hello from TSGI: ";
const marked = (source, version, file) => {
  if (!source.includes(HELLO)) throw new Error(`${file} no longer contains "${HELLO}": update bench/reload.mjs`);
  return source.replace(HELLO, () => `Hello from TSGI (version ${version}, pid \${process.pid}): `);
};
/** examples/hello/app.ts, its body marked. */
const APP_SOURCE = readFileSync(path.join(ROOT, "examples/hello/app.ts"), "utf8");
const appSource = (version) => marked(APP_SOURCE, version, "examples/hello/app.ts");
/** bench/apps/node-hello.mjs (the bare node:http twin of the hello app), its body marked, run as TypeScript through tsx. */
const NODE_SOURCE = readFileSync(path.join(ROOT, "bench/apps/node-hello.mjs"), "utf8");
const nodeSource = (version) => `// @ts-nocheck\n${marked(NODE_SOURCE, version, "bench/apps/node-hello.mjs")}`;
/** A worker's (or node-hello's) line once it listens. */
const READY = /(?:tsgi worker|node-hello) (\d+): ready/;
/** What `up` prints when a reload's new worker fails (its old workers keep serving). */
const RELOAD_FAILED = new RegExp(`^tsgi-stack: ${APP}: reload failed`);

// ---------------------------------------------------------------- /proc, processes



let tmpDir;
/** Pollers and load loops under way: stopped before the processes. */
const pollers = new Set();
/** What was found running after a case's stop and had to be killed. */
const leftRunning = [];

/** Last resort on exit: nothing we started outlives us, nor anything under the temporary folder. */
function killAllNow() {
  killRunningNow();
  if (tmpDir) {
    for (const { pid } of processesNaming(tmpDir)) try { process.kill(pid, "SIGKILL"); } catch {}
  }
}

/** At the end, on error or on a signal: pollers, the stacks and nodemon (SIGINT), then everything else; then nothing may be left. */
async function stopAll() {
  for (const poller of pollers) poller.stop();
  // The stacks and nodemon with SIGINT, as Ctrl-C (see stopCase).
  const interruptible = [...running].filter((proc) => proc.isStack || proc.isNodemon);
  await Promise.all(interruptible.map((proc) => proc.stop("SIGINT", proc.isStack ? STOP_GRACE_MS : 15_000)));
  await stopRunning();
  const left = await sweepProcessesNaming(tmpDir);
  if (left.length) log(`  ${left.length} process(es) had to be killed at cleanup`);
  leftRunning.push(...left);
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}

/**
 * Stops one case with SIGINT, as Ctrl-C: the stack drains and stops its
 * workers and its pm2 daemon; nodemon sends SIGINT to its whole process tree
 * and waits for it (on SIGTERM it leaves its grandchild, the server, behind).
 * Then checks its folder. After an error, shows the end of its output.
 */
async function stopCase(proc, dir, error) {
  if (error) log(`  ${proc.name}: the last lines of its output:\n${proc.stdout.split("\n").slice(-40).map((l) => `    ${l}`).join("\n")}\n${proc.stderr.slice(-2000)}`);
  const started = performance.now();
  await proc.stop("SIGINT", proc.isStack ? STOP_GRACE_MS : 15_000);
  const left = await sweepProcessesNaming(dir);
  leftRunning.push(...left);
  return { down_ms: round(performance.now() - started), exit: proc.describeExit(), left_running: left.length };
}

/** The machine's load before a case (lib.mjs's waitForQuiet), in CPUs to two decimals. */
const waitForQuiet = async (what) => round(await waitForQuietUpTo(what, QUIET_WAIT_S), 2);

/** Resolves with the first stdout line of `proc` at or after `since` matching `pattern`; rejects on exit or timeout. */
async function waitLine(proc, pattern, since, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const line = proc.findLine(pattern, since);
    if (line) return line;
    if (proc.done) throw new Error(`${proc.name} ${proc.describeExit()} before "${what}":\n${proc.stderr}${proc.stdout.slice(-3000)}`);
    if (performance.now() > deadline) throw new Error(`${proc.name}: no "${what}" within ${timeoutMs} ms\n${proc.stderr}${proc.stdout.slice(-3000)}`);
    await sleep(5);
  }
}

/** A process's state letter (R, S, Z…) and command line, for a report. */
function describePid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    return { pid, state: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0], cmdline: cmdline.slice(0, 200) };
  } catch {
    return { pid, state: "gone" };
  }
}

/** Waits until none of `pids` ({ pid, started }) is alive; returns how long it took, or undefined if some outlived `timeoutMs` (said, with what they are). */
async function gone(pids, timeoutMs = 15_000) {
  pids = pids.filter(({ started }) => started !== undefined); // undefined: gone before we looked
  // A zombie (exited, not yet reaped by its parent) is gone: it serves nothing and uses nothing.
  const running = ({ pid, started }) => alive(pid, started) && describePid(pid).state !== "Z";
  const started = performance.now();
  while (pids.some(running)) {
    if (performance.now() - started > timeoutMs) {
      const left = pids.filter(running).map(({ pid }) => describePid(pid));
      log(`  ⚠ old worker(s) still there ${timeoutMs} ms after the reload: ${JSON.stringify(left)}`);
      return undefined;
    }
    await sleep(10);
  }
  return performance.now() - started;
}

const withStart = (pid) => ({ pid, started: startTime(pid) });

// ---------------------------------------------------------------- HTTP

/** One GET: { status, body } or { error }. Never rejects. */
function get({ port, socketPath, target = "/", agent = false, timeoutMs = REQUEST_TIMEOUT_MS }) {
  return new Promise((resolve) => {
    const request = http.get({ ...(socketPath ? { socketPath } : { host: HOST, port }), path: target, agent, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", (error) => resolve({ error: error.code ?? error.message }));
    });
    request.on("timeout", () => request.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    request.on("error", (error) => resolve({ error: error.code ?? error.message }));
  });
}

/**
 * GET / every `intervalMs` (at most `maxInFlight` at once), for as long as it
 * runs: counts the answers and the failures (non-200, socket errors), notes
 * when each version was first served, and, within a window (one edit), the
 * failures and the longest stretch between two 200s.
 */
class Poller {
  constructor(port, { intervalMs, maxInFlight, agent = false }) {
    Object.assign(this, { port, intervalMs, maxInFlight, agent });
    this.requests = 0;
    this.ok = 0;
    this.failed = {};
    this.inFlight = 0;
    this.skipped = 0;
    /** version -> performance.now() at which a response showing it first arrived. */
    this.firstSeen = new Map();
    /** pid -> responses. */
    this.pids = new Map();
    this.waiters = new Map();
    this.lastOk = undefined;
    this.window = undefined;
    this.running = false;
  }

  get failures() {
    return sum(Object.values(this.failed));
  }

  start() {
    this.startedAt = performance.now();
    this.running = true;
    pollers.add(this);
    this.done = this.loop();
    return this;
  }

  stop() {
    if (this.running) this.stoppedAt = performance.now();
    this.running = false;
    pollers.delete(this);
    for (const waiter of this.waiters.values()) waiter.reject(new Error("poller stopped"));
    this.waiters.clear();
    return this.done;
  }

  async loop() {
    let next = performance.now();
    while (this.running) {
      if (this.inFlight < this.maxInFlight) void this.one();
      else this.skipped += 1;
      next += this.intervalMs;
      const now = performance.now();
      if (next < now) next = now; // late (a busy machine): no burst to catch up
      await sleep(next - now);
    }
  }

  async one() {
    this.inFlight += 1;
    this.requests += 1;
    const answer = await get({ port: this.port, agent: this.agent });
    this.inFlight -= 1;
    const t = performance.now();
    const match = answer.status === 200 ? MARKER.exec(answer.body) : undefined;
    if (answer.status !== 200 || !match) {
      const key = answer.status === 200 ? "200 without a version" : String(answer.status ?? answer.error);
      this.failed[key] = (this.failed[key] ?? 0) + 1;
      if (this.window) this.window.failed += 1;
      return;
    }
    this.ok += 1;
    const [, version, pid] = match;
    this.pids.set(Number(pid), (this.pids.get(Number(pid)) ?? 0) + 1);
    if (this.window) {
      this.window.maxGap = Math.max(this.window.maxGap, t - (this.window.prevOk ?? this.window.since));
      this.window.prevOk = t;
      this.window.requests += 1;
    }
    this.lastOk = t;
    if (!this.firstSeen.has(version)) {
      this.firstSeen.set(version, t);
      this.waiters.get(version)?.resolve(t);
      this.waiters.delete(version);
    }
  }

  /** Opens a window at `since`: failures and the longest stretch without a 200 from then on. */
  openWindow(since) {
    this.window = { since, prevOk: this.lastOk, failed: 0, maxGap: 0, requests: 0 };
  }

  closeWindow() {
    const window = this.window;
    this.window = undefined;
    return window;
  }

  /** performance.now() at which a response showing `version` first arrived. */
  waitForVersion(version, timeoutMs) {
    if (this.firstSeen.has(version)) return Promise.resolve(this.firstSeen.get(version));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(version);
        reject(new Error(`no response showing version ${version} within ${timeoutMs} ms (failed so far: ${JSON.stringify(this.failed)})`));
      }, timeoutMs);
      this.waiters.set(version, {
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  summary() {
    const seconds = ((this.stoppedAt ?? performance.now()) - this.startedAt) / 1000;
    return { seconds: round(seconds, 1), per_second: round(this.requests / seconds), requests: this.requests, ok: this.ok, failed: this.failures, failed_by_kind: { ...this.failed }, skipped_ticks: this.skipped, pids_seen: this.pids.size };
  }
}

// ---------------------------------------------------------------- the stack

function writeStackConfig(dir, { instances, watch }) {
  const text = `# written by bench/reload.mjs
state_dir: ${JSON.stringify(path.join(dir, "state"))}
proxy:
  listen: ["${HOST}:0"]
  admin: "${HOST}:0"
  access_log: "off"
apps:
  ${APP}:
    module: ${JSON.stringify(path.join(dir, "app.ts"))}
    interface: tsgi
    instances: ${instances}
    routes: [{ path: / }]
${watch ? `    watch: ["*.ts"]\n` : ""}    # As in config.example.yaml: the workers run in the project's folder (its tsconfig, its node_modules).
    cwd: ${JSON.stringify(ROOT)}
`;
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, text);
  return { file, text, control: path.join(dir, "state", "control.sock") };
}

const SERVING = /^tsgi-stack: serving on http:\/\/([^/\s]+)\//;

async function startStack(name, config, watch) {
  const t0 = performance.now();
  const proc = new Proc(name, process.execPath, [CLI, "up", "-c", config.file, ...(watch ? ["--watch"] : [])]);
  proc.isStack = true;
  const serving = await waitLine(proc, SERVING, 0, START_TIMEOUT_MS, "serving on");
  const port = Number(serving.match[1].split(":").pop());
  return { proc, port, start_ms: round(serving.t - t0) };
}

/** The stack's workers of APP, from GET /status on its control socket (what `tsgi-stack status` asks). */
async function workerPids(config) {
  const answer = await get({ socketPath: config.control, target: "/status" });
  if (answer.status !== 200) throw new Error(`GET /status on ${config.control}: ${answer.status ?? answer.error}`);
  // A row of a worker already stopped (kept a moment after its exit) is not one to wait for.
  return JSON.parse(answer.body)
    .workers.filter((row) => row.app === APP && row.pid && row.state !== "stopped")
    .map((row) => withStart(row.pid))
    .filter(({ started }) => started !== undefined);
}

// ---------------------------------------------------------------- 1. save -> served

/**
 * One case of part 1: `target` has { name, kind: "stack" | "nodemon", file,
 * source(version), proc, poller, oldPids() } and is serving version v0.
 */
async function runEdits(target) {
  const edits = [];
  for (let i = 1; i <= EDITS; i++) {
    const version = `v${i}`;
    const oldPids = await target.oldPids();
    target.poller.openWindow(performance.now());
    const t0 = performance.now();
    writeFileSync(target.file, target.source(version));
    // The poller notes each version's first arrival itself: looking every 2 ms adds nothing to t1.
    let t1;
    let failedLine;
    for (;;) {
      t1 = target.poller.firstSeen.get(version);
      if (t1 !== undefined) break;
      failedLine = target.kind === "stack" ? target.proc.findLine(RELOAD_FAILED, t0) : undefined;
      if (failedLine) break;
      if (target.proc.done) throw new Error(`${target.proc.name} ${target.proc.describeExit()} during edit ${i}`);
      if (performance.now() - t0 > EDIT_TIMEOUT_MS) {
        throw new Error(`${target.name}: no response showing ${version} within ${EDIT_TIMEOUT_MS} ms (failed requests so far: ${JSON.stringify(target.poller.failed)})`);
      }
      await sleep(2);
    }
    const window = target.poller.closeWindow();
    const after = (t) => (t === undefined ? undefined : round(t - t0));
    const edit = { edit: i, save_to_served_ms: after(t1), failed: window.failed, longest_without_200_ms: round(window.maxGap, 1) };
    if (target.kind === "stack") {
      const reloaded = failedLine ?? (await waitLine(target.proc, new RegExp(`^tsgi-stack: ${APP}: reloaded (\\d+) workers? in (\\d+) ms|${RELOAD_FAILED.source}`), t0, EDIT_TIMEOUT_MS, "reloaded"));
      if (!reloaded.match[1]) {
        // A reload that failed (a new worker not ready in time, say): the old workers keep serving. Noted, left out of the figures.
        const said = target.proc.lines.filter((l) => l.t >= t0).map((l) => l.text);
        log(`  ⚠ edit ${i}: the reload FAILED (the old workers keep serving):\n${said.slice(-15).map((l) => `    ${l}`).join("\n")}`);
        await sleep(SETTLE_MS);
        edits.push({ ...edit, save_to_served_ms: undefined, reload_failed: true, output: said.slice(-40) });
        continue;
      }
      const noticed = target.proc.findLine(new RegExp(`^tsgi-stack: ${APP}: .* changed: reloading`), t0);
      const ready = target.proc.findLine(new RegExp(`^${APP}\\.\\d+ \\| tsgi worker (\\d+): ready`), t0);
      const oldGone = await gone(oldPids);
      Object.assign(edit, {
        watcher_noticed_ms: after(noticed?.t),
        first_new_worker_ready_ms: after(ready?.t),
        reloaded_line_ms: after(reloaded.t),
        reloaded_reported_ms: Number(reloaded.match[2]),
        old_workers_gone_ms: after(oldGone === undefined ? undefined : performance.now()),
      });
      if (oldGone === undefined) edit.old_workers_outlived = true;
    } else {
      const restarting = target.proc.findLine(/restarting due to changes/, t0);
      const ready = target.proc.findLine(READY, t0);
      const oldGone = await gone(oldPids);
      Object.assign(edit, {
        nodemon_restarting_ms: after(restarting?.t),
        new_process_ready_ms: after(ready?.t),
        old_process_gone_ms: oldGone === undefined ? undefined : after(performance.now()),
      });
    }
    await sleep(SETTLE_MS);
    if (target.kind === "stack") edit.reload_passes = target.proc.lines.filter((l) => l.t >= t0 && new RegExp(`^tsgi-stack: ${APP}: .* changed: reloading`).test(l.text)).length;
    else edit.restarts = target.proc.lines.filter((l) => l.t >= t0 && /restarting due to changes/.test(l.text)).length;
    edits.push(edit);
    log(
      `  edit ${String(i).padStart(2)}: ${fmtMs(edit.save_to_served_ms)} save → first ${version} response` +
        (target.kind === "stack"
          ? ` | watcher ${edit.watcher_noticed_ms} ms, new worker ready ${edit.first_new_worker_ready_ms} ms, "reloaded" ${edit.reloaded_line_ms} ms (says ${edit.reloaded_reported_ms} ms)`
          : ` | nodemon restarting ${edit.nodemon_restarting_ms} ms, new process ready ${edit.new_process_ready_ms} ms`) +
        ` | failed ${edit.failed}, longest without a 200 ${fmtMs(edit.longest_without_200_ms)}`,
    );
  }
  return edits;
}

function summarizeEdits(kind, edits, poller) {
  const pick = (key) => edits.map((e) => e[key]);
  return {
    save_to_served_ms: stats(pick("save_to_served_ms")),
    edits_served: edits.filter((e) => e.save_to_served_ms !== undefined).length,
    reloads_failed: edits.filter((e) => e.reload_failed).length,
    longest_without_200_ms: stats(pick("longest_without_200_ms")),
    failed_during_edits: sum(pick("failed")),
    poller: poller.summary(),
    ...(kind === "stack"
      ? {
          watcher_noticed_ms: round(median(pick("watcher_noticed_ms"))),
          first_new_worker_ready_ms: round(median(pick("first_new_worker_ready_ms"))),
          reloaded_line_ms: round(median(pick("reloaded_line_ms"))),
          reloaded_reported_ms: round(median(pick("reloaded_reported_ms"))),
          extra_reload_passes: sum(edits.map((e) => (e.reload_passes ?? 1) - 1)),
        }
      : {
          nodemon_restarting_ms: round(median(pick("nodemon_restarting_ms"))),
          new_process_ready_ms: round(median(pick("new_process_ready_ms"))),
          extra_restarts: sum(edits.map((e) => (e.restarts ?? 1) - 1)),
        }),
  };
}

async function watchCase(instances) {
  const name = `up --watch, instances ${instances}`;
  log(`1. save → first response from the new code: \`tsgi-stack up --watch\`, the hello app at instances ${instances} (${EDITS} edits)`);
  const quiet = await waitForQuiet(name);
  const dir = path.join(tmpDir, `w${instances}`);
  mkdirSync(dir);
  const file = path.join(dir, "app.ts");
  writeFileSync(file, appSource("v0"));
  const config = writeStackConfig(dir, { instances, watch: true });
  const machineBefore = machineCpu();
  const started = performance.now();
  const stack = await startStack(`tsgi-stack up --watch (instances ${instances})`, config, true);
  const poller = new Poller(stack.port, { intervalMs: POLL_MS, maxInFlight: POLL_MAX_IN_FLIGHT }).start();
  let result;
  let failure;
  try {
    await poller.waitForVersion("v0", 10_000);
    log(`  the stack serves on 127.0.0.1:${stack.port} (up → "serving on" ${fmtMs(stack.start_ms)})`);
    const edits = await runEdits({ name, kind: "stack", file, source: appSource, proc: stack.proc, poller, oldPids: () => workerPids(config) });
    await poller.stop();
    result = { case: name, instances, others_cpu_before: quiet, start_ms: stack.start_ms, config: config.text, edits, summary: summarizeEdits("stack", edits, poller) };
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await poller.stop();
    result ??= {};
    result.machine_cpu_cores = round((machineCpu().busy - machineBefore.busy) / ((performance.now() - started) / 1000), 2);
    result.stop = await stopCase(stack.proc, dir, failure);
  }
  logSummary(result);
  return result;
}

async function nodemonCase(kind) {
  const name = kind === "serve" ? "nodemon + tsgi-stack serve --no-arbiter" : "nodemon + node --import tsx (bare node:http)";
  log(`1. save → first response from the new code: ${name} (${EDITS} edits)`);
  const quiet = await waitForQuiet(name);
  const dir = path.join(tmpDir, kind === "serve" ? "nm" : "nmt");
  mkdirSync(dir);
  const file = path.join(dir, kind === "serve" ? "app.ts" : "server.ts");
  const source = kind === "serve" ? appSource : nodeSource;
  writeFileSync(file, source("v0"));
  const port = await freePort();
  const exec =
    kind === "serve"
      ? `node ${JSON.stringify(CLI)} serve ${JSON.stringify(file)} --http ${HOST}:${port} --no-arbiter`
      : `node --import tsx ${JSON.stringify(file)} ${HOST}:${port}`;
  const args = ["--watch", dir, "--ext", "ts,js", "--exec", exec];
  const machineBefore = machineCpu();
  const started = performance.now();
  const proc = new Proc(name, NODEMON, args);
  proc.isNodemon = true;
  let poller;
  let result;
  let failure;
  try {
    const ready = await waitLine(proc, READY, 0, START_TIMEOUT_MS, "ready");
    poller = new Poller(port, { intervalMs: POLL_MS, maxInFlight: POLL_MAX_IN_FLIGHT }).start();
    await poller.waitForVersion("v0", 10_000);
    log(`  serving on 127.0.0.1:${port} (spawn → ready ${fmtMs(ready.t - started)}); nodemon ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}`);
    // The process serving now: the last "ready" line's pid.
    const current = () => {
      const lines = proc.lines.filter((line) => READY.test(line.text));
      return [withStart(Number(READY.exec(lines[lines.length - 1].text)[1]))];
    };
    const edits = await runEdits({ name, kind: "nodemon", file, source, proc, poller, oldPids: async () => current() });
    await poller.stop();
    result = { case: name, others_cpu_before: quiet, command: `nodemon ${args.join(" ")}`, edits, summary: summarizeEdits("nodemon", edits, poller) };
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await poller?.stop();
    result ??= {};
    result.machine_cpu_cores = round((machineCpu().busy - machineBefore.busy) / ((performance.now() - started) / 1000), 2);
    result.stop = await stopCase(proc, dir, failure);
  }
  logSummary(result);
  return result;
}

function logSummary(result) {
  const s = result.summary;
  if (!s) return;
  log(
    `  ${result.case}: save → served ${fmtMs(s.save_to_served_ms.median)} median, ${fmtMs(s.save_to_served_ms.p90)} p90, ${fmtMs(s.save_to_served_ms.max)} max;` +
      ` failed requests ${s.poller.failed} of ${s.poller.requests} (${JSON.stringify(s.poller.failed_by_kind)}); machine busy ${result.machine_cpu_cores} CPUs; stopped in ${result.stop.down_ms} ms\n`,
  );
}

// ---------------------------------------------------------------- 2. reload of 4

async function reloadCase() {
  const name = "reload, instances 4";
  log(`2. full rolling reload of a 4-instance pool: \`tsgi-stack reload -c FILE\` ${RELOADS} times under ${1000 / LOAD_MS} req/s (keep-alive)`);
  const quiet = await waitForQuiet(name);
  const dir = path.join(tmpDir, "r4");
  mkdirSync(dir);
  const file = path.join(dir, "app.ts");
  writeFileSync(file, appSource("v0"));
  const config = writeStackConfig(dir, { instances: 4, watch: false });
  const machineBefore = machineCpu();
  const started = performance.now();
  const stack = await startStack("tsgi-stack up (instances 4)", config, false);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const load = new Poller(stack.port, { intervalMs: LOAD_MS, maxInFlight: LOAD_MAX_IN_FLIGHT, agent }).start();
  let result;
  let failure;
  try {
    await load.waitForVersion("v0", 10_000);
    log(`  the stack serves on 127.0.0.1:${stack.port} (up → "serving on" ${fmtMs(stack.start_ms)}); load running`);
    await sleep(1000);
    const reloads = [];
    for (let i = 1; i <= RELOADS; i++) {
      const version = `v${i}`;
      const oldPids = await workerPids(config);
      writeFileSync(file, appSource(version)); // no --watch: only the reload picks it up
      load.openWindow(performance.now());
      const before = { requests: load.requests, pids: new Set(load.pids.keys()) };
      const t0 = performance.now();
      const cli = new Proc(`tsgi-stack reload (${i})`, process.execPath, [CLI, "reload", "-c", config.file]);
      await cli.exitWithin(RELOAD_CLI_TIMEOUT_MS);
      const wall = performance.now() - t0;
      const window = load.closeWindow();
      if (cli.exitCode !== 0 && /reload FAILED/.test(cli.stdout)) {
        // The pass stopped at a new worker that failed; the others keep serving. Noted, left out of the figures.
        const said = stack.proc.lines.filter((l) => l.t >= t0).map((l) => l.text);
        log(`  ⚠ reload ${i} FAILED after ${fmtMs(wall)}: ${cli.stdout.trim()}\n  the stack said meanwhile:\n${said.slice(-20).map((l) => `    ${l}`).join("\n")}`);
        reloads.push({ reload: i, ok: false, cli_wall_ms: round(wall), cli_output: cli.stdout.trim(), failed_during: window.failed, stack_output: said.slice(-60) });
        await sleep(1000);
        continue;
      }
      if (cli.exitCode !== 0) throw new Error(`tsgi-stack reload ${cli.describeExit()}:\n${cli.stderr}${cli.stdout}`);
      const said = new RegExp(`${APP}: reloaded (\\d+) workers? in (\\d+) ms`).exec(cli.stdout);
      if (!said) throw new Error(`tsgi-stack reload printed no "reloaded" line:\n${cli.stdout}`);
      const firstNew = load.firstSeen.get(version);
      const oldGone = await gone(oldPids);
      const newPids = await workerPids(config);
      const r = {
        reload: i,
        ok: true,
        cli_wall_ms: round(wall),
        reported_ms: Number(said[2]),
        replaced: Number(said[1]),
        cli_output: cli.stdout.trim(),
        first_new_version_response_ms: firstNew === undefined ? undefined : round(firstNew - t0),
        old_workers_gone_after_cli_ms: oldGone === undefined ? undefined : round(oldGone),
        requests_during: load.requests - before.requests,
        failed_during: window.failed,
        longest_without_200_ms: round(window.maxGap, 1),
        new_pids_all_different: newPids.every(({ pid }) => !oldPids.some((old) => old.pid === pid)),
      };
      await sleep(1000);
      // By now every new worker has had its share of the load.
      r.new_pids_served = newPids.filter(({ pid }) => !before.pids.has(pid) && load.pids.has(pid)).length;
      reloads.push(r);
      log(
        `  reload ${i}: CLI ${fmtMs(r.cli_wall_ms)} wall clock, says "reloaded ${r.replaced} workers in ${r.reported_ms} ms"; first ${version} response ${r.first_new_version_response_ms} ms after the CLI started;` +
          ` ${r.requests_during} requests meanwhile, failed ${r.failed_during}, longest without a 200 ${fmtMs(r.longest_without_200_ms)}; ${r.new_pids_served}/4 new pids seen serving`,
      );
    }
    await load.stop();
    const pick = (key) => reloads.filter((r) => r.ok).map((r) => r[key]);
    result = {
      case: name,
      others_cpu_before: quiet,
      start_ms: stack.start_ms,
      config: config.text,
      load: { interval_ms: LOAD_MS, keep_alive: true, max_sockets: 4 },
      reloads,
      summary: {
        cli_wall_ms: stats(pick("cli_wall_ms")),
        reported_ms: stats(pick("reported_ms")),
        first_new_version_response_ms: round(median(pick("first_new_version_response_ms"))),
        reloads_ok: reloads.filter((r) => r.ok).length,
        reloads_failed: reloads.filter((r) => !r.ok).length,
        failed_during_reloads: sum(reloads.map((r) => r.failed_during)),
        longest_without_200_ms: stats(pick("longest_without_200_ms")),
        load: load.summary(),
      },
    };
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await load.stop();
    agent.destroy();
    result ??= {};
    result.machine_cpu_cores = round((machineCpu().busy - machineBefore.busy) / ((performance.now() - started) / 1000), 2);
    result.stop = await stopCase(stack.proc, dir, failure);
  }
  const s = result.summary;
  log(
    `  median: CLI ${fmtMs(s.cli_wall_ms.median)}, "reloaded 4 workers in" ${fmtMs(s.reported_ms.median)}; failed requests ${s.load.failed} of ${s.load.requests} (${JSON.stringify(s.load.failed_by_kind)}); machine busy ${result.machine_cpu_cores} CPUs\n`,
  );
  return result;
}

// ---------------------------------------------------------------- formatting

const fmtMs = (ms) => (ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const trio = (s) => `${fmtMs(s.median)} / ${fmtMs(s.p90)} / ${fmtMs(s.max)}`;
const verdict = (ok) => (ok ? "met" : "**MISSED**");
const busy = (c) => (c.others_cpu_before > QUIET_CPUS ? ` ⚠ (other processes used ${c.others_cpu_before} CPUs before it)` : "");

function markdown(results) {
  const lines = [];
  const m = results.machine;
  lines.push(
    `Machine: ${m.cpus} CPUs (${m.cpu_model}), node ${m.node}; load average (1/5/15 min) ${m.load_average_start.join(" / ")} at the start, ${m.load_average_end.join(" / ")} at the end.`,
    "",
    "| figure | measured | goal | result |",
    "|---|---:|---:|---|",
  );
  for (const c of results.watch ?? []) {
    const s = c.summary;
    lines.push(
      `| save → first response from the new code, \`up --watch\`, ${c.instances} instance${c.instances > 1 ? "s" : ""} (median / p90 / max of ${s.edits_served}${s.reloads_failed ? `; ${s.reloads_failed} more edits whose reload FAILED` : ""})${busy(c)} | ${trio(s.save_to_served_ms)} | < 500 ms | ${verdict(s.save_to_served_ms.median < GOALS.save_to_served_ms)} |`,
      `| failed requests (non-200, socket errors) during that run, of ${s.poller.requests} polled | ${s.poller.failed} | 0 | ${verdict(s.poller.failed === GOALS.failed)} |`,
    );
  }
  for (const c of results.nodemon ?? []) {
    const s = c.summary;
    lines.push(
      `| save → first response from the new code, ${c.case} (median / p90 / max of ${c.edits.length})${busy(c)} | ${trio(s.save_to_served_ms)} | comparison | |`,
      `| failed requests during that run (its downtime), of ${s.poller.requests} polled | ${s.poller.failed} | comparison | |`,
    );
  }
  if (results.reload) {
    const c = results.reload;
    const s = c.summary;
    lines.push(
      `| \`tsgi-stack reload\` of a 4-instance pool, the CLI's wall clock (median / p90 / max of ${s.reloads_ok}${s.reloads_failed ? `; ${s.reloads_failed} more that FAILED` : ""})${busy(c)} | ${trio(s.cli_wall_ms)} | – | |`,
      `| the same, its "reloaded 4 workers in N ms" (median / p90 / max) | ${trio(s.reported_ms)} | – | |`,
      `| failed requests under ${1000 / LOAD_MS} req/s (keep-alive) during the whole run, of ${s.load.requests} | ${s.load.failed} | 0 | ${verdict(s.load.failed === GOALS.failed)} |`,
    );
  }
  lines.push("", "Each edit: t0 just before writeFileSync, t1 when the first response showing the new version arrived (GET / every 5 ms, fresh connections). The goal is judged on the median.");

  const part1 = [...(results.watch ?? []), ...(results.nodemon ?? [])];
  if (part1.length) {
    lines.push(
      "",
      "| where an edit's time goes (medians, ms after the save) | noticed | new process ready | first new-code response | reload over | longest without a 200 (median / max) | failed during the edits |",
      "|---|---:|---:|---:|---:|---:|---:|",
    );
    for (const c of results.watch ?? []) {
      const s = c.summary;
      lines.push(
        `| \`up --watch\`, ${c.instances} instance${c.instances > 1 ? "s" : ""} (watcher's "changed: reloading" line; first new worker's "ready" line; "reloaded" line, which says ${s.reloaded_reported_ms} ms) | ${s.watcher_noticed_ms} | ${s.first_new_worker_ready_ms} | ${round(s.save_to_served_ms.median)} | ${s.reloaded_line_ms} | ${fmtMs(s.longest_without_200_ms.median)} / ${fmtMs(s.longest_without_200_ms.max)} | ${s.failed_during_edits} |`,
      );
    }
    for (const c of results.nodemon ?? []) {
      const s = c.summary;
      lines.push(
        `| ${c.case} ("restarting due to changes"; the new process's "ready" line) | ${s.nodemon_restarting_ms} | ${s.new_process_ready_ms} | ${round(s.save_to_served_ms.median)} | – | ${fmtMs(s.longest_without_200_ms.median)} / ${fmtMs(s.longest_without_200_ms.max)} | ${s.failed_during_edits} |`,
      );
    }
  }
  if (results.reload) {
    const s = results.reload.summary;
    lines.push(
      "",
      `| \`reload\` of 4 workers under load (medians) | ms |`,
      "|---|---:|",
      `| CLI started → first response from the new code | ${s.first_new_version_response_ms} |`,
      `| CLI wall clock: its own boot + the reload | ${s.cli_wall_ms.median} |`,
      `| the reload as the stack reports it | ${s.reported_ms.median} |`,
      `| longest time without a 200 during a reload (median / max) | ${round(s.longest_without_200_ms.median)} / ${round(s.longest_without_200_ms.max)} |`,
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(NODEMON)) fail(`nodemon not found at ${NODEMON} (it is a devDependency: npm ci)`);
  const machine = { ...machineInfo(), load_average_start: loadAverage() };
  log(`tsgi-stack reload benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}; load average ${machine.load_average_start.join(" ")}`);
  log(`${EDITS} edits per case, ${RELOADS} reloads${QUICK ? " (--quick)" : ""}\n`);
  // A short path: the pm2 daemon's rewritten command line keeps only the start of its home.
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsr-"));
  const began = performance.now();
  const results = {
    date: new Date().toISOString(),
    machine,
    settings: { edits: EDITS, reloads: RELOADS, poll_ms: POLL_MS, poll_max_in_flight: POLL_MAX_IN_FLIGHT, poll_connections: "fresh (agent: false)", load_ms: LOAD_MS, settle_ms: SETTLE_MS, quiet_wait_s: QUIET_WAIT_S, goals: GOALS },
  };
  if (selected("watch")) results.watch = [await watchCase(1), await watchCase(2)];
  if (selected("nodemon")) results.nodemon = [await nodemonCase("serve"), await nodemonCase("tsx")];
  if (selected("reload")) results.reload = await reloadCase();
  results.total_s = round((performance.now() - began) / 1000, 1);
  results.left_running = leftRunning;
  machine.load_average_end = loadAverage();
  const table = markdown(results);
  results.markdown = table;
  log(table);
  log(`\ntotal ${results.total_s} s; processes left running after the cases' stops: ${leftRunning.length}`);
  if (OUT) {
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
    log(`written: ${path.relative(process.cwd(), OUT) || OUT}`);
  }
}

await runBenchmark("reload", main, { stopAll, killAll: killAllNow });
const left = tmpDir ? processesNaming(tmpDir) : [];
if (left.length) log(`⚠ still running after cleanup: ${left.map((p) => p.pid).join(", ")}`);
// Everything is stopped: do not wait for the grace-period timers of lib.mjs's Proc.stop().
process.exit();
