#!/usr/bin/env node
/**
 * The proxy benchmark: `npm run bench:proxy` (or `node bench/proxy.mjs`).
 * See bench/README.md for what each figure means and the goals.
 *
 * In one run, on 127.0.0.1 only, it puts several front proxies in front of
 * THE SAME two gateway worker processes and loads each with the same wrk:
 *   - our front proxy: the stack's own listener (`tsgi-stack up`, one app,
 *     bench/apps/proxy-app.ts, 2 workers on unix sockets, access_log off);
 *   - nginx from Debian's packages (worker_processes 1, an upstream block with
 *     both worker sockets and keepalive 64, proxy_http_version 1.1, the same
 *     forwarding headers as ours): the baseline of every ratio;
 *   - the candidates for the proxy's hot path, bench/variants/*.mjs:
 *     http-proxy 1.18.1, http-proxy-3, and a minimal undici proxy;
 *   - one more worker of the same app on TCP with no proxy at all, as a
 *     ceiling (not the same process: wrk cannot reach a unix socket).
 * For each: wrk -t1 -c50 on a 6-byte response (req/s, p50, p99; the proxy's
 * RSS sampled meanwhile), wrk -t1 -c1 (p50: the latency the proxy adds), 1 MiB
 * responses with -c10 (MiB/s), 1 MiB uploads with -c10 (bench/upload.lua;
 * MiB/s). Each measurement is taken once per proxy, the proxies one after the
 * other (interleaved, in a rotating order), each after a short warm-up.
 * It prints Markdown tables (figures, ratios to nginx, the goals) and writes
 * bench/results/proxy.json.
 *
 * Every process it starts is stopped by its pid at the end, on error and on
 * SIGINT/SIGTERM: the stack with SIGINT as a user would (its workers and pm2
 * daemon go with it), nginx with SIGQUIT, the rest with SIGTERM, SIGKILL after
 * a grace period. Then any process whose command line or environment names
 * the temporary directory is SIGKILLed by its pid, and the directory removed.
 *
 * Options: --quick         a smoke check: 2 s / 1 s runs, no waiting for quiet,
 *                          no JSON unless --out
 *          --duration N    seconds of the -c50 small-response run (default 10)
 *          --c1-duration N seconds of the -c1 run (default 5)
 *          --bulk-duration N  seconds of each 1 MiB run, download and upload (default 5)
 *          --warmup N      seconds of the warm-up before each measurement (default 1)
 *          --only LIST     proxies to measure besides nginx, comma-separated:
 *                          stack, http-proxy, http-proxy-3, undici, direct (default all);
 *                          writes no JSON unless --out
 *          --nginx-buffering on|off  nginx's proxy_buffering and
 *                          proxy_request_buffering (default on: nginx's defaults)
 *          --out PATH      where the JSON goes (default bench/results/proxy.json)
 *          --quiet-wait N  before each measurement, wait up to N seconds (default 10)
 *                          for other processes to leave the CPUs alone, N x 6 s in
 *                          all at most; a run disturbed anyway is flagged with ⚠
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import {
  CLI,
  HOST,
  MiB,
  Proc,
  QUIET_CPUS,
  ROOT,
  WRK,
  alive,
  cpuSeconds,
  killRunningNow,
  log,
  machineCpu,
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
/** iproute2's ss: the worker sockets' send queues tell a proxy that leaves responses unread. */
const SS = process.env.SS ?? "/usr/bin/ss";
const APP = "bench/apps/proxy-app.ts";
const UPLOAD_LUA = path.join(ROOT, "bench/upload.lua");
const WORKERS = 2;
/** The size of /big's body and of each upload. */
const BODY = MiB;
const SMALL_BODY = "hello\n";
/** The issue's goals for our proxy, against nginx with one worker process. 80 MB is read as 80 MiB (as bench/stack.mjs). */
const GOALS = { rps_ratio: 0.75, p99_ratio: 1.5, c1_p50_ratio: 1.0, rss: 80 * MiB };
/** SIGINT to `up` drains the workers: this long at most before SIGKILL. */
const STOP_GRACE_MS = 60_000;
/** The whole run should stay near 5 minutes: options that plan more load than this are refused. */
const LOAD_LIMIT_S = 240;
const RSS_SAMPLE_MS = 50;

