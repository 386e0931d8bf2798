/**
 * What the benchmarks (bench/gateway.mjs, bench/stack.mjs) share:
 *   - the repository's paths and the tools' (ROOT, CLI, WRK), the host they
 *     measure on, and what counts as a quiet machine (QUIET_CPUS);
 *   - /proc readers: a pid's start time (to tell it from its reuse), its live
 *     descendants, its CPU seconds and memory; the whole machine's CPU time and
 *     load, and waitForQuiet();
 *   - Proc, a child process started by its pid with its output captured, and
 *     the bookkeeping that makes sure none outlives the benchmark:
 *     runBenchmark() runs a benchmark's main, stops everything it started at
 *     the end, on error and on SIGINT/SIGTERM/SIGHUP, and SIGKILLs by pid what
 *     is left at exit;
 *   - parseWrk(), wrk's --latency output read into numbers.
 * Linux only (/proc); plain JavaScript, run by node without tsx.
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The built CLI: `npm run build` first (the bench scripts do). */
export const CLI = path.join(ROOT, "dist/cli/bin.js");
export const WRK = process.env.WRK ?? "/usr/bin/wrk";
export const HOST = "127.0.0.1";
export const MiB = 1024 * 1024;
/** Above this many CPUs of other work, the machine is not quiet enough to measure. */
export const QUIET_CPUS = 0.15;

export const log = (message) => process.stdout.write(`${message}\n`);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a benchmark's JSON says of the machine it ran on. */
export const machineInfo = () => ({
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model,
  memory_gib: +(os.totalmem() / 1024 ** 3).toFixed(1),
  kernel: `${os.type()} ${os.release()}`,
  node: process.version,
});

// ---------------------------------------------------------------- /proc

/** The kernel's start time of a pid in clock ticks since boot (field 22 of /proc/PID/stat): tells a pid from its reuse. */
export function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** pid -> start time of every live descendant of `pid`. */
export function descendants(pid, found = new Map()) {
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const task of tasks) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue;
    }
    for (const child of children.split(" ").filter(Boolean).map(Number)) {
      const started = startTime(child);
      if (started !== undefined && !found.has(child)) {
        found.set(child, started);
        descendants(child, found);
      }
    }
  }
  return found;
}

/** Whether `pid` is still the process that started at `started` (not gone, not reused). */
export const alive = (pid, started) => startTime(pid) === started;

