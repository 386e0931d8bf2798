#!/usr/bin/env node
/**
 * The gateway benchmark: `npm run bench:gateway` (or `node bench/gateway.mjs`).
 * See bench/README.md for what each row means and the goals.
 *
 * In one run, on 127.0.0.1 only, it measures
 *   1. examples/hello through `tsgi-stack serve --no-arbiter` (one worker), the
 *      same through the arbiter (`-w 1`), and a bare node:http server doing the
 *      same work (bench/apps/node-hello.mjs) — wrk -t1 -c50 -d10s --latency;
 *   2. nginx -> the same worker over uwsgi_pass, against nginx -> node:http over
 *      proxy_pass with a keep-alive upstream;
 *   3. the worker's RSS while it streams 100 MiB (bench/apps/stream.ts) to a
 *      fast client and to a slow one (back-pressure).
 * It prints Markdown tables and writes bench/results/gateway-latest.json.
 *
 * Every process it starts (workers, the arbiter, nginx, wrk) is stopped by its
 * pid at the end, on error and on SIGINT/SIGTERM; so are their children (the
 * arbiter's workers, nginx's worker), found through /proc. Load is bounded:
 * all load phases together stay within 60 s.
 *
 * Options: --duration N  seconds per measured wrk run (default 10)
 *          --warmup N    seconds of wrk warm-up per target (default 1)
 *          --only PARTS  a comma list of hello, nginx, stream (default all three)
 *          --out PATH    where the JSON goes (default bench/results/gateway-latest.json
 *                        for a whole run, nowhere for an --only run)
 *          --quiet-wait N  before each measurement, wait up to N seconds (default
 *                        180) for other processes to leave the CPUs alone (0: do
 *                        not wait); a run disturbed anyway is flagged with ⚠
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import {
  CLI,
  freePorts,
  HOST,
  MiB,
  Proc,
  QUIET_CPUS,
  ROOT,
  WRK,
  cpuSeconds,
  log,
  machineCpu,
  machineInfo,
  parseWrk,
  readMemory,
  runBenchmark,
  sleep,
  stopRunning,
  waitForQuiet,
} from "./lib.mjs";

const HELLO_APP = "examples/hello/app.ts";
const STREAM_APP = "bench/apps/stream.ts";
const NODE_HELLO = path.join(ROOT, "bench/apps/node-hello.mjs");
const NGINX = process.env.NGINX ?? "/usr/sbin/nginx";
const UWSGI_PARAMS = "/etc/nginx/uwsgi_params";
const CONNECTIONS = 50;
const LOAD_BUDGET_S = 60;
const STREAM_MIB = 100;
const SLOW_RATE = 1 * MiB; // bytes per second the slow client allows itself
const SLOW_SECONDS = 5;

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    out: { type: "string" },
    "quiet-wait": { type: "string", default: "180" },
    only: { type: "string" },
  },
});
const DURATION_S = wholeSeconds(flags.duration, "--duration");
const WARMUP_S = wholeSeconds(flags.warmup, "--warmup");
const QUIET_WAIT_S = /^\d+$/.test(flags["quiet-wait"]) ? Number(flags["quiet-wait"]) : fail(`--quiet-wait ${flags["quiet-wait"]}: expected a whole number of seconds`);
const PARTS = ["hello", "nginx", "stream"];
const ONLY = new Set(flags.only ? flags.only.split(",").map((part) => part.trim()) : PARTS);
for (const part of ONLY) if (!PARTS.includes(part)) fail(`--only ${flags.only}: the parts are ${PARTS.join(", ")}`);
// A partial run does not replace the figures of a whole one unless told where to write.
const OUT = flags.out ?? (ONLY.size === PARTS.length ? path.join(ROOT, "bench/results/gateway-latest.json") : undefined);
const WRK_SETTINGS = `-t1 -c${CONNECTIONS} -d${DURATION_S}s --latency`;

function wholeSeconds(value, flag) {
  if (!/^\d+$/.test(value) || Number(value) < 1) fail(`${flag} ${value}: expected a whole number of seconds >= 1 (wrk takes whole seconds)`);
  return Number(value);
}

function fail(message) {
  process.stderr.write(`bench/gateway: ${message}\n`);
  process.exit(2);
}

/** The benchmark's temporary directory (nginx's prefix), removed at the end. */
let tmpDir;

