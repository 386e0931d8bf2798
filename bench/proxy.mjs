#!/usr/bin/env node
/**
 * The proxy benchmark: `npm run bench:proxy` (or `node bench/proxy.mjs`).
 * See bench/README.md for what each figure means and the goals.
 *
 * In one run, on 127.0.0.1 only, it loads several front proxies with the same
 * wrk, in three groups:
 *   1. "one": in front of THE SAME two gateway worker processes (a stack's
 *      app bench/apps/proxy-app.ts, on unix sockets, access log off), one
 *      process or thread each: our proxy (`tsgi-stack up`, proxy.workers: 1),
 *      nginx (worker_processes 1, the baseline), HAProxy (nbthread 1) and
 *      Caddy (GOMAXPROCS=1) when installed; on request (--add) the hot-path
 *      variants of bench/variants/ and a third worker with no proxy;
 *   1b. "limits" (opt-in, --add stack-limited): the same stack with the
 *      app's rate_limit and conn_limit on, set far above the load, against
 *      group 1's row for our proxy: what the limiter costs when no client is
 *      over its limit (the config file rewritten, as for group 2);
 *   2. "auto": the same workers, our proxy with proxy.workers: auto (the
 *      same stack, its config file rewritten: the stack applies it) against
 *      nginx with worker_processes auto;
 *   3. "cmd": ONE `command:` app over TCP — bench/apps/node-hello.mjs, a
 *      plain node:http server on the $PORT the supervisor gives it — in a
 *      second stack whose proxy writes the access log (combined), against
 *      nginx proxy_pass to the same server's port (keepalive, access_log on).
 * Each target is loaded with wrk -t1 -c50 (req/s, p50, p99) and, for the main
 * pairs, wrk -t1 -c1 (p50); every measurement is repeated --runs times (3),
 * in rounds, the order rotating, so that every ratio has a spread.
 *
 * Our proxy runs in processes of its own (dist/stack/proxy-process.js, forked
 * by the `up` process): their pids come from `tsgi-stack status --json`'s
 * `proxies` (checked against the `up` process's children), and the proxy's
 * RSS and CPU per request are theirs; the `up` (stack) process's RSS is its
 * own figure, idle and under load.
 *
 * It prints Markdown tables (figures with their spread, ratios, the goals)
 * and writes bench/results/proxy.json. Every process it starts is stopped by
 * its pid at the end, on error and on SIGINT/SIGTERM: the stacks with SIGINT
 * as a user would (workers, pm2 daemon and proxy processes go with them),
 * nginx with SIGQUIT, the rest with SIGTERM, SIGKILL after a grace period;
 * then any process whose command line or environment names the temporary
 * directory is SIGKILLed by its pid, and the directory removed.
 *
 * Options: --runs N        rounds: each measurement N times (default 3)
 *          --quick         a smoke check: 1 run of 2 s / 1 s, no waiting for quiet, no JSON unless --out
 *          --duration N    seconds of each -c50 run (default 6)
 *          --c1-duration N seconds of each -c1 run (default 3)
 *          --bulk          also 1 MiB downloads and uploads (-c10) in group 1
 *          --bulk-duration N  seconds of each of those (default 4)
 *          --warmup N      seconds of the warm-up before each measurement (default 1)
 *          --only LIST     these targets only (their baselines are added), comma-separated
 *          --add LIST      these opt-in targets too: http-proxy, http-proxy-3, undici, direct,
 *                          cmd-stack-nolog, cmd-nginx-nolog, stack-limited, gzip-stack (with gzip-nginx: 20 KB of
 *                          JSON gzipped at GZIP_LEVEL by our proxy's `compress` and by nginx's `gzip on`;
 *                          `--only gzip-stack` runs that pair alone)
 *                          h2-stack (with h2-nginx: GET / over HTTP/2 on the TLS listener, h2load -c50 -m10,
 *                          against nginx's `listen … ssl http2`; `--only h2-stack` runs that pair alone)
 *          --nginx-buffering on|off  nginx's proxy_buffering and proxy_request_buffering (default on)
 *          --out PATH      where the JSON goes (default bench/results/proxy.json)
 *          --quiet-wait N  before each measurement, wait up to N s (default 5) for other
 *                          processes to leave the CPUs alone; 12 x N s in all at most
 *          --profile N     no benchmark: profile our proxy process under the group-3 load
 *                          (wrk -c50 for N s, V8's sampling profiler started and stopped by
 *                          signal through a NODE_OPTIONS preload) and print where its time goes
 *          --profile-out PATH  keep that .cpuprofile (open it in Chrome DevTools)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import {
  CLI,
  freePort,
  CLK_TCK,
  HOST,
  MiB,
  Proc,
  QUIET_CPUS,
  ROOT,
  WRK,
  alive,
  cpuSeconds,
  descendants,
  killRunningNow,
  log,
  machineInfo,
  memory,
  parseWrk,
  running,
  runBenchmark,
  sleep,
  startTime,
  stopRunning,
  waitForQuiet,
  processesNaming,
  sweepProcessesNaming,
} from "./lib.mjs";

const NGINX = process.env.NGINX ?? "/usr/sbin/nginx";
const HAPROXY = process.env.HAPROXY ?? "/usr/sbin/haproxy";
const CADDY = process.env.CADDY ?? "/usr/bin/caddy";
/** nghttp2's load generator (Debian: nghttp2-client), for the HTTP/2 pair. */
const H2LOAD = process.env.H2LOAD ?? "/usr/bin/h2load";
/** Streams per connection in the HTTP/2 pair (h2load -m). */
const H2_STREAMS = 10;
/** iproute2's ss: the worker sockets' send queues tell a proxy that leaves responses unread. */
const SS = process.env.SS ?? "/usr/bin/ss";
const APP = "bench/apps/proxy-app.ts";
const CMD_APP = "bench/apps/node-hello.mjs";
const UPLOAD_LUA = path.join(ROOT, "bench/upload.lua");
const WORKERS = 2;
/** The size of /big's body and of each upload. */
const BODY = MiB;
const SMALL_BODY = "hello\n";
/** The gzip pair's level: ours (`compress.level.gzip`) and nginx's gzip_comp_level, the same. */
const GZIP_LEVEL = 6;
const CMD_BODY = "Hello from TSGI: GET /\n";
/**
 * The issue's goals for our proxy. The ratios are against nginx with one
 * worker process, both in front of the same two gateway workers; the RSS
 * goals are per proxy process (under load) and for the `up` process (idle and
 * under load). MB read as MiB, as bench/stack.mjs does.
 */
const GOALS = { rps_ratio: 0.75, p99_ratio: 1.5, c1_p50_ratio: 1.1, proxy_rss: 60 * MiB, stack_rss: 80 * MiB, observed_ratio: 0.97, limited_ratio: 0.97 };
/** SIGINT to `up` drains the workers: this long at most before SIGKILL. */
const STOP_GRACE_MS = 60_000;
/** The whole run should stay near 6 minutes: options that plan more load than this are refused. */
const LOAD_LIMIT_S = 300;
const RSS_SAMPLE_MS = 50;
const CPUS = os.availableParallelism?.() ?? os.cpus().length;

// ---------------------------------------------------------------- options

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string" },
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    "c1-duration": { type: "string" },
    bulk: { type: "boolean", default: false },
    "bulk-duration": { type: "string" },
    warmup: { type: "string" },
    only: { type: "string" },
    add: { type: "string" },
    "nginx-buffering": { type: "string", default: "on" },
    out: { type: "string" },
    "quiet-wait": { type: "string" },
    profile: { type: "string" },
    "profile-out": { type: "string" },
  },
});
const QUICK = flags.quick;
const RUNS = boundedInt(flags.runs ?? (QUICK ? "1" : "3"), "--runs", 1, 10);
const SMALL_S = boundedInt(flags.duration ?? (QUICK ? "2" : "6"), "--duration", 1, 60);
const C1_S = boundedInt(flags["c1-duration"] ?? (QUICK ? "1" : "3"), "--c1-duration", 1, 60);
const BULK_S = boundedInt(flags["bulk-duration"] ?? (QUICK ? "1" : "4"), "--bulk-duration", 1, 60);
const WARMUP_S = boundedInt(flags.warmup ?? "1", "--warmup", 1, 60);
const QUIET_WAIT_S = flags["quiet-wait"] === undefined ? (QUICK ? 0 : 5) : boundedInt(flags["quiet-wait"], "--quiet-wait", 0, 600);
/** All the waiting for quiet together stays within this: the run must end in reasonable time on a busy machine. */
const QUIET_BUDGET_S = QUIET_WAIT_S * 12;
const PROFILE_S = flags.profile === undefined ? undefined : boundedInt(flags.profile, "--profile", 1, 60);
if (!["on", "off"].includes(flags["nginx-buffering"])) fail(`--nginx-buffering ${flags["nginx-buffering"]}: on or off`);
const NGINX_BUFFERING = flags["nginx-buffering"] === "on";

function boundedInt(value, flag, min, max) {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) fail(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return Number(value);
}

function fail(message) {
  process.stderr.write(`bench/proxy: ${message}\n`);
  process.exit(2);
}

const round = (n, digits = 0) => (n === undefined || Number.isNaN(n) ? undefined : +n.toFixed(digits));

// ---------------------------------------------------------------- the targets

/** The measurements. `bulk` ones only with --bulk, and only where the app has /big and /upload. */
const KINDS = {
  small: { key: "small", label: "GET /, -c50", connections: 50, seconds: SMALL_S, target: "/" },
  c1: { key: "c1", label: "GET / at concurrency 1, -c1", connections: 1, seconds: C1_S, target: "/" },
  big: { key: "big", label: "GET /big (1 MiB responses), -c10", connections: 10, seconds: BULK_S, target: "/big", bytes: BODY },
  upload: { key: "upload", label: "POST /upload (1 MiB bodies), -c10", connections: 10, seconds: BULK_S, target: "/upload", script: UPLOAD_LUA, bytes: BODY },
  h2: { key: "h2", label: `GET / over HTTP/2 (TLS), h2load -c50 -m${H2_STREAMS}`, connections: 50, streams: H2_STREAMS, seconds: SMALL_S, target: "/", tool: "h2load" },
  json: { key: "json", label: `GET /json (20 KB of JSON) with Accept-Encoding: gzip, level ${GZIP_LEVEL}, -c50`, connections: 50, seconds: SMALL_S, target: "/json", headers: ["Accept-Encoding: gzip"] },
};
const BULK = flags.bulk ? ["big", "upload"] : [];

/**
 * Every target: its group (which upstream and which stack setting it needs),
 * its baseline for the ratios, its measurements, and whether it runs by
 * default. A target whose binary is missing is skipped, and the output says so.
 */