export const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** Busy and total CPU time of the whole machine so far, in seconds summed over all CPUs (/proc/stat). */
export function machineCpu() {
  const values = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = values[3] + values[4]; // idle + iowait
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** How many CPUs' worth of work the machine did over the next `ms` (0 = idle, os.cpus().length = saturated). */
export async function machineLoad(ms) {
  const before = machineCpu();
  const started = performance.now();
  await sleep(ms);
  return (machineCpu().busy - before.busy) / ((performance.now() - started) / 1000);
}

/**
 * Waits (generating no load) up to `waitS` seconds until the rest of the
 * machine is quiet: other processes on a 2-CPU machine skew every figure.
 * Returns the load it found, in CPUs.
 */
export async function waitForQuiet(what, waitS) {
  let load = await machineLoad(1000);
  for (const started = Date.now(); load > QUIET_CPUS && Date.now() - started < waitS * 1000; ) {
    log(`  (other processes use ${load.toFixed(2)} CPUs: waiting for a quiet moment before ${what}…)`);
    load = await machineLoad(3000);
  }
  if (load > QUIET_CPUS) log(`  ⚠ other processes use ${load.toFixed(2)} CPUs (waited ${waitS} s at most): going on with ${what} anyway`);
  return load;
}

/** CPU seconds (user + system) a pid has used so far, from /proc/PID/stat; undefined once it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM of a pid, in bytes; throws (ENOENT) once it is gone. */
export function readMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

/** VmRSS and VmHWM of a pid, in bytes; undefined once it is gone. */
export function memory(pid) {
  try {
    return readMemory(pid);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- processes

/** Every process we started and have not yet stopped. */
export const running = new Set();

/** Set once the benchmark starts stopping what it started (see runBenchmark): from then on no Proc starts. */
let cleaning;
let interrupted = false;

/**
 * A line as the benchmarks read it: a record of the stack's own log (`up` on a
 * pipe writes JSON lines, see src/stack/stack-log.ts) in the words `up` prints
 * on a terminal, `tsgi-stack: MSG` or `APP.SLOT | MSG`; any other line as it is.
 */
export function asPrinted(line) {
  if (!line.startsWith("{")) return line;
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record?.level !== "number" || typeof record.msg !== "string") return line;
  return record.app === undefined ? `tsgi-stack: ${record.msg}` : `${record.app}.${record.slot} | ${record.msg}`;
}

/** A child process, its output (with each line's arrival time), and the processes it started in turn. */
export class Proc {
  constructor(name, command, args, { env } = {}) {
    if (cleaning) throw new Error(`stopping: not starting ${name}`);
    this.name = name;
    /** stdout's whole lines so far, read as printed (asPrinted); `stdout` adds the line not yet ended. */
    this.printed = "";
    this.stderr = "";
    /** stdout lines as { t: performance.now() at arrival, text }. */
    this.lines = [];
    this.partial = "";
    this.done = false;
    this.descendants = new Map();
    this.spawnedAt = performance.now();
    this.child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      const finish = (code, signal, error) => {
        if (this.done) return;
        this.done = true;
        this.exitCode = code;
        this.exitSignal = signal;
        this.spawnError = error;
        running.delete(this);
        resolve();
      };
      this.child.once("exit", (code, signal) => finish(code, signal));
      this.child.once("error", (error) => finish(null, null, error));
    });
    this.child.stdout.on("data", (data) => {
      const t = performance.now();
      const text = this.partial + data;
      const parts = text.split("\n");
      this.partial = parts.pop();
      const printed = parts.map(asPrinted);
      for (const line of printed) this.lines.push({ t, text: line });
      if (this.lines.length > 20_000) this.lines.splice(0, this.lines.length - 20_000);
      this.printed = (this.printed + printed.map((line) => `${line}\n`).join("")).slice(-1_000_000);
      this.onOutput?.();
    });
    this.child.stderr.on("data", (data) => {
      this.stderr = (this.stderr + data).slice(-20_000);
      this.onOutput?.();
    });
    if (this.pid !== undefined) running.add(this);
  }

  /** Everything on stdout so far (its last megabyte), each whole line as printed. */
  get stdout() {
    return this.printed + this.partial;
  }

  describeExit() {
    if (this.spawnError) return `could not start: ${this.spawnError.message}`;
    return this.exitSignal ? `killed by ${this.exitSignal}` : `exited with code ${this.exitCode}`;
  }

  /** The first stdout line at or after `since` that matches `pattern`: { t, match }. */
  findLine(pattern, since = 0) {
    for (const line of this.lines) {
      if (line.t < since) continue;
      const match = pattern.exec(line.text);
      if (match) return { t: line.t, match };
    }
    return undefined;
  }

  /** Resolves with the match once stdout matches `pattern`; rejects if the process exits first or time runs out. */
  waitFor(pattern, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error(`${this.name}: no "${what}" within ${timeoutMs} ms\n${this.stderr}`)), timeoutMs);
      const settle = (error, value) => {
        clearTimeout(timer);
        this.onOutput = undefined;
        if (error) reject(error);
        else resolve(value);
      };
      this.onOutput = () => {
        const match = pattern.exec(this.stdout);
        if (match) settle(undefined, match);
      };
      this.exited.then(() => settle(new Error(`${this.name} ${this.describeExit()} before "${what}":\n${this.stderr || this.stdout}`)));
      this.onOutput();
    });
  }

  /** Waits for the process to exit by itself; SIGKILLs it if it still runs after `timeoutMs`. */
  async exitWithin(timeoutMs) {
    const watchdog = setTimeout(() => void this.stop("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(watchdog);
  }

  /** Records the process's descendants now, so that stop() can make sure they are gone too. */
  recordDescendants() {
    if (this.done) return;
    for (const [pid, started] of descendants(this.pid)) this.descendants.set(pid, started);
  }

  /** Stops the process by its pid (signal, then SIGKILL after graceMs), then any descendant left behind. */
  async stop(signal = "SIGTERM", graceMs = 10_000) {
    this.recordDescendants();
    if (!this.done) {
      try {
        process.kill(this.pid, signal);
      } catch {}
      await Promise.race([this.exited, sleep(graceMs)]);
      if (!this.done) {
        log(`  ${this.name} (pid ${this.pid}) still running ${graceMs} ms after ${signal}: SIGKILL`);
        try {
          process.kill(this.pid, "SIGKILL");
        } catch {}
        await this.exited;
      }
    }
    for (const [pid, started] of this.descendants) {
      for (let waited = 0; waited < 3000 && alive(pid, started); waited += 50) await sleep(50);
      if (alive(pid, started)) {
        log(`  pid ${pid}, started by ${this.name}, outlived it: SIGKILL`);
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
  }
}

/** Stops every process still running (Proc.stop: SIGTERM, then SIGKILL), all at once. */
export const stopRunning = () => Promise.all([...running].map((proc) => proc.stop()));

/** Last resort on exit: every process we started, and every descendant recorded, is SIGKILLed by its pid. */
export function killRunningNow() {
  for (const proc of running) {
    for (const [pid, started] of proc.descendants) {
      if (alive(pid, started)) try { process.kill(pid, "SIGKILL"); } catch {}
    }
    try {
      process.kill(proc.pid, "SIGKILL");
    } catch {}
  }
}

/**
 * Runs a benchmark: `main`, then `stopAll` (stop everything it started; it
 * runs once, and no Proc starts once it has begun). On SIGINT, SIGTERM or
 * SIGHUP it says so, runs `stopAll` and exits with 130; a second signal while
 * stopping, and the exit itself, run `killAll` (SIGKILL by pid). An error from
 * `main` is written to stderr as "bench/NAME: …" (not after a signal: the
 * failures of what was being stopped are expected), then `stopAll` runs and
 * the exit code is 1.
 */
export async function runBenchmark(name, main, { stopAll, killAll = killRunningNow }) {
  const cleanup = () => (cleaning ??= stopAll());
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (cleaning) {
        killAll();
        process.exit(130);
      }
      interrupted = true;
      log(`\n${signal}: stopping every process this benchmark started…`);
      cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await main();
    await cleanup();
  } catch (error) {
    if (!interrupted) process.stderr.write(`bench/${name}: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
    await cleanup();
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------- wrk

const TIME_UNITS_MS = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/**
 * wrk's --latency output read: req/s, the percentiles in ms, the requests, and
 * the errors (non-2xx/3xx responses + socket errors). A figure not found is
 * undefined: the caller decides whether that is an error.
 */
export function parseWrk(text) {
  const number = (pattern) => {
    const match = pattern.exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const percentile = (p) => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m").exec(text);
    return match ? Number(match[1]) * TIME_UNITS_MS[match[2]] : undefined;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const result = {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50_ms: percentile(50),
    p75_ms: percentile(75),
    p90_ms: percentile(90),
    p99_ms: percentile(99),
    requests: number(/(\d+) requests in /),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socket_errors: socket
      ? { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
  result.errors = result.non2xx + Object.values(result.socket_errors).reduce((a, b) => a + b, 0);
  return result;
}

// ---------------------------------------------------------------- leftovers

/**
 * Processes that name `needle` in their command line or environment: a
 * stack's workers (their socket paths), its pm2 daemon (PM2_HOME; its command
 * line is rewritten to a truncated "PM2 … God Daemon (…)"), `up` itself,
 * nginx (its config path), nodemon's children, esbuild services (their
 * parent's environment).
 */
export function processesNaming(needle) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline = "";
    let environ = "";
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      environ = readFileSync(`/proc/${entry}/environ`, "utf8");
    } catch {
      if (!cmdline) continue;
    }
    if (cmdline.includes(needle) || environ.includes(needle)) found.push({ pid: Number(entry), started: startTime(entry), cmdline });
  }
  return found;
}

/** After the stops: every process still naming `needle` gets `waitMs` to go, then SIGKILL by its pid. Returns what had to be killed. */
export async function sweepProcessesNaming(needle, waitMs = 5000) {
  if (!needle) return [];
  let left = processesNaming(needle);
  for (let waited = 0; left.length > 0 && waited < waitMs; waited += 100) {
    await sleep(100);
    left = left.filter(({ pid, started }) => alive(pid, started));
  }
  for (const { pid, started, cmdline } of left) {
    if (!alive(pid, started)) continue;
    log(`  ⚠ pid ${pid} (${cmdline.slice(0, 100)}) was left running: SIGKILL`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  return left.map(({ pid, cmdline }) => ({ pid, cmdline }));
}

/** Ports the kernel considers free right now on HOST (bound to 0 together, then closed). */
export async function freePorts(count) {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, HOST, () => resolve(server));
    })),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** One port the kernel considers free right now on HOST. */
export const freePort = async () => (await freePorts(1))[0];
