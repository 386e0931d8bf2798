#!/usr/bin/env node
/**
 * The boot benchmark: `npm run bench:boot` (or `node bench/boot.mjs` after
 * `npm run build`). See bench/README.md for what each figure means.
 *
 * What the compiled package costs at start-up, next to bare `node`, in one run
 * on 127.0.0.1 only, every comparison interleaved (A B A B …, the order
 * flipped every repetition) so that the machine's drift hits both sides:
 *   1. a gateway worker as `up` runs it, `node dist/cli/bin.js serve APP
 *      --no-arbiter --heartbeat-file F --http 127.0.0.1:0` (the supervisor
 *      watches its heartbeat: no watchdog thread), from spawn to its first 200 (t0 just before spawn, the
 *      port read from its "ready: http://…" line, t1 the first 200 to GET /),
 *      for (a) a JavaScript app (bench/apps/hello.mjs: no TypeScript loader)
 *      and (b) its TypeScript twin (examples/hello/app.ts, the same code typed: tsx), against (c) the
 *      bare node:http server bench/apps/node-hello.mjs started the same way;
 *      ratio (a)/(c) and (b)/(c) per repetition. Goal <= 2x;
 *   2. the VmRSS of those three processes 1 s after their first 200, ratio to
 *      bare. Goal <= 1.3x;
 *   3. the wall time of `validate -c config.example.yaml` and of `status -c
 *      FILE` for a stack that is not running (exits 1, "not running"), against
 *      `node -e 0`. Goal <= 3x;
 *   4. `up -c FILE` of 3 apps x 2 instances (bench/apps/hello.mjs, one path
 *      route each, proxy on 127.0.0.1:0) from spawn until every route answers
 *      200 through the proxy, against 6 bare node:http servers started at once
 *      until all 6 answer 200. Goal: up <= 2 s;
 *   5. once all 6 workers are ready and 2 s more have passed: the RSS of the
 *      `up` process, of its pm2 daemon, of each worker and of any other
 *      process of the stack (proxy processes, when the proxy runs apart).
 *      Goal: up <= 80 MiB.
 * And where a worker's boot goes: a probe in a fresh node does what a worker
 * does (serve's modules, tsx for a .ts app, the app) and times each step.
 * It prints a Markdown table of figures (measured, goal, met/missed) and
 * writes bench/results/boot.json.
 *
 * Every process it starts is a Proc (bench/lib.mjs) stopped by its pid, on
 * error and on SIGINT/SIGTERM too; a stack with SIGINT as a user would, then
 * any process naming the temporary directory (workers, pm2 daemon) is
 * SIGKILLed by pid and reported.
 *
 * Options: --runs N        repetitions of parts 1-3 (default 5, at least 3)
 *          --up-runs N     repetitions of parts 4-5 (default 3)
 *          --out PATH      where the JSON goes (default bench/results/boot.json)
 *          --quiet-wait N  before each part, wait up to N seconds (default 5)
 *                          for other processes to leave the CPUs alone
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  CLI,
  CLK_TCK,
  HOST,
  MiB,
  Proc,
  QUIET_CPUS,
  ROOT,
  cpuSeconds,
  descendants,
  killRunningNow,
  log,
  machineCpu,
  machineInfo,
  memory,
  processesNaming,
  running,
  runBenchmark,
  sleep,
  startTime,
  stopRunning,
  sweepProcessesNaming,
  waitForQuiet,
} from "./lib.mjs";

const GOALS = { worker_boot_ratio: 2, worker_rss_ratio: 1.3, cli_ratio: 3, up_ms: 2000, up_rss: 80 * MiB };
const BOOT_TIMEOUT_MS = 30_000;
const UP_TIMEOUT_MS = 60_000;
/** SIGINT to `up` drains its workers and stops pm2: this long at most before SIGKILL. */
const STOP_GRACE_MS = 30_000;
/** After the first 200, before reading a worker's RSS. */
const WORKER_SETTLE_MS = 1000;
/** After every route answered, before reading the stack's RSS. */
const STACK_SETTLE_MS = 2000;
/** How often a route that has not answered 200 yet is asked again (part 1: 5 ms; parts 4: 20 ms, as bench/stack.mjs). */
const POLL_MS = { worker: 5, stack: 20 };

const APP_MJS = "bench/apps/hello.mjs";
const APP_TS = "examples/hello/app.ts";
const NODE_HELLO = "bench/apps/node-hello.mjs";
/** The stack of part 4: 3 apps x 2 instances of the JavaScript hello app, one path route each. */
const STACK_APPS = ["alpha", "beta", "gamma"];
const INSTANCES = 2;

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "up-runs": { type: "string", default: "3" },
    out: { type: "string" },
    "quiet-wait": { type: "string", default: "5" },
  },
});
const RUNS = count(flags.runs, "--runs", 3, 50);
const UP_RUNS = count(flags["up-runs"], "--up-runs", 1, 20);
const QUIET_WAIT_S = count(flags["quiet-wait"], "--quiet-wait", 0, 600);
const OUT = path.resolve(flags.out ?? path.join(ROOT, "bench/results/boot.json"));