const TARGETS = {
  stack: { group: "one", baseline: "nginx", kinds: ["small", "c1", ...BULK], label: "ours, proxy.workers: 1" },
  "stack-observed": { group: "one", baseline: "stack", kinds: ["small"], label: "ours, proxy.workers: 1, /metrics polled each second and a status page open" },
  "stack-limited": { group: "limits", baseline: "stack", kinds: ["small"], label: "ours, proxy.workers: 1, rate_limit and conn_limit on (no client over them)", optIn: true },
  nginx: { group: "one", kinds: ["small", "c1", ...BULK], label: "nginx, worker_processes 1" },
  haproxy: { group: "one", baseline: "nginx", kinds: ["small", ...BULK], label: "HAProxy, nbthread 1", binary: HAPROXY },
  caddy: { group: "one", baseline: "nginx", kinds: ["small", ...BULK], label: "Caddy, GOMAXPROCS=1", binary: CADDY },
  "http-proxy": { group: "one", baseline: "nginx", kinds: ["small", "c1", ...BULK], label: "http-proxy 1.18.1 (variant)", optIn: true, script: "bench/variants/http-proxy.mjs" },
  "http-proxy-3": { group: "one", baseline: "nginx", kinds: ["small", "c1", ...BULK], label: "http-proxy-3 (variant)", optIn: true, script: "bench/variants/http-proxy-3.mjs" },
  undici: { group: "one", baseline: "nginx", kinds: ["small", "c1", ...BULK], label: "undici Pool (variant)", optIn: true, script: "bench/variants/undici.mjs" },
  direct: { group: "one", baseline: "nginx", kinds: ["small", "c1", ...BULK], label: "no proxy: a 3rd worker on TCP (ceiling)", optIn: true },
  "stack-auto": { group: "auto", baseline: "nginx-auto", kinds: ["small"], label: `ours, proxy.workers: auto (${CPUS})` },
  "nginx-auto": { group: "auto", kinds: ["small"], label: `nginx, worker_processes auto (${CPUS})` },
  "cmd-stack": { group: "cmd", baseline: "cmd-nginx", kinds: ["small", "c1"], label: "ours, proxy.workers: 1, access_log: combined" },
  "cmd-nginx": { group: "cmd", kinds: ["small", "c1"], label: "nginx, worker_processes 1, access_log on" },
  "cmd-stack-nolog": { group: "cmd-nolog", baseline: "cmd-nginx-nolog", kinds: ["small"], label: "ours, proxy.workers: 1, access_log: off", optIn: true },
  "cmd-nginx-nolog": { group: "cmd-nolog", kinds: ["small"], label: "nginx, worker_processes 1, access_log off", optIn: true },
  "gzip-stack": { group: "gzip", baseline: "gzip-nginx", kinds: ["json"], label: `ours, proxy.workers: 1, compress: gzip level ${GZIP_LEVEL}`, optIn: true },
  "gzip-nginx": { group: "gzip", kinds: ["json"], label: `nginx, worker_processes 1, gzip on, gzip_comp_level ${GZIP_LEVEL}`, optIn: true },
  "h2-stack": { group: "h2", baseline: "h2-nginx", kinds: ["h2"], label: "ours, proxy.workers: 1, proxy.tls (HTTP/2)", optIn: true, binary: H2LOAD },
  "h2-nginx": { group: "h2", kinds: ["h2"], label: "nginx, worker_processes 1, listen … ssl http2", optIn: true, binary: H2LOAD },
};
const GROUPS = {
  one: `1. ${WORKERS} gateway workers (bench/apps/proxy-app.ts) on unix sockets, access log off; one process (thread) per proxy`,
  limits: `1b. the same ${WORKERS} gateway workers and stack, the app's rate_limit and conn_limit on (far above the load: every request goes through the limiter, none refused)`,
  auto: `2. the same ${WORKERS} gateway workers; one proxy process (worker) per CPU: ${CPUS} here`,
  cmd: "3. ONE `command:` app over TCP (bench/apps/node-hello.mjs on $PORT), access log on",
  "cmd-nolog": "3b. the same `command:` app, access log off (diagnosis)",
  gzip: `4. the gateway workers of group 1, responses compressed (gzip, level ${GZIP_LEVEL}); one process per proxy`,
  h2: `5. the gateway workers of group 1 over HTTP/2 on TLS (the same self-signed P-256 certificate), ${H2_STREAMS} streams per connection; one process per proxy`,
};
/** Which stack a group loads, and the stack settings it needs. */
const STACK_OF_GROUP = {
  one: { stack: "a", proxyWorkers: "1", limits: "off", compress: false },
  limits: { stack: "a", proxyWorkers: "1", limits: "on", compress: false },
  auto: { stack: "a", proxyWorkers: "auto", limits: "off", compress: false },
  cmd: { stack: "b", accessLog: "combined" },
  "cmd-nolog": { stack: "b", accessLog: "off" },
  gzip: { stack: "a", proxyWorkers: "1", limits: "off", compress: true },
  h2: { stack: "a", proxyWorkers: "1", limits: "off", compress: false },
};

function listOption(value, flag) {
  const names = value ? value.split(",").map((name) => name.trim()).filter(Boolean) : undefined;
  for (const name of names ?? []) if (!TARGETS[name]) fail(`${flag} ${value}: the targets are ${Object.keys(TARGETS).join(", ")}`);
  return names;
}
const ONLY = listOption(flags.only, "--only");
const ADD = listOption(flags.add, "--add") ?? [];
const wanted = new Set(ONLY ?? Object.keys(TARGETS).filter((key) => !TARGETS[key].optIn));
for (const key of ADD) wanted.add(key);
for (const key of [...wanted]) if (TARGETS[key].baseline) wanted.add(TARGETS[key].baseline);
/** Targets whose program is not installed: said at the start, in the tables and in the JSON. */
const MISSING = Object.fromEntries([...wanted].filter((key) => TARGETS[key].binary && !existsSync(TARGETS[key].binary)).map((key) => [key, TARGETS[key].binary]));
const SELECTED = Object.keys(TARGETS).filter((key) => wanted.has(key) && !MISSING[key]);
const OUT = flags.out ?? (QUICK || ONLY || ADD.length || PROFILE_S ? undefined : path.join(ROOT, "bench/results/proxy.json"));

const PLANNED_LOAD_S = RUNS * SELECTED.reduce((sum, key) => sum + TARGETS[key].kinds.reduce((s, kind) => s + KINDS[kind].seconds + WARMUP_S, 0), 0);
if (PROFILE_S === undefined && PLANNED_LOAD_S > LOAD_LIMIT_S) {
  fail(`${PLANNED_LOAD_S} s of wrk planned (${SELECTED.length} targets, ${RUNS} runs): above the ${LOAD_LIMIT_S} s limit; fewer --runs, shorter runs, or --only`);
}

// ---------------------------------------------------------------- processes

/** The temporary directory: the stacks' configs and state dirs (their sockets), nginx's, HAProxy's and Caddy's files. */
let tmpDir;

/** What had to be SIGKILLed at cleanup (the JSON records it). */
let leftRunning = [];

/** At the end, on error or on a signal: the proxies in front (nginx SIGQUIT, the rest SIGTERM), then the stacks (SIGINT); then nothing may be left. Runs once. */
let stopping;
const stopAll = () => (stopping ??= stopEverything());

async function stopEverything() {
  const started = performance.now();
  // The proxies in front first (they hold kept-alive connections to the workers), then the stacks.
  const procs = [...running];
  await Promise.all([
    ...procs.filter((proc) => proc.isNginx).map((proc) => proc.stop("SIGQUIT", 10_000)),
    ...procs.filter((proc) => !proc.isNginx && !proc.isStack).map((proc) => proc.stop()),
  ]);
  await Promise.all(procs.filter((proc) => proc.isStack).map((proc) => proc.stop("SIGINT", STOP_GRACE_MS)));
  await stopRunning();
  log(`  everything stopped in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  leftRunning = await sweepProcessesNaming(tmpDir);
  if (leftRunning.length) log(`  ${leftRunning.length} process(es) had to be killed at cleanup`);
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}

/** Last resort on exit: nothing we started outlives us, nor anything of the stacks. */
function killAllNow() {
  killRunningNow();
  if (tmpDir) {
    for (const { pid } of processesNaming(tmpDir)) try { process.kill(pid, "SIGKILL"); } catch {}
  }
}

// ---------------------------------------------------------------- HTTP

/** One request on a fresh connection: { status, headers, body (Buffer) } or { error }. Never rejects. */
function request(port, target, { method = "GET", body, timeoutMs = 10_000, headers = {} } = {}) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: HOST, port, path: target, method, agent: false, timeout: timeoutMs, headers: body ? { "Content-Length": body.byteLength, "Content-Type": "application/octet-stream", ...headers } : headers },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", (error) => resolve({ error: error.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (error) => resolve({ error: error.code ?? error.message }));
    req.end(body);
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

// ---------------------------------------------------------------- the stacks (the workers, and our proxy)

const SERVING = /^tsgi-stack: serving on http:\/\/([^/\s]+)\//m;

/**
 * The two stacks: "a" runs the gateway workers of groups 1 and 2 (unix
 * sockets, access log off; proxy.workers switched between 1 and auto), "b"
 * the `command:` app of group 3 (TCP, access log on or off).
 */
function stackConfigText(stack) {
  const proxy = `state_dir: ${JSON.stringify(stack.state)}
proxy:
  listen: ["${HOST}:0"]
  admin: "${HOST}:0"
  workers: ${stack.proxyWorkers}
  access_log: ${stack.accessLog === "off" ? '"off"' : stack.accessLog}
  limits: { client_max_body_size: 2m }
${stack.tls ? `  tls: { cert: ${JSON.stringify(stack.tls.cert)}, key: ${JSON.stringify(stack.tls.key)}, listen: ["${HOST}:${stack.tls.port}"] }\n` : ""}apps:
`;
  if (stack.name === "a") {
    return `# written by bench/proxy.mjs: the gateway workers of groups 1 and 2
${proxy}  bench:
    module: ${JSON.stringify(path.join(ROOT, APP))}
    interface: tsgi
    instances: ${WORKERS}
    routes: [{ path: / }]
    cwd: ${JSON.stringify(ROOT)}
${stack.limits === "on" ? LIMITS_YAML : ""}${stack.compress ? `    compress: { encodings: [gzip], level: { gzip: ${GZIP_LEVEL} } }\n` : ""}`;
  }
  // The supervisor gives a command app its port in $PORT (a free loopback port); the shell expands it.
  const command = `'${process.execPath}' '${path.join(ROOT, CMD_APP)}' ${HOST}:$PORT`;
  return `# written by bench/proxy.mjs: the \`command:\` app of group 3
${proxy}  hello:
    command: ${JSON.stringify(command)}
    instances: 1
    routes: [{ path: / }]
    cwd: ${JSON.stringify(ROOT)}
`;
}

/**
 * Group 1b's limits: wrk's 50 connections all come from 127.0.0.1, one client,
 * so the limits sit far above what it sends; every request is still accounted
 * (its bucket, its in-flight count), none refused.
 */
const LIMITS_YAML = `    rate_limit: { rate: 1000000r/s, burst: 1000000, nodelay: true }
    conn_limit: { max: 1000 }
`;

/** `tsgi-stack status --json -c FILE`: the command itself, as a user would find the workers and the proxy processes. */
async function statusCli(config) {
  const proc = new Proc("tsgi-stack status", process.execPath, [CLI, "status", "--json", "-c", config]);
  await proc.exitWithin(30_000);
  if (proc.exitCode !== 0) throw new Error(`tsgi-stack status ${proc.describeExit()}:\n${proc.stderr}${proc.stdout}`);
  return JSON.parse(proc.stdout);
}

/** The `up` process's children that run the proxy (dist/stack/proxy-process.js): pid -> start time. */
function proxyChildren(upPid) {
  const found = new Map();
  for (const [pid, started] of descendants(upPid)) {
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.includes("proxy-process.js")) found.set(pid, started);
  }
  return found;
}

/**
 * Waits until the stack runs exactly `count` proxy processes, all ready in
 * `status --json`, and they are the `up` process's proxy-process.js children;
 * records their pids (and start times, to tell a replacement) on the stack.
 */
async function settleProxies(stack, count, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await statusCli(stack.config);
    const proxies = status.proxies ?? [];
    const children = proxyChildren(stack.proc.pid);
    const ready = proxies.length === count && proxies.every((p) => p.state === "ready" && children.has(p.pid));
    if (ready && children.size === count) {
      stack.proxies = proxies.map((p) => ({ index: p.index, pid: p.pid, started: children.get(p.pid), restarts: p.restarts }));
      stack.proc.recordDescendants();
      return status;
    }
    if (Date.now() > deadline) {
      throw new Error(`stack ${stack.name}: ${what}: status shows proxies ${JSON.stringify(proxies)}, the \`up\` process's proxy-process.js children are ${[...children.keys()].join(", ") || "none"} (expected ${count})`);
    }
    await sleep(300);
  }
}

