#!/usr/bin/env node
/**
 * The stack benchmark: `npm run bench:stack` (or `node bench/stack.mjs`).
 * See bench/README.md for what each figure means and the goals.
 *
 * In one run, on 127.0.0.1 only, for a stack of 3 apps x 2 instances written to
 * a temporary tsgi.yaml (bench/apps/pid-app.ts, examples/dispatch/app.ts and
 * the Express example, host routes a/b/c.localhost; proxy and admin on port 0;
 * the state dir in the temporary directory), it measures
 *   1. the time from spawning `tsgi-stack up -c FILE` to every route answering
 *      200 through the proxy (each route polled every 20 ms) and to the
 *      "serving on" line, --runs times (default 3) with a full stop between
 *      runs; and where that time goes (the up process's boot, the pm2 daemon,
 *      each worker's spawn and ready, the CPU spent);
 *   2. after a SIGKILL of one worker of the first app, the time until the
 *      stack's status shows the slot ready with a new pid and until a request
 *      through the proxy is answered by that new pid, --kills times (default 5);
 *   3. the RSS of the `up` process (supervisor, control, admin), of its proxy
 *      process (the front proxy runs in processes of its own), of the pm2
 *      daemon and of idle gateway workers, and the `up` and proxy processes'
 *      RSS under a short bounded load (wrk -t1 -c20 -d5s on one route);
 *   4. a gateway worker's boot, phase by phase (node, tsx, our modules, the
 *      app), one process at a time.
 * It prints Markdown tables and writes bench/results/stack-latest.json.
 *
 * Every process it starts is stopped by its pid at the end, on error and on
 * SIGINT/SIGTERM; the stack is stopped with SIGINT as a user would (Ctrl-C).
 * After each stop it checks that no process whose command line or environment
 * names the temporary directory is left (the workers, the pm2 daemon) and
 * SIGKILLs by pid any that is, saying so.
 *
 * Options: --runs N        cold starts to measure (default 3)
 *          --kills N       workers to SIGKILL (default 5)
 *          --boot-reps N   repetitions of each boot-phase probe (default 3)
 *          --out PATH      where the JSON goes (default bench/results/stack-latest.json)
 *          --quiet-wait N  before each measurement, wait up to N seconds (default
 *                          60) for other processes to leave the CPUs alone (0: do
 *                          not wait); the load found is recorded either way
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  ROOT,
  WRK,
  alive,
  cpuSeconds,
  descendants,
  killRunningNow,
  log,
  machineCpu,
  machineInfo,
  machineLoad,
  memory,
  parseWrk,
  running,
  runBenchmark,
  sleep,
  startTime,
  stopRunning,
  waitForQuiet as waitForQuietUpTo,
  processesNaming,
  sweepProcessesNaming,
} from "./lib.mjs";

/** How often routes, the status and the proxy are polled. */
const POLL_MS = 20;
const START_TIMEOUT_MS = 60_000;
const RECOVER_TIMEOUT_MS = 30_000;
/** SIGINT to `up` drains the workers: this long at most before SIGKILL. */
const STOP_GRACE_MS = 60_000;
/** The app whose workers are killed, and where it is routed. */
const KILL_APP = "hello";
const LOAD = { threads: 1, connections: 20, seconds: 5 };
const GOALS = { start_ms: 2000, recover_ms: 1000, stack_rss: 80 * MiB, proxy_rss: 60 * MiB };

/** The stack: 3 apps x 2 instances, one host route each. The first answers its pid. */
const APPS = [
  { name: KILL_APP, module: "bench/apps/pid-app.ts", interface: "tsgi", host: "a.localhost" },
  { name: "dispatch", module: "examples/dispatch/app.ts", interface: "tsgi", host: "b.localhost", path: "/hello/bench" },
  { name: "express", module: "examples/express/app.ts", host: "c.localhost" },
];
const INSTANCES = 2;

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    kills: { type: "string", default: "5" },
    "boot-reps": { type: "string", default: "3" },
    out: { type: "string" },
    "quiet-wait": { type: "string", default: "60" },
  },
});
const RUNS = count(flags.runs, "--runs", 1, 10);
const KILLS = count(flags.kills, "--kills", 1, 20);
const BOOT_REPS = count(flags["boot-reps"], "--boot-reps", 1, 10);
const QUIET_WAIT_S = Number(flags["quiet-wait"]);
const OUT = flags.out ?? path.join(ROOT, "bench/results/stack-latest.json");

function count(value, flag, min, max) {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) fail(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return Number(value);
}

function fail(message) {
  process.stderr.write(`bench/stack: ${message}\n`);
  process.exit(2);
}

const median = (values) => {
  const sorted = values.filter((v) => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const max = (values) => Math.max(...values.filter((v) => v !== undefined));
const round = (n, digits = 0) => (n === undefined ? undefined : +n.toFixed(digits));

// ---------------------------------------------------------------- /proc

/**
 * performance.now() at which a process started, from its start time in clock
 * ticks since boot and /proc/uptime read now (both 10 ms resolution).
 */
function startedAtPerf(pid) {
  const ticks = Number(startTime(pid));
  if (!Number.isFinite(ticks)) return undefined;
  const now = performance.now();
  const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  return now - uptimeMs + (ticks * 1000) / CLK_TCK;
}

const loadAverage = () => os.loadavg().map((v) => +v.toFixed(2));


// ---------------------------------------------------------------- processes


/** Last resort on exit: nothing we started outlives us, nor anything of the stack. */
function killAllNow() {
  killRunningNow();
  if (tmpDir) {
    for (const { pid } of processesNaming(tmpDir)) try { process.kill(pid, "SIGKILL"); } catch {}
  }
}

let tmpDir;

/** At the end, on error or on a signal: the stack first, then everything else; then nothing may be left. */
async function stopAll() {
  // `up` first, with SIGINT as a user would: it stops its workers and its pm2 daemon.
  const ups = [...running].filter((proc) => proc.isStack);
  await Promise.all(ups.map((proc) => proc.stop("SIGINT", STOP_GRACE_MS)));
  await stopRunning();
  const left = await sweepProcessesNaming(tmpDir);
  if (left.length) log(`  ${left.length} process(es) of the stack had to be killed at cleanup`);
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}

/** The machine's load before a measurement (see lib.mjs), in CPUs to two decimals. */
const waitForQuiet = async (what) => round(await waitForQuietUpTo(what, QUIET_WAIT_S), 2);

// ---------------------------------------------------------------- HTTP

/** One GET on a fresh connection: { status, body } or { error }. Never rejects. */
function get({ port, socketPath, host, target = "/", timeoutMs = 2000 }) {
  return new Promise((resolve) => {
    const request = http.get(
      { ...(socketPath ? { socketPath } : { host: HOST, port }), path: target, agent: false, timeout: timeoutMs, headers: host ? { Host: host } : {} },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body }));
        res.on("error", (error) => resolve({ error: error.message }));
      },
    );
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error) => resolve({ error: error.code ?? error.message }));
  });
}