// ---------------------------------------------------------------- servers

const READY = /tsgi worker (\d+): ready: (.*)/;

/** Starts `tsgi-stack serve MODULE ...args`; resolves with its ports once the worker says ready. */
async function startTsgi(name, module, args) {
  const proc = new Proc(name, process.execPath, [CLI, "serve", module, ...args]);
  const [, workerPid, listeners] = await proc.waitFor(READY, 30_000, "ready");
  proc.recordDescendants();
  const port = (scheme) => Number(new RegExp(`${scheme}://${HOST.replaceAll(".", "\\.")}:(\\d+)`).exec(listeners)?.[1]);
  return { proc, workerPid: Number(workerPid), http: port("http"), uwsgi: port("uwsgi") };
}

async function startNodeHello() {
  const proc = new Proc("node:http hello", process.execPath, [NODE_HELLO, `${HOST}:0`]);
  const [, port] = await proc.waitFor(/ready: http:\/\/[^:]+:(\d+)/, 10_000, "ready");
  return { proc, http: Number(port) };
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

function nginxConf(dir, ports, upstream) {
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  return `# written by bench/gateway.mjs
daemon off;
master_process on;
worker_processes 1;
${user}pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  upstream node_http {
    server ${HOST}:${upstream.nodePort};
    keepalive 16;
  }
  # nginx -> tsgi worker, binary uwsgi protocol (one upstream connection per request)
  server {
    listen ${HOST}:${ports.uwsgi};
    location / {
      include ${UWSGI_PARAMS};
      uwsgi_pass ${HOST}:${upstream.uwsgiPort};
    }
  }
  # nginx -> bare node:http, HTTP/1.1 with keep-alive upstream connections
  server {
    listen ${HOST}:${ports.proxy};
    location / {
      proxy_pass http://node_http;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Starts nginx in front of both upstreams; retries with new ports if one was taken meanwhile. */
async function startNginx(upstream) {
  const dir = path.join(tmpDir, "nginx");
  for (let attempt = 1; attempt <= 5; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const [uwsgi, proxy] = await freePorts(2);
    const conf = path.join(dir, "nginx.conf");
    writeFileSync(conf, nginxConf(dir, { uwsgi, proxy }, upstream));
    const proc = new Proc("nginx", NGINX, ["-p", `${dir}/`, "-c", conf, "-e", `${dir}/error.log`]);
    let error;
    for (const started = Date.now(); Date.now() - started < 10_000; await sleep(50)) {
      if (proc.done) break;
      if ((await canConnect(uwsgi)) && (await canConnect(proxy))) break;
    }
    if (!proc.done) {
      proc.recordDescendants();
      if ((await canConnect(uwsgi)) && (await canConnect(proxy))) {
        // worker_processes 1: the master's one child is the worker that serves.
        return { proc, uwsgi, proxy, conf, workerPid: [...proc.descendants.keys()][0] };
      }
      error = "nginx did not start listening within 10 s";
    } else {
      error = `nginx ${proc.describeExit()}`;
    }
    const errorLog = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, "utf8") : "";
    await proc.stop();
    const detail = `${proc.stderr}${errorLog}`;
    if (!/Address already in use|bind\(\)/.test(detail)) throw new Error(`${error}:\n${detail}`);
    log(`  nginx could not bind (attempt ${attempt}), picking other ports`);
  }
  throw new Error("nginx could not bind a free port in 5 attempts");
}

// ---------------------------------------------------------------- load

/** Seconds of load generated so far: all of it must fit in LOAD_BUDGET_S. */
let loadSpent = 0;

function reserveLoad(seconds, what) {
  if (loadSpent + seconds > LOAD_BUDGET_S + 0.5) {
    throw new Error(`${what} (${seconds} s) would take the load past the ${LOAD_BUDGET_S} s budget (${loadSpent.toFixed(1)} s spent)`);
  }
}

/**
 * One wrk run: -t1 -cCONNECTIONS -dSECONDS --latency against `url`, bounded in
 * time. `cpuPids` (name -> pid) are the servers whose CPU time per request is
 * recorded: on a machine that wrk shares with them, req/s moves with the
 * scheduler, the CPU each request costs much less.
 */
async function wrk(url, seconds, label, cpuPids = {}) {
  reserveLoad(seconds, `wrk ${label}`);
  const cpuBefore = Object.fromEntries(Object.entries(cpuPids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const machineBefore = machineCpu();
  const started = performance.now();
  const proc = new Proc(`wrk ${label}`, WRK, ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", url]);
  // wrk's own CPU time, read while it runs (its /proc entry goes with it).
  let wrkCpu = 0;
  const poll = setInterval(() => (wrkCpu = cpuSeconds(proc.pid) ?? wrkCpu), 100);
  await proc.exitWithin((seconds + 15) * 1000);
  clearInterval(poll);
  const elapsed = (performance.now() - started) / 1000;
  const machineBusy = machineCpu().busy - machineBefore.busy;
  loadSpent += elapsed;
  if (proc.exitCode !== 0) throw new Error(`wrk ${label} ${proc.describeExit()}:\n${proc.stderr}${proc.stdout}`);
  const result = parseWrk(proc.stdout);
  if (result.rps === undefined || result.p50_ms === undefined || result.p99_ms === undefined) {
    throw new Error(`cannot read wrk's output:\n${proc.stdout}`);
  }
  result.cpu_us_per_request = {};
  let ours = wrkCpu;
  for (const [name, pid] of Object.entries(cpuPids)) {
    const after = cpuSeconds(pid);
    if (after !== undefined && cpuBefore[name] !== undefined && result.requests > 0) {
      ours += after - cpuBefore[name];
      result.cpu_us_per_request[name] = +(((after - cpuBefore[name]) * 1e6) / result.requests).toFixed(1);
    }
  }
  result.cpu_cores = { wrk: +(wrkCpu / elapsed).toFixed(2), machine: +(machineBusy / elapsed).toFixed(2) };
  // What the rest of the machine took meanwhile (other processes, the kernel's softirq time is mostly ours):
  // above ~0.1 core, the req/s and latency of this run were disturbed.
  result.cpu_cores.others = +(Math.max(0, machineBusy - ours) / elapsed).toFixed(2);
  result.disturbed = result.cpu_cores.others > QUIET_CPUS;
  return result;
}