/** `tsgi-stack up -c FILE`; resolves once it serves, its workers are ready and its proxy processes are known. */
async function startStack(stack) {
  writeFileSync(stack.config, stackConfigText(stack));
  const started = performance.now();
  const proc = new Proc(`tsgi-stack up (${stack.name})`, process.execPath, [CLI, "up", "-c", stack.config], { env: stack.env });
  proc.isStack = true;
  stack.proc = proc;
  const [, address] = await proc.waitFor(SERVING, 90_000, "serving on");
  stack.port = Number(address.split(":").pop());
  const kind = stack.name === "a" ? "unix" : "tcp";
  for (let attempt = 1; ; attempt++) {
    const status = await statusCli(stack.config);
    const workers = (status.workers ?? []).filter((row) => row.app === stack.app);
    if (workers.length === stack.instances && workers.every((row) => row.state === "ready" && row.pid && row.address?.kind === kind)) {
      stack.workers = workers.map((row) => ({ slot: row.slot, pid: row.pid, started: startTime(row.pid), address: row.address, socket: row.address.path, port: row.address.port }));
      break;
    }
    if (attempt >= 40) throw new Error(`stack ${stack.name} serves but its workers are not all ready on ${kind}: ${JSON.stringify(workers)}`);
    await sleep(500);
  }
  await settleProxies(stack, proxyCount(stack), "at start");
  const ms = Math.round(performance.now() - started);
  const where = (w) => (w.address.kind === "unix" ? w.address.path : `${w.address.host}:${w.address.port}`);
  log(`  stack ${stack.name}: \`up\` pid ${proc.pid}, proxy process(es) ${stack.proxies.map((p) => p.pid).join(", ")} on ${HOST}:${stack.port}, worker(s) ${stack.workers.map((w) => `${w.pid} on ${where(w)}`).join(", ")} (${ms} ms)`);
  return stack;
}

/** How many proxy processes the stack's proxy.workers asks for (auto: one per CPU, as the stack counts them). */
const proxyCount = (stack) => (stack.proxyWorkers === "auto" ? CPUS : Number(stack.proxyWorkers));

/** Rewrites the stack's config file (the stack applies a saved change by itself) and waits until its proxy processes match. */
async function reconfigureStack(stack, change) {
  const before = { proxyWorkers: stack.proxyWorkers, accessLog: stack.accessLog, limits: stack.limits, compress: stack.compress };
  Object.assign(stack, change);
  if (stack.proxyWorkers === before.proxyWorkers && stack.accessLog === before.accessLog && stack.limits === before.limits && stack.compress === before.compress) return;
  const started = performance.now();
  const linesBefore = stack.proc.lines.length;
  writeFileSync(stack.config, stackConfigText(stack));
  // The stack says "config: …" once it has applied the saved file (an older such line does not count).
  for (const limit = Date.now() + 20_000; !stack.proc.lines.slice(linesBefore).some((line) => /config: /.test(line.text)); ) {
    if (Date.now() > limit) throw new Error(`stack ${stack.name}: no "config:" line within 20 s of writing proxy.workers: ${stack.proxyWorkers}, access_log: ${stack.accessLog}`);
    await sleep(100);
  }
  await settleProxies(stack, proxyCount(stack), `after proxy.workers: ${stack.proxyWorkers}`);
  const ms = Math.round(performance.now() - started);
  stack.reconfigurations.push({ from: before, to: { proxyWorkers: stack.proxyWorkers, accessLog: stack.accessLog, limits: stack.limits, compress: stack.compress }, ms, proxies: stack.proxies.map((p) => p.pid) });
  log(`  stack ${stack.name}: proxy.workers: ${stack.proxyWorkers}, access_log: ${stack.accessLog}, limits: ${stack.limits}, compress: ${stack.compress} -> proxy process(es) ${stack.proxies.map((p) => p.pid).join(", ")} (${ms} ms)`);
}

// ---------------------------------------------------------------- nginx, HAProxy, Caddy

/** The forwarding headers our proxy sets (src/proxy/server.ts), in nginx's words. */
const NGINX_FORWARDING = `      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id always;`;

function nginxConf(dir, port, { servers, workers, accessLog, gzip, tls }) {
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  // What our `compress` does for this app: gzip for JSON above 256 bytes, Vary, proxied responses too.
  const compression = gzip
    ? `\n  gzip on;\n  gzip_comp_level ${gzip};\n  gzip_types application/json;\n  gzip_min_length 256;\n  gzip_proxied any;\n  gzip_vary on;`
    : "";
  const buffering = NGINX_BUFFERING ? "" : "\n      proxy_buffering off;\n      proxy_request_buffering off;";
  return `# written by bench/proxy.mjs
daemon off;
master_process on;
worker_processes ${workers};
${user}pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 1024; }
http {
  access_log ${accessLog ? `${dir}/access.log combined` : "off"};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 2m;
  # Our proxy does not cap the requests of a client connection: neither does nginx here (its default is 1000).
  keepalive_requests 1000000;${compression}

  upstream workers {
${servers.map((server) => `    server ${server};`).join("\n")}
    keepalive 64;
    # Below the workers' 5 s idle timeout, as our proxy's upstream_keepalive_timeout (4 s).
    keepalive_timeout 4s;
    keepalive_requests 1000000;
  }
  server {
    listen ${HOST}:${port}${tls ? " ssl http2" : ""};${tls ? `\n    ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};` : ""}
    location / {
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The forwarding headers our proxy sets (src/proxy/server.ts).
${NGINX_FORWARDING}${buffering}
    }
  }
}
`;
}

/** HAProxy in front of the workers: one thread, keep-alive both ways, the same forwarding headers. */
function haproxyConf(dir, port, sockets) {
  return `# written by bench/proxy.mjs
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 60s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  # Reuse idle connections to the workers for any request, as nginx's keepalive and ours do.
  http-reuse always
frontend bench
  bind ${HOST}:${port}
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  unique-id-format %{+X}o%ci%cp%fi%fp%Ts%rt%pid
  unique-id-header X-Request-Id
  http-response set-header X-Request-Id %[unique-id]
  default_backend workers
backend workers
  balance roundrobin
  # Idle connections to a worker go before its 5 s keep-alive timeout closes them.
${sockets.map((socket, i) => `  server w${i} ${socket} pool-max-conn 64 pool-purge-delay 4s`).join("\n")}
`;
}

/** Caddy in front of the workers: its admin API and automatic HTTPS off, nothing written outside the temporary directory. */
function caddyConf(dir, port, sockets) {
  // Indented with tabs, as \`caddy fmt\` writes it (Caddy warns about anything else).
  return `# written by bench/proxy.mjs
{
	admin off
	auto_https off
}

http://${HOST}:${port} {
	bind ${HOST}
	reverse_proxy ${sockets.map((socket) => `unix/${socket}`).join(" ")} {
		lb_policy round_robin
		header_up X-Request-Id {http.request.uuid}
		transport http {
			keepalive 4s
			keepalive_idle_conns_per_host 64
		}
	}
	header X-Request-Id {http.request.uuid}
}
`;
}

/**
 * Starts a server that cannot listen on port 0 (nginx, HAProxy, Caddy) on a
 * port found free, and picks another if the port was taken meanwhile.
 */
async function startOnFreePort(name, dir, write, spawnIt) {
  for (let attempt = 1; attempt <= 5; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const confText = write(port);
    const proc = spawnIt();
    for (const started = Date.now(); Date.now() - started < 15_000 && !proc.done && !(await canConnect(port)); ) await sleep(50);
    if (!proc.done && (await canConnect(port))) {
      proc.recordDescendants();
      return { proc, port, dir, confText };
    }
    const error = proc.done ? `${name} ${proc.describeExit()}` : `${name} did not start listening within 15 s`;
    const errorLog = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, "utf8") : "";
    await proc.stop(proc.isNginx ? "SIGQUIT" : "SIGTERM", 5000);
    const detail = `${proc.stderr}${proc.stdout.slice(-2000)}${errorLog}`;
    if (!/Address already in use|bind\(\)|cannot bind/i.test(detail)) throw new Error(`${error}:\n${detail}`);
    log(`  ${name} could not bind (attempt ${attempt}), picking another port`);
  }
  throw new Error(`${name} could not bind a free port in 5 attempts`);
}

async function startNginx(key, { servers, workers, accessLog, gzip, tls }) {
  const dir = path.join(tmpDir, key);
  const conf = path.join(dir, "nginx.conf");
  const started = await startOnFreePort(
    key,
    dir,
    (port) => {
      const text = nginxConf(dir, port, { servers, workers, accessLog, gzip, tls });
      writeFileSync(conf, text);
      return text;
    },
    () => {
      const proc = new Proc(key, NGINX, ["-p", `${dir}/`, "-c", conf, "-e", `${dir}/error.log`]);
      proc.isNginx = true;
      return proc;
    },
  );
  log(`  ${key}: master pid ${started.proc.pid}, worker pid(s) ${[...started.proc.descendants.keys()].join(", ")}, on ${HOST}:${started.port}`);
  return started;
}

async function startHaproxy(sockets) {
  const dir = path.join(tmpDir, "haproxy");
  const conf = path.join(dir, "haproxy.cfg");
  const started = await startOnFreePort(
    "haproxy",
    dir,
    (port) => {
      const text = haproxyConf(dir, port, sockets);
      writeFileSync(conf, text);
      return text;
    },
    // -db: foreground, no daemon; -Ws would fork a master: one process is simpler to measure.
    () => new Proc("haproxy", HAPROXY, ["-db", "-f", conf]),
  );
  log(`  haproxy: pid ${started.proc.pid}, on ${HOST}:${started.port}`);
  return started;
}

async function startCaddy(sockets) {
  const dir = path.join(tmpDir, "caddy");
  const conf = path.join(dir, "Caddyfile");
  const started = await startOnFreePort(
    "caddy",
    dir,
    (port) => {
      const text = caddyConf(dir, port, sockets);
      writeFileSync(conf, text);
      return text;
    },
    () =>
      new Proc("caddy", CADDY, ["run", "--config", conf, "--adapter", "caddyfile"], {
        // One Go P, as nginx's one worker; its data and config folders inside the temporary directory.
        env: { GOMAXPROCS: "1", HOME: dir, XDG_DATA_HOME: path.join(dir, "data"), XDG_CONFIG_HOME: path.join(dir, "config") },
      }),
  );
  log(`  caddy: pid ${started.proc.pid}, on ${HOST}:${started.port}`);
  return started;
}

// ---------------------------------------------------------------- the variants and the direct worker

const READY_URL = /ready: http:\/\/[^:\s]+:(\d+)/;

async function startVariant(key, sockets) {
  const proc = new Proc(key, process.execPath, [path.join(ROOT, TARGETS[key].script), `${HOST}:0`, ...sockets]);
  const [line, port] = await proc.waitFor(READY_URL, 20_000, "ready");
  log(`  ${key}: pid ${proc.pid}, ${line}`);
  return { proc, port: Number(port) };
}

/** One more worker of the same app, on TCP, with no proxy: the ceiling (`serve --no-arbiter`: this process is the worker). */
async function startDirect() {
  const proc = new Proc("direct worker", process.execPath, [CLI, "serve", path.join(ROOT, APP), "--http", `${HOST}:0`, "--no-arbiter"]);
  const [, pid, listeners] = await proc.waitFor(/tsgi worker (\d+): ready: (.*)/, 30_000, "ready");
  const port = Number(new RegExp(`http://${HOST.replaceAll(".", "\\.")}:(\\d+)`).exec(listeners)?.[1]);
  log(`  direct: one worker of the same app, pid ${pid}, on ${HOST}:${port}`);
  return { proc, port, workerPid: Number(pid) };
}

// ---------------------------------------------------------------- checks

/**
 * Before any load: each target answers right, and (gateway workers) the
 * worker behind it receives the forwarding headers ours sends. A target that
 * answers wrong is not measured.
 */