// ---------------------------------------------------------------- the stack

let CONFIG;
let STATE;
let CONTROL_SOCKET;
let PM2_PID_FILE;

function writeConfig() {
  const apps = APPS.map((app) =>
    [
      `  ${app.name}:`,
      `    module: ${JSON.stringify(path.join(ROOT, app.module))}`,
      ...(app.interface ? [`    interface: ${app.interface}`] : []),
      `    instances: ${INSTANCES}`,
      `    routes: [{ host: ${app.host} }]`,
      // As in config.example.yaml: the workers run in the project's folder (its tsconfig, its node_modules).
      `    cwd: ${JSON.stringify(ROOT)}`,
    ].join("\n"),
  );
  const text = `# written by bench/stack.mjs
state_dir: ${JSON.stringify(STATE)}
proxy:
  listen: ["${HOST}:0"]
  admin: "${HOST}:0"
apps:
${apps.join("\n")}
`;
  writeFileSync(CONFIG, text);
  return text;
}

/** GET /status on the stack's control socket, as `tsgi-stack status` does; undefined when it does not answer. */
async function controlStatus() {
  if (!existsSync(CONTROL_SOCKET)) return undefined;
  const answer = await get({ socketPath: CONTROL_SOCKET, target: "/status", timeoutMs: 2000 });
  if (answer.status !== 200) return undefined;
  try {
    return JSON.parse(answer.body);
  } catch {
    return undefined;
  }
}

/** `tsgi-stack status -c FILE --json`, the command itself: its answer and how long it took. */
async function statusCli() {
  const started = performance.now();
  const proc = new Proc("tsgi-stack status", process.execPath, [CLI, "status", "-c", CONFIG, "--json"]);
  await proc.exitWithin(30_000);
  const ms = performance.now() - started;
  if (proc.exitCode !== 0) throw new Error(`tsgi-stack status ${proc.describeExit()}:\n${proc.stderr}${proc.stdout}`);
  return { status: JSON.parse(proc.stdout), ms };
}

function daemonPid() {
  try {
    return Number(readFileSync(PM2_PID_FILE, "utf8").trim()) || undefined;
  } catch {
    return undefined;
  }
}

const SERVING = /^tsgi-stack: serving on http:\/\/([^/\s]+)\//;
const WORKER_LINE = (what) => new RegExp(`^([a-z0-9_-]+)\\.(\\d+) \\| tsgi worker (\\d+): ${what}`);

/**
 * One cold start: spawns `up`, polls the control socket (for the proxy's port,
 * known before the "serving on" line) and every route every POLL_MS until
 * each has answered 200 and the "serving on" line is out.
 */