/** A warm-up run (discarded), then the measured one. */
async function measure(label, url, { warmup = true, cpu = {} } = {}) {
  await waitForQuiet(label, QUIET_WAIT_S);
  const warm = warmup ? await wrk(url, WARMUP_S, `${label} warm-up`) : undefined;
  const result = await wrk(url, DURATION_S, label, cpu);
  if (warm?.errors > 0) result.warmup_errors = warm.errors;
  const errors = result.errors > 0 ? `, ${result.errors} errors (non-2xx ${result.non2xx}, socket ${JSON.stringify(result.socket_errors)})` : "";
  const cpuText = Object.entries(result.cpu_us_per_request).map(([name, us]) => `${name} ${us.toFixed(0)} µs`).join(" + ");
  const others = result.cpu_cores.others > QUIET_CPUS ? `   ⚠ other processes took ${result.cpu_cores.others} cores meanwhile` : "";
  log(`  ${label.padEnd(34)} ${fmtInt(result.rps).padStart(8)} req/s   p50 ${fmtMs(result.p50_ms).padStart(9)}   p99 ${fmtMs(result.p99_ms).padStart(9)}   CPU/request: ${cpuText}${errors}${others}`);
  return { url, ...result };
}

// ---------------------------------------------------------------- responses

/** One GET over a raw keep-alive socket, as wrk sends it: the status line, the header list and the body. */
function rawGet(port, target = "/") {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST);
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`GET ${target} on port ${port}: no complete response in 5 s`));
    }, 5000);
    socket.on("connect", () => socket.write(`GET ${target} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n\r\n`));
    socket.on("data", (data) => {
      buffer = Buffer.concat([buffer, data]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [statusLine, ...lines] = buffer.subarray(0, end).toString("latin1").split("\r\n");
      const headers = lines.map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon), line.slice(colon + 1).trim()];
      });
      const length = headers.find(([name]) => name.toLowerCase() === "content-length");
      const body = buffer.subarray(end + 4);
      if (!length) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ statusLine, headers, body: body.toString(), note: "no Content-Length" });
      } else if (body.length >= Number(length[1])) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ statusLine, headers, body: body.subarray(0, Number(length[1])).toString() });
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The differences between two responses, ignoring Date and header order and case. */
function compareResponses(a, b) {
  const norm = (response) =>
    response.headers
      .filter(([name]) => name.toLowerCase() !== "date")
      .map(([name, value]) => `${name.toLowerCase()}: ${value}`)
      .sort();
  const differences = [];
  if (a.statusLine !== b.statusLine) differences.push(`status ${JSON.stringify(a.statusLine)} vs ${JSON.stringify(b.statusLine)}`);
  const [ha, hb] = [norm(a), norm(b)];
  for (const header of ha) if (!hb.includes(header)) differences.push(`only in the first: ${header}`);
  for (const header of hb) if (!ha.includes(header)) differences.push(`only in the second: ${header}`);
  if (a.body !== b.body) differences.push(`body ${JSON.stringify(a.body)} vs ${JSON.stringify(b.body)}`);
  return differences;
}