async function checkTarget(target) {
  const problems = [];
  if (target.group === "h2") {
    // curl --http2 -k: GET / must come back over HTTP/2 with the app's body.
    const curl = spawnSync("curl", ["-sk", "--http2", "--max-time", "10", "-w", "\\n%{http_version} %{http_code}", `https://${HOST}:${target.port}/`], { encoding: "utf8" });
    if (curl.stdout !== `${SMALL_BODY}\n2 200`) problems.push(`curl --http2 GET / -> ${JSON.stringify(curl.stdout.slice(-120))} ${curl.stderr.slice(0, 200)}`);
    return { ok: problems.length === 0, problems, headers: {} };
  }
  if (target.group === "cmd" || target.group === "cmd-nolog") {
    const answer = await request(target.port, "/");
    if (answer.error || answer.status !== 200 || answer.body.toString() !== CMD_BODY) problems.push(`GET / -> ${answer.error ?? `${answer.status} ${JSON.stringify(answer.body.toString().slice(0, 80))}`}`);
    return { ok: problems.length === 0, problems, headers: { response_x_request_id: answer.headers?.["x-request-id"] !== undefined } };
  }
  const small = await request(target.port, "/");
  if (small.error || small.status !== 200 || small.body.toString() !== SMALL_BODY) problems.push(`GET / -> ${small.error ?? `${small.status} ${JSON.stringify(small.body.toString().slice(0, 80))}`}`);
  const big = await request(target.port, "/big");
  if (big.error || big.status !== 200 || big.body.byteLength !== BODY) problems.push(`GET /big -> ${big.error ?? `${big.status}, ${big.body.byteLength} bytes`}`);
  const upload = await request(target.port, "/upload", { method: "POST", body: Buffer.alloc(BODY, 97) });
  if (upload.error || upload.status !== 200 || upload.body.toString() !== `${BODY}\n`) problems.push(`POST /upload -> ${upload.error ?? `${upload.status} ${JSON.stringify(upload.body.toString().slice(0, 80))}`}`);
  if (target.group === "gzip") {
    const json = await request(target.port, "/json", { headers: { "Accept-Encoding": "gzip" } });
    let decoded = "";
    try {
      decoded = gunzipSync(json.body).toString();
    } catch {}
    const plain = await request(target.port, "/json");
    if (json.error || json.status !== 200 || json.headers["content-encoding"] !== "gzip" || plain.body.byteLength < 20_000 || decoded !== plain.body.toString()) {
      problems.push(`GET /json (gzip) -> ${json.error ?? `${json.status}, Content-Encoding ${json.headers["content-encoding"]}, ${json.body.byteLength} bytes`}`);
    }
  }
  const answer = await request(target.port, "/headers");
  let seen;
  try {
    seen = JSON.parse(answer.body.toString());
  } catch {
    problems.push(`GET /headers -> ${answer.error ?? answer.status}`);
  }
  const headers = { worker_saw: seen, response_x_request_id: small.headers?.["x-request-id"] !== undefined };
  if (seen && target.key !== "direct") {
    const hostPort = `${HOST}:${target.port}`;
    const differs = [];
    if (seen.host !== hostPort) differs.push(`Host ${JSON.stringify(seen.host)}`);
    if (seen.x_forwarded_for !== HOST) differs.push(`X-Forwarded-For ${JSON.stringify(seen.x_forwarded_for)}`);
    if (seen.x_forwarded_proto !== "http") differs.push(`X-Forwarded-Proto ${JSON.stringify(seen.x_forwarded_proto)}`);
    if (seen.x_forwarded_host !== hostPort) differs.push(`X-Forwarded-Host ${JSON.stringify(seen.x_forwarded_host)}`);
    if (!seen.x_request_id) differs.push("no X-Request-Id");
    if (!headers.response_x_request_id) differs.push("no X-Request-Id in the response");
    headers.differences = differs;
  }
  return { ok: problems.length === 0, problems, headers };
}

// ---------------------------------------------------------------- load

let loadSpent = 0;
let quietSpent = 0;
/** Every stack worker as first found ({ stack, slot, pid, started }): checked after every run. */
let allWorkers = [];

/** The load of the rest of the machine before a measurement, waiting for quiet within the run's budget. */
async function quietBefore(what) {
  const wait = Math.max(0, Math.min(QUIET_WAIT_S, QUIET_BUDGET_S - quietSpent));
  const started = performance.now();
  const load = await waitForQuiet(what, wait);
  quietSpent += Math.max(0, (performance.now() - started) / 1000 - 1);
  return round(load, 2);
}

/** A pid's private (anonymous) resident memory in bytes, from /proc/PID/status: RSS less the shared file pages (node's own binary, about 43 MiB, in every node process). */
function anonOf(pid) {
  try {
    return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024 || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The machine's CPU time so far, in seconds over all CPUs: busy (as lib.mjs's
 * machineCpu) and, apart, the interrupt and softirq time within it. Loopback
 * TCP and unix-socket traffic is processed in softirq context, charged to no
 * process: under this benchmark's own load it is 0.1 to 0.3 CPUs, which must
 * not count as "other processes".
 */
function machineCpuDetail() {
  const values = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: (total - values[3] - values[4]) / CLK_TCK, interrupts: (values[5] + values[6]) / CLK_TCK };
}

const sumOf = (pids, read) => pids.reduce((sum, pid) => sum + (read(pid) ?? 0), 0);
const rssOf = (pids) => sumOf(pids, (pid) => memory(pid)?.rss);
const cpuOf = (pids) => sumOf(pids, cpuSeconds);

const SIZE_UNITS = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/**
 * One wrk run against a target, bounded in time: wrk's figures; the proxy
 * processes' RSS sampled every 50 ms (the peak of each, and of their sum),
 * the `up` process's likewise; the CPU time per request of the proxy
 * processes (each, and in all), of the `up` process and of the upstream; and
 * what the rest of the machine took meanwhile.
 */