async function startStack(run) {
  const machineBefore = machineCpu();
  const t0 = performance.now();
  const proc = new Proc(`tsgi-stack up (run ${run})`, process.execPath, [CLI, "up", "-c", CONFIG]);
  proc.isStack = true;
  const since = (t) => (t === undefined ? undefined : round(t - t0));
  const marks = {};
  const routes = Object.fromEntries(APPS.map((app) => [app.name, { first_200_ms: undefined, polls: 0, not_200: {} }]));
  const busy = new Set();
  let port;
  const fire = (key, work) => {
    if (busy.has(key)) return;
    busy.add(key);
    void work().finally(() => busy.delete(key));
  };
  for (;;) {
    if (proc.done) throw new Error(`${proc.name} ${proc.describeExit()} before serving:\n${proc.stderr}${proc.stdout.slice(-3000)}`);
    const now = performance.now();
    if (now - t0 > START_TIMEOUT_MS) throw new Error(`${proc.name}: not every route answered 200 within ${START_TIMEOUT_MS} ms\n${proc.stdout.slice(-3000)}`);
    marks.control_socket ??= existsSync(CONTROL_SOCKET) ? now : undefined;
    marks.pm2_pid_file ??= existsSync(PM2_PID_FILE) ? now : undefined;
    const serving = marks.serving ? undefined : proc.findLine(SERVING);
    if (serving) {
      marks.serving = serving.t;
      port ??= Number(serving.match[1].split(":").pop());
    }
    if (port === undefined && marks.control_socket !== undefined) {
      fire("control", async () => {
        const status = await controlStatus();
        if (status?.listen?.[0] && port === undefined) {
          port = Number(status.listen[0].split(":").pop());
          marks.port_known = performance.now();
        }
      });
    }
    if (port !== undefined) {
      for (const app of APPS) {
        const route = routes[app.name];
        if (route.first_200_ms !== undefined) continue;
        fire(app.name, async () => {
          const answer = await get({ port, host: app.host, target: app.path ?? "/" });
          route.polls += 1;
          if (answer.status === 200) route.first_200_ms ??= since(performance.now());
          else {
            const key = String(answer.status ?? answer.error);
            route.not_200[key] = (route.not_200[key] ?? 0) + 1;
          }
        });
      }
    }
    if (marks.serving !== undefined && APPS.every((app) => routes[app.name].first_200_ms !== undefined)) break;
    await sleep(POLL_MS);
  }
  const allRoutes = max(APPS.map((app) => routes[app.name].first_200_ms));
  proc.recordDescendants();

  // Where the time went: kernel start times of every process, the workers' own lines, the CPU they used.
  const status = await controlStatus();
  const pm2 = daemonPid();
  const workers = (status?.workers ?? []).map((row) => {
    const loaded = proc.findLine(new RegExp(`^${row.app}\\.${row.slot} \\| tsgi worker ${row.pid}: loaded`));
    const ready = proc.findLine(new RegExp(`^${row.app}\\.${row.slot} \\| tsgi worker ${row.pid}: ready`));
    return {
      app: row.app,
      slot: row.slot,
      pid: row.pid,
      spawned_ms: since(startedAtPerf(row.pid)),
      loaded_line_ms: since(loaded?.t),
      ready_line_ms: since(ready?.t),
      cpu_s: cpuSeconds(row.pid),
    };
  });
  const cpu = {
    up: cpuSeconds(proc.pid),
    pm2_daemon: pm2 ? cpuSeconds(pm2) : undefined,
    workers: workers.reduce((sum, worker) => sum + (worker.cpu_s ?? 0), 0),
  };
  cpu.total = cpu.up + (cpu.pm2_daemon ?? 0) + cpu.workers;
  const elapsed = (performance.now() - t0) / 1000;
  const machineBusy = machineCpu().busy - machineBefore.busy;
  const result = {
    run,
    all_routes_200_ms: allRoutes,
    serving_line_ms: since(marks.serving),
    routes,
    up_pid: proc.pid,
    control_socket_ms: since(marks.control_socket),
    port_known_ms: since(marks.port_known),
    pm2_pid_file_ms: since(marks.pm2_pid_file),
    pm2_daemon_spawned_ms: pm2 ? since(startedAtPerf(pm2)) : undefined,
    first_worker_spawned_ms: Math.min(...workers.map((w) => w.spawned_ms)),
    last_worker_spawned_ms: max(workers.map((w) => w.spawned_ms)),
    first_worker_ready_ms: Math.min(...workers.map((w) => w.ready_line_ms ?? Infinity)),
    last_worker_ready_ms: max(workers.map((w) => w.ready_line_ms)),
    workers,
    cpu_seconds: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v, 2)])),
    machine_cpu_cores: round(machineBusy / elapsed, 2),
    others_cpu_cores: round(Math.max(0, machineBusy - cpu.total) / elapsed, 2),
    load_average: loadAverage(),
  };
  return { proc, port, pm2, result };
}

/** SIGINT to `up`, as Ctrl-C: waits for it to exit, then checks that nothing of the stack is left. */
async function stopStack(stack) {
  const started = performance.now();
  await stack.proc.stop("SIGINT", STOP_GRACE_MS);
  const downMs = performance.now() - started;
  const stopped = /tsgi-stack: stopped/.test(stack.proc.stdout);
  const left = await sweepProcessesNaming(tmpDir);
  if (stack.pm2 && startTime(stack.pm2) !== undefined && !left.some((p) => p.pid === stack.pm2)) {
    log(`  ⚠ the pm2 daemon (pid ${stack.pm2}) outlived the stack: SIGKILL`);
    try {
      process.kill(stack.pm2, "SIGKILL");
    } catch {}
    left.push({ pid: stack.pm2, cmdline: "pm2 daemon" });
  }
  return { down_ms: round(downMs), exit: stack.proc.describeExit(), said_stopped: stopped, left_running: left };
}

// ---------------------------------------------------------------- 1. start

async function partStart() {
  log(`1. cold start: \`tsgi-stack up\` → every route 200 through the proxy (${RUNS} runs, routes polled every ${POLL_MS} ms)`);
  const runs = [];
  let stack;
  for (let run = 1; run <= RUNS; run++) {
    const quiet = await waitForQuiet(`start ${run}`);
    stack = await startStack(run);
    const r = stack.result;
    r.others_cpu_before = quiet;
    log(
      `  run ${run}: every route 200 at ${r.all_routes_200_ms} ms, "serving on" at ${r.serving_line_ms} ms` +
        ` | up's control socket ${r.control_socket_ms} ms, pm2 daemon spawned ${r.pm2_daemon_spawned_ms} ms,` +
        ` workers spawned ${r.first_worker_spawned_ms}–${r.last_worker_spawned_ms} ms, ready ${r.first_worker_ready_ms}–${r.last_worker_ready_ms} ms` +
        ` | CPU ${r.cpu_seconds.total} s (up ${r.cpu_seconds.up}, pm2 ${r.cpu_seconds.pm2_daemon}, 6 workers ${r.cpu_seconds.workers}), others ${r.others_cpu_cores} cores, load ${r.load_average.join(" ")}`,
    );
    if (run < RUNS) {
      r.stop = await stopStack(stack);
      log(`         down (SIGINT → exit): ${r.stop.down_ms} ms, ${r.stop.exit}; left running: ${r.stop.left_running.length}`);
    }
    runs.push(r);
  }
  const summary = {
    all_routes_200_ms: round(median(runs.map((r) => r.all_routes_200_ms))),
    serving_line_ms: round(median(runs.map((r) => r.serving_line_ms))),
    control_socket_ms: round(median(runs.map((r) => r.control_socket_ms))),
    pm2_daemon_spawned_ms: round(median(runs.map((r) => r.pm2_daemon_spawned_ms))),
    first_worker_spawned_ms: round(median(runs.map((r) => r.first_worker_spawned_ms))),
    last_worker_spawned_ms: round(median(runs.map((r) => r.last_worker_spawned_ms))),
    first_worker_ready_ms: round(median(runs.map((r) => r.first_worker_ready_ms))),
    last_worker_ready_ms: round(median(runs.map((r) => r.last_worker_ready_ms))),
    cpu_seconds_total: round(median(runs.map((r) => r.cpu_seconds.total)), 2),
    cpu_seconds_workers: round(median(runs.map((r) => r.cpu_seconds.workers)), 2),
    cpu_seconds_up: round(median(runs.map((r) => r.cpu_seconds.up)), 2),
    cpu_seconds_pm2: round(median(runs.map((r) => r.cpu_seconds.pm2_daemon)), 2),
  };
  log(`  median: every route 200 at ${summary.all_routes_200_ms} ms, "serving on" at ${summary.serving_line_ms} ms\n`);
  // The last run's stack stays up for parts 2 and 3.
  return { runs, summary, stack };
}