async function checkSame(label, portA, portB) {
  const [a, b] = await Promise.all([rawGet(portA), rawGet(portB)]);
  const differences = compareResponses(a, b);
  if (!a.statusLine.includes(" 200 ") || !b.statusLine.includes(" 200 ")) {
    throw new Error(`${label}: expected 200 from both, got ${JSON.stringify(a.statusLine)} and ${JSON.stringify(b.statusLine)}`);
  }
  if (differences.length === 0) log(`  ${label}: same status, headers (but Date) and body ✓`);
  else log(`  ${label}: the responses differ:\n    ${differences.join("\n    ")}`);
  const show = (r) => [r.statusLine, ...r.headers.map(([n, v]) => `${n}: ${v}`), "", r.body];
  return { same: differences.length === 0, differences, responses: [show(a), show(b)] };
}

// ---------------------------------------------------------------- streaming

function getJson(port, target) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path: target, agent: false, timeout: 5000 }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error);
          }
        });
      })
      .on("error", reject)
      .on("timeout", function () {
        this.destroy(new Error(`GET ${target}: timeout`));
      });
  });
}

/** Downloads as fast as node's HTTP client reads, for at most limitMs. */
function fastClient(port, limitMs) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let bytes = 0;
    const finish = (complete) => {
      clearTimeout(timer);
      resolve({ bytes, seconds: (performance.now() - started) / 1000, complete });
    };
    const request = http.get({ host: HOST, port, path: `/?mib=${STREAM_MIB}`, agent: false }, (res) => {
      res.on("data", (chunk) => (bytes += chunk.length));
      res.on("end", () => finish(true));
      res.on("error", reject);
    });
    request.on("error", (error) => (bytes > 0 ? finish(false) : reject(error)));
    const timer = setTimeout(() => {
      finish(false);
      request.destroy();
    }, limitMs);
  });
}