async function wrk(target, kind, seconds, label) {
  // The HTTP/2 pair is loaded by h2load (wrk speaks HTTP/1.1 only): the same measurement around it, its own output.
  const h2 = kind.tool === "h2load";
  const args = h2
    ? // h2load's own warm-up: connections made and requests flowing for a second before the measured time starts.
      ["-t1", `-c${kind.connections}`, `-m${kind.streams}`, "--warm-up-time=1", "-D", String(seconds), `https://${HOST}:${target.port}${kind.target}`]
    : ["-t1", `-c${kind.connections}`, `-d${seconds}s`, "--latency", ...(kind.headers ?? []).flatMap((header) => ["-H", header]), ...(kind.script ? ["-s", kind.script] : []), `http://${HOST}:${target.port}${kind.target}`];
  const proxyPids = target.proxyPids();
  const stackPids = target.stackPids();
  const upstreamPids = target.upstreamPids;
  const cpuEach = (pids) => pids.map((pid) => cpuSeconds(pid) ?? 0);
  const proxyCpuBefore = cpuEach(proxyPids);
  const stackCpuBefore = cpuOf(stackPids);
  const upstreamCpuBefore = cpuOf(upstreamPids);
  const machineBefore = machineCpuDetail();
  const peakEach = proxyPids.map((pid) => memory(pid)?.rss ?? 0);
  const anonEach = proxyPids.map((pid) => anonOf(pid) ?? 0);
  let peakSum = rssOf(proxyPids);
  let stackPeak = rssOf(stackPids);
  const sampler = setInterval(() => {
    let sum = 0;
    proxyPids.forEach((pid, i) => {
      const rss = memory(pid)?.rss ?? 0;
      peakEach[i] = Math.max(peakEach[i], rss);
      anonEach[i] = Math.max(anonEach[i], anonOf(pid) ?? 0);
      sum += rss;
    });
    peakSum = Math.max(peakSum, sum);
    if (stackPids.length) stackPeak = Math.max(stackPeak, rssOf(stackPids));
  }, RSS_SAMPLE_MS);
  const started = performance.now();
  const proc = new Proc(`${h2 ? "h2load" : "wrk"} ${label}`, h2 ? H2LOAD : WRK, args);
  let wrkCpu = 0;
  const poll = setInterval(() => (wrkCpu = cpuSeconds(proc.pid) ?? wrkCpu), 100);
  await proc.exitWithin((seconds + 15) * 1000);
  clearInterval(poll);
  clearInterval(sampler);
  const elapsed = (performance.now() - started) / 1000;
  loadSpent += elapsed;
  const proxyCpuEach = cpuEach(proxyPids).map((cpu, i) => cpu - proxyCpuBefore[i]);
  const proxyCpu = proxyCpuEach.reduce((a, b) => a + b, 0);
  const stackCpu = cpuOf(stackPids) - stackCpuBefore;
  const upstreamCpu = cpuOf(upstreamPids) - upstreamCpuBefore;
  const machineAfter = machineCpuDetail();
  const machineBusy = machineAfter.busy - machineBefore.busy;
  const interrupts = machineAfter.interrupts - machineBefore.interrupts;
  const command = `${h2 ? "h2load" : "wrk"} ${args.join(" ")}`;
  if (proc.exitCode !== 0) return { command, failed: `${h2 ? "h2load" : "wrk"} ${proc.describeExit()}: ${(proc.stderr || proc.stdout).trim().slice(-500)}` };
  const result = h2 ? parseH2load(proc.stdout) : parseWrk(proc.stdout);
  if (result.rps === undefined || (!h2 && (result.p50_ms === undefined || result.p99_ms === undefined))) return { command, failed: `cannot read ${h2 ? "h2load" : "wrk"}'s output: ${proc.stdout.slice(-500)}` };
  result.command = command;
  const read = /(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read/.exec(proc.stdout);
  if (read) result.bytes_read = Math.round(Number(read[2]) * SIZE_UNITS[read[3]]);
  // On the wire, per response: the head and the (compressed) body, as wrk read them.
  if (result.bytes_read !== undefined && result.requests > 0) result.wire_bytes_per_response = Math.round(result.bytes_read / result.requests);
  if (kind.script) {
    const check = /upload check: (\d+) answers, (\d+) wrong/.exec(proc.stdout);
    result.bad_bodies = check ? Number(check[2]) : undefined;
    if (!check) result.failed = "bench/upload.lua printed no check line";
    result.errors += result.bad_bodies ?? 0;
  }
  if (kind.bytes) {
    result.mib_per_s = (result.rps * kind.bytes) / MiB;
    // A proxy that cut responses short would read less than 1 MiB per request (wrk does not check bodies).
    if (kind.target === "/big" && result.requests > 0 && result.bytes_read !== undefined && result.bytes_read / result.requests < kind.bytes * 0.98) {
      result.short_responses = true;
      result.errors += 1;
    }
  }
  const perRequest = (cpu) => (result.requests > 0 ? round((cpu * 1e6) / result.requests, 1) : undefined);
  result.proxy_pids = proxyPids;
  result.proxy_rss_peak = peakSum;
  result.proxy_rss_peak_each = peakEach;
  result.proxy_rss_peak_max = Math.max(...peakEach);
  /** The private part of that: RssAnon, sampled alongside (a peak of its own, not necessarily at the same instant). */
  result.proxy_anon_peak_each = anonEach;
  result.proxy_anon_peak_max = Math.max(...anonEach);
  result.proxy_cpu_us_per_request = perRequest(proxyCpu);
  /** How the proxy's CPU time was split among its processes (several only for proxy.workers: auto and nginx's auto). */
  result.proxy_cpu_share = proxyCpu > 0 ? proxyCpuEach.map((cpu) => round(cpu / proxyCpu, 2)) : undefined;
  if (stackPids.length) {
    result.stack_rss_peak = stackPeak;
    result.stack_cpu_us_per_request = perRequest(stackCpu);
  }
  result.upstream_cpu_us_per_request = perRequest(upstreamCpu);
  const ours = proxyCpu + stackCpu + upstreamCpu + wrkCpu;
  result.cpu_cores = {
    wrk: round(wrkCpu / elapsed, 2),
    proxy: round(proxyCpu / elapsed, 2),
    stack: stackPids.length ? round(stackCpu / elapsed, 2) : undefined,
    upstream: round(upstreamCpu / elapsed, 2),
    machine: round(machineBusy / elapsed, 2),
    /** irq + softirq: the kernel's network processing of this very load (mostly), charged to no process. */
    softirq: round(interrupts / elapsed, 2),
    others: round(Math.max(0, machineBusy - interrupts - ours) / elapsed, 2),
  };
  result.disturbed = result.cpu_cores.others > QUIET_CPUS;
  return result;
}

/**
 * h2load's summary, in parseWrk's shape: req/s, requests done, and as errors
 * the requests that failed, errored or timed out plus the non-2xx answers.
 * h2load gives no percentiles (p50/p99 stay undefined): its mean time per
 * request is kept instead.
 */
function parseH2load(text) {
  const finished = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(text);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const statuses = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  const result = {
    rps: finished ? Number(finished[1]) : undefined,
    p50_ms: undefined,
    p99_ms: undefined,
    mean_ms: mean ? Number(mean[1]) * { us: 0.001, ms: 1, s: 1000 }[mean[2]] : undefined,
    requests: requests ? Number(requests[3]) : undefined,
    non2xx: statuses ? Number(statuses[2]) + Number(statuses[3]) + Number(statuses[4]) : 0,
    socket_errors: requests ? { failed: Number(requests[5]), errored: Number(requests[6]), timeout: Number(requests[7]) } : { failed: 0, errored: 0, timeout: 0 },
  };
  result.errors = result.non2xx + Object.values(result.socket_errors).reduce((a, b) => a + b, 0);
  return result;
}

/**
 * How many connections on the gateway workers' sockets have response bytes
 * that nobody reads (their send queue, seen from the worker's end, is not
 * empty): once the load is over, a proxy that leaves some has stopped reading
 * a worker's response without closing the connection — the worker's request
 * never ends, until its --timeout (30 s) kills the worker. undefined without ss.
 */
async function unreadUpstream(sockets) {
  if (!existsSync(SS) || sockets.length === 0) return undefined;
  const wanted = new Set(sockets);
  const proc = new Proc("ss", SS, ["-x", "-n"]);
  await proc.exitWithin(10_000);
  if (proc.exitCode !== 0) return undefined;
  let count = 0;
  for (const line of proc.stdout.split("\n")) {
    const fields = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local Port Peer Port: an accepted connection shows the listening path as its local address.
    if (fields[1] === "ESTAB" && wanted.has(fields[4]) && Number(fields[3]) > 0) count += 1;
  }
  return count;
}

/**
 * Watches `stack` as people do while the load runs: GET /metrics on its admin
 * listener every second (a Prometheus scrape) and GET /events held open (the
 * status page's live feed). stop() ends both and says what they got.
 */
async function observe(stack) {
  // The admin listener is on HOST too (stackConfigText): its port is in the status.
  stack.adminPort ??= Number((await statusCli(stack.config)).admin.split(":").pop());
  const port = stack.adminPort;
  let scrapes = 0;
  let scrapeErrors = 0;
  let updates = 0;
  const scrape = () => request(port, "/metrics").then((answer) => (answer.status === 200 ? (scrapes += 1) : (scrapeErrors += 1)));
  const timer = setInterval(scrape, 1000);
  const page = http.get({ host: HOST, port, path: "/events", agent: false }, (res) => {
    res.setEncoding("utf8");
    res.on("data", (chunk) => (updates += chunk.split("event: update").length - 1));
    res.on("error", () => undefined);
  });
  page.on("error", () => undefined);
  return {
    stop() {
      clearInterval(timer);
      page.destroy();
      return { observed: { metrics_scrapes: scrapes, metrics_errors: scrapeErrors, page_updates: updates } };
    },
  };
}

/** A warm-up run (discarded, but its errors are kept), then the measured one, then the checks: no worker or proxy process gone. */
async function measure(target, kind, runIndex) {
  const label = `${target.key} ${kind.key} #${runIndex + 1}`;
  if (target.proc.done) {
    const failed = { failed: `${target.key} ${target.proc.describeExit()} before this run` };
    log(`  ${target.key.padEnd(15)} ${kind.key.padEnd(6)} ${describe(kind, failed)}`);
    return failed;
  }
  const othersBefore = await quietBefore(label);
  const unreadBefore = await unreadUpstream(target.unixSockets);
  // What a watched stack carries besides its traffic: a Prometheus scraping /metrics each second and an open status page.
  const observers = target.observed ? await observe(target.stack) : undefined;
  // h2load warms up within the measured run (--warm-up-time): a run of its own, this short, can leave h2load hanging
  // once it is over, with no connection left open (seen with nghttp2 1.52 against a freshly started proxy).
  const warm = kind.tool === "h2load" ? {} : await wrk(target, kind, WARMUP_S, `${label} warm-up`);
  const result = await wrk(target, kind, kind.seconds, label);
  if (observers) Object.assign(result, observers.stop());
  result.others_cpu_before = othersBefore;
  await sleep(300);
  const unreadAfter = await unreadUpstream(target.unixSockets);
  if (unreadBefore !== undefined && unreadAfter !== undefined) {
    result.unread_upstream_connections = unreadAfter - unreadBefore;
    if (result.unread_upstream_connections > 0 && target.key !== "direct") result.errors = (result.errors ?? 0) + result.unread_upstream_connections;
  }
  if (warm.failed) result.warmup_failed = warm.failed;
  else if (warm.errors > 0) result.warmup_errors = warm.errors;
  if (target.proc.done) result.failed = `${result.failed ? `${result.failed}; ` : ""}${target.key} ${target.proc.describeExit()} during the run`;
  // The same worker processes behind every proxy, all along: one that died (and was replaced by pm2) spoils the run.
  const gone = allWorkers.filter((w) => !w.gone && !alive(w.pid, w.started));
  if (gone.length) {
    result.workers_gone = gone.map((w) => `${w.stack}: ${w.app}.${w.slot} (pid ${w.pid})`);
    result.errors = (result.errors ?? 0) + gone.length;
    for (const w of gone) w.gone = true;
  }
  // Our proxy processes: one that died during the run (the stack replaces it) is an error of that run.
  if (target.stack) {
    const died = target.stack.proxies.filter((p) => !alive(p.pid, p.started));
    if (died.length) {
      result.proxies_gone = died.map((p) => `proxy process ${p.index} (pid ${p.pid})`);
      result.errors = (result.errors ?? 0) + died.length;
      await settleProxies(target.stack, target.stack.proxies.length, "after a proxy process died").catch(() => undefined);
    }
  }
  log(`  ${target.key.padEnd(15)} ${kind.key.padEnd(6)} ${describe(kind, result)}`);
  return result;
}

// ---------------------------------------------------------------- figures

const fmtInt = (n) => (n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const fmtMs = (ms) => (ms === undefined ? "–" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const fmtMiB = (bytes) => (bytes === undefined ? "–" : `${(bytes / MiB).toFixed(1)} MiB`);
const fmtRatio = (r) => (r === undefined || !Number.isFinite(r) ? "–" : `${r.toFixed(2)}x`);
const fmtUs = (us) => (us === undefined ? "–" : us.toFixed(0));

function errorText(r) {
  if (!r || r.failed || !r.errors) return "";
  const socket = Object.entries(r.socket_errors).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`);
  const parts = [
    r.non2xx ? `non-2xx ${r.non2xx}` : "",
    socket.length ? `socket ${socket.join(", ")}` : "",
    r.bad_bodies ? `wrong upload answers ${r.bad_bodies}` : "",
    r.short_responses ? "responses under 1 MiB" : "",
    r.workers_gone ? `worker(s) died: ${r.workers_gone.join(", ")}` : "",
    r.proxies_gone ? `proxy process(es) died: ${r.proxies_gone.join(", ")}` : "",
    r.unread_upstream_connections > 0 ? `left ${r.unread_upstream_connections} worker response(s) unread on open connections` : "",
  ].filter(Boolean);
  return `${r.errors} errors (${parts.join("; ")})`;
}

function describe(kind, r) {
  if (r.failed) return `FAILED: ${r.failed}`;
  const rss = r.proxy_pids?.length > 1 ? `proxy RSS peak ${r.proxy_rss_peak_each.map(fmtMiB).join(" + ")}` : `proxy RSS peak ${fmtMiB(r.proxy_rss_peak)}`;
  const anon = r.proxy_anon_peak_each ? ` (anon ${r.proxy_anon_peak_each.map(fmtMiB).join(" + ")})` : "";
  const stack = r.stack_rss_peak !== undefined ? `   \`up\` RSS peak ${fmtMiB(r.stack_rss_peak)}` : "";
  const wire = r.wire_bytes_per_response !== undefined && kind.headers ? `   ${fmtInt(r.wire_bytes_per_response)} B/response on the wire` : "";
  const figures = kind.bytes
    ? `${r.mib_per_s.toFixed(0).padStart(6)} MiB/s (${fmtInt(r.rps)} req/s)   p50 ${fmtMs(r.p50_ms)}   p99 ${fmtMs(r.p99_ms)}`
    : `${fmtInt(r.rps).padStart(8)} req/s   p50 ${fmtMs(r.p50_ms).padStart(9)}   p99 ${fmtMs(r.p99_ms).padStart(9)}`;
  const cpu = r.proxy_cpu_us_per_request !== undefined ? `   proxy CPU ${fmtUs(r.proxy_cpu_us_per_request)} µs/req${r.proxy_cpu_share?.length > 1 ? ` (split ${r.proxy_cpu_share.join("/")})` : ""}` : "";
  const errors = r.errors ? `   ⚠ ${errorText(r)}` : "";
  const warm = r.warmup_errors ? `   (warm-up: ${r.warmup_errors} errors)` : r.warmup_failed ? `   (warm-up FAILED: ${r.warmup_failed})` : "";
  const others = r.disturbed ? `   ⚠ other processes took ${r.cpu_cores.others} cores meanwhile` : "";
  return `${figures}${wire}   ${rss}${anon}${stack}${cpu}${errors}${warm}${others}`;
}

/** A measurement that can be compared: measured, and without a single error. */
const clean = (r) => r && !r.failed && r.errors === 0;

/** median, min and max of the numbers given (undefined ones left out). */
function spread(values) {
  const list = values.filter((v) => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b);
  if (!list.length) return undefined;
  const mid = list.length >> 1;
  const median = list.length % 2 ? list[mid] : (list[mid - 1] + list[mid]) / 2;
  return { median, min: list[0], max: list[list.length - 1], n: list.length, values };
}

const fmtSpread = (s, fmt) => (!s ? "–" : s.n === 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`);

/** A figure of one target over its runs: the spread of the clean runs. */
function figureOf(results, key, kind, pick) {
  const runs = results.runs[key]?.[kind] ?? [];
  return spread(runs.filter(clean).map(pick));
}

/**
 * target ÷ baseline for one figure, per round (run i of the target against
 * run i of its baseline: measured minutes apart, under the same conditions),
 * then the spread of those ratios. A round where either side had errors is
 * left out, and said.
 */
function ratioOf(results, key, kind, figure) {
  const base = TARGETS[key].baseline;
  const mine = results.runs[key]?.[kind] ?? [];
  const theirs = results.runs[base]?.[kind] ?? [];
  const values = [];
  let dirty = 0;
  for (let i = 0; i < Math.min(mine.length, theirs.length); i++) {
    if (!clean(mine[i]) || !clean(theirs[i])) {
      dirty += 1;
      continue;
    }
    values.push(mine[i][figure] / theirs[i][figure]);
  }
  const s = spread(values);
  return s ? { ...s, dirty } : { dirty, why: mine.length ? "no clean round" : "not measured" };
}

const ratioText = (r) => (r.median === undefined ? r.why : `${fmtSpread(r, fmtRatio)}${r.dirty ? ` (${r.dirty} round(s) with errors left out)` : ""}`);

/** The issue's goals: { name, text, value, spread, met, why }. Judged on the median over the runs; the spread is shown. */
function goalsOf(results) {
  const goals = [];
  const ratioGoal = (name, text, kind, figure, limit, better) => {
    const r = ratioOf(results, "stack", kind, figure);
    goals.push({
      name,
      text,
      value: r.median,
      spread: r.median === undefined ? undefined : { min: r.min, max: r.max, n: r.n },
      met: r.median !== undefined && (better === "higher" ? r.median >= limit : r.median <= limit),
      met_runs: r.median === undefined ? 0 : r.values.filter((v) => (better === "higher" ? v >= limit : v <= limit)).length,
      limit,
      why: r.why,
    });
  };
  if (results.runs["stack-limited"] && results.runs.stack) {
    const r = ratioOf(results, "stack-limited", "small", "rps");
    goals.push({
      name: "limited",
      text: `req/s with rate_limit and conn_limit on (no client over them) ≥ ${GOALS.limited_ratio}x without, wrk -c50`,
      value: r.median,
      spread: r.median === undefined ? undefined : { min: r.min, max: r.max, n: r.n },
      met: r.median !== undefined && r.median >= GOALS.limited_ratio,
      met_runs: r.median === undefined ? 0 : r.values.filter((v) => v >= GOALS.limited_ratio).length,
      limit: GOALS.limited_ratio,
      why: r.why,
    });
  }
  if (results.runs["stack-observed"] && results.runs.stack) {
    const r = ratioOf(results, "stack-observed", "small", "rps");
    goals.push({
      name: "observed",
      text: `req/s with /metrics polled each second and a status page open ≥ ${GOALS.observed_ratio}x without, wrk -c50`,
      value: r.median,
      spread: r.median === undefined ? undefined : { min: r.min, max: r.max, n: r.n },
      met: r.median !== undefined && r.median >= GOALS.observed_ratio,
      met_runs: r.median === undefined ? 0 : r.values.filter((v) => v >= GOALS.observed_ratio).length,
      limit: GOALS.observed_ratio,
      why: r.why,
    });
  }
  if (results.runs.stack && results.runs.nginx) {
    ratioGoal("rps", `req/s ≥ ${GOALS.rps_ratio}x nginx's (1 worker), gateway workers, wrk -c50`, "small", "rps", GOALS.rps_ratio, "higher");
    ratioGoal("p99", `p99 ≤ ${GOALS.p99_ratio}x nginx's, wrk -c50`, "small", "p99_ms", GOALS.p99_ratio, "lower");
    ratioGoal("c1_p50", `p50 at concurrency 1 ≤ ${GOALS.c1_p50_ratio}x nginx's`, "c1", "p50_ms", GOALS.c1_p50_ratio, "lower");
  }
  // RSS: every run of every stack target counts (the worst is judged).
  const stackKeys = Object.keys(results.runs).filter((key) => TARGETS[key].stackName);
  const proxyPeaks = [];
  const stackPeaks = [];
  for (const key of stackKeys) {
    for (const runs of Object.values(results.runs[key])) {
      for (const r of runs) {
        if (!r || r.failed) continue;
        proxyPeaks.push({ value: r.proxy_rss_peak_max, where: key });
        stackPeaks.push({ value: r.stack_rss_peak, where: key });
      }
    }
  }
  const worst = (list) => list.filter((x) => x.value !== undefined).sort((a, b) => b.value - a.value)[0];
  const rssGoal = (name, text, found, limit) =>
    goals.push({ name, text, value: found?.value, where: found?.where, limit, met: found !== undefined && found.value <= limit, why: found ? undefined : "not measured", rss: true });
  if (stackKeys.length) {
    rssGoal("proxy_rss", `each proxy process's RSS under load ≤ ${fmtMiB(GOALS.proxy_rss)} (the largest peak of any run)`, worst(proxyPeaks), GOALS.proxy_rss);
    const idle = Object.values(results.stacks).map((s) => ({ value: s.idle_rss?.up, where: `stack ${s.name} idle` }));
    rssGoal("stack_rss_idle", `the stack (\`up\`) process's RSS idle ≤ ${fmtMiB(GOALS.stack_rss)}`, worst(idle), GOALS.stack_rss);
    rssGoal("stack_rss_load", `the stack (\`up\`) process's RSS under load ≤ ${fmtMiB(GOALS.stack_rss)} (the largest peak of any run)`, worst(stackPeaks), GOALS.stack_rss);
  }
  return goals;
}

function markdown(results, targets) {
  const lines = [];
  const runsOf = (key, kind) => results.runs[key]?.[kind] ?? [];
  const flagged = (key) => (Object.values(results.runs[key] ?? {}).some((runs) => runs.some((r) => r?.disturbed)) ? " ⚠" : "");
  const errorsOf = (key) => {
    const list = Object.values(results.runs[key] ?? {}).flat();
    const failed = list.filter((r) => r.failed).length;
    const errors = list.reduce((sum, r) => sum + (r.failed ? 0 : r.errors), 0);
    return `${errors}${failed ? ` (+${failed} failed)` : ""}`;
  };
  const rssCell = (key) => {
    // Ours: the largest of the proxy processes' own peaks (the goal is per process); the others: all their processes together.
    const ours = Boolean(TARGETS[key].stackName);
    const count = runsOf(key, "small").find((r) => r?.proxy_pids)?.proxy_pids.length ?? 1;
    const peak = figureOf(results, key, "small", (r) => (ours ? r.proxy_rss_peak_max : r.proxy_rss_peak));
    const what = ours ? (count > 1 ? `, each of ${count}` : "") : count > 1 ? `, ${count} processes` : "";
    const anon = ours ? figureOf(results, key, "small", (r) => r.proxy_anon_peak_max) : undefined;
    return `${fmtSpread(peak, fmtMiB)}${what}${anon ? ` (anon ${fmtSpread(anon, fmtMiB)})` : ""}`;
  };
  const stackRssCell = (key) => {
    if (!TARGETS[key].stackName) return "–";
    const idle = results.stacks[TARGETS[key].stackName]?.idle_rss?.up;
    const peak = figureOf(results, key, "small", (r) => r.stack_rss_peak);
    return `${fmtMiB(idle)} / ${fmtSpread(peak, fmtMiB)}`;
  };
  const hasC1 = (key) => runsOf(key, "c1").length > 0;
  /** A target's main measurement: GET / (-c50), or the 20 KB JSON for the gzip pair. */
  const main = (key) => TARGETS[key].kinds[0];
  for (const group of Object.keys(GROUPS)) {
    const inGroup = targets.filter((t) => t.group === group);
    if (!inGroup.length) continue;
    lines.push(
      `**${GROUPS[group]}** — median (min–max) of ${RUNS} run(s)`,
      "",
      "| proxy | req/s | p50 | p99 | c1 p50 | proxy CPU µs/req | proxy RSS peak | `up` RSS idle / peak | errors |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const target of inGroup) {
      const key = target.key;
      lines.push(
        `| ${target.label}${flagged(key)} | ${fmtSpread(figureOf(results, key, main(key), (r) => r.rps), fmtInt)} | ${fmtSpread(figureOf(results, key, main(key), (r) => r.p50_ms), fmtMs)} | ${fmtSpread(figureOf(results, key, main(key), (r) => r.p99_ms), fmtMs)} | ${hasC1(key) ? fmtSpread(figureOf(results, key, "c1", (r) => r.p50_ms), fmtMs) : "–"} | ${fmtSpread(figureOf(results, key, main(key), (r) => r.proxy_cpu_us_per_request), fmtUs)} | ${rssCell(key)} | ${stackRssCell(key)} | ${errorsOf(key)} |`,
      );
    }
    for (const [key, binary] of Object.entries(MISSING)) {
      if (TARGETS[key].group === group) lines.push(`| ${TARGETS[key].label} | not installed (${binary}): skipped | | | | | | | |`);
    }
    lines.push("");
  }
  if (BULK.length) {
    lines.push("| 1 MiB bodies, -c10 | /big MiB/s | upload MiB/s | /big ÷ nginx | upload ÷ nginx |", "|---|---:|---:|---:|---:|");
    for (const target of targets.filter((t) => runsOf(t.key, "big").length)) {
      const base = TARGETS[target.key].baseline;
      lines.push(
        `| ${target.label} | ${fmtSpread(figureOf(results, target.key, "big", (r) => r.mib_per_s), (v) => v.toFixed(0))} | ${fmtSpread(figureOf(results, target.key, "upload", (r) => r.mib_per_s), (v) => v.toFixed(0))} | ${base ? ratioText(ratioOf(results, target.key, "big", "mib_per_s")) : "baseline"} | ${base ? ratioText(ratioOf(results, target.key, "upload", "mib_per_s")) : "baseline"} |`,
      );
    }
    lines.push("");
  }
  lines.push(
    `| ratio, per round: median (min–max) of ${RUNS} | against | req/s | p99 | c1 p50 | proxy CPU µs/req |`,
    "|---|---|---:|---:|---:|---:|",
  );
  for (const target of targets.filter((t) => TARGETS[t.key].baseline)) {
    const base = TARGETS[target.key].baseline;
    const c1 = hasC1(target.key) && hasC1(base) ? ratioText(ratioOf(results, target.key, "c1", "p50_ms")) : "–";
    lines.push(
      `| ${target.label} | ${TARGETS[base].label} | ${ratioText(ratioOf(results, target.key, main(target.key), "rps"))} | ${ratioText(ratioOf(results, target.key, main(target.key), "p99_ms"))} | ${c1} | ${ratioText(ratioOf(results, target.key, main(target.key), "proxy_cpu_us_per_request"))} |`,
    );
  }
  const wired = targets.filter((t) => runsOf(t.key, "json").length);
  if (wired.length) {
    lines.push("", `| ${KINDS.json.label} | req/s | bytes per response on the wire (head + gzip body) |`, "|---|---:|---:|");
    for (const target of wired) {
      lines.push(`| ${target.label} | ${fmtSpread(figureOf(results, target.key, "json", (r) => r.rps), fmtInt)} | ${fmtSpread(figureOf(results, target.key, "json", (r) => r.wire_bytes_per_response), fmtInt)} |`);
    }
  }
  const goals = results.goals;
  if (goals.length) {
    lines.push("", "Goals (ratios judged on the median of the per-round ratios; RSS on the largest peak of any run):", "");
    for (const g of goals) {
      const value = g.rss ? `${fmtMiB(g.value)}${g.where ? ` (${g.where})` : ""}` : `${fmtRatio(g.value)}${g.spread && g.spread.n > 1 ? ` (${fmtRatio(g.spread.min)}–${fmtRatio(g.spread.max)}; met in ${g.met_runs} of ${g.spread.n} rounds)` : ""}`;
      lines.push(`- ${g.text}: ${value} — ${g.met ? "met" : g.why ? `MISSED (${g.why})` : "**MISSED**"}`);
    }
  }
  const notes = [
    `req/s, p50, p99: wrk -t1 -c50 -d${SMALL_S}s --latency; c1 p50: wrk -t1 -c1 -d${C1_S}s. Ratios: higher is better for req/s, lower for p99, c1 p50 and CPU.`,
    "proxy CPU µs/req: user + system CPU of the proxy's own processes (ours: the proxy-process.js processes, not `up`; nginx: master + workers; HAProxy, Caddy, variants: their process) ÷ requests.",
    "proxy RSS peak: ours, the largest of the proxy processes' own peaks (\"each of N\": per process), and in brackets its private part (RssAnon: RSS less shared file pages such as node's own binary, about 43 MiB in every node process); the others, the sum of their processes. `up` RSS: the stack process (supervisor, control API, admin), idle before any load / its peak during the runs.",
    `The machine has ${CPUS} CPUs: wrk, the proxy and the upstream share them. In group 2, ${CPUS} proxy processes (nginx: ${CPUS} workers) compete with wrk and the ${WORKERS} gateway workers for those same ${CPUS} CPUs: more proxy processes can only help while the proxy, not the workers or wrk, is what saturates; read those rows as "does a second process help or hurt here", not as scaling.`,
    "Group 3's upstream is one plain node:http process (bench/apps/node-hello.mjs), much cheaper per request than a gateway worker: the proxy's own cost weighs more in the ratio there.",
  ];
  const failed = Object.entries(results.settings.failed_to_start ?? {});
  if (failed.length) notes.push(`Could not start, skipped: ${failed.map(([key, why]) => `${key} (${why.slice(0, 200)})`).join("; ")}.`);
  if (Object.keys(MISSING).length) notes.push(`Not installed, skipped: ${Object.entries(MISSING).map(([key, binary]) => `${key} (${binary})`).join(", ")}.`);
  if (Object.values(results.runs).some((r) => Object.values(r).some((runs) => runs.some((m) => m?.disturbed)))) notes.push(`⚠: other processes used more than ${QUIET_CPUS} CPU during at least one of that row's runs (the kernel's softirq time, mostly this load's own loopback traffic, not counted: it is cpu_cores.softirq in the JSON).`);
  lines.push("", ...notes.map((n) => `${n}  `));
  return lines.join("\n");
}

function toolVersion(command, args) {
  if (!existsSync(command)) return "not installed";
  const result = spawnSync(command, args, { encoding: "utf8" });
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.split("\n").find((line) => line.trim())?.trim() ?? "unknown";
}

// ---------------------------------------------------------------- profile (--profile N)

/**
 * The preload of --profile (NODE_OPTIONS=--require …, inherited by the `up`
 * process and everything it starts; `--cpu-prof` is not allowed in
 * NODE_OPTIONS on Node 20): in a proxy process only, SIGUSR2 starts V8's
 * sampling profiler and the next SIGUSR2 stops it and writes the profile.
 */
const PROFILER_PRELOAD = `
if ((process.argv[1] || "").endsWith("proxy-process.js")) {
  const inspector = require("node:inspector");
  const fs = require("node:fs");
  const session = new inspector.Session();
  session.connect();
  let on = false;
  process.on("SIGUSR2", () => {
    if (!on) {
      session.post("Profiler.enable");
      session.post("Profiler.setSamplingInterval", { interval: 250 });
      session.post("Profiler.start");
      on = true;
      return;
    }
    on = false;
    session.post("Profiler.stop", (error, result) => {
      if (!error) fs.writeFileSync(process.env.TSGI_BENCH_PROFILE_DIR + "/proxy-" + process.pid + ".cpuprofile", JSON.stringify(result.profile));
    });
  });
}
`;

/** Where a .cpuprofile's time goes: self and inclusive time per function, and per kind of code. */
function summarizeProfile(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const labelOf = (node) => {
    const frame = node.callFrame;
    const url = frame.url.replace(`file://${ROOT}/`, "");
    return `${frame.functionName || "(anonymous)"}${url ? ` ${url}:${frame.lineNumber + 1}` : ""}`;
  };
  const kindOf = (node) => {
    const { url, functionName } = node.callFrame;
    if (functionName === "(garbage collector)") return "garbage collector";
    if (functionName === "(program)") return "V8/node native, unattributed";
    if (url.includes("/dist/proxy/access-log") ) return "our access log (dist/proxy/access-log.js)";
    if (url.includes("/dist/")) return "our proxy code (dist/)";
    if (url.startsWith("node:internal/fs") || url === "node:fs") return "node:fs (the access log's writes)";
    if (url.startsWith("node:")) return "node's JS (http, net, streams, timers)";
    if (!url) return `native: ${functionName}`;
    return "other JS";
  };
  const self = new Map();
  const inclusive = new Map();
  const kinds = new Map();
  let idle = 0;
  for (const [id, count] of counts) {
    const node = byId.get(id);
    if (node.callFrame.functionName === "(idle)") {
      idle += count;
      continue;
    }
    const label = labelOf(node);
    self.set(label, (self.get(label) ?? 0) + count);
    const kind = kindOf(node);
    kinds.set(kind.startsWith("native: ") && !["writev", "writeLatin1String", "writeUtf8String", "writeBuffer", "writeBuffers"].includes(node.callFrame.functionName) ? "native: other" : kind, (kinds.get(kind) ?? 0) + count);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const l = labelOf(byId.get(at));
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + count);
    }
  }
  const busy = profile.samples.length - idle;
  const share = (n) => +((100 * n) / busy).toFixed(1);
  const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([label, count]) => ({ label, percent: share(count) }));
  return {
    samples: profile.samples.length,
    idle_percent: +((100 * idle) / profile.samples.length).toFixed(1),
    kinds: top(kinds, 20),
    self: top(self, 25),
    inclusive: top(inclusive, 40).filter((x) => !["(root)", "(program)"].includes(x.label.split(" ")[0])),
  };
}

