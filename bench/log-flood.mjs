#!/usr/bin/env node
/**
 * The log-flood benchmark: `node bench/log-flood.mjs` (after `npm run build`).
 * The reliability campaign's fault 4, measured: an app whose workers flood
 * their stdout under `tsgi-stack up`.
 *
 * In a temporary directory it writes a tsgi.yaml with one module app,
 * test/fixtures/apps/flood.ts, --instances workers (default 2) writing
 * --mb-per-s megabytes a second between them (default 50) for --seconds
 * (default 20), proxy and admin on 127.0.0.1 port 0. While the flood runs it
 *   1. samples the RSS of the `up` process and of the stack's pm2 daemon every
 *      100 ms (/proc/PID/status) and keeps the peaks and the last values;
 *   2. asks the proxy for / every 50 ms and counts the answers by status;
 *   3. --kill-at seconds in (default 5), SIGKILLs slot 0's worker and polls the
 *      admin /status every 50 ms: how long until the slot is no longer the
 *      ready old pid, and until it is ready with a new one;
 * then measures the log folder (total, largest file, file count) and how long
 * `tsgi-stack logs flood -n 3` takes. It prints a Markdown table and writes
 * bench/results/log-flood-latest.json (--out).
 *
 * The stack is stopped with SIGINT as a user would (Ctrl-C); every process
 * left naming the temporary directory is SIGKILLed by pid, and said so.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { CLI, MiB, Proc, ROOT, log, machineInfo, memory, runBenchmark, sleep, stopRunning, sweepProcessesNaming } from "./lib.mjs";

const { values: options } = parseArgs({
  options: {
    "mb-per-s": { type: "string", default: "50" },
    seconds: { type: "string", default: "20" },
    instances: { type: "string", default: "2" },
    "kill-at": { type: "string", default: "5" },
    out: { type: "string", default: path.join(ROOT, "bench/results/log-flood-latest.json") },
  },
});
const rate = Number(options["mb-per-s"]);
const seconds = Number(options.seconds);
const instances = Number(options.instances);
const killAt = Number(options["kill-at"]);
const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-bench-flood-"));

function get(url) {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false, timeout: 2000 }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode));
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(0));
  });
}

async function workers(admin) {
  return new Promise((resolve, reject) => {
    http
      .get(`${admin}/status`, { agent: false }, (response) => {
        let body = "";
        response.on("data", (data) => (body += data));
        response.on("end", () => resolve(JSON.parse(body).workers));
      })
      .on("error", reject);
  });
}

async function main() {
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(
    file,
    `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  flood:
    module: ${ROOT}/test/fixtures/apps/flood.ts
    instances: ${instances}
    env: { FLOOD_MB_PER_S: "${rate / instances}", FLOOD_SECONDS: "${seconds}" }
    routes: [{ path: / }]
`,
  );
  log(`${instances} workers writing ${rate} MB/s between them for ${seconds} s; slot 0 SIGKILLed ${killAt} s in`);
  const up = new Proc("up", process.execPath, [CLI, "up", "-c", file]);
  const [, url, admin] = await up.waitFor(/serving on (http:\/\/[^/\s]+)\/.*status page (http:\/\/[^/\s]+)\//, 60_000, "serving on");
  const floodStart = performance.now();
  const daemon = Number(readFileSync(path.join(dir, ".tsgi/pm2/pm2.pid"), "utf8"));
  const peak = { up: 0, daemon: 0 };
  const last = { up: 0, daemon: 0 };
  const sampler = setInterval(() => {
    for (const [key, pid] of [["up", up.pid], ["daemon", daemon]]) {
      const rss = memory(pid)?.rss ?? 0;
      last[key] = rss;
      peak[key] = Math.max(peak[key], rss);
    }
  }, 100);
  const answers = {};
  let asking = true;
  const asker = (async () => {
    while (asking) {
      const status = await get(`${url}/`);
      answers[status] = (answers[status] ?? 0) + 1;
      await sleep(50);
    }
  })();

  await sleep(killAt * 1000);
  const victim = (await workers(admin)).find((row) => row.slot === 0);
  process.kill(victim.pid, "SIGKILL");
  const killedAt = performance.now();
  let seenGoneMs;
  let replacedMs;
  while (replacedMs === undefined && performance.now() - killedAt < 60_000) {
    const row = (await workers(admin)).find((candidate) => candidate.slot === 0);
    const t = performance.now() - killedAt;
    if (seenGoneMs === undefined && !(row?.state === "ready" && row.pid === victim.pid)) seenGoneMs = t;
    if (row?.state === "ready" && row.pid !== victim.pid) replacedMs = t;
    await sleep(50);
  }
  await sleep(Math.max(0, floodStart + (seconds + 2) * 1000 - performance.now()));
  asking = false;
  await asker;
  clearInterval(sampler);

  const logDir = path.join(dir, ".tsgi/logs");
  const files = readdirSync(logDir).filter((name) => name.startsWith("flood."));
  const sizes = files.map((name) => statSync(path.join(logDir, name)).size);
  const started = performance.now();
  const logs = spawnSync(process.execPath, [CLI, "logs", "flood", "-c", file, "-n", "3"], { encoding: "utf8", maxBuffer: 64 * MiB });
  const logsMs = performance.now() - started;
  await up.stop("SIGINT", 30_000);

  const figures = {
    machine: machineInfo(),
    flood: { mbPerS: rate, seconds, instances },
    rssMiB: { upPeak: peak.up / MiB, upLast: last.up / MiB, daemonPeak: peak.daemon / MiB, daemonLast: last.daemon / MiB },
    killedWorker: { seenGoneMs, replacedMs },
    answers,
    logFiles: { count: files.length, totalMiB: sizes.reduce((a, b) => a + b, 0) / MiB, largestMiB: Math.max(0, ...sizes) / MiB },
    logsTail: { ms: logsMs, exit: logs.status, lines: logs.stdout.split("\n").filter(Boolean).length, error: logs.stderr.slice(0, 200) },
  };
  const f = (value, digits = 0) => (value === undefined ? "—" : value.toFixed(digits));
  log("");
  log("| figure | value |");
  log("|---|---|");
  log(`| \`up\` RSS, peak / at the end | ${f(figures.rssMiB.upPeak)} / ${f(figures.rssMiB.upLast)} MiB |`);
  log(`| pm2 daemon RSS, peak / at the end | ${f(figures.rssMiB.daemonPeak)} / ${f(figures.rssMiB.daemonLast)} MiB |`);
  log(`| killed worker seen gone / replaced | ${f(seenGoneMs)} / ${f(replacedMs)} ms |`);
  log(`| answers by status | ${Object.entries(answers).map(([status, count]) => `${status}: ${count}`).join(", ")} |`);
  log(`| log files of the app | ${files.length}, ${f(figures.logFiles.totalMiB, 1)} MiB in all, largest ${f(figures.logFiles.largestMiB, 1)} MiB |`);
  log(`| \`logs flood -n 3\` | ${f(logsMs)} ms, exit ${logs.status}, ${figures.logsTail.lines} lines |`);
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(figures, null, 2)}\n`);
}

await runBenchmark("log-flood", main, {
  stopAll: async () => {
    await stopRunning();
    await sweepProcessesNaming(dir);
    rmSync(dir, { recursive: true, force: true });
  },
});