// ---------------------------------------------------------------- 2. SIGKILL

/** Until every slot of `app` is ready in the control status; returns those rows. */
async function readyRows(app, timeoutMs = RECOVER_TIMEOUT_MS) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await controlStatus();
    const rows = (status?.workers ?? []).filter((row) => row.app === app);
    if (rows.length === INSTANCES && rows.every((row) => row.state === "ready" && row.pid)) return rows;
    if (performance.now() > deadline) throw new Error(`${app}: not every worker ready within ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    await sleep(POLL_MS);
  }
}

async function killOnce(stack, index, slot, oldRows) {
  const target = oldRows.find((row) => row.slot === slot);
  const oldPids = new Set(oldRows.map((row) => row.pid));
  // Only ever a process of this stack: its command line names our socket.
  const cmdline = readFileSync(`/proc/${target.pid}/cmdline`, "utf8");
  if (!cmdline.includes(STATE)) throw new Error(`pid ${target.pid} is not a worker of this stack: ${cmdline}`);
  const uptimeMs = performance.now() - startedAtPerf(target.pid);
  const app = APPS.find((a) => a.name === KILL_APP);
  const proxied = { ok_old: 0, not_200: {} };
  const busy = new Set();
  const fire = (key, work) => {
    if (busy.has(key)) return;
    busy.add(key);
    void work().finally(() => busy.delete(key));
  };
  let statusAt;
  let servedAt;
  let newPid;
  let servedPid;
  const tKill = performance.now();
  process.kill(target.pid, "SIGKILL");
  for (;;) {
    const now = performance.now();
    if (now - tKill > RECOVER_TIMEOUT_MS) throw new Error(`${KILL_APP}.${slot}: no recovery within ${RECOVER_TIMEOUT_MS} ms after SIGKILL`);
    if (statusAt === undefined) {
      fire("status", async () => {
        const status = await controlStatus();
        const row = status?.workers?.find((r) => r.app === KILL_APP && r.slot === slot);
        if (statusAt === undefined && row?.state === "ready" && row.pid && row.pid !== target.pid) {
          statusAt = performance.now();
          newPid = row.pid;
        }
      });
    }
    if (servedAt === undefined) {
      // Two requests per tick: round robin over two workers reaches each within a tick.
      for (const lane of ["a", "b"]) {
        fire(lane, async () => {
          const answer = await get({ port: stack.port, host: app.host });
          if (answer.status === 200) {
            const pid = Number(answer.body.trim());
            if (!oldPids.has(pid) && servedAt === undefined) {
              servedAt = performance.now();
              servedPid = pid;
            } else if (oldPids.has(pid)) proxied.ok_old += 1;
          } else {
            const key = String(answer.status ?? answer.error);
            proxied.not_200[key] = (proxied.not_200[key] ?? 0) + 1;
          }
        });
      }
    }
    if (statusAt !== undefined && servedAt !== undefined) break;
    await sleep(POLL_MS);
  }
  // `up` relays the workers' lines from their files every 250 ms: the ready line may come after the status showed the worker.
  const exitPattern = new RegExp(`^tsgi-stack: ${KILL_APP}\\.${slot} (exited|was killed)`);
  const readyPattern = new RegExp(`^${KILL_APP}\\.${slot} \\| tsgi worker ${newPid}: ready`);
  for (const deadline = performance.now() + 2000; performance.now() < deadline && !stack.proc.findLine(readyPattern, tKill); ) await sleep(POLL_MS);
  const exitLine = stack.proc.findLine(exitPattern, tKill);
  const readyLine = stack.proc.findLine(readyPattern, tKill);
  const spawnedAt = startedAtPerf(newPid);
  const cli = await statusCli();
  const cliRow = cli.status.workers.find((row) => row.app === KILL_APP && row.slot === slot);
  const after = (t) => (t === undefined ? undefined : round(t - tKill));
  return {
    kill: index + 1,
    slot,
    old_pid: target.pid,
    old_uptime_ms: round(uptimeMs),
    new_pid: newPid,
    served_by_pid: servedPid,
    status_ready_ms: after(statusAt),
    served_by_new_pid_ms: after(servedAt),
    exit_reported_ms: after(exitLine?.t),
    new_pid_spawned_ms: after(spawnedAt),
    ready_line_ms: after(readyLine?.t),
    new_worker_boot_ms: readyLine && spawnedAt ? round(readyLine.t - spawnedAt) : undefined,
    new_worker_cpu_s: cpuSeconds(newPid),
    proxied_meanwhile: proxied,
    status_cli: { ms: round(cli.ms), shows_new_pid_ready: cliRow?.pid === newPid && cliRow?.state === "ready" },
    load_average: loadAverage(),
  };
}

async function partKill(stack) {
  log(`2. SIGKILL one ${KILL_APP} worker (bench/apps/pid-app.ts answers its pid) → serving again (${KILLS} kills, alternating slots)`);
  const first = await statusCli();
  log(`  \`tsgi-stack status --json\` took ${round(first.ms)} ms; ${KILL_APP} pids: ${first.status.workers.filter((r) => r.app === KILL_APP).map((r) => `${r.slot}:${r.pid}`).join(", ")}`);
  const kills = [];
  for (let index = 0; index < KILLS; index++) {
    const slot = index % INSTANCES;
    const rows = await readyRows(KILL_APP);
    // A worker that dies younger than the pool's min_uptime (1 s) counts as a crash: let it live 2 s.
    const target = rows.find((row) => row.slot === slot);
    const age = performance.now() - startedAtPerf(target.pid);
    if (age < 2000) await sleep(2000 - age);
    const quiet = await machineLoad(500);
    const k = await killOnce(stack, index, slot, rows);
    k.others_cpu_before = round(quiet, 2);
    log(
      `  kill ${k.kill} (slot ${slot}, pid ${k.old_pid}, up ${(k.old_uptime_ms / 1000).toFixed(1)} s): status ready with pid ${k.new_pid} at ${k.status_ready_ms} ms,` +
        ` served by it at ${k.served_by_new_pid_ms} ms | exit reported ${k.exit_reported_ms} ms, new process spawned ${k.new_pid_spawned_ms} ms,` +
        ` its ready line ${k.ready_line_ms} ms (boot ${k.new_worker_boot_ms} ms, ${k.new_worker_cpu_s} CPU-s)` +
        ` | meanwhile ${k.proxied_meanwhile.ok_old} answers from old pids, non-200: ${JSON.stringify(k.proxied_meanwhile.not_200)}` +
        ` | status CLI ${k.status_cli.ms} ms${k.status_cli.shows_new_pid_ready ? "" : " (DOES NOT show the new pid ready)"}`,
    );
    kills.push(k);
  }
  const summary = {
    status_ready_ms: { median: round(median(kills.map((k) => k.status_ready_ms))), max: max(kills.map((k) => k.status_ready_ms)) },
    served_by_new_pid_ms: { median: round(median(kills.map((k) => k.served_by_new_pid_ms))), max: max(kills.map((k) => k.served_by_new_pid_ms)) },
    exit_reported_ms: round(median(kills.map((k) => k.exit_reported_ms))),
    new_pid_spawned_ms: round(median(kills.map((k) => k.new_pid_spawned_ms))),
    new_pid_spawned_ms_each: kills.map((k) => k.new_pid_spawned_ms),
    new_worker_boot_ms: round(median(kills.map((k) => k.new_worker_boot_ms))),
    new_worker_cpu_s: round(median(kills.map((k) => k.new_worker_cpu_s)), 2),
    non_200_during_recovery: kills.reduce((sum, k) => sum + Object.values(k.proxied_meanwhile.not_200).reduce((a, b) => a + b, 0), 0),
    status_cli_ms: round(median([first.ms, ...kills.map((k) => k.status_cli.ms)])),
  };
  log(
    `  median: status ready ${summary.status_ready_ms.median} ms (max ${summary.status_ready_ms.max}), served by the new pid ${summary.served_by_new_pid_ms.median} ms (max ${summary.served_by_new_pid_ms.max})\n`,
  );
  return { kills, summary };
}