/**
 * A slow reader on a raw socket: every 100 ms it resumes the socket until it
 * has read its allowance (rateBytes per second), then pauses it again — the
 * kernel buffers fill and the server must stop producing. Hangs up after seconds.
 */
function slowClient(port, seconds, rateBytes) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, HOST);
    let received = 0;
    let allowance = 0;
    socket.pause();
    socket.on("connect", () => socket.write(`GET /?mib=${STREAM_MIB} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n\r\n`));
    socket.on("data", (data) => {
      received += data.length;
      if (received >= allowance) socket.pause();
    });
    socket.on("error", reject);
    const tick = setInterval(() => {
      allowance += rateBytes / 10;
      if (received < allowance) socket.resume();
    }, 100);
    setTimeout(() => {
      clearInterval(tick);
      socket.destroy();
      resolve({ bytes: received, seconds: (performance.now() - started) / 1000 });
    }, seconds * 1000);
  });
}

/** Streams 100 MiB from a fresh worker to `client`, sampling the worker's RSS meanwhile. */
async function streamCase(kind, runClient) {
  await waitForQuiet(`the ${kind} stream`, QUIET_WAIT_S);
  const server = await startTsgi(`tsgi stream (${kind})`, STREAM_APP, ["--http", `${HOST}:0`, "--no-arbiter"]);
  try {
    await sleep(500); // let the boot settle before the "before" figure
    const pid = server.workerPid;
    const before = readMemory(pid);
    let peakRss = before.rss;
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, readMemory(pid).rss);
      } catch {}
    }, 10);
    const started = performance.now();
    let client;
    try {
      client = await runClient(server.http);
    } finally {
      clearInterval(sampler);
      loadSpent += (performance.now() - started) / 1000;
    }
    const after = readMemory(pid);
    // VmHWM is the lifetime peak: it says something about the stream only if the stream raised it.
    const peak = Math.max(peakRss, after.hwm > before.hwm ? after.hwm : 0, after.rss);
    let stats = await getJson(server.http, "/stats");
    for (let waited = 0; !stats.closed && waited < 3000; waited += 100) {
      await sleep(100);
      stats = await getJson(server.http, "/stats");
    }
    return {
      client_bytes: client.bytes,
      client_seconds: client.seconds,
      complete: client.complete,
      produced_bytes: stats.producedBytes,
      generator_completed: stats.completed,
      generator_closed: stats.closed,
      rss_before: before.rss,
      rss_peak: peak,
      rss_after: after.rss,
      hwm_before: before.hwm,
      hwm_after: after.hwm,
      rss_growth: peak - before.rss,
    };
  } finally {
    await server.proc.stop();
  }
}

// ---------------------------------------------------------------- formatting