/** Every proxy this benchmark knows, in the order of its tables. */
const TARGETS = ["stack", "nginx", "http-proxy", "http-proxy-3", "undici", "direct"];
const VARIANTS = {
  "http-proxy": { script: "bench/variants/http-proxy.mjs", label: "http-proxy 1.18.1 (variant)" },
  "http-proxy-3": { script: "bench/variants/http-proxy-3.mjs", label: "http-proxy-3 (variant)" },
  undici: { script: "bench/variants/undici.mjs", label: "undici Pool (variant)" },
};

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    "c1-duration": { type: "string" },
    "bulk-duration": { type: "string" },
    warmup: { type: "string" },
    only: { type: "string" },
    "nginx-buffering": { type: "string", default: "on" },
    out: { type: "string" },
    "quiet-wait": { type: "string" },
  },
});
const QUICK = flags.quick;
const SMALL_S = wholeSeconds(flags.duration ?? (QUICK ? "2" : "10"), "--duration");
const C1_S = wholeSeconds(flags["c1-duration"] ?? (QUICK ? "1" : "5"), "--c1-duration");
const BULK_S = wholeSeconds(flags["bulk-duration"] ?? (QUICK ? "1" : "5"), "--bulk-duration");
const WARMUP_S = wholeSeconds(flags.warmup ?? "1", "--warmup");
const QUIET_WAIT_S = /^\d+$/.test(flags["quiet-wait"] ?? "x") ? Number(flags["quiet-wait"]) : flags["quiet-wait"] === undefined ? (QUICK ? 0 : 10) : fail(`--quiet-wait ${flags["quiet-wait"]}: expected a whole number of seconds`);
/** All the waiting for quiet together stays within this: the run must end in reasonable time on a busy machine. */
const QUIET_BUDGET_S = QUIET_WAIT_S * 6;
if (!["on", "off"].includes(flags["nginx-buffering"])) fail(`--nginx-buffering ${flags["nginx-buffering"]}: on or off`);
const NGINX_BUFFERING = flags["nginx-buffering"] === "on";
const ONLY = flags.only ? flags.only.split(",").map((name) => name.trim()) : undefined;
for (const name of ONLY ?? []) if (!TARGETS.includes(name)) fail(`--only ${flags.only}: the proxies are ${TARGETS.join(", ")}`);
/** nginx is the baseline of every ratio: always measured. */
const SELECTED = TARGETS.filter((name) => name === "nginx" || !ONLY || ONLY.includes(name));
const OUT = flags.out ?? (QUICK || ONLY ? undefined : path.join(ROOT, "bench/results/proxy.json"));

/** The measurements, each taken once per proxy. */
const KINDS = [
  { key: "small", label: `GET / (${SMALL_BODY.length} bytes), -c50`, connections: 50, seconds: SMALL_S, target: "/" },
  { key: "c1", label: "GET / at concurrency 1, -c1", connections: 1, seconds: C1_S, target: "/" },
  { key: "big", label: "GET /big (1 MiB responses), -c10", connections: 10, seconds: BULK_S, target: "/big", bytes: BODY },
  { key: "upload", label: "POST /upload (1 MiB bodies), -c10", connections: 10, seconds: BULK_S, target: "/upload", script: UPLOAD_LUA, bytes: BODY },
];
const PLANNED_LOAD_S = SELECTED.length * KINDS.reduce((sum, kind) => sum + kind.seconds + WARMUP_S, 0);
if (PLANNED_LOAD_S > LOAD_LIMIT_S) {
  fail(`${PLANNED_LOAD_S} s of wrk planned (${SELECTED.length} proxies x (${KINDS.map((k) => k.seconds).join(" + ")} s + ${KINDS.length} warm-ups of ${WARMUP_S} s)): above the ${LOAD_LIMIT_S} s limit; shorten the runs or use --only`);
}

function wholeSeconds(value, flag) {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 60) fail(`${flag} ${value}: expected a whole number of seconds from 1 to 60 (wrk takes whole seconds)`);
  return Number(value);
}

function fail(message) {
  process.stderr.write(`bench/proxy: ${message}\n`);
  process.exit(2);
}

const round = (n, digits = 0) => (n === undefined || Number.isNaN(n) ? undefined : +n.toFixed(digits));

// ---------------------------------------------------------------- processes

/** The temporary directory: the stack's config and state dir (its sockets), nginx's prefix. */
let tmpDir;



/** What had to be SIGKILLed at cleanup (the JSON records it). */
let leftRunning = [];

/** At the end, on error or on a signal: the stack (SIGINT), nginx (SIGQUIT), the rest (SIGTERM); then nothing may be left. Runs once. */
let stopping;
const stopAll = () => (stopping ??= stopEverything());