// ---------------------------------------------------------------- 3. memory

/** The stack's proxy processes: the `up` process's children running dist/stack/proxy-process.js. */
function proxyPids(stack) {
  const runsProxy = (pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("proxy-process");
    } catch {
      return false;
    }
  };
  return [...descendants(stack.proc.pid).keys()].filter(runsProxy);
}

function stackMemory(stack, workers) {
  const rss = (pid) => memory(pid)?.rss;
  const byApp = {};
  for (const worker of workers) (byApp[worker.app] ??= []).push(rss(worker.pid));
  return {
    up: rss(stack.proc.pid),
    proxy: Math.max(0, ...proxyPids(stack).map((pid) => rss(pid) ?? 0)),
    pm2_daemon: stack.pm2 ? rss(stack.pm2) : undefined,
    workers: workers.map((worker) => ({ app: worker.app, slot: worker.slot, pid: worker.pid, rss: rss(worker.pid) })),
    worker_median_by_app: Object.fromEntries(Object.entries(byApp).map(([app, values]) => [app, median(values)])),
  };
}

async function idleMemory(stack) {
  log("3a. memory at idle (VmRSS from /proc/PID/status; measured on the last start's stack, before part 2)");
  await sleep(2000); // let the boot's garbage settle
  const status = await controlStatus();
  const idle = stackMemory(stack, status.workers);
  log(
    `  idle: up ${fmtMiB(idle.up)}, proxy process ${fmtMiB(idle.proxy)}, pm2 daemon ${fmtMiB(idle.pm2_daemon)}, workers ${idle.workers.map((w) => `${w.app}.${w.slot} ${fmtMiB(w.rss)}`).join(", ")}\n`,
  );
  return idle;
}