function count(value, flag, min, max) {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    process.stderr.write(`bench/boot: ${flag} ${value}: expected a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return Number(value);
}

// ---------------------------------------------------------------- statistics

const round = (n, digits = 0) => (n === undefined || !Number.isFinite(n) ? undefined : +n.toFixed(digits));
function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
/** Median and spread of a list: { median, min, max, n }. */
function spread(values, digits = 0) {
  const finite = values.filter((v) => Number.isFinite(v));
  return { median: round(median(finite), digits), min: round(Math.min(...finite), digits), max: round(Math.max(...finite), digits), n: finite.length };
}
/** Per-pair ratios a[i]/b[i], then their spread. */
const ratios = (a, b) => spread(a.map((x, i) => x / b[i]), 2);

// ---------------------------------------------------------------- formatting

const fmtMs = (ms) => (ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const fmtMiB = (bytes) => (bytes === undefined ? "–" : `${(bytes / MiB).toFixed(1)} MiB`);
const fmtDelta = (bytes) => (bytes === undefined ? "–" : `${bytes < 0 ? "−" : "+"}${fmtMiB(Math.abs(bytes))}`);
const fmtX = (x) => (x === undefined ? "–" : `${x.toFixed(2)}x`);
/** "median (min–max)" of a spread, formatted. */
const fmtSpread = (s, fmt) => (s?.median === undefined ? "–" : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`);
const verdict = (ok) => (ok ? "met" : "**MISSED**");

// ---------------------------------------------------------------- processes and /proc

let tmpDir;
let CONFIG;
let STATE;
let CONTROL_SOCKET;
let PM2_PID_FILE;

/** Last resort on exit: nothing we started outlives us, nor anything of a stack. */
function killAllNow() {
  killRunningNow();
  if (tmpDir) for (const { pid } of processesNaming(tmpDir)) try { process.kill(pid, "SIGKILL"); } catch {}
}

/** At the end, on error or on a signal: a stack first (SIGINT, as a user), then everything else; then nothing may be left. */
async function stopAll() {
  await Promise.all([...running].filter((proc) => proc.isStack).map((proc) => proc.stop("SIGINT", STOP_GRACE_MS)));
  await stopRunning();
  const left = await sweepProcessesNaming(tmpDir);
  if (left.length) log(`  ${left.length} process(es) of the stack had to be killed at cleanup`);
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}

/** CPU seconds of processes and every live descendant of theirs (a .ts worker may run an esbuild service), each pid counted once. */
function treeCpu(...pids) {
  const all = new Set();
  for (const pid of pids.filter(Boolean)) {
    all.add(pid);
    for (const child of descendants(pid).keys()) all.add(child);
  }
  let total = 0;
  for (const pid of all) total += cpuSeconds(pid) ?? 0;
  return total;
}

/**
 * Measures what else the machine did meanwhile: call before, then `.done(ourCpuS)`
 * with the CPU seconds of the processes measured; returns the CPUs other
 * processes (not those, not this script) used on average.
 */
function othersMeter() {
  const machine = machineCpu().busy;
  const self = process.cpuUsage();
  const t = performance.now();
  return (measuredCpuS) => {
    const elapsed = (performance.now() - t) / 1000;
    const selfUsage = process.cpuUsage(self);
    const selfS = (selfUsage.user + selfUsage.system) / 1e6;
    return round(Math.max(0, machineCpu().busy - machine - selfS - measuredCpuS) / elapsed, 2);
  };
}

/**
 * CPU seconds of this script's children that have exited and been reaped
 * (cutime + cstime of /proc/self/stat): how a short-lived command's CPU is
 * read, since its own /proc entry is gone by the time it has exited.
 */
function reapedChildrenCpu() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

/** VmRSS of a pid, bytes; undefined once gone. */
const rss = (pid) => (pid ? memory(pid)?.rss : undefined);

// ---------------------------------------------------------------- HTTP

/** One GET on a fresh connection: { status, body } or { error }. Never rejects. */
function get({ port, socketPath, target = "/", timeoutMs = 2000 }) {
  return new Promise((resolve) => {
    const request = http.get({ ...(socketPath ? { socketPath } : { host: HOST, port }), path: target, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", (error) => resolve({ error: error.message }));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error) => resolve({ error: error.code ?? error.message }));
  });
}

/** GETs `target` until it answers 200 (every `pollMs`); returns performance.now() of that 200 and what came before it. */
async function untilOk({ port, target = "/", pollMs, deadline, what, proc }) {
  const before = {};
  for (;;) {
    const answer = await get({ port, target });
    if (answer.status === 200) return { at: performance.now(), before, body: answer.body };
    const key = String(answer.status ?? answer.error);
    before[key] = (before[key] ?? 0) + 1;
    if (proc?.done) throw new Error(`${proc.name} ${proc.describeExit()} before ${what} answered 200:\n${proc.stderr}`);
    if (performance.now() > deadline) throw new Error(`${what}: no 200 within the time limit (${JSON.stringify(before)})`);
    await sleep(pollMs);
  }
}

const READY = /ready: http:\/\/([\d.]+):(\d+)/;

// ---------------------------------------------------------------- 1 + 2. one server: spawn -> first 200, then idle RSS

/** A worker's flags as the supervisor gives them: no arbiter, and a heartbeat file instead of the watchdog thread. */
const AS_UP_RUNS_IT = (kind) => ["--no-arbiter", "--heartbeat-file", path.join(os.tmpdir(), `tsgi-boot-${process.pid}-${kind}.beat`)];

const SERVERS = {
  bare: { label: "bare node:http (node-hello.mjs)", args: () => [NODE_HELLO, `${HOST}:0`] },
  mjs: { label: "tsgi-stack serve hello.mjs", args: () => [CLI, "serve", APP_MJS, ...AS_UP_RUNS_IT("mjs"), "--http", `${HOST}:0`] },
  ts: { label: "tsgi-stack serve examples/hello/app.ts", args: () => [CLI, "serve", APP_TS, ...AS_UP_RUNS_IT("ts"), "--http", `${HOST}:0`] },
};

async function bootServer(kind, rep) {
  const others = othersMeter();
  const t0 = performance.now();
  const proc = new Proc(`${SERVERS[kind].label} (rep ${rep})`, process.execPath, SERVERS[kind].args());
  try {
    const match = await proc.waitFor(READY, BOOT_TIMEOUT_MS, "ready: http://…");
    const port = Number(match[2]);
    const ok = await untilOk({ port, pollMs: POLL_MS.worker, deadline: t0 + BOOT_TIMEOUT_MS, what: proc.name, proc });
    const cpu = treeCpu(proc.pid);
    const othersCpus = others(cpu);
    const loaded = proc.findLine(/: loaded /);
    const ready = proc.findLine(READY);
    await sleep(WORKER_SETTLE_MS);
    const mem = memory(proc.pid);
    if (!mem) throw new Error(`${proc.name} ${proc.describeExit()} while settling`);
    const children = [...descendants(proc.pid).keys()].map((pid) => ({ pid, rss: rss(pid) }));
    return {
      kind,
      rep,
      pid: proc.pid,
      first_200_ms: round(ok.at - t0, 1),
      loaded_line_ms: round(loaded ? loaded.t - t0 : undefined, 1),
      ready_line_ms: round(ready.t - t0, 1),
      not_200_before: ok.before,
      body: ok.body,
      cpu_s: round(cpu, 3),
      rss: mem.rss,
      hwm: mem.hwm,
      children,
      others_cpus: othersCpus,
      disturbed: othersCpus > QUIET_CPUS,
    };
  } finally {
    await proc.stop();
  }
}

/**
 * What a worker's boot does, step by step, in a fresh node (performance.now()
 * counts from the process's start): serve's modules (commander and
 * dist/cli/commands/serve.js, what dist/cli/main.js loads for `serve`), then —
 * for a .ts app only — tsx's two hooks registered as dist/gateway/typescript.js
 * does, then the app, imported through tsx or directly.
 */
const PHASE_PROBE = `
const t = {};
const mark = (name) => (t[name] = { ms: performance.now(), rss: process.memoryUsage().rss });
mark("node");
await import("commander");
await import(${JSON.stringify(pathToFileURL(path.join(ROOT, "dist/cli/commands/serve.js")).href)});
mark("serve_modules");
let importer = (url) => import(url);
if (process.argv[2] === "ts") {
  const [cjs, esm] = await Promise.all([import("tsx/cjs/api"), import("tsx/esm/api")]);
  mark("tsx_imported");
  cjs.register();
  mark("tsx_cjs_registered");
  esm.register();
  mark("tsx_esm_registered");
  importer = (await import(${JSON.stringify(pathToFileURL(path.join(ROOT, "dist/gateway/import-through-loader.js")).href)})).importModule;
}
const mod = await importer(process.argv[1]);
if (typeof mod.app !== "function") throw new Error("no app export");
mark("app");
process.stdout.write(JSON.stringify(t));
`;

async function probe(kind) {
  const t0 = performance.now();
  const app = kind === "ts" ? APP_TS : APP_MJS;
  const proc = new Proc(`boot probe (${kind})`, process.execPath, ["--input-type=module", "-e", PHASE_PROBE, pathToFileURL(path.join(ROOT, app)).href, kind]);
  await proc.exitWithin(BOOT_TIMEOUT_MS);
  const wall = performance.now() - t0;
  if (proc.exitCode !== 0) throw new Error(`boot probe (${kind}) ${proc.describeExit()}:\n${proc.stderr}`);
  return { wall_ms: round(wall, 1), marks: JSON.parse(proc.stdout) };
}

async function partWorkers() {
  log(`1-2. a worker, spawn → first 200, and its idle RSS ${WORKER_SETTLE_MS} ms later: serve hello.mjs (a), serve examples/hello/app.ts (b), bare node:http (c); ${RUNS} repetitions + 1 warm-up`);
  const before = await waitForQuiet("the worker boots", QUIET_WAIT_S);
  const samples = { bare: [], mjs: [], ts: [] };
  const probes = { mjs: [], ts: [] };
  for (let rep = 0; rep <= RUNS; rep++) {
    // Rep 0 is the warm-up (page cache, first compile): discarded.
    const order = rep % 2 ? ["bare", "mjs", "ts"] : ["ts", "mjs", "bare"];
    const row = {};
    for (const kind of order) row[kind] = await bootServer(kind, rep);
    const probeOrder = rep % 2 ? ["mjs", "ts"] : ["ts", "mjs"];
    const probeRow = {};
    for (const kind of probeOrder) probeRow[kind] = await probe(kind);
    const flag = (s) => (s.disturbed ? " ⚠" : "");
    log(
      `  ${rep === 0 ? "warm-up" : `rep ${rep}`} (${order.join(", ")}): first 200 ` +
        order.map((k) => `${k} ${fmtMs(row[k].first_200_ms)}${flag(row[k])}`).join(", ") +
        ` | RSS ${order.map((k) => `${k} ${fmtMiB(row[k].rss)}`).join(", ")}` +
        ` | (a)/(c) ${fmtX(row.mjs.first_200_ms / row.bare.first_200_ms)}, (b)/(c) ${fmtX(row.ts.first_200_ms / row.bare.first_200_ms)}`,
    );
    if (rep === 0) continue;
    for (const kind of order) samples[kind].push(row[kind]);
    for (const kind of probeOrder) probes[kind].push(probeRow[kind]);
  }
  const field = (kind, name) => samples[kind].map((s) => s[name]);
  const summary = {
    first_200_ms: Object.fromEntries(Object.keys(samples).map((k) => [k, spread(field(k, "first_200_ms"))])),
    ready_line_ms: Object.fromEntries(Object.keys(samples).map((k) => [k, spread(field(k, "ready_line_ms"))])),
    loaded_line_ms: { mjs: spread(field("mjs", "loaded_line_ms")), ts: spread(field("ts", "loaded_line_ms")) },
    cpu_ms: Object.fromEntries(Object.keys(samples).map((k) => [k, spread(field(k, "cpu_s").map((s) => s * 1000))])),
    boot_ratio: { mjs: ratios(field("mjs", "first_200_ms"), field("bare", "first_200_ms")), ts: ratios(field("ts", "first_200_ms"), field("bare", "first_200_ms")) },
    cpu_ratio: { mjs: ratios(field("mjs", "cpu_s"), field("bare", "cpu_s")), ts: ratios(field("ts", "cpu_s"), field("bare", "cpu_s")) },
    rss: Object.fromEntries(Object.keys(samples).map((k) => [k, spread(field(k, "rss"))])),
    rss_ratio: { mjs: ratios(field("mjs", "rss"), field("bare", "rss")), ts: ratios(field("ts", "rss"), field("bare", "rss")) },
    disturbed: Object.values(samples).flat().filter((s) => s.disturbed).length,
    samples: Object.values(samples).flat().length,
  };
  // The probe's phases: the time each step took (from the previous mark), median over the repetitions.
  const phases = {};
  for (const [kind, list] of Object.entries(probes)) {
    const names = Object.keys(list[0].marks);
    phases[kind] = { wall_ms: spread(list.map((p) => p.wall_ms)) };
    let previous = { ms: 0, rss: 0 };
    for (const name of names) {
      const ms = median(list.map((p) => p.marks[name].ms));
      const bytes = median(list.map((p) => p.marks[name].rss));
      phases[kind][name] = { at_ms: round(ms), took_ms: round(ms - previous.ms), rss: bytes, rss_added: bytes - previous.rss };
      previous = { ms, rss: bytes };
    }
  }
  log(
    `  median first 200: (c) bare ${fmtMs(summary.first_200_ms.bare.median)}, (a) .mjs ${fmtMs(summary.first_200_ms.mjs.median)}, (b) .ts ${fmtMs(summary.first_200_ms.ts.median)};` +
      ` ratios (a)/(c) ${fmtSpread(summary.boot_ratio.mjs, fmtX)}, (b)/(c) ${fmtSpread(summary.boot_ratio.ts, fmtX)}`,
  );
  log(
    `  median idle RSS: (c) ${fmtMiB(summary.rss.bare.median)}, (a) ${fmtMiB(summary.rss.mjs.median)}, (b) ${fmtMiB(summary.rss.ts.median)};` +
      ` ratios (a)/(c) ${fmtSpread(summary.rss_ratio.mjs, fmtX)}, (b)/(c) ${fmtSpread(summary.rss_ratio.ts, fmtX)}`,
  );
  const p = phases.ts;
  log(
    `  .ts worker's boot, probe (median ms): node ${p.node.took_ms}, serve's modules ${p.serve_modules.took_ms}, tsx imported ${p.tsx_imported.took_ms},` +
      ` CJS hook ${p.tsx_cjs_registered.took_ms}, ESM hooks ${p.tsx_esm_registered.took_ms},` +
      ` app through tsx ${p.app.took_ms}; .mjs: node ${phases.mjs.node.took_ms}, serve's modules ${phases.mjs.serve_modules.took_ms}, app ${phases.mjs.app.took_ms}\n`,
  );
  return { others_cpus_before: round(before, 2), samples, probes, summary, phases };
}

// ---------------------------------------------------------------- 3. CLI wall time

const CLIS = {
  node: { label: "node -e 0", args: () => ["-e", "0"], expect: (proc) => proc.exitCode === 0 },
  validate: { label: "validate -c config.example.yaml", args: () => [CLI, "validate", "-c", "config.example.yaml"], expect: (proc) => proc.exitCode === 0 },
  status: {
    label: "status -c FILE (not running)",
    args: () => [CLI, "status", "-c", CONFIG],
    expect: (proc) => proc.exitCode === 1 && /not running/.test(proc.stderr),
  },
};

async function runCli(kind) {
  const others = othersMeter();
  const cpuBefore = reapedChildrenCpu();
  const t0 = performance.now();
  const proc = new Proc(`${CLIS[kind].label}`, process.execPath, CLIS[kind].args());
  let exitedAt;
  void proc.exited.then(() => (exitedAt = performance.now()));
  await proc.exitWithin(30_000);
  const wall = exitedAt - t0;
  if (!CLIS[kind].expect(proc)) throw new Error(`${proc.name}: unexpected end, ${proc.describeExit()}:\n${proc.stderr}${proc.stdout.slice(-2000)}`);
  const cpu = reapedChildrenCpu() - cpuBefore;
  const othersCpus = others(cpu);
  return { kind, wall_ms: round(wall, 1), cpu_ms: round(cpu * 1000), exit: proc.exitCode, others_cpus: othersCpus };
}

async function partCli() {
  log(`3. CLI wall time, spawn → exit: validate and status (stack not running) against node -e 0; ${RUNS} repetitions + 1 warm-up, A B A B`);
  const before = await waitForQuiet("the CLI runs", QUIET_WAIT_S);
  const pairs = { validate: [], status: [] };
  for (let rep = 0; rep <= RUNS; rep++) {
    const row = {};
    for (const command of ["validate", "status"]) {
      // Each command is paired with its own `node -e 0`, run right before or after it.
      const order = rep % 2 ? ["node", command] : [command, "node"];
      const pair = {};
      for (const kind of order) pair[kind] = await runCli(kind);
      row[command] = {
        command: pair[command],
        node: pair.node,
        ratio: round(pair[command].wall_ms / pair.node.wall_ms, 2),
        cpu_ratio: round(pair[command].cpu_ms / pair.node.cpu_ms, 2),
      };
    }
    log(
      `  ${rep === 0 ? "warm-up" : `rep ${rep}`}: validate ${fmtMs(row.validate.command.wall_ms)} / node ${fmtMs(row.validate.node.wall_ms)} = ${fmtX(row.validate.ratio)};` +
        ` status ${fmtMs(row.status.command.wall_ms)} / node ${fmtMs(row.status.node.wall_ms)} = ${fmtX(row.status.ratio)}`,
    );
    if (rep === 0) continue;
    pairs.validate.push(row.validate);
    pairs.status.push(row.status);
  }
  const summary = {};
  for (const [command, list] of Object.entries(pairs)) {
    summary[command] = {
      wall_ms: spread(list.map((p) => p.command.wall_ms)),
      node_ms: spread(list.map((p) => p.node.wall_ms)),
      ratio: spread(list.map((p) => p.ratio), 2),
      cpu_ms: spread(list.map((p) => p.command.cpu_ms)),
      cpu_ratio: spread(list.map((p) => p.cpu_ratio), 2),
    };
  }
  summary.node_ms = spread([...pairs.validate, ...pairs.status].map((p) => p.node.wall_ms));
  summary.node_cpu_ms = spread([...pairs.validate, ...pairs.status].map((p) => p.node.cpu_ms));
  const samples = [...pairs.validate, ...pairs.status].flatMap((p) => [p.command, p.node]);
  summary.disturbed = samples.filter((s) => s.others_cpus > QUIET_CPUS).length;
  summary.samples = samples.length;
  log(
    `  median: node -e 0 ${fmtMs(summary.node_ms.median)}, validate ${fmtMs(summary.validate.wall_ms.median)} (${fmtSpread(summary.validate.ratio, fmtX)}),` +
      ` status ${fmtMs(summary.status.wall_ms.median)} (${fmtSpread(summary.status.ratio, fmtX)})\n`,
  );
  return { others_cpus_before: round(before, 2), pairs, summary };
}

// ---------------------------------------------------------------- 4 + 5. the stack against 6 bare servers

function writeConfig() {
  const apps = STACK_APPS.map((name) =>
    [
      `  ${name}:`,
      `    module: ${JSON.stringify(path.join(ROOT, APP_MJS))}`,
      `    interface: tsgi`,
      `    instances: ${INSTANCES}`,
      `    routes: [{ path: /${name} }]`,
      `    cwd: ${JSON.stringify(ROOT)}`,
    ].join("\n"),
  );
  const text = `# written by bench/boot.mjs
state_dir: ${JSON.stringify(STATE)}
proxy:
  listen: ["${HOST}:0"]
  admin: "${HOST}:0"
  access_log: "off"
apps:
${apps.join("\n")}
`;
  writeFileSync(CONFIG, text);
  return text;
}

/** GET /status on the stack's control socket, as `tsgi-stack status` does; undefined when it does not answer. */
async function controlStatus() {
  if (!existsSync(CONTROL_SOCKET)) return undefined;
  const answer = await get({ socketPath: CONTROL_SOCKET, target: "/status" });
  if (answer.status !== 200) return undefined;
  try {
    return JSON.parse(answer.body);
  } catch {
    return undefined;
  }
}

/** The stack's pm2 daemon: the pid in STATE/pm2/pm2.pid, checked against its command line ("PM2 … God Daemon"); else found by its command line naming the temporary directory. */
function daemonPid() {
  let pid;
  try {
    pid = Number(readFileSync(PM2_PID_FILE, "utf8").trim()) || undefined;
  } catch {}
  const looksLikePm2 = (cmdline) => /PM2|God Daemon/.test(cmdline);
  if (pid) {
    try {
      if (looksLikePm2(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) return pid;
    } catch {}
  }
  return processesNaming(tmpDir).find((p) => looksLikePm2(p.cmdline))?.pid;
}

/** What names a process in the tables: the script it runs (`proxy-process.js`), else its command. */
function processLabel(cmdline) {
  const args = cmdline.split(" ");
  const script = args.slice(1).find((arg) => /\.[cm]?js$/.test(arg));
  return script ? path.basename(script) : args[0];
}

/** The live descendants of `up` and of the pm2 daemon that are neither the daemon nor a worker: { pid, label, cmdline, rss }. */
function otherStackProcesses(upPid, pm2, workers) {
  const known = new Set([upPid, pm2, ...workers.map((w) => w.pid)]);
  const found = new Set([...descendants(upPid).keys(), ...(pm2 ? descendants(pm2).keys() : [])]);
  const others = [];
  for (const pid of found) {
    if (known.has(pid)) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    } catch {
      continue;
    }
    others.push({ pid, label: processLabel(cmdline), cmdline: cmdline.replaceAll(`${ROOT}/`, ""), rss: rss(pid) });
  }
  return others;
}

/** SIGINT to `up`, as Ctrl-C: waits for it to exit, then for anything of the stack left (SIGKILL by pid, reported). */
async function stopStack(proc, pm2) {
  const t = performance.now();
  await proc.stop("SIGINT", STOP_GRACE_MS);
  const downMs = performance.now() - t;
  const left = await sweepProcessesNaming(tmpDir);
  if (pm2 && startTime(pm2) !== undefined && !left.some((p) => p.pid === pm2)) {
    log(`  ⚠ the pm2 daemon (pid ${pm2}) outlived the stack: SIGKILL`);
    try {
      process.kill(pm2, "SIGKILL");
    } catch {}
    left.push({ pid: pm2, cmdline: "pm2 daemon" });
  }
  return { down_ms: round(downMs), exit: proc.describeExit(), said_stopped: /tsgi-stack: stopped/.test(proc.stdout), left_running: left };
}

/** `up -c FILE` → every route 200 through the proxy; then, 2 s later, the RSS of every process of the stack; then SIGINT. */
async function upOnce(rep) {
  const others = othersMeter();
  const t0 = performance.now();
  const proc = new Proc(`tsgi-stack up (rep ${rep})`, process.execPath, [CLI, "up", "-c", CONFIG]);
  proc.isStack = true;
  let pm2;
  try {
    const deadline = t0 + UP_TIMEOUT_MS;
    // The proxy binds before the pools start: its port is on the control socket as soon as that exists.
    let port;
    let controlAt;
    while (port === undefined) {
      if (proc.done) throw new Error(`${proc.name} ${proc.describeExit()} before serving:\n${proc.stderr}${proc.stdout.slice(-3000)}`);
      if (performance.now() > deadline) throw new Error(`${proc.name}: no proxy port within ${UP_TIMEOUT_MS} ms\n${proc.stdout.slice(-3000)}`);
      const status = await controlStatus();
      if (status) controlAt ??= performance.now();
      if (status?.listen?.[0]) port = Number(status.listen[0].split(":").pop());
      else await sleep(POLL_MS.stack);
    }
    const portAt = performance.now();
    const routes = await Promise.all(
      STACK_APPS.map((name) => untilOk({ port, target: `/${name}`, pollMs: POLL_MS.stack, deadline, what: `route /${name} through the proxy`, proc })),
    );
    const allAt = Math.max(...routes.map((r) => r.at));
    // Every route answers once one worker of its app is ready; part 5 wants all 6 up: wait for the rest.
    let workers;
    for (;;) {
      const status = await controlStatus();
      workers = (status?.workers ?? []).map((row) => ({ app: row.app, slot: row.slot, pid: row.pid, state: row.state }));
      if (workers.length === STACK_APPS.length * INSTANCES && workers.every((w) => w.state === "ready" && w.pid)) break;
      if (proc.done) throw new Error(`${proc.name} ${proc.describeExit()} before every worker was ready:\n${proc.stderr}${proc.stdout.slice(-3000)}`);
      if (performance.now() > deadline) throw new Error(`${proc.name}: not every worker ready within ${UP_TIMEOUT_MS} ms: ${JSON.stringify(workers)}`);
      await sleep(POLL_MS.stack);
    }
    const allWorkersAt = performance.now();
    pm2 = daemonPid();
    const cpu = treeCpu(proc.pid, pm2, ...workers.map((w) => w.pid));
    const othersCpus = others(cpu);
    proc.recordDescendants();
    const readyLines = workers.map((w) => proc.findLine(new RegExp(`^${w.app}\\.${w.slot} \\| tsgi worker ${w.pid}: ready`))?.t).filter((t) => t !== undefined);
    await sleep(STACK_SETTLE_MS);
    const serving = proc.findLine(/^tsgi-stack: serving on /);
    const mem = {
      up: rss(proc.pid),
      pm2_daemon: rss(pm2),
      workers: workers.map((w) => ({ app: w.app, slot: w.slot, pid: w.pid, rss: rss(w.pid) })),
      // Any other process of the stack: children of `up` (its proxy processes, if the stack runs the proxy apart) or of the daemon.
      others: otherStackProcesses(proc.pid, pm2, workers),
    };
    mem.total = [mem.up, mem.pm2_daemon, ...mem.workers.map((w) => w.rss), ...mem.others.map((o) => o.rss)].reduce((sum, b) => sum + (b ?? 0), 0);
    const result = {
      rep,
      all_routes_200_ms: round(allAt - t0),
      routes: Object.fromEntries(STACK_APPS.map((name, i) => [name, { first_200_ms: round(routes[i].at - t0), not_200_before: routes[i].before }])),
      control_socket_ms: round(controlAt - t0),
      port_known_ms: round(portAt - t0),
      first_worker_ready_ms: round(Math.min(...readyLines) - t0),
      last_worker_ready_ms: round(Math.max(...readyLines) - t0),
      serving_line_ms: round(serving ? serving.t - t0 : undefined),
      all_workers_ready_ms: round(allWorkersAt - t0),
      up_pid: proc.pid,
      pm2_pid: pm2,
      workers: workers.length,
      cpu_s: round(cpu, 2),
      memory: mem,
      others_cpus: othersCpus,
      disturbed: othersCpus > QUIET_CPUS,
    };
    result.stop = await stopStack(proc, pm2);
    return result;
  } finally {
    if (!proc.done) await stopStack(proc, pm2 ?? daemonPid());
  }
}

/** 6 bare node:http servers spawned at once → each has answered 200. */
async function bareOnce(rep) {
  const n = STACK_APPS.length * INSTANCES;
  const others = othersMeter();
  const t0 = performance.now();
  const procs = Array.from({ length: n }, (_, i) => new Proc(`node-hello ${i + 1}/${n} (rep ${rep})`, process.execPath, [NODE_HELLO, `${HOST}:0`]));
  try {
    const deadline = t0 + UP_TIMEOUT_MS;
    const oks = await Promise.all(
      procs.map(async (proc) => {
        const match = await proc.waitFor(READY, UP_TIMEOUT_MS, "ready: http://…");
        return untilOk({ port: Number(match[2]), pollMs: POLL_MS.stack, deadline, what: proc.name, proc });
      }),
    );
    const allAt = Math.max(...oks.map((ok) => ok.at));
    const cpu = procs.reduce((sum, proc) => sum + (cpuSeconds(proc.pid) ?? 0), 0);
    const othersCpus = others(cpu);
    await sleep(STACK_SETTLE_MS);
    const each = procs.map((proc) => rss(proc.pid));
    return {
      rep,
      all_200_ms: round(allAt - t0),
      first_200_ms: round(Math.min(...oks.map((ok) => ok.at)) - t0),
      cpu_s: round(cpu, 2),
      memory: { each, total: each.reduce((a, b) => a + (b ?? 0), 0) },
      others_cpus: othersCpus,
      disturbed: othersCpus > QUIET_CPUS,
    };
  } finally {
    await Promise.all(procs.map((proc) => proc.stop()));
  }
}

/** "proxy-process.js x1" for the other processes of the stack, per run (the most seen in a run). */
function otherLabels(ups) {
  const counts = {};
  for (const u of ups) {
    const run = {};
    for (const o of u.memory.others) run[o.label] = (run[o.label] ?? 0) + 1;
    for (const [label, n] of Object.entries(run)) counts[label] = Math.max(counts[label] ?? 0, n);
  }
  return Object.entries(counts).map(([label, n]) => `${label} x${n}`).join(", ");
}

async function partStack() {
  log(`4-5. \`up\` of ${STACK_APPS.length} apps x ${INSTANCES} instances (${APP_MJS}) → every route 200 through the proxy, against ${STACK_APPS.length * INSTANCES} bare node:http servers → all 200; RSS ${STACK_SETTLE_MS} ms later; ${UP_RUNS} repetitions`);
  const before = await waitForQuiet("the stack starts", QUIET_WAIT_S);
  const pairs = [];
  for (let rep = 1; rep <= UP_RUNS; rep++) {
    const order = rep % 2 ? ["up", "bare"] : ["bare", "up"];
    const pair = {};
    for (const kind of order) pair[kind] = kind === "up" ? await upOnce(rep) : await bareOnce(rep);
    pair.ratio = round(pair.up.all_routes_200_ms / pair.bare.all_200_ms, 2);
    const u = pair.up;
    log(
      `  rep ${rep} (${order.join(", ")}): up → every route 200 ${fmtMs(u.all_routes_200_ms)}${u.disturbed ? " ⚠" : ""}` +
        ` (control socket ${u.control_socket_ms} ms, workers ready ${u.first_worker_ready_ms}–${u.last_worker_ready_ms} ms, ${u.cpu_s} CPU-s)` +
        ` | 6 bare → all 200 ${fmtMs(pair.bare.all_200_ms)}${pair.bare.disturbed ? " ⚠" : ""} | ratio ${fmtX(pair.ratio)}` +
        ` | RSS up ${fmtMiB(u.memory.up)}, pm2 ${fmtMiB(u.memory.pm2_daemon)}, workers ${u.memory.workers.map((w) => (w.rss / MiB).toFixed(0)).join("/")} MiB` +
        u.memory.others.map((o) => `, ${o.label} ${fmtMiB(o.rss)}`).join("") +
        ` | stopped in ${fmtMs(u.stop.down_ms)}, left running: ${u.stop.left_running.length}`,
    );
    pairs.push(pair);
  }
  const ups = pairs.map((p) => p.up);
  const workerRss = ups.flatMap((u) => u.memory.workers.map((w) => w.rss));
  const summary = {
    up_ms: spread(ups.map((u) => u.all_routes_200_ms)),
    bare_ms: spread(pairs.map((p) => p.bare.all_200_ms)),
    ratio: spread(pairs.map((p) => p.ratio), 2),
    control_socket_ms: spread(ups.map((u) => u.control_socket_ms)),
    first_worker_ready_ms: spread(ups.map((u) => u.first_worker_ready_ms)),
    last_worker_ready_ms: spread(ups.map((u) => u.last_worker_ready_ms)),
    serving_line_ms: spread(ups.map((u) => u.serving_line_ms)),
    all_workers_ready_ms: spread(ups.map((u) => u.all_workers_ready_ms)),
    up_cpu_s: spread(ups.map((u) => u.cpu_s), 2),
    bare_cpu_s: spread(pairs.map((p) => p.bare.cpu_s), 2),
    up_rss: spread(ups.map((u) => u.memory.up)),
    pm2_rss: spread(ups.map((u) => u.memory.pm2_daemon)),
    worker_rss: spread(workerRss),
    other_rss: spread(ups.flatMap((u) => u.memory.others.map((o) => o.rss))),
    other_labels: otherLabels(ups),
    stack_total_rss: spread(ups.map((u) => u.memory.total)),
    bare_total_rss: spread(pairs.map((p) => p.bare.memory.total)),
    stop_ms: spread(ups.map((u) => u.stop.down_ms)),
    left_running: ups.flatMap((u) => u.stop.left_running),
    disturbed: pairs.filter((p) => p.up.disturbed || p.bare.disturbed).length,
  };
  log(
    `  median: up ${fmtMs(summary.up_ms.median)}, 6 bare ${fmtMs(summary.bare_ms.median)}, ratio ${fmtSpread(summary.ratio, fmtX)};` +
      ` RSS up ${fmtMiB(summary.up_rss.median)}, pm2 ${fmtMiB(summary.pm2_rss.median)}, a worker ${fmtMiB(summary.worker_rss.median)}\n`,
  );
  return { others_cpus_before: round(before, 2), pairs, summary };
}

// ---------------------------------------------------------------- the tables

function markdown(results) {
  const w = results.workers.summary;
  const c = results.cli.summary;
  const s = results.stack.summary;
  const n = RUNS;
  const goalX = (x) => `≤ ${x}x`;
  const lines = [
    `| figure (median (min–max)) | measured | goal | result |`,
    `|---|---:|---:|---|`,
    `| 1. spawn → first 200, (c) bare node:http (node-hello.mjs), ${n} runs | ${fmtSpread(w.first_200_ms.bare, fmtMs)} | – | |`,
    `| 1. spawn → first 200, (a) \`serve hello.mjs --no-arbiter\` | ${fmtSpread(w.first_200_ms.mjs, fmtMs)} | – | |`,
    `| 1. spawn → first 200, (b) \`serve examples/hello/app.ts --no-arbiter --heartbeat-file F\` | ${fmtSpread(w.first_200_ms.ts, fmtMs)} | – | |`,
    `| 1. (a)/(c), per pair | ${fmtSpread(w.boot_ratio.mjs, fmtX)} | ${goalX(GOALS.worker_boot_ratio)} | ${verdict(w.boot_ratio.mjs.median <= GOALS.worker_boot_ratio)} |`,
    `| 1. (b)/(c), per pair | ${fmtSpread(w.boot_ratio.ts, fmtX)} | ${goalX(GOALS.worker_boot_ratio)} | ${verdict(w.boot_ratio.ts.median <= GOALS.worker_boot_ratio)} |`,
    `| 1. CPU time to the first 200, (a)/(c) and (b)/(c), per pair (steadier than wall time on a busy machine) | ${fmtSpread(w.cpu_ratio.mjs, fmtX)}; ${fmtSpread(w.cpu_ratio.ts, fmtX)} | – | |`,
    `| 2. idle RSS, (c) bare node:http | ${fmtSpread(w.rss.bare, fmtMiB)} | – | |`,
    `| 2. idle RSS, (a) .mjs worker | ${fmtSpread(w.rss.mjs, fmtMiB)} | – | |`,
    `| 2. idle RSS, (b) .ts worker | ${fmtSpread(w.rss.ts, fmtMiB)} | – | |`,
    `| 2. RSS (a)/(c), per pair | ${fmtSpread(w.rss_ratio.mjs, fmtX)} | ${goalX(GOALS.worker_rss_ratio)} | ${verdict(w.rss_ratio.mjs.median <= GOALS.worker_rss_ratio)} |`,
    `| 2. RSS (b)/(c), per pair | ${fmtSpread(w.rss_ratio.ts, fmtX)} | ${goalX(GOALS.worker_rss_ratio)} | ${verdict(w.rss_ratio.ts.median <= GOALS.worker_rss_ratio)} |`,
    `| 3. \`node -e 0\`, ${2 * n} runs | ${fmtSpread(c.node_ms, fmtMs)} | – | |`,
    `| 3. \`validate -c config.example.yaml\` | ${fmtSpread(c.validate.wall_ms, fmtMs)} | – | |`,
    `| 3. \`status -c FILE\` (not running, exit 1) | ${fmtSpread(c.status.wall_ms, fmtMs)} | – | |`,
    `| 3. validate / node -e 0, per pair | ${fmtSpread(c.validate.ratio, fmtX)} | ${goalX(GOALS.cli_ratio)} | ${verdict(c.validate.ratio.median <= GOALS.cli_ratio)} |`,
    `| 3. status / node -e 0, per pair | ${fmtSpread(c.status.ratio, fmtX)} | ${goalX(GOALS.cli_ratio)} | ${verdict(c.status.ratio.median <= GOALS.cli_ratio)} |`,
    `| 3. CPU time: node -e 0 / validate / status (ms, 10 ms ticks); ratios validate, status per pair | ${c.node_cpu_ms.median} / ${c.validate.cpu_ms.median} / ${c.status.cpu_ms.median}; ${fmtSpread(c.validate.cpu_ratio, fmtX)}, ${fmtSpread(c.status.cpu_ratio, fmtX)} | – | |`,
    `| 4. \`up\`, ${STACK_APPS.length} apps x ${INSTANCES} (.mjs) → every route 200 through the proxy, ${UP_RUNS} runs | ${fmtSpread(s.up_ms, fmtMs)} | ≤ 2 s | ${verdict(s.up_ms.median <= GOALS.up_ms)} |`,
    `| 4. ${STACK_APPS.length * INSTANCES} bare node:http at once → all 200 | ${fmtSpread(s.bare_ms, fmtMs)} | – | |`,
    `| 4. up / 6 bare, per pair | ${fmtSpread(s.ratio, fmtX)} | – | |`,
    `| 5. RSS of the \`up\` process (${/proxy/.test(s.other_labels) ? "supervisor, control, admin; the proxy runs apart" : "supervisor + proxy"}), idle | ${fmtSpread(s.up_rss, fmtMiB)} | ≤ 80 MiB | ${verdict(s.up_rss.median <= GOALS.up_rss)} |`,
    `| 5. RSS of the pm2 daemon, idle | ${fmtSpread(s.pm2_rss, fmtMiB)} | – | |`,
    `| 5. RSS of a worker (${s.worker_rss.n} = ${STACK_APPS.length * INSTANCES} per run) | ${fmtSpread(s.worker_rss, fmtMiB)} | – | |`,
    ...(s.other_rss.n
      ? [`| 5. RSS of the stack's other processes, each (${s.other_labels}: children of \`up\`) | ${fmtSpread(s.other_rss, fmtMiB)} | – | |`]
      : []),
    `| 5. whole stack (up + pm2 + 6 workers${s.other_rss.n ? " + the others" : ""}) / 6 bare node:http | ${fmtMiB(s.stack_total_rss.median)} / ${fmtMiB(s.bare_total_rss.median)} | – | |`,
  ];
  const disturbed = w.disturbed + c.disturbed + s.disturbed;
  lines.push(
    "",
    `Goals are judged on the median. Samples during which other processes used more than ${QUIET_CPUS} CPUs: ` +
      `${w.disturbed} of ${w.samples} worker boots, ${c.disturbed} of ${c.samples} CLI runs, ${s.disturbed} of ${UP_RUNS} stack pairs${disturbed ? " (⚠ their times are stretched)" : ""}.`,
  );
  const pm = results.workers.phases.mjs;
  const pt = results.workers.phases.ts;
  lines.push(
    "",
    `| where the time goes (median ms) | bare | .mjs worker | .ts worker |`,
    `|---|---:|---:|---:|`,
    `| "loaded" line (app imported) | – | ${w.loaded_line_ms.mjs.median} | ${w.loaded_line_ms.ts.median} |`,
    `| "ready" line (listening) | ${w.ready_line_ms.bare.median} | ${w.ready_line_ms.mjs.median} | ${w.ready_line_ms.ts.median} |`,
    `| first 200 | ${w.first_200_ms.bare.median} | ${w.first_200_ms.mjs.median} | ${w.first_200_ms.ts.median} |`,
    `| CPU used to the first 200 (ms) | ${w.cpu_ms.bare.median} | ${w.cpu_ms.mjs.median} | ${w.cpu_ms.ts.median} |`,
    `| probe: node's own start (performance.now() at the first line) | – | ${pm.node.took_ms} | ${pt.node.took_ms} |`,
    `| probe: serve's modules (commander, dist/cli/commands/serve.js) | – | ${pm.serve_modules.took_ms} (${fmtDelta(pm.serve_modules.rss_added)}) | ${pt.serve_modules.took_ms} (${fmtDelta(pt.serve_modules.rss_added)}) |`,
    `| probe: tsx's APIs imported (tsx/cjs/api, tsx/esm/api) | – | – | ${pt.tsx_imported.took_ms} (${fmtDelta(pt.tsx_imported.rss_added)}) |`,
    `| probe: tsx's CJS hook registered | – | – | ${pt.tsx_cjs_registered.took_ms} (${fmtDelta(pt.tsx_cjs_registered.rss_added)}) |`,
    `| probe: tsx's ESM hooks registered (module.register: Node 20 starts a loader thread) | – | – | ${pt.tsx_esm_registered.took_ms} (${fmtDelta(pt.tsx_esm_registered.rss_added)}) |`,
    `| probe: the app imported (directly / through tsx) | – | ${pm.app.took_ms} (${fmtDelta(pm.app.rss_added)}) | ${pt.app.took_ms} (${fmtDelta(pt.app.rss_added)}) |`,
    `| \`up\` (ms after spawn): control socket answers (up booted) / first – last worker's "ready" line / every route 200 / status shows all 6 ready / "serving on" line | | ${s.control_socket_ms.median} / ${s.first_worker_ready_ms.median}–${s.last_worker_ready_ms.median} / ${s.up_ms.median} / ${s.all_workers_ready_ms.median} / ${s.serving_line_ms.median} | |`,
    `| \`up\`: CPU-s of the whole start (up and its children, pm2, 6 workers) / of the 6 bare servers | | ${s.up_cpu_s.median} / ${s.bare_cpu_s.median} | |`,
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- main

async function main() {
  for (const file of [CLI, path.join(ROOT, "dist/cli/commands/serve.js"), path.join(ROOT, "dist/gateway/import-through-loader.js")]) {
    if (!existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
  }
  const started = performance.now();
  const machine = { ...machineInfo(), load_average_start: os.loadavg().map((v) => +v.toFixed(2)) };
  log(`tsgi-stack boot benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}; load average ${machine.load_average_start.join(" ")}\n`);
  // A short path: the pm2 daemon's rewritten command line keeps only the start of its home.
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsboot-"));
  CONFIG = path.join(tmpDir, "tsgi.yaml");
  STATE = path.join(tmpDir, "state");
  CONTROL_SOCKET = path.join(STATE, "control.sock");
  PM2_PID_FILE = path.join(STATE, "pm2", "pm2.pid");
  const config = writeConfig();

  const results = {
    date: new Date().toISOString(),
    machine,
    settings: { runs: RUNS, up_runs: UP_RUNS, quiet_wait_s: QUIET_WAIT_S, worker_settle_ms: WORKER_SETTLE_MS, stack_settle_ms: STACK_SETTLE_MS, poll_ms: POLL_MS, goals: GOALS },
    config,
  };
  results.workers = await partWorkers();
  results.cli = await partCli();
  results.stack = await partStack();
  machine.load_average_end = os.loadavg().map((v) => +v.toFixed(2));
  results.total_s = round((performance.now() - started) / 1000, 1);
  const table = markdown(results);
  results.markdown = table;
  log(table);
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  log(`\n${results.total_s} s in all; written: ${path.relative(process.cwd(), OUT) || OUT}`);
}

await runBenchmark("boot", main, { stopAll, killAll: killAllNow });
const left = tmpDir ? processesNaming(tmpDir) : [];
if (left.length) log(`⚠ still running after cleanup: ${left.map((p) => p.pid).join(", ")}`);
// Everything is stopped; what may remain are Proc.stop()'s grace timers (up to 30 s): do not wait for them.
process.exit();