async function profileMain() {
  const profileDir = path.join(tmpDir, "profiles");
  mkdirSync(profileDir);
  const preload = path.join(tmpDir, "profile-preload.cjs");
  writeFileSync(preload, PROFILER_PRELOAD);
  const stack = newStack("b", { proxyWorkers: "1", accessLog: "combined", env: { NODE_OPTIONS: `--require ${preload}`, TSGI_BENCH_PROFILE_DIR: profileDir } });
  await startStack(stack);
  const [proxy] = stack.proxies;
  const target = { key: "cmd-stack", group: "cmd", port: stack.port, proc: stack.proc };
  const check = await checkTarget(target);
  if (!check.ok) throw new Error(`our proxy does not answer right: ${check.problems.join("; ")}`);
  log(`\nprofiling proxy process ${proxy.pid} (access_log: combined, upstream: one node:http server on TCP) under wrk -t1 -c50 for ${PROFILE_S} s`);
  const kind = KINDS.small;
  const runTarget = { ...target, proxyPids: () => [proxy.pid], stackPids: () => [stack.proc.pid], upstreamPids: stack.workers.map((w) => w.pid), unixSockets: [] };
  await quietBefore("the profile");
  await wrk(runTarget, kind, 2, "warm-up");
  process.kill(proxy.pid, "SIGUSR2");
  const result = await wrk(runTarget, kind, PROFILE_S, "profiled");
  process.kill(proxy.pid, "SIGUSR2");
  let file;
  for (const limit = Date.now() + 10_000; !file && Date.now() < limit; await sleep(100)) file = readdirSync(profileDir).find((name) => name.startsWith(`proxy-${proxy.pid}.`));
  if (!file) throw new Error("the proxy process wrote no profile");
  await sleep(300);
  const text = readFileSync(path.join(profileDir, file), "utf8");
  const summary = summarizeProfile(JSON.parse(text));
  log(`  ${describe(kind, result)}`);
  log(`  (the profiler's own cost is in these figures; the profile is V8's sampler: wall-clock samples of the main thread, so a syscall during which another process was scheduled counts as that syscall)\n`);
  log(`${summary.samples} samples, ${summary.idle_percent}% idle (waiting in epoll); of the busy samples:\n`);
  log("| kind of code | % |\n|---|---:|");
  for (const k of summary.kinds) log(`| ${k.label} | ${k.percent} |`);
  log("\n| self time: function | % |\n|---|---:|");
  for (const k of summary.self) log(`| ${k.label} | ${k.percent} |`);
  log("\n| inclusive time: function (and what it calls) | % |\n|---|---:|");
  for (const k of summary.inclusive) log(`| ${k.label} | ${k.percent} |`);
  if (flags["profile-out"]) {
    writeFileSync(flags["profile-out"], text);
    log(`\nwritten: ${flags["profile-out"]} (Chrome DevTools, Performance or JavaScript Profiler panel: load it)`);
  }
  await stopAll();
}