/** wrk -t1 -c20 -d5s on the first app's route, sampling the stack's RSS every 50 ms. */
async function loadMemory(stack) {
  const app = APPS.find((a) => a.name === KILL_APP);
  const status = await controlStatus();
  const workers = status.workers;
  const before = stackMemory(stack, workers);
  const proxies = proxyPids(stack);
  const peak = { up: before.up, proxy: before.proxy, pm2_daemon: before.pm2_daemon ?? 0, workers: Object.fromEntries(workers.map((w) => [`${w.app}.${w.slot}`, 0])) };
  const sampler = setInterval(() => {
    peak.up = Math.max(peak.up, memory(stack.proc.pid)?.rss ?? 0);
    for (const pid of proxies) peak.proxy = Math.max(peak.proxy, memory(pid)?.rss ?? 0);
    if (stack.pm2) peak.pm2_daemon = Math.max(peak.pm2_daemon, memory(stack.pm2)?.rss ?? 0);
    for (const w of workers) peak.workers[`${w.app}.${w.slot}`] = Math.max(peak.workers[`${w.app}.${w.slot}`], memory(w.pid)?.rss ?? 0);
  }, 50);
  log(`3b. memory under load: the stack process's RSS sampled every 50 ms`);
  const upCpuBefore = cpuSeconds(stack.proc.pid);
  const args = [`-t${LOAD.threads}`, `-c${LOAD.connections}`, `-d${LOAD.seconds}s`, "--latency", "-H", `Host: ${app.host}`, `http://${HOST}:${stack.port}/`];
  const proc = new Proc("wrk", WRK, args);
  await proc.exitWithin((LOAD.seconds + 15) * 1000);
  clearInterval(sampler);
  if (proc.exitCode !== 0) throw new Error(`wrk ${proc.describeExit()}:\n${proc.stderr}${proc.stdout}`);
  const { rps, p50_ms, p99_ms, requests, errors } = parseWrk(proc.stdout);
  const wrk = { rps, p50_ms, p99_ms, requests, errors };
  const upCpu = cpuSeconds(stack.proc.pid) - upCpuBefore;
  const after = stackMemory(stack, workers);
  const result = {
    wrk: `wrk ${args.slice(0, 4).join(" ")} -H 'Host: ${app.host}' (route of ${app.name})`,
    ...wrk,
    up_cpu_us_per_request: wrk.requests ? round((upCpu * 1e6) / wrk.requests) : undefined,
    up_rss_before: before.up,
    up_rss_peak: peak.up,
    up_rss_after: after.up,
    up_hwm: memory(stack.proc.pid)?.hwm,
    proxy_rss_before: before.proxy,
    proxy_rss_peak: peak.proxy,
    pm2_daemon_rss_peak: peak.pm2_daemon,
    worker_rss_peak: peak.workers,
    load_average: loadAverage(),
  };
  log(
    `  under ${result.wrk}: ${Math.round(wrk.rps)} req/s, p99 ${wrk.p99_ms?.toFixed(2)} ms, ${wrk.errors} errors, up ${result.up_cpu_us_per_request} µs CPU/request;` +
      ` up RSS ${fmtMiB(result.up_rss_before)} → peak ${fmtMiB(result.up_rss_peak)} (after ${fmtMiB(result.up_rss_after)}),` +
      ` proxy RSS ${fmtMiB(result.proxy_rss_before)} → peak ${fmtMiB(result.proxy_rss_peak)}\n`,
  );
  return result;
}

// ---------------------------------------------------------------- 4. worker boot phases

/**
 * Runs in a fresh `node`, from the repository: the steps a gateway worker's
 * boot goes through (src/cli/bin.js registers tsx, then main.ts imports every
 * command module, then `serve` imports the app), with a timestamp, the RSS and
 * the number of modules tsx's ESM hooks loaded after each. performance.now()
 * counts from the process's start.
 */
const PHASE_PROBE = `
const at = () => ({ ms: performance.now(), rss: process.memoryUsage().rss, modules: urls.length });
const urls = [];
const t = {};
t.node = { ms: performance.now(), rss: process.memoryUsage().rss, modules: 0 };
const { register } = await import("tsx/esm/api");
const { register: registerCjs } = await import("tsx/cjs/api");
registerCjs();
register({ onImport: (url) => urls.push(url) });
t.tsx = at();
await import(${JSON.stringify(pathToFileURL(path.join(ROOT, "src/cli/commands/serve.ts")).href)});
t.serve_modules = at();
const serveCount = urls.length;
for (const name of ["up", "control", "logs", "validate"]) await import(${JSON.stringify(pathToFileURL(path.join(ROOT, "src/cli/commands")).href)} + "/" + name + ".ts");
await import("commander");
t.other_commands = at();
const packages = {};
for (const url of urls.slice(serveCount)) {
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url);
  const key = m ? m[1] : url.startsWith("file:") ? "src (ours)" : url;
  packages[key] = (packages[key] ?? 0) + 1;
}
await import(process.argv[1]);
t.app = at();
const { createRequire } = await import("node:module");
createRequire(${JSON.stringify(pathToFileURL(path.join(ROOT, "package.json")).href)})("pm2/lib/API.js");
t.pm2_api = at();
process.stdout.write(JSON.stringify({ t, packages }));
`;

async function probePhases(app) {
  const started = performance.now();
  const proc = new Proc(`boot probe (${app})`, process.execPath, ["--input-type=module", "-e", PHASE_PROBE, pathToFileURL(path.join(ROOT, app)).href]);
  await proc.exited;
  if (proc.exitCode !== 0) throw new Error(`boot probe ${proc.describeExit()}:\n${proc.stderr}`);
  return { wall_ms: performance.now() - started, ...JSON.parse(proc.stdout) };
}

/** One real worker as pm2 runs it (`serve … --no-arbiter --socket`), from spawn to its ready line. */
async function bootWorker(app, rep) {
  const socket = path.join(tmpDir, `boot-${rep}.sock`);
  const started = performance.now();
  const proc = new Proc(`boot worker (${app})`, process.execPath, [CLI, "serve", path.join(ROOT, app), "--no-arbiter", "--socket", socket, "--multiprocess"]);
  try {
    await proc.waitFor(/tsgi worker (\d+): ready/, 30_000, "ready");
    const wall = performance.now() - started;
    const mem = memory(proc.pid);
    return { wall_ms: wall, cpu_s: cpuSeconds(proc.pid), rss: mem?.rss };
  } finally {
    await proc.stop();
  }
}