const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
const fmtMs = (ms) => (ms === undefined ? "–" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const fmtMiB = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
const fmtRatio = (r) => `${r.toFixed(2)}x`;

function toolVersion(command, args) {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.split("\n").find((line) => line.trim())?.trim() ?? "unknown";
}

function markdown(results) {
  const { hello, nginx, stream } = results;
  const cpuCell = (r) => {
    const { worker, server, nginx: front } = r.cpu_us_per_request;
    const upstream = worker ?? server;
    return `${upstream === undefined ? "–" : upstream.toFixed(0)}${front === undefined ? "" : ` + ${front.toFixed(0)}`}`;
  };
  const row = (label, r, base) =>
    `| ${label}${r.disturbed ? " ⚠" : ""} | ${fmtInt(r.rps)} | ${fmtMs(r.p50_ms)} | ${fmtMs(r.p99_ms)} | ${base ? fmtRatio(r.rps / base.rps) : "baseline"} | ${base ? fmtRatio(r.p99_ms / base.p99_ms) : "baseline"} | ${cpuCell(r)} | ${r.errors} |`;
  const lines = [];
  if (hello || nginx) {
    lines.push(
      `| hello app, wrk ${WRK_SETTINGS} | req/s | p50 | p99 | req/s vs baseline | p99 vs baseline | server CPU µs/req (+ nginx) | errors |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|",
    );
  }
  if (hello) {
    lines.push(
      row("bare `node:http`", hello.node),
      row("`tsgi-stack serve --no-arbiter` (1 worker)", hello.tsgi, hello.node),
      row("`tsgi-stack serve -w 1` (arbiter + 1 worker)", hello.arbiter, hello.node),
    );
  }
  if (nginx) {
    lines.push(
      row("nginx → `node:http` (proxy_pass, keepalive 16)", nginx.node),
      row("nginx → tsgi worker (uwsgi_pass)", nginx.uwsgi, nginx.node),
    );
  }
  if ([hello?.node, hello?.tsgi, hello?.arbiter, nginx?.node, nginx?.uwsgi].some((r) => r?.disturbed)) {
    lines.push("", "⚠ other processes used more than 0.15 CPU during this run: its figures are disturbed.");
  }
  if (stream) {
    const s = (label, r, client) =>
      `| ${label} | ${fmtMiB(r.rss_before)} | ${fmtMiB(r.rss_peak)} | +${fmtMiB(r.rss_growth)} | ${fmtMiB(r.produced_bytes - r.client_bytes)} | ${client} |`;
    if (lines.length) lines.push("");
    lines.push(
      `| ${STREAM_MIB} MiB stream, 64 KiB chunks | worker RSS before | peak | growth | produced − received | client |`,
      "|---|---:|---:|---:|---:|---:|",
      s("fast client (reads as fast as it can)", stream.fast, `${(stream.fast.client_bytes / MiB / stream.fast.client_seconds).toFixed(0)} MiB/s${stream.fast.complete ? "" : " (incomplete)"}`),
      s(`slow client (≈${SLOW_RATE / MiB} MiB/s, paused/resumed, hangs up after ${stream.slow.client_seconds.toFixed(1)} s)`, stream.slow, `${fmtMiB(stream.slow.client_bytes)} read`),
    );
  }
  return lines.join("\n");
}

/** 1. hello: the tsgi worker against bare node:http, and the same app through the arbiter. */
async function partHello(tsgi, node) {
  log("1. hello app: tsgi-stack serve vs bare node:http");
  const hello = {};
  hello.response_check = await checkSame("tsgi vs node:http", tsgi.http, node.http);
  hello.tsgi = await measure("tsgi serve --no-arbiter", `http://${HOST}:${tsgi.http}/`, { cpu: { worker: tsgi.workerPid } });
  hello.node = await measure("bare node:http", `http://${HOST}:${node.http}/`, { cpu: { server: node.proc.pid } });
  const arbiter = await startTsgi("tsgi arbiter", HELLO_APP, ["--http", `${HOST}:0`, "-w", "1"]);
  try {
    hello.arbiter = await measure("tsgi serve -w 1 (arbiter)", `http://${HOST}:${arbiter.http}/`, {
      cpu: { worker: arbiter.workerPid, arbiter: arbiter.proc.pid },
    });
  } finally {
    await arbiter.proc.stop();
  }
  hello.ratio = {
    tsgi_rps: hello.tsgi.rps / hello.node.rps,
    tsgi_p99: hello.tsgi.p99_ms / hello.node.p99_ms,
    tsgi_cpu_per_request: hello.tsgi.cpu_us_per_request.worker / hello.node.cpu_us_per_request.server,
    arbiter_rps: hello.arbiter.rps / hello.node.rps,
    arbiter_p99: hello.arbiter.p99_ms / hello.node.p99_ms,
  };
  const goal = hello.ratio.tsgi_rps >= 0.9 ? "meets the >= 0.9x goal" : "BELOW the >= 0.9x goal";
  log(`  tsgi/node: req/s ${fmtRatio(hello.ratio.tsgi_rps)} (${goal}), p99 ${fmtRatio(hello.ratio.tsgi_p99)}, CPU per request ${fmtRatio(hello.ratio.tsgi_cpu_per_request)}`);
  log(`  arbiter/node: req/s ${fmtRatio(hello.ratio.arbiter_rps)}, p99 ${fmtRatio(hello.ratio.arbiter_p99)}\n`);
  return hello;
}

/** 2. nginx in front: uwsgi_pass to the tsgi worker against proxy_pass (keep-alive) to node:http. */
async function partNginx(tsgi, node) {
  log("2. nginx → tsgi worker (uwsgi) vs nginx → node:http (proxy_pass, keepalive)");
  const front = await startNginx({ uwsgiPort: tsgi.uwsgi, nodePort: node.http });
  const result = {};
  try {
    result.response_check = await checkSame("via nginx: uwsgi vs proxy_pass", front.uwsgi, front.proxy);
    result.uwsgi = await measure("nginx → tsgi (uwsgi_pass)", `http://${HOST}:${front.uwsgi}/`, {
      cpu: { worker: tsgi.workerPid, nginx: front.workerPid },
    });
    // node:http is warm from part 1 and nginx from the run above: no second warm-up (the load budget is 60 s).
    result.node = await measure("nginx → node:http (proxy_pass)", `http://${HOST}:${front.proxy}/`, {
      warmup: !ONLY.has("hello"),
      cpu: { server: node.proc.pid, nginx: front.workerPid },
    });
  } finally {
    await front.proc.stop();
  }
  result.ratio = {
    uwsgi_rps: result.uwsgi.rps / result.node.rps,
    uwsgi_p99: result.uwsgi.p99_ms / result.node.p99_ms,
    upstream_cpu_per_request: result.uwsgi.cpu_us_per_request.worker / result.node.cpu_us_per_request.server,
    nginx_cpu_per_request: result.uwsgi.cpu_us_per_request.nginx / result.node.cpu_us_per_request.nginx,
  };
  log(`  uwsgi/proxy_pass: req/s ${fmtRatio(result.ratio.uwsgi_rps)}, p99 ${fmtRatio(result.ratio.uwsgi_p99)}, upstream CPU per request ${fmtRatio(result.ratio.upstream_cpu_per_request)}, nginx CPU per request ${fmtRatio(result.ratio.nginx_cpu_per_request)}\n`);
  return result;
}

/** 3. 100 MiB streamed: the worker's memory with a fast and with a slow client. */
async function partStream() {
  log(`3. ${STREAM_MIB} MiB streamed by an async generator (64 KiB chunks) through tsgi-stack serve`);
  const stream = {};
  const fastLimit = Math.max(1, LOAD_BUDGET_S - loadSpent - 3.5);
  reserveLoad(1, "the fast stream");
  stream.fast = await streamCase("fast", (port) => fastClient(port, fastLimit * 1000));
  const f = stream.fast;
  log(`  fast: ${fmtMiB(f.client_bytes)} in ${f.client_seconds.toFixed(2)} s = ${(f.client_bytes / MiB / f.client_seconds).toFixed(0)} MiB/s${f.complete ? "" : " (INCOMPLETE)"}; worker RSS ${fmtMiB(f.rss_before)} → peak ${fmtMiB(f.rss_peak)} (+${fmtMiB(f.rss_growth)}), VmHWM ${fmtMiB(f.hwm_before)} → ${fmtMiB(f.hwm_after)}`);
  const seconds = Math.max(2, Math.min(SLOW_SECONDS, LOAD_BUDGET_S - loadSpent - 0.5));
  reserveLoad(seconds, "the slow stream");
  stream.slow = await streamCase("slow", (port) => slowClient(port, seconds, SLOW_RATE));
  const s = stream.slow;
  log(`  slow: read ${fmtMiB(s.client_bytes)} in ${s.client_seconds.toFixed(1)} s; the generator produced ${fmtMiB(s.produced_bytes)} (${fmtMiB(s.produced_bytes - s.client_bytes)} in buffers), closed after the hang-up: ${s.generator_closed}; worker RSS ${fmtMiB(s.rss_before)} → peak ${fmtMiB(s.rss_peak)} (+${fmtMiB(s.rss_growth)}), VmHWM ${fmtMiB(s.hwm_before)} → ${fmtMiB(s.hwm_after)}`);
  return stream;
}

// ---------------------------------------------------------------- main

async function main() {
  if (!existsSync(WRK)) fail(`wrk not found at ${WRK} (Debian: apt-get install wrk; or set WRK=/path/to/wrk)`);
  if (!existsSync(NGINX)) fail(`nginx not found at ${NGINX} (Debian: apt-get install nginx; or set NGINX=/path/to/nginx)`);
  if (!existsSync(UWSGI_PARAMS)) fail(`${UWSGI_PARAMS} not found (it comes with Debian's nginx-common)`);
  // Measured runs and warm-ups: hello 3 + 3, nginx 2 + 1 (2 + 2 without hello).
  const fixedLoad =
    (ONLY.has("hello") ? 3 * (DURATION_S + WARMUP_S) : 0) + (ONLY.has("nginx") ? 2 * DURATION_S + (ONLY.has("hello") ? 1 : 2) * WARMUP_S : 0);
  if (fixedLoad + 3 > LOAD_BUDGET_S) fail(`--duration ${DURATION_S} --warmup ${WARMUP_S}: ${fixedLoad} s of wrk leaves no room for the streams in the ${LOAD_BUDGET_S} s load budget`);

  const idleLoad = await waitForQuiet("the benchmark", QUIET_WAIT_S);
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "tsgi-bench-"));

  const machine = {
    ...machineInfo(),
    wrk: toolVersion(WRK, ["-v"]),
    nginx: toolVersion(NGINX, ["-v"]),
  };
  log(`tsgi-stack gateway benchmark — ${machine.cpus} CPUs (${machine.cpu_model}), node ${machine.node}, ${machine.wrk.split(" [")[0]}, ${machine.nginx}`);
  log(`wrk ${WRK_SETTINGS} after a ${WARMUP_S} s warm-up; wrk and the servers share the machine's CPUs\n`);
  machine.load_before_cpus = +idleLoad.toFixed(2);
  const results = { date: new Date().toISOString(), machine, settings: { wrk: WRK_SETTINGS, warmup_s: WARMUP_S, load_budget_s: LOAD_BUDGET_S } };

  const needServers = ONLY.has("hello") || ONLY.has("nginx");
  const [tsgi, node] = needServers
    ? await Promise.all([
        startTsgi("tsgi worker", HELLO_APP, ["--http", `${HOST}:0`, "--uwsgi", `${HOST}:0`, "--no-arbiter"]),
        startNodeHello(),
      ])
    : [];
  if (ONLY.has("hello")) results.hello = await partHello(tsgi, node);
  if (ONLY.has("nginx")) results.nginx = await partNginx(tsgi, node);
  if (needServers) await Promise.all([tsgi.proc.stop(), node.proc.stop()]);
  if (ONLY.has("stream")) results.stream = await partStream();
  results.load_seconds = +loadSpent.toFixed(1);
  log(`\ntotal load: ${loadSpent.toFixed(1)} s (budget ${LOAD_BUDGET_S} s)\n`);

  const table = markdown(results);
  results.markdown = table;
  log(table);
  if (OUT) {
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
    log(`\nwritten: ${path.relative(process.cwd(), OUT) || OUT}`);
  }
}

await runBenchmark("gateway", main, {
  stopAll: async () => {
    await stopRunning();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  },
});