async function stopEverything() {
  const started = performance.now();
  // The proxies in front first (they hold kept-alive connections to the workers), then the stack.
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

/** Last resort on exit: nothing we started outlives us, nor anything of the stack. */
function killAllNow() {
  killRunningNow();
  if (tmpDir) {
    for (const { pid } of processesNaming(tmpDir)) try { process.kill(pid, "SIGKILL"); } catch {}
  }
}

// ---------------------------------------------------------------- HTTP

/** One request on a fresh connection: { status, headers, body (Buffer) } or { error }. Never rejects. */
function request(port, target, { method = "GET", body, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: HOST, port, path: target, method, agent: false, timeout: timeoutMs, headers: body ? { "Content-Length": body.byteLength, "Content-Type": "application/octet-stream" } : {} },
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

/** Ports the kernel considers free right now (bound to 0 together, then closed). */
async function freePorts(count) {
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

// ---------------------------------------------------------------- the stack (the workers, and our proxy)

const SERVING = /^tsgi-stack: serving on http:\/\/([^/\s]+)\//m;

function writeStackConfig(config, state) {
  const text = `# written by bench/proxy.mjs
state_dir: ${JSON.stringify(state)}
proxy:
  listen: ["${HOST}:0"]
  admin: "${HOST}:0"
  access_log: off
  limits: { client_max_body_size: 2m }
apps:
  bench:
    module: ${JSON.stringify(path.join(ROOT, APP))}
    interface: tsgi
    instances: ${WORKERS}
    routes: [{ path: / }]
    cwd: ${JSON.stringify(ROOT)}
`;
  writeFileSync(config, text);
  return text;
}

/** `tsgi-stack status --json -c FILE`: the command itself, as a user would find the workers. */
async function statusCli(config) {
  const proc = new Proc("tsgi-stack status", process.execPath, [CLI, "status", "--json", "-c", config]);
  await proc.exitWithin(30_000);
  if (proc.exitCode !== 0) throw new Error(`tsgi-stack status ${proc.describeExit()}:\n${proc.stderr}${proc.stdout}`);
  return JSON.parse(proc.stdout);
}

/** `tsgi-stack up -c FILE`; resolves once it serves and both workers are ready, with their pids and socket paths. */
async function startStack() {
  const config = path.join(tmpDir, "stack.yaml");
  const state = path.join(tmpDir, "state");
  const configText = writeStackConfig(config, state);
  const started = performance.now();
  const proc = new Proc("tsgi-stack up", process.execPath, [CLI, "up", "-c", config]);
  proc.isStack = true;
  const [, address] = await proc.waitFor(SERVING, 90_000, "serving on");
  const port = Number(address.split(":").pop());
  for (let attempt = 1; ; attempt++) {
    const status = await statusCli(config);
    const workers = (status.workers ?? []).filter((row) => row.app === "bench");
    if (workers.length === WORKERS && workers.every((row) => row.state === "ready" && row.pid && row.address?.kind === "unix")) {
      proc.recordDescendants();
      const ms = Math.round(performance.now() - started);
      log(`  stack: \`up\` pid ${proc.pid}, proxy on ${HOST}:${port}, workers ${workers.map((w) => `${w.pid} on ${w.address.path}`).join(", ")} (${ms} ms)`);
      return {
        proc,
        port,
        config,
        configText,
        workers: workers.map((row) => ({ slot: row.slot, pid: row.pid, started: startTime(row.pid), socket: row.address.path })),
      };
    }
    if (attempt >= 20) throw new Error(`the stack serves but its workers are not all ready on unix sockets: ${JSON.stringify(workers)}`);
    await sleep(500);
  }
}

// ---------------------------------------------------------------- nginx

function nginxConf(dir, port, sockets) {
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  const buffering = NGINX_BUFFERING ? "" : "\n      proxy_buffering off;\n      proxy_request_buffering off;";
  return `# written by bench/proxy.mjs
daemon off;
master_process on;
worker_processes 1;
${user}pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 2m;
  # Our proxy does not cap the requests of a client connection: neither does nginx here (its default is 1000).
  keepalive_requests 1000000;

  upstream tsgi_workers {
${sockets.map((socket) => `    server unix:${socket};`).join("\n")}
    keepalive 64;
    # Below the workers' 5 s idle timeout, as our proxy's upstream_keepalive_timeout (4 s).
    keepalive_timeout 4s;
    keepalive_requests 1000000;
  }
  server {
    listen ${HOST}:${port};
    location / {
      proxy_pass http://tsgi_workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The forwarding headers our proxy sets (src/proxy/server.ts).
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id always;${buffering}
    }
  }
}
`;
}

/** Starts nginx in front of the workers' sockets; picks another port if the one found free was taken meanwhile. */
async function startNginx(sockets) {
  const dir = path.join(tmpDir, "nginx");
  for (let attempt = 1; attempt <= 5; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const [port] = await freePorts(1);
    const conf = path.join(dir, "nginx.conf");
    const confText = nginxConf(dir, port, sockets);
    writeFileSync(conf, confText);
    const proc = new Proc("nginx", NGINX, ["-p", `${dir}/`, "-c", conf, "-e", `${dir}/error.log`]);
    proc.isNginx = true;
    for (const started = Date.now(); Date.now() - started < 10_000 && !proc.done && !(await canConnect(port)); ) await sleep(50);
    let error;
    if (!proc.done && (await canConnect(port))) {
      proc.recordDescendants();
      // worker_processes 1: the master's one child is the worker that serves.
      const workerPid = [...proc.descendants.keys()][0];
      log(`  nginx: master pid ${proc.pid}, worker pid ${workerPid}, on ${HOST}:${port}`);
      return { proc, port, workerPid, dir, confText };
    }
    error = proc.done ? `nginx ${proc.describeExit()}` : "nginx did not start listening within 10 s";
    const errorLog = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, "utf8") : "";
    await proc.stop("SIGQUIT", 5000);
    const detail = `${proc.stderr}${errorLog}`;
    if (!/Address already in use|bind\(\)/.test(detail)) throw new Error(`${error}:\n${detail}`);
    log(`  nginx could not bind (attempt ${attempt}), picking another port`);
  }
  throw new Error("nginx could not bind a free port in 5 attempts");
}

// ---------------------------------------------------------------- the variants and the direct worker

const READY_URL = /ready: http:\/\/[^:\s]+:(\d+)/;

async function startVariant(key, sockets) {
  const { script, label } = VARIANTS[key];
  const proc = new Proc(key, process.execPath, [path.join(ROOT, script), `${HOST}:0`, ...sockets]);
  const [line, port] = await proc.waitFor(READY_URL, 20_000, "ready");
  log(`  ${key}: pid ${proc.pid}, ${line}`);
  return { proc, port: Number(port), label };
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
 * Before any load: each proxy answers / , /big and /upload right, and the
 * worker behind it receives the forwarding headers ours sends. A proxy that
 * answers wrong is not measured.
 */
async function checkTarget(target) {
  const problems = [];
  const small = await request(target.port, "/");
  if (small.error || small.status !== 200 || small.body.toString() !== SMALL_BODY) problems.push(`GET / -> ${small.error ?? `${small.status} ${JSON.stringify(small.body.toString().slice(0, 80))}`}`);
  const big = await request(target.port, "/big");
  if (big.error || big.status !== 200 || big.body.byteLength !== BODY) problems.push(`GET /big -> ${big.error ?? `${big.status}, ${big.body.byteLength} bytes`}`);
  const upload = await request(target.port, "/upload", { method: "POST", body: Buffer.alloc(BODY, 97) });
  if (upload.error || upload.status !== 200 || upload.body.toString() !== `${BODY}\n`) problems.push(`POST /upload -> ${upload.error ?? `${upload.status} ${JSON.stringify(upload.body.toString().slice(0, 80))}`}`);
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
/** The stack's workers as first found ({ slot, pid, started }): checked after every run. */
let stackWorkers = [];

/** The load of the rest of the machine before a measurement, waiting for quiet within the run's budget. */
async function quietBefore(what) {
  const wait = Math.max(0, Math.min(QUIET_WAIT_S, QUIET_BUDGET_S - quietSpent));
  const started = performance.now();
  const load = await waitForQuiet(what, wait);
  quietSpent += Math.max(0, (performance.now() - started) / 1000 - 1);
  return round(load, 2);
}

const sumOf = (pids, read) => pids.reduce((sum, pid) => sum + (read(pid) ?? 0), 0);
const rssOf = (pids) => sumOf(pids, (pid) => memory(pid)?.rss);
const cpuOf = (pids) => sumOf(pids, cpuSeconds);

const SIZE_UNITS = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/**
 * One wrk run against a target, bounded in time: wrk's figures, the proxy's
 * peak RSS (sampled every 50 ms), the CPU time per request of the proxy and of
 * the workers, and what the rest of the machine took meanwhile.
 */
async function wrk(target, kind, seconds, label) {
  const args = ["-t1", `-c${kind.connections}`, `-d${seconds}s`, "--latency", ...(kind.script ? ["-s", kind.script] : []), `http://${HOST}:${target.port}${kind.target}`];
  const proxyPids = target.proxyPids();
  const workerPids = target.workerPids;
  const proxyCpuBefore = cpuOf(proxyPids);
  const workersCpuBefore = cpuOf(workerPids);
  const machineBefore = machineCpu();
  let peakRss = rssOf(proxyPids);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(proxyPids))), RSS_SAMPLE_MS);
  const started = performance.now();
  const proc = new Proc(`wrk ${label}`, WRK, args);
  let wrkCpu = 0;
  const poll = setInterval(() => (wrkCpu = cpuSeconds(proc.pid) ?? wrkCpu), 100);
  await proc.exitWithin((seconds + 15) * 1000);
  clearInterval(poll);
  clearInterval(sampler);
  const elapsed = (performance.now() - started) / 1000;
  loadSpent += elapsed;
  const proxyCpu = cpuOf(proxyPids) - proxyCpuBefore;
  const workersCpu = cpuOf(workerPids) - workersCpuBefore;
  const machineBusy = machineCpu().busy - machineBefore.busy;
  const command = `wrk ${args.join(" ")}`;
  if (proc.exitCode !== 0) return { command, failed: `wrk ${proc.describeExit()}: ${(proc.stderr || proc.stdout).trim().slice(-500)}` };
  const result = parseWrk(proc.stdout);
  if (result.rps === undefined || result.p50_ms === undefined || result.p99_ms === undefined) return { command, failed: `cannot read wrk's output: ${proc.stdout.slice(-500)}` };
  result.command = command;
  const read = /(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read/.exec(proc.stdout);
  if (read) result.bytes_read = Math.round(Number(read[2]) * SIZE_UNITS[read[3]]);
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
  result.proxy_rss_peak = peakRss;
  result.proxy_cpu_us_per_request = result.requests > 0 ? round((proxyCpu * 1e6) / result.requests, 1) : undefined;
  result.workers_cpu_us_per_request = result.requests > 0 ? round((workersCpu * 1e6) / result.requests, 1) : undefined;
  const ours = proxyCpu + workersCpu + wrkCpu;
  result.cpu_cores = {
    wrk: round(wrkCpu / elapsed, 2),
    proxy: round(proxyCpu / elapsed, 2),
    workers: round(workersCpu / elapsed, 2),
    machine: round(machineBusy / elapsed, 2),
    others: round(Math.max(0, machineBusy - ours) / elapsed, 2),
  };
  result.disturbed = result.cpu_cores.others > QUIET_CPUS;
  return result;
}

/**
 * How many connections on the workers' sockets have response bytes that
 * nobody reads (their send queue, seen from the worker's end, is not empty):
 * once the load is over, a proxy that leaves some has stopped reading a
 * worker's response without closing the connection — the worker's request
 * never ends, until its --timeout (30 s) kills the worker. undefined without ss.
 */
async function unreadUpstream() {
  if (!existsSync(SS) || stackWorkers.length === 0) return undefined;
  const sockets = new Set(stackWorkers.map((w) => w.socket));
  const proc = new Proc("ss", SS, ["-x", "-n"]);
  await proc.exitWithin(10_000);
  if (proc.exitCode !== 0) return undefined;
  let count = 0;
  for (const line of proc.stdout.split("\n")) {
    const fields = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local Port Peer Port: an accepted connection shows the listening path as its local address.
    if (fields[1] === "ESTAB" && sockets.has(fields[4]) && Number(fields[3]) > 0) count += 1;
  }
  return count;
}

/** A warm-up run (discarded, but its errors are kept), then the measured one. */
async function measure(target, kind) {
  const label = `${target.key} ${kind.key}`;
  if (target.proc.done) {
    const failed = { failed: `${target.key} ${target.proc.describeExit()} before this run` };
    log(`  ${target.key.padEnd(13)} ${describe(kind, failed)}`);
    return failed;
  }
  const othersBefore = await quietBefore(label);
  const unreadBefore = await unreadUpstream();
  const warm = await wrk(target, kind, WARMUP_S, `${label} warm-up`);
  const result = await wrk(target, kind, kind.seconds, label);
  result.others_cpu_before = othersBefore;
  await sleep(500);
  const unreadAfter = await unreadUpstream();
  if (unreadBefore !== undefined && unreadAfter !== undefined) {
    result.unread_upstream_connections = unreadAfter - unreadBefore;
    if (result.unread_upstream_connections > 0 && target.key !== "direct") result.errors = (result.errors ?? 0) + result.unread_upstream_connections;
  }
  if (warm.failed) result.warmup_failed = warm.failed;
  else if (warm.errors > 0) result.warmup_errors = warm.errors;
  if (target.proc.done) result.failed = `${result.failed ? `${result.failed}; ` : ""}${target.key} ${target.proc.describeExit()} during the run`;
  // The same worker processes behind every proxy, all along: one that died (and was replaced by pm2) spoils the run.
  // (Counted once, in the run during which it went: the later runs say so in the stack's log below the figures.)
  const gone = stackWorkers.filter((w) => !w.gone && !alive(w.pid, w.started));
  if (gone.length) {
    result.workers_gone = gone.map((w) => `bench.${w.slot} (pid ${w.pid})`);
    result.errors = (result.errors ?? 0) + gone.length;
    for (const w of gone) w.gone = true;
  }
  log(`  ${target.key.padEnd(13)} ${describe(kind, result)}`);
  return result;
}

// ---------------------------------------------------------------- formatting

const fmtInt = (n) => (n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const fmtMs = (ms) => (ms === undefined ? "–" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const fmtMiB = (bytes) => (bytes === undefined ? "–" : `${(bytes / MiB).toFixed(1)} MiB`);
const fmtRatio = (r) => (r === undefined || !Number.isFinite(r) ? "–" : `${r.toFixed(2)}x`);

function errorText(r) {
  if (!r || r.failed || !r.errors) return "";
  const socket = Object.entries(r.socket_errors).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`);
  const parts = [r.non2xx ? `non-2xx ${r.non2xx}` : "", socket.length ? `socket ${socket.join(", ")}` : "", r.bad_bodies ? `wrong upload answers ${r.bad_bodies}` : "", r.short_responses ? "responses under 1 MiB" : "", r.workers_gone ? `worker(s) died: ${r.workers_gone.join(", ")}` : "", r.unread_upstream_connections > 0 ? `left ${r.unread_upstream_connections} worker response(s) unread on open connections` : ""].filter(Boolean);
  return `${r.errors} errors (${parts.join("; ")})`;
}

function describe(kind, r) {
  if (r.failed) return `FAILED: ${r.failed}`;
  const figures =
    kind.key === "small"
      ? `${fmtInt(r.rps).padStart(8)} req/s   p50 ${fmtMs(r.p50_ms).padStart(9)}   p99 ${fmtMs(r.p99_ms).padStart(9)}   proxy RSS peak ${fmtMiB(r.proxy_rss_peak)}`
      : kind.key === "c1"
        ? `${fmtInt(r.rps).padStart(8)} req/s   p50 ${fmtMs(r.p50_ms).padStart(9)}   p99 ${fmtMs(r.p99_ms).padStart(9)}`
        : `${r.mib_per_s.toFixed(0).padStart(6)} MiB/s (${fmtInt(r.rps)} req/s)   p50 ${fmtMs(r.p50_ms)}   p99 ${fmtMs(r.p99_ms)}   proxy RSS peak ${fmtMiB(r.proxy_rss_peak)}`;
  const cpu = r.proxy_cpu_us_per_request !== undefined ? `   proxy CPU ${r.proxy_cpu_us_per_request.toFixed(0)} µs/req` : "";
  const errors = r.errors ? `   ⚠ ${errorText(r)}` : "";
  const warm = r.warmup_errors ? `   (warm-up: ${r.warmup_errors} errors)` : r.warmup_failed ? `   (warm-up FAILED: ${r.warmup_failed})` : "";
  const others = r.disturbed ? `   ⚠ other processes took ${r.cpu_cores.others} cores meanwhile` : "";
  return `${figures}${cpu}${errors}${warm}${others}`;
}

/** A measurement that can be compared: measured, and without a single error. */
const clean = (r) => r && !r.failed && r.errors === 0;

/** target / nginx for one figure, or why there is none. */
function ratio(results, key, kindKey, figure) {
  const mine = results.runs[key]?.[kindKey];
  const base = results.runs.nginx?.[kindKey];
  if (!mine || mine.failed) return { why: "not measured" };
  if (!base || base.failed) return { why: "nginx not measured" };
  const value = mine[figure] / base[figure];
  if (!clean(mine)) return { value, why: `${mine.errors} errors` };
  if (!clean(base)) return { value, why: `nginx: ${base.errors} errors` };
  return { value };
}

function ratioCell({ value, why }) {
  if (value === undefined) return why;
  return why ? `~~${fmtRatio(value)}~~ (${why})` : fmtRatio(value);
}

/** The issue's four goals for one proxy: { name, text, met, why }. */
function goalsOf(results, key) {
  const rps = ratio(results, key, "small", "rps");
  const p99 = ratio(results, key, "small", "p99_ms");
  const c1 = ratio(results, key, "c1", "p50_ms");
  const small = results.runs[key]?.small;
  const rss = small && !small.failed ? small.proxy_rss_peak : undefined;
  const goal = (name, text, r, test) => ({
    name,
    text,
    value: r.value,
    met: r.value !== undefined && !r.why && test(r.value),
    why: r.why,
  });
  return [
    goal("rps", `req/s ≥ ${GOALS.rps_ratio}x nginx's (1 worker), wrk -c50`, rps, (v) => v >= GOALS.rps_ratio),
    goal("p99", `p99 ≤ ${GOALS.p99_ratio}x nginx's, wrk -c50`, p99, (v) => v <= GOALS.p99_ratio),
    goal("c1_p50", "p50 at concurrency 1 no worse than nginx's (≤ 1.00x)", c1, (v) => v <= GOALS.c1_p50_ratio),
    {
      name: "rss",
      text: `RSS under load < 80 MB (read as 80 MiB)`,
      value: rss,
      met: rss !== undefined && !small.errors && rss < GOALS.rss,
      why: rss === undefined ? "not measured" : small.errors ? `${small.errors} errors` : undefined,
    },
  ];
}

function markdown(results, targets) {
  const lines = [];
  const runs = results.runs;
  const flagged = (r) => (r?.disturbed ? " ⚠" : "");
  const cell = (r, text) => (!r ? "–" : r.failed ? "FAILED" : `${text}${r.errors ? " ✗" : ""}${flagged(r)}`);
  const errorsOf = (key) => {
    const list = KINDS.map((kind) => runs[key]?.[kind.key]).filter(Boolean);
    const failed = list.filter((r) => r.failed).length;
    const errors = list.reduce((sum, r) => sum + (r.failed ? 0 : r.errors), 0);
    return `${errors}${failed ? ` (+${failed} failed)` : ""}`;
  };
  const peakOfAll = (r) => {
    const peaks = KINDS.map((kind) => r[kind.key]).filter((m) => m && !m.failed).map((m) => m.proxy_rss_peak);
    return peaks.length ? Math.max(...peaks) : undefined;
  };
  lines.push(
    `| proxy, in front of the same ${WORKERS} workers | req/s | p50 | p99 | c1 p50 | /big MiB/s | upload MiB/s | proxy RSS peak: -c50 run (any run) | proxy CPU µs/req | errors |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const target of targets) {
    const r = runs[target.key] ?? {};
    lines.push(
      `| ${target.label} | ${cell(r.small, fmtInt(r.small?.rps))} | ${cell(r.small, fmtMs(r.small?.p50_ms))} | ${cell(r.small, fmtMs(r.small?.p99_ms))} | ${cell(r.c1, fmtMs(r.c1?.p50_ms))} | ${cell(r.big, r.big?.mib_per_s?.toFixed(0))} | ${cell(r.upload, r.upload?.mib_per_s?.toFixed(0))} | ${cell(r.small, `${fmtMiB(r.small?.proxy_rss_peak)} (${fmtMiB(peakOfAll(r))})`)} | ${cell(r.small, r.small?.proxy_cpu_us_per_request?.toFixed(0))} | ${errorsOf(target.key)} |`,
    );
  }
  lines.push(
    "",
    "| proxy ÷ nginx | req/s | p99 | c1 p50 | /big MiB/s | upload MiB/s | RSS | goals met |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const target of targets) {
    if (target.key === "nginx") continue;
    const goals = goalsOf(results, target.key);
    const met = goals.filter((g) => g.met).length;
    const missed = goals.filter((g) => !g.met).map((g) => g.name);
    const rss = ratio(results, target.key, "small", "proxy_rss_peak");
    const goalCell = target.key === "direct" ? "(not a proxy)" : `${met}/${goals.length}${missed.length ? ` (missed: ${missed.join(", ")})` : ""}`;
    lines.push(
      `| ${target.label} | ${ratioCell(ratio(results, target.key, "small", "rps"))} | ${ratioCell(ratio(results, target.key, "small", "p99_ms"))} | ${ratioCell(ratio(results, target.key, "c1", "p50_ms"))} | ${ratioCell(ratio(results, target.key, "big", "mib_per_s"))} | ${ratioCell(ratio(results, target.key, "upload", "mib_per_s"))} | ${ratioCell(rss)} | ${goalCell} |`,
    );
  }
  if (runs.stack) {
    lines.push("", "Goals for our proxy (the stack's front listener) against nginx with 1 worker process:", "");
    for (const g of goalsOf(results, "stack")) {
      const value = g.name === "rss" ? fmtMiB(g.value) : fmtRatio(g.value);
      lines.push(`- ${g.text}: ${value} — ${g.met ? "met" : g.why ? `MISSED (${g.why})` : "MISSED"}`);
    }
  }
  const notes = [
    "c1 = wrk -t1 -c1. Ratios: higher is better for req/s and MiB/s, lower for p99, c1 p50 and RSS.",
    "RSS: our proxy's is the whole `up` process (supervisor, pm2 client and proxy in one); nginx's is master + worker; a variant's is its one process; the direct row's is the worker's.",
    "✗: that run had errors (non-2xx responses, socket errors, wrong upload answers, worker responses left unread on open connections, a worker that died); its ratios are struck through and count as missed goals.",
  ];
  if (Object.values(runs).some((r) => Object.values(r).some((m) => m?.disturbed))) notes.push(`⚠: other processes used more than ${QUIET_CPUS} CPU during that run: its figures are disturbed.`);
  lines.push("", ...notes.map((n) => `${n}  `));
  return lines.join("\n");
}

function toolVersion(command, args) {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.split("\n").find((line) => line.trim())?.trim() ?? "unknown";
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(WRK)) fail(`wrk not found at ${WRK} (Debian: apt-get install wrk; or set WRK=/path/to/wrk)`);
  if (!existsSync(NGINX)) fail(`nginx not found at ${NGINX} (Debian: apt-get install nginx; or set NGINX=/path/to/nginx)`);

  const machine = {
    ...machineInfo(),
    wrk: toolVersion(WRK, ["-v"]),
    nginx: toolVersion(NGINX, ["-v"]),
    load_average_start: os.loadavg().map((v) => +v.toFixed(2)),
  };
  log(`tsgi-stack proxy benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}, ${machine.wrk.split(" [")[0]}, ${machine.nginx}`);
  log(
    `each proxy, in turn: ${KINDS.map((k) => `${k.label} ${k.seconds} s`).join("; ")}; a ${WARMUP_S} s warm-up before each; ${PLANNED_LOAD_S} s of load in all${QUICK ? " (--quick)" : ""}\n`,
  );
  machine.others_cpu_before = await quietBefore("the benchmark");

  // Short: the workers' socket paths must stay under the unix limit, and the pm2 daemon's command line keeps only the start of its home.
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsp-"));
  log("starting the proxies");
  const stack = await startStack();
  const sockets = stack.workers.map((w) => w.socket);
  const workerPids = stack.workers.map((w) => w.pid);
  stackWorkers = stack.workers.map((w) => ({ ...w }));
  const targets = [];
  if (SELECTED.includes("stack")) {
    targets.push({ key: "stack", label: "tsgi-stack proxy (`up`)", proc: stack.proc, port: stack.port, workerPids, proxyPids: () => [stack.proc.pid] });
  }
  const nginx = await startNginx(sockets);
  targets.push({
    key: "nginx",
    label: `nginx ${machine.nginx.split("/").pop()} (1 worker)`,
    proc: nginx.proc,
    port: nginx.port,
    workerPids,
    proxyPids: () => [nginx.proc.pid, ...nginx.proc.descendants.keys()],
  });
  for (const key of Object.keys(VARIANTS).filter((k) => SELECTED.includes(k))) {
    const variant = await startVariant(key, sockets);
    targets.push({ key, label: variant.label, proc: variant.proc, port: variant.port, workerPids, proxyPids: () => [variant.proc.pid] });
  }
  if (SELECTED.includes("direct")) {
    const direct = await startDirect();
    targets.push({ key: "direct", label: "no proxy: a 3rd worker on TCP (ceiling)", proc: direct.proc, port: direct.port, workerPids: [], proxyPids: () => [direct.workerPid] });
  }

  log("\nchecking the answers and the forwarded headers");
  const checks = {};
  for (const target of targets) {
    const check = await checkTarget(target);
    checks[target.key] = check;
    const headers = check.headers.differences?.length ? `; forwarded headers differ from ours: ${check.headers.differences.join(", ")}` : target.key === "direct" ? "" : "; forwarding headers as ours";
    log(`  ${target.key.padEnd(13)} ${check.ok ? "/, /big and /upload answer right" : `WRONG: ${check.problems.join("; ")}`}${headers}`);
    target.idleRss = rssOf(target.proxyPids());
  }
  for (const key of ["stack", "nginx"]) {
    if (checks[key] && !checks[key].ok) throw new Error(`${key} does not answer right (${checks[key].problems.join("; ")}): no comparison is possible`);
  }
  const measured = targets.filter((target) => checks[target.key].ok);

  const runs = Object.fromEntries(targets.map((target) => [target.key, {}]));
  for (const [index, kind] of KINDS.entries()) {
    // Interleaved: one measurement on every proxy, then the next; the order rotates so that none always goes first.
    const order = measured.map((_, i) => measured[(i + index) % measured.length]);
    log(`\n${index + 1}. ${kind.label}, ${kind.seconds} s each (order: ${order.map((t) => t.key).join(", ")})`);
    for (const target of order) runs[target.key][kind.key] = await measure(target, kind);
  }

  // What the stack said besides its start: a worker's exit, a restart, a health change.
  const stackStarted = stack.proc.lines.findIndex((line) => SERVING.test(line.text));
  const stackSaid = stack.proc.lines.slice(stackStarted + 1).map((line) => line.text).filter((text) => text.trim());
  const nginxErrors = existsSync(`${nginx.dir}/error.log`) ? readFileSync(`${nginx.dir}/error.log`, "utf8").split("\n").filter(Boolean) : [];
  const stderrOf = (target) => (target.key === "stack" ? "" : target.proc.stderr.trim());
  const results = {
    date: new Date().toISOString(),
    machine,
    settings: {
      quick: QUICK,
      kinds: KINDS.map(({ key, label, connections, seconds, target, bytes }) => ({ key, label, connections, seconds, target, bytes })),
      warmup_s: WARMUP_S,
      quiet_wait_s: QUIET_WAIT_S,
      nginx_buffering: NGINX_BUFFERING,
      goals: GOALS,
      rss_sample_ms: RSS_SAMPLE_MS,
    },
    stack_config: stack.configText,
    nginx_config: nginx.confText,
    workers: stack.workers,
    stack_log_after_start: stackSaid.slice(0, 50),
    proxies: Object.fromEntries(
      targets.map((target) => [
        target.key,
        { label: target.label, pid: target.proc.pid, port: target.port, idle_rss: target.idleRss, check: checks[target.key], stderr: stderrOf(target) || undefined },
      ]),
    ),
    runs,
    nginx_error_log: { lines: nginxErrors.length, first: nginxErrors.slice(0, 20), last: nginxErrors.slice(-10) },
    load_seconds: round(loadSpent, 1),
    quiet_wait_seconds: round(quietSpent, 1),
  };
  results.ratios = Object.fromEntries(
    targets
      .filter((target) => target.key !== "nginx")
      .map((target) => [
        target.key,
        Object.fromEntries(
          [
            ["rps", "small", "rps"],
            ["p99", "small", "p99_ms"],
            ["c1_p50", "c1", "p50_ms"],
            ["big_mib_per_s", "big", "mib_per_s"],
            ["upload_mib_per_s", "upload", "mib_per_s"],
            ["rss", "small", "proxy_rss_peak"],
          ].map(([name, kind, figure]) => {
            const r = ratio(results, target.key, kind, figure);
            return [name, { value: round(r.value, 3), invalid: r.why }];
          }),
        ),
      ]),
  );
  results.goals = Object.fromEntries(targets.filter((t) => t.key !== "nginx" && t.key !== "direct").map((t) => [t.key, goalsOf(results, t.key)]));

  log(`\ntotal load: ${loadSpent.toFixed(1)} s; waiting for quiet: ${quietSpent.toFixed(1)} s`);
  for (const target of targets) {
    const stderr = stderrOf(target);
    if (stderr) log(`  ⚠ ${target.key} wrote to stderr: ${stderr.split("\n").slice(-5).join(" | ")}`);
  }
  if (stackSaid.length) {
    log(`  ⚠ the stack printed ${stackSaid.length} line(s) during the measurements; the first ones:`);
    for (const line of stackSaid.slice(0, 8)) log(`    ${line}`);
  }
  if (nginxErrors.length) {
    log(`  ⚠ nginx's error log has ${nginxErrors.length} line(s); the first: ${nginxErrors[0]}`);
    if (nginxErrors.length > 1) log(`    the last: ${nginxErrors[nginxErrors.length - 1]}`);
  }
  log("");

  // Everything is stopped before the tables, so that the JSON can say whether anything was left behind.
  await stopAll();
  results.left_running = leftRunning;
  machine.load_average_end = os.loadavg().map((v) => +v.toFixed(2));
  const table = markdown(results, targets);
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
// Everything is stopped: do not wait for the grace-period timers of lib.mjs's Proc.stop() (up to 60 s for the stack).
process.exit();