async function partBoot() {
  log(`4. a gateway worker's boot, phase by phase (one process at a time, ${BOOT_REPS} repetitions, median)`);
  const quiet = await waitForQuiet("the boot probes");
  const probes = { hello: [], express: [] };
  const workers = { hello: [], express: [] };
  const upBoot = [];
  for (let rep = 0; rep < BOOT_REPS; rep++) {
    probes.hello.push(await probePhases(APPS[0].module));
    probes.express.push(await probePhases(APPS[2].module));
    workers.hello.push(await bootWorker(APPS[0].module, rep));
    workers.express.push(await bootWorker(APPS[2].module, rep));
    // The CLI with nothing to do: every module main.ts imports, as `up` and `status` load them.
    const started = performance.now();
    const proc = new Proc("tsgi-stack --version", process.execPath, [CLI, "--version"]);
    await proc.exited;
    upBoot.push(performance.now() - started);
  }
  const phaseNames = ["node", "tsx", "serve_modules", "other_commands", "app", "pm2_api"];
  const summarize = (list) => {
    const phases = {};
    let previous = { ms: 0, rss: 0, modules: 0 };
    for (const name of phaseNames) {
      const ms = median(list.map((p) => p.t[name].ms));
      const rss = median(list.map((p) => p.t[name].rss));
      const modules = median(list.map((p) => p.t[name].modules));
      phases[name] = { at_ms: round(ms), took_ms: round(ms - previous.ms), rss, rss_added: rss - previous.rss, modules_added: modules - previous.modules };
      previous = { ms, rss, modules };
    }
    return { phases, packages_of_other_commands: list[0].packages };
  };
  const boot = {
    others_cpu_before: quiet,
    probe: { hello: summarize(probes.hello), express: summarize(probes.express) },
    worker: Object.fromEntries(
      Object.entries(workers).map(([app, list]) => [
        app,
        { ready_ms: round(median(list.map((w) => w.wall_ms))), cpu_s: round(median(list.map((w) => w.cpu_s)), 2), rss: median(list.map((w) => w.rss)) },
      ]),
    ),
    cli_version_ms: round(median(upBoot)),
    load_average: loadAverage(),
  };
  const p = boot.probe.hello.phases;
  log(
    `  pid-app: node ${p.node.took_ms} ms, tsx register ${p.tsx.took_ms} ms, serve's modules ${p.serve_modules.took_ms} ms (${p.serve_modules.modules_added}),` +
      ` the other commands' modules ${p.other_commands.took_ms} ms (${p.other_commands.modules_added}: ${JSON.stringify(boot.probe.hello.packages_of_other_commands)}),` +
      ` the app ${p.app.took_ms} ms; express app ${boot.probe.express.phases.app.took_ms} ms`,
  );
  log(
    `  a whole worker to "ready": pid-app ${boot.worker.hello.ready_ms} ms (${boot.worker.hello.cpu_s} CPU-s, ${fmtMiB(boot.worker.hello.rss)}),` +
      ` express ${boot.worker.express.ready_ms} ms (${boot.worker.express.cpu_s} CPU-s, ${fmtMiB(boot.worker.express.rss)}); \`tsgi-stack --version\` ${boot.cli_version_ms} ms\n`,
  );
  return boot;
}

// ---------------------------------------------------------------- formatting