// ---------------------------------------------------------------- main

/** A self-signed P-256 certificate for the HTTP/2 pair (both proxies serve it), and a free port for the stack's TLS listener. */
async function benchCertificate() {
  const cert = path.join(tmpDir, "bench.crt");
  const key = path.join(tmpDir, "bench.key");
  const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`openssl could not make the benchmark's certificate: ${made.stderr}`);
  return { cert, key, port: await freePort() };
}

function newStack(name, settings) {
  const dir = path.join(tmpDir, name);
  mkdirSync(dir, { recursive: true });
  return {
    name,
    app: name === "a" ? "bench" : "hello",
    instances: name === "a" ? WORKERS : 1,
    config: path.join(dir, "stack.yaml"),
    state: path.join(dir, "state"),
    proxyWorkers: "1",
    accessLog: "off",
    limits: "off",
    compress: false,
    reconfigurations: [],
    ...settings,
  };
}

async function main() {
  if (!existsSync(WRK)) fail(`wrk not found at ${WRK} (Debian: apt-get install wrk; or set WRK=/path/to/wrk)`);
  if (!existsSync(NGINX)) fail(`nginx not found at ${NGINX} (Debian: apt-get install nginx; or set NGINX=/path/to/nginx)`);
  // Short: the workers' socket paths must stay under the unix limit, and the pm2 daemon's command line keeps only the start of its home.
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsp-"));
  if (PROFILE_S !== undefined) return profileMain();

  const machine = {
    ...machineInfo(),
    available_parallelism: CPUS,
    wrk: toolVersion(WRK, ["-v"]),
    nginx: toolVersion(NGINX, ["-v"]),
    haproxy: toolVersion(HAPROXY, ["-v"]),
    caddy: toolVersion(CADDY, ["version"]),
    load_average_start: os.loadavg().map((v) => +v.toFixed(2)),
  };
  log(`tsgi-stack proxy benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}, ${machine.wrk.split(" [")[0]}, ${machine.nginx}; HAProxy: ${machine.haproxy}; Caddy: ${machine.caddy}`);
  for (const [key, binary] of Object.entries(MISSING)) log(`  ${key}: ${binary} is not installed: its row is skipped (Debian: apt-get install ${key})`);
  log(`targets: ${SELECTED.join(", ")}; ${RUNS} run(s) of each measurement; ${PLANNED_LOAD_S} s of load in all${QUICK ? " (--quick)" : ""}\n`);
  machine.others_cpu_before = await quietBefore("the benchmark");

  const needA = SELECTED.some((key) => ["one", "limits", "auto", "gzip", "h2"].includes(TARGETS[key].group));
  const needB = SELECTED.some((key) => ["cmd", "cmd-nolog"].includes(TARGETS[key].group));
  const startsAuto = !SELECTED.some((key) => TARGETS[key].group === "one");
  const startsNolog = !SELECTED.some((key) => TARGETS[key].group === "cmd");
  log("starting the stacks and the proxies");
  const stacks = {};
  // The HTTP/2 pair: stack a gets a TLS listener too (listeners are set at start), nginx the same certificate.
  const tls = SELECTED.some((key) => TARGETS[key].group === "h2") ? await benchCertificate() : undefined;
  if (needA) stacks.a = await startStack(newStack("a", { proxyWorkers: startsAuto ? "auto" : "1", ...(tls ? { tls } : {}) }));
  if (needB) stacks.b = await startStack(newStack("b", { accessLog: startsNolog ? "off" : "combined" }));
  allWorkers = Object.values(stacks).flatMap((stack) => stack.workers.map((w) => ({ ...w, stack: stack.name, app: stack.app })));
  const sockets = stacks.a?.workers.map((w) => w.socket) ?? [];
  const gatewayPids = stacks.a?.workers.map((w) => w.pid) ?? [];
  const cmdPort = stacks.b?.workers[0].port;
  const cmdPids = stacks.b?.workers.map((w) => w.pid) ?? [];

  const targets = [];
  const add = (key, fields) => targets.push({ key, label: TARGETS[key].label, group: TARGETS[key].group, ...fields });
  const ownPids = (started) => () => [started.proc.pid, ...descendants(started.proc.pid).keys()];
  const stackTarget = (key, stack) => {
    TARGETS[key].stackName = stack.name;
    const gateway = stack.name === "a";
    add(key, {
      stack,
      proc: stack.proc,
      port: stack.port,
      proxyPids: () => stack.proxies.map((p) => p.pid),
      stackPids: () => [stack.proc.pid],
      upstreamPids: gateway ? gatewayPids : cmdPids,
      unixSockets: gateway ? sockets : [],
    });
  };
  const frontTarget = (key, started, { gateway = true } = {}) =>
    add(key, { proc: started.proc, port: started.port, proxyPids: ownPids(started), stackPids: () => [], upstreamPids: gateway ? gatewayPids : cmdPids, unixSockets: gateway ? sockets : [], started });
  const started = {};
  /** Targets that could not start (HAProxy, Caddy, a variant): skipped, and said; ours and nginx must start. */
  const failedToStart = {};
  for (const key of SELECTED) {
    try {
      await startTarget(key);
    } catch (error) {
      if (["stack", "nginx", "stack-auto", "nginx-auto", "cmd-stack", "cmd-nginx"].includes(key)) throw error;
      failedToStart[key] = error.message.split("\n").slice(0, 6).join(" | ");
      log(`  ⚠ ${key} could not start, skipped: ${failedToStart[key]}`);
    }
  }
  async function startTarget(key) {
    switch (key) {
      case "stack":
      case "stack-limited":
      case "stack-auto":
      case "gzip-stack":
        stackTarget(key, stacks.a);
        break;
      case "stack-observed":
        stackTarget(key, stacks.a);
        targets.at(-1).observed = true;
        break;
      case "cmd-stack":
      case "cmd-stack-nolog":
        stackTarget(key, stacks.b);
        break;
      case "nginx":
      case "nginx-auto":
        started[key] = await startNginx(key, { servers: sockets.map((socket) => `unix:${socket}`), workers: key === "nginx" ? 1 : "auto", accessLog: false });
        frontTarget(key, started[key]);
        break;
      case "h2-stack":
        stackTarget(key, stacks.a);
        targets.at(-1).port = stacks.a.tls.port;
        break;
      case "h2-nginx":
        started[key] = await startNginx(key, { servers: sockets.map((socket) => `unix:${socket}`), workers: 1, accessLog: false, tls });
        frontTarget(key, started[key]);
        break;
      case "gzip-nginx":
        started[key] = await startNginx(key, { servers: sockets.map((socket) => `unix:${socket}`), workers: 1, accessLog: false, gzip: GZIP_LEVEL });
        frontTarget(key, started[key]);
        break;
      case "cmd-nginx":
      case "cmd-nginx-nolog":
        started[key] = await startNginx(key, { servers: [`${HOST}:${cmdPort}`], workers: 1, accessLog: key === "cmd-nginx" });
        frontTarget(key, started[key], { gateway: false });
        break;
      case "haproxy":
        started[key] = await startHaproxy(sockets);
        frontTarget(key, started[key]);
        break;
      case "caddy":
        started[key] = await startCaddy(sockets);
        frontTarget(key, started[key]);
        break;
      case "direct": {
        const direct = await startDirect();
        add(key, { proc: direct.proc, port: direct.port, proxyPids: () => [direct.workerPid], stackPids: () => [], upstreamPids: [], unixSockets: [] });
        break;
      }
      default: {
        const variant = await startVariant(key, sockets);
        add(key, { proc: variant.proc, port: variant.port, proxyPids: () => [variant.proc.pid], stackPids: () => [], upstreamPids: gatewayPids, unixSockets: sockets });
      }
    }
  }

  // The stacks' idle RSS: before any load, every worker ready, the proxies answered one request each (the checks below).
  log("\nchecking the answers and the forwarded headers");
  const checks = {};
  const groupOrder = Object.keys(GROUPS).filter((group) => targets.some((t) => t.group === group));
  const applyGroup = async (group) => {
    const want = STACK_OF_GROUP[group];
    const stack = stacks[want.stack];
    if (stack) {
      await reconfigureStack(stack, {
        ...(want.proxyWorkers ? { proxyWorkers: want.proxyWorkers } : {}),
        ...(want.accessLog ? { accessLog: want.accessLog } : {}),
        ...(want.limits ? { limits: want.limits } : {}),
        ...(want.compress !== undefined ? { compress: want.compress } : {}),
      });
    }
  };
  for (const group of groupOrder) {
    await applyGroup(group);
    for (const target of targets.filter((t) => t.group === group)) {
      const check = await checkTarget(target);
      checks[target.key] = check;
      const headers = check.headers.differences?.length ? `; forwarded headers differ from ours: ${check.headers.differences.join(", ")}` : target.group === "one" && target.key !== "direct" ? "; forwarding headers as ours" : "";
      log(`  ${target.key.padEnd(15)} ${check.ok ? "answers right" : `WRONG: ${check.problems.join("; ")}`}${headers}`);
    }
  }
  for (const key of ["stack", "nginx", "cmd-stack", "cmd-nginx"]) {
    if (checks[key] && !checks[key].ok) throw new Error(`${key} does not answer right (${checks[key].problems.join("; ")}): no comparison is possible`);
  }
  await sleep(1000);
  for (const stack of Object.values(stacks)) {
    stack.idle_rss = { up: memory(stack.proc.pid)?.rss, proxies: stack.proxies.map((p) => memory(p.pid)?.rss), proxy_workers: stack.proxyWorkers };
    log(`  stack ${stack.name} idle: \`up\` RSS ${fmtMiB(stack.idle_rss.up)}, proxy process(es) ${stack.idle_rss.proxies.map(fmtMiB).join(", ")} (proxy.workers: ${stack.proxyWorkers})`);
  }
  for (const target of targets) target.idleRss = rssOf(target.proxyPids());
  const measured = targets.filter((target) => checks[target.key].ok);

  const runs = Object.fromEntries(measured.map((target) => [target.key, {}]));
  for (let run = 0; run < RUNS; run++) {
    // Groups in alternating order (the stacks switch settings only between groups); within a group, every
    // measurement on every target in turn, the order rotating so that none always goes first.
    const groups = run % 2 ? [...groupOrder].reverse() : groupOrder;
    for (const group of groups) {
      const inGroup = measured.filter((t) => t.group === group);
      if (!inGroup.length) continue;
      await applyGroup(group);
      const kinds = [...new Set(inGroup.flatMap((t) => TARGETS[t.key].kinds))];
      for (const [k, kindKey] of kinds.entries()) {
        const these = inGroup.filter((t) => TARGETS[t.key].kinds.includes(kindKey));
        const order = these.map((_, i) => these[(i + run + k) % these.length]);
        log(`\nrun ${run + 1}/${RUNS}, group ${group}: ${KINDS[kindKey].label}, ${KINDS[kindKey].seconds} s each (order: ${order.map((t) => t.key).join(", ")})`);
        for (const target of order) ((runs[target.key][kindKey] ??= [])[run] = await measure(target, KINDS[kindKey], run));
      }
    }
  }

  // What the stacks said besides their start and the config changes this script made.
  const said = {};
  for (const stack of Object.values(stacks)) {
    const from = stack.proc.lines.findIndex((line) => SERVING.test(line.text));
    said[stack.name] = stack.proc.lines.slice(from + 1).map((line) => line.text).filter((text) => text.trim() && !/config: proxy routing and settings updated/.test(text));
    const status = await statusCli(stack.config).catch(() => undefined);
    stack.final_proxies = status?.proxies;
  }
  // The access logs of group 3: one line per request, both sides (the proof the log was on).
  const logLines = (file) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : undefined);
  const accessLogs = stacks.b
    ? { ours: logLines(path.join(stacks.b.state, "logs/access.log")), nginx: started["cmd-nginx"] ? logLines(path.join(started["cmd-nginx"].dir, "access.log")) : undefined }
    : undefined;
  const errorLogs = Object.fromEntries(
    Object.entries(started)
      .filter(([key]) => key.includes("nginx"))
      .map(([key, s]) => [key, existsSync(`${s.dir}/error.log`) ? readFileSync(`${s.dir}/error.log`, "utf8").split("\n").filter(Boolean) : []]),
  );
  // Caddy logs its start-up on stderr: its info lines, and the warnings about what this config turns off on purpose, are not news.
  const EXPECTED = /^\{"level":"info"|"msg":"(admin endpoint disabled|automatic HTTPS is completely disabled[^"]*|Caddyfile input is not formatted[^"]*)"/;
  const stderrOf = (target) =>
    target.stack ? "" : target.proc.stderr.split("\n").filter((line) => line.trim() && !EXPECTED.test(line)).join("\n").trim();
  const results = {
    date: new Date().toISOString(),
    machine,
    settings: {
      quick: QUICK,
      runs: RUNS,
      kinds: Object.values(KINDS).map(({ key, label, connections, seconds, target, bytes }) => ({ key, label, connections, seconds, target, bytes })),
      warmup_s: WARMUP_S,
      quiet_wait_s: QUIET_WAIT_S,
      nginx_buffering: NGINX_BUFFERING,
      goals: GOALS,
      rss_sample_ms: RSS_SAMPLE_MS,
      targets: Object.fromEntries(SELECTED.map((key) => [key, { ...TARGETS[key] }])),
      missing: MISSING,
      failed_to_start: failedToStart,
    },
    stacks: Object.fromEntries(
      Object.values(stacks).map((s) => [
        s.name,
        {
          name: s.name,
          config: readFileSync(s.config, "utf8"),
          up_pid: s.proc.pid,
          proxy_workers_setting: s.proxyWorkers,
          upstream_workers: s.workers,
          idle_rss: s.idle_rss,
          reconfigurations: s.reconfigurations,
          final_proxies: s.final_proxies,
          said_after_start: said[s.name].slice(0, 50),
        },
      ]),
    ),
    configs: Object.fromEntries(Object.entries(started).map(([key, s]) => [key, s.confText])),
    targets: Object.fromEntries(
      targets.map((target) => [
        target.key,
        { label: target.label, group: target.group, pid: target.proc.pid, port: target.port, idle_rss: target.idleRss, check: checks[target.key], stderr: stderrOf(target).slice(-2000) || undefined },
      ]),
    ),
    runs,
    access_log_lines: accessLogs,
    nginx_error_logs: Object.fromEntries(Object.entries(errorLogs).map(([key, lines]) => [key, { lines: lines.length, first: lines.slice(0, 10), last: lines.slice(-5) }])),
    load_seconds: round(loadSpent, 1),
    quiet_wait_seconds: round(quietSpent, 1),
  };
  results.ratios = Object.fromEntries(
    measured
      .filter((target) => TARGETS[target.key].baseline)
      .map((target) => [
        target.key,
        {
          against: TARGETS[target.key].baseline,
          ...Object.fromEntries(
            [
              ["rps", "small", "rps"],
              ["p99", "small", "p99_ms"],
              ["c1_p50", "c1", "p50_ms"],
              ["proxy_cpu_us_per_request", "small", "proxy_cpu_us_per_request"],
              ["big_mib_per_s", "big", "mib_per_s"],
              ["upload_mib_per_s", "upload", "mib_per_s"],
            ]
              .filter(([, kind]) => runs[target.key]?.[kind])
              .map(([name, kind, figure]) => {
                const r = ratioOf(results, target.key, kind, figure);
                return [name, r.median === undefined ? { why: r.why } : { median: round(r.median, 3), min: round(r.min, 3), max: round(r.max, 3), per_round: r.values.map((v) => round(v, 3)), rounds_left_out: r.dirty }];
              }),
          ),
        },
      ]),
  );
  results.summary = Object.fromEntries(
    measured.map((target) => [
      target.key,
      Object.fromEntries(
        Object.keys(runs[target.key]).map((kind) => {
          const pick = (figure) => {
            const s = figureOf(results, target.key, kind, (r) => r[figure]);
            return s ? { median: round(s.median, 3), min: round(s.min, 3), max: round(s.max, 3) } : undefined;
          };
          return [kind, Object.fromEntries(["rps", "p50_ms", "p99_ms", "proxy_cpu_us_per_request", "proxy_rss_peak", "proxy_rss_peak_max", "proxy_anon_peak_max", "stack_rss_peak", "upstream_cpu_us_per_request", "mib_per_s"].map((f) => [f, pick(f)]).filter(([, v]) => v))];
        }),
      ),
    ]),
  );
  results.goals = goalsOf(results);

  log(`\ntotal load: ${loadSpent.toFixed(1)} s; waiting for quiet: ${quietSpent.toFixed(1)} s`);
  if (accessLogs) log(`  group 3's access logs: ours ${accessLogs.ours ?? "–"} lines, nginx's ${accessLogs.nginx ?? "–"} lines`);
  for (const target of targets) {
    const stderr = stderrOf(target);
    if (stderr) log(`  ⚠ ${target.key} wrote to stderr: ${stderr.split("\n").slice(-3).join(" | ").slice(0, 400)}`);
  }
  for (const stack of Object.values(stacks)) {
    const restarts = (stack.final_proxies ?? []).filter((p) => p.restarts > 0);
    if (restarts.length) log(`  ⚠ stack ${stack.name}: proxy process(es) restarted: ${restarts.map((p) => `${p.index} (${p.restarts}x)`).join(", ")}`);
    if (said[stack.name].length) {
      log(`  ⚠ stack ${stack.name} printed ${said[stack.name].length} line(s) during the measurements (config changes left out); the first ones:`);
      for (const line of said[stack.name].slice(0, 8)) log(`    ${line}`);
    }
  }
  for (const [key, lines] of Object.entries(errorLogs)) {
    if (lines.length) log(`  ⚠ ${key}'s error log has ${lines.length} line(s); the first: ${lines[0]}`);
  }
  log("");

  // Everything is stopped before the tables, so that the JSON can say whether anything was left behind.
  await stopAll();
  results.left_running = leftRunning;
  machine.load_average_end = os.loadavg().map((v) => +v.toFixed(2));
  const table = markdown(results, measured);
  results.markdown = table;
  log(table);
  if (OUT) {
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
    log(`\nwritten: ${path.relative(process.cwd(), OUT) || OUT}`);
  }
}

await runBenchmark("proxy", main, { stopAll, killAll: killAllNow });
const left = tmpDir ? processesNaming(tmpDir) : [];
if (left.length) log(`⚠ still running after cleanup: ${left.map((p) => p.pid).join(", ")}`);
// Everything is stopped: do not wait for the grace-period timers of lib.mjs's Proc.stop() (up to 60 s for a stack).
process.exit();