const fmtMiB = (bytes) => (bytes === undefined ? "–" : `${(bytes / MiB).toFixed(1)} MiB`);
const fmtS = (ms) => (ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const verdict = (ok) => (ok ? "pass" : "**FAIL**");

function markdown(results) {
  const { start, kill, memory: mem, boot } = results;
  const lines = [];
  const la = results.machine.load_average_start;
  lines.push(
    `Machine: ${results.machine.cpus} CPUs, node ${results.machine.node}; load average (1/5/15 min) ${la.join(" / ")} at the start, ${results.machine.load_average_end.join(" / ")} at the end.`,
    "",
    "| figure | measured | goal | result |",
    "|---|---:|---:|---|",
    `| \`up\` → every route answers 200 through the proxy (median of ${start.runs.length}) | ${fmtS(start.summary.all_routes_200_ms)} | < 2 s | ${verdict(start.summary.all_routes_200_ms < GOALS.start_ms)} |`,
    `| \`up\` → "serving on" line (median of ${start.runs.length}) | ${fmtS(start.summary.serving_line_ms)} | – | |`,
  );
  if (kill) {
    const s = kill.summary;
    lines.push(
      `| SIGKILL a worker → status shows the slot ready with a new pid (median / max of ${kill.kills.length}) | ${fmtS(s.status_ready_ms.median)} / ${fmtS(s.status_ready_ms.max)} | < 1 s | ${verdict(s.status_ready_ms.median < GOALS.recover_ms)}${s.status_ready_ms.max >= GOALS.recover_ms && s.status_ready_ms.median < GOALS.recover_ms ? " (max over)" : ""} |`,
      `| SIGKILL a worker → a request through the proxy answered by the new pid (median / max) | ${fmtS(s.served_by_new_pid_ms.median)} / ${fmtS(s.served_by_new_pid_ms.max)} | < 1 s | ${verdict(s.served_by_new_pid_ms.median < GOALS.recover_ms)}${s.served_by_new_pid_ms.max >= GOALS.recover_ms && s.served_by_new_pid_ms.median < GOALS.recover_ms ? " (max over)" : ""} |`,
    );
  }
  if (mem) {
    lines.push(
      `| RSS of the stack process (\`up\`: supervisor, control, admin), idle | ${fmtMiB(mem.idle.up)} | < 80 MB | ${verdict(mem.idle.up < GOALS.stack_rss)} |`,
      `| RSS of the stack process, peak under wrk -t${LOAD.threads} -c${LOAD.connections} -d${LOAD.seconds}s | ${fmtMiB(mem.load.up_rss_peak)} | < 80 MB | ${verdict(mem.load.up_rss_peak < GOALS.stack_rss)} |`,
      `| RSS of the proxy process, idle / peak under the same load | ${fmtMiB(mem.idle.proxy)} / ${fmtMiB(mem.load.proxy_rss_peak)} | ≤ 60 MiB | ${verdict(mem.idle.proxy <= GOALS.proxy_rss)} / ${verdict(mem.load.proxy_rss_peak <= GOALS.proxy_rss)} |`,
      `| RSS of the pm2 daemon, idle | ${fmtMiB(mem.idle.pm2_daemon)} | – | |`,
      `| RSS of an idle gateway worker (pid-app / dispatch / express, median of 2 each) | ${Object.values(mem.idle.worker_median_by_app).map(fmtMiB).join(" / ")} | – | |`,
    );
  }
  lines.push("", "80 MB is read as 80 MiB. The goals are judged on the median; the max is shown beside it.");

  // Where the start time goes.
  const s = start.summary;
  lines.push(
    "",
    `| cold start, median of ${start.runs.length} (ms after spawning \`up\`) | ms |`,
    "|---|---:|",
    `| \`up\` has booted (node, tsx, every CLI module, config) and bound its listeners: control socket exists | ${s.control_socket_ms} |`,
    `| pm2 daemon process spawned | ${s.pm2_daemon_spawned_ms} |`,
    `| first / last worker process spawned | ${s.first_worker_spawned_ms} / ${s.last_worker_spawned_ms} |`,
    `| first / last worker's "ready" line relayed by \`up\` | ${s.first_worker_ready_ms} / ${s.last_worker_ready_ms} |`,
    `| every route answered 200 | ${s.all_routes_200_ms} |`,
    `| "serving on" line | ${s.serving_line_ms} |`,
    `| CPU used by the whole start: total (6 workers + \`up\` + pm2 daemon), CPU-s | ${s.cpu_seconds_total} (${s.cpu_seconds_workers} + ${s.cpu_seconds_up} + ${s.cpu_seconds_pm2}) |`,
    `| each run: every route 200, ms (other processes' CPU meanwhile, cores) | ${start.runs.map((r) => `${r.all_routes_200_ms} (${r.others_cpu_cores})`).join(", ")} |`,
  );
  if (kill) {
    const k = kill.summary;
    lines.push(
      "",
      `| after SIGKILL, median of ${kill.kills.length} (ms) | ms |`,
      "|---|---:|",
      `| \`up\` reports the exit (pm2's event relayed) | ${k.exit_reported_ms} |`,
      `| new worker process spawned by pm2 (each kill: ${k.new_pid_spawned_ms_each.join(", ")}) | ${k.new_pid_spawned_ms} |`,
      `| new worker's boot: spawn → its "ready" line (${k.new_worker_cpu_s} CPU-s) | ${k.new_worker_boot_ms} |`,
      `| status shows it ready / the proxy serves from it | ${k.status_ready_ms.median} / ${k.served_by_new_pid_ms.median} |`,
      `| requests through the proxy that did not get a 200 meanwhile (all kills) | ${k.non_200_during_recovery} |`,
      `| \`tsgi-stack status --json\`, the command itself (median) | ${k.status_cli_ms} |`,
    );
  }
  if (boot) {
    const rows = (name, label) => {
      const h = boot.probe.hello.phases[name];
      const e = boot.probe.express.phases[name];
      return `| ${label} | ${h.took_ms} | ${h.at_ms} | ${h.modules_added} | +${fmtMiB(h.rss_added)} | ${e.took_ms} |`;
    };
    const pk = boot.probe.hello.packages_of_other_commands;
    const typebox = pk["@sinclair/typebox"] ?? 0;
    lines.push(
      "",
      `| a worker's boot, phase by phase (median of ${BOOT_REPS}, one process at a time) | ms | at ms | ESM modules | RSS | ms (express app) |`,
      "|---|---:|---:|---:|---:|---:|",
      rows("node", "node starts, runs the first line"),
      rows("tsx", "tsx registered (CJS hook + ESM hooks on a loader thread)"),
      rows("serve_modules", "`serve`'s modules (gateway, TSGI)"),
      rows("other_commands", `the other commands' modules main.ts imports too (${typebox} of them TypeBox's)`),
      rows("app", "the app module"),
      `| a whole worker, spawn → "ready" (pid-app / express) | ${boot.worker.hello.ready_ms} / ${boot.worker.express.ready_ms} | | | ${fmtMiB(boot.worker.hello.rss)} / ${fmtMiB(boot.worker.express.rss)} | |`,
      `| CPU a worker uses to boot (pid-app / express), CPU-s | ${boot.worker.hello.cpu_s} / ${boot.worker.express.cpu_s} | | | | |`,
      rows("pm2_api", "(`up` only) pm2's client library"),
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(WRK)) fail(`wrk not found at ${WRK} (Debian: apt-get install wrk; or set WRK=/path/to/wrk)`);
  const loadStart = loadAverage();
  const machine = {
    ...machineInfo(),
    load_average_start: loadStart,
  };
  log(`tsgi-stack stack benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}; load average ${loadStart.join(" ")}`);
  log(`stack: ${APPS.length} apps x ${INSTANCES} instances (${APPS.map((a) => `${a.name}: ${a.module} on ${a.host}`).join("; ")})\n`);

  // A short path: the pm2 daemon's rewritten command line keeps only the start of its home.
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsb-"));
  CONFIG = path.join(tmpDir, "tsgi.yaml");
  STATE = path.join(tmpDir, "state");
  CONTROL_SOCKET = path.join(STATE, "control.sock");
  PM2_PID_FILE = path.join(STATE, "pm2", "pm2.pid");
  const config = writeConfig();
  const results = { date: new Date().toISOString(), machine, settings: { runs: RUNS, kills: KILLS, boot_reps: BOOT_REPS, poll_ms: POLL_MS, load: LOAD, goals: GOALS }, config };

  const start = await partStart();
  results.start = { runs: start.runs, summary: start.summary };
  const stack = start.stack;
  const idle = await idleMemory(stack);
  results.kill = await partKill(stack);
  const load = await loadMemory(stack);
  results.memory = { idle, load };
  const last = start.runs[start.runs.length - 1];
  last.stop = await stopStack(stack);
  log(`  stack stopped (SIGINT → exit): ${last.stop.down_ms} ms, ${last.stop.exit}; left running: ${last.stop.left_running.length}\n`);
  results.boot = await partBoot();

  results.left_running = start.runs.flatMap((r) => r.stop?.left_running ?? []);
  machine.load_average_end = loadAverage();
  const table = markdown(results);
  results.markdown = table;
  log(table);
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  log(`\nwritten: ${path.relative(process.cwd(), OUT) || OUT}`);
}

await runBenchmark("stack", main, { stopAll, killAll: killAllNow });
const left = tmpDir ? processesNaming(tmpDir) : [];
if (left.length) log(`⚠ still running after cleanup: ${left.map((p) => p.pid).join(", ")}`);
