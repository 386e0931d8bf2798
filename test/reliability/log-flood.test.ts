/**
 * An app that floods its stdout under `tsgi-stack up` (reliability fault 4):
 * two workers each write FLOOD_MB_PER_S for FLOOD_SECONDS. The flood must
 * cost neither the stack process nor pm2's daemon their memory (each stays
 * under 150 MB RSS), must stay within the log bound on disk (the slot's file
 * rotated at its size, a bounded number of rotated files kept), and must not
 * delay supervision: a worker SIGKILLed mid-flood is seen not ready and
 * replaced within seconds while the other keeps answering. `logs APP -n 3`
 * reads only the end of the files.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { withoutStamp } from "../helpers/log-lines.ts";
import { ROOT, httpGet, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, up } from "../helpers/stack.ts";
import { samplePeakRss } from "../helpers/rss.ts";
import { record } from "./record.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

const MB = 1024 * 1024;
const FLOOD_MB_PER_S = 12;
const FLOOD_SECONDS = 10;
/** The log bound the test's config sets (`logs:`): each file rotated past 4 MiB, 2 rotated files kept. */
const MAX_FILE = 4 * MB;
const KEEP = 2;
/** A file grows between two checks of its size (every 250 ms): at the flood's rate, well under this. */
const OVERSHOOT = 8 * MB;

interface Row {
  app: string;
  slot: number;
  pid: number;
  state: string;
}

/** The last `bytes` of a file: the test reads no more of a flooded file than `logs` may. */
function readLastBytes(file: string, bytes: number): string {
  if (!existsSync(file)) return "";
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(bytes, size));
    readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

async function workers(admin: string): Promise<Row[]> {
  const answer = await httpGet(`${admin}/status`);
  return JSON.parse(answer.body).workers as Row[];
}

describe("an app flooding its stdout", () => {
  it("keeps the stack and pm2 under 150 MB, its logs within their bound, and supervision prompt", async () => {
    const { dir, file } = stackDir(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
logs: { max_size: 4m, keep: ${KEEP} }
apps:
  flood:
    module: ${ROOT}/test/fixtures/apps/flood.ts
    instances: 2
    env: { FLOOD_MB_PER_S: "${FLOOD_MB_PER_S}", FLOOD_SECONDS: "${FLOOD_SECONDS}" }
    routes: [{ path: / }]
`);
    dirs.push(dir);
    const stack = await up(file, {
      onSpawn: (child) => started.add(child),
      serving: /serving on (http:\/\/[^/\s]+)\/.*status page (http:\/\/[^/\s]+)\//,
      keepOutput: 1 * MB,
    });
    seenPids.add(stack.child.pid!);
    const admin = stack.match[2]!;
    const daemon = pm2DaemonPid(dir)!;
    seenPids.add(daemon);
    const rss = samplePeakRss([stack.child.pid!, daemon]);
    const floodStarted = Date.now();

    // Requests keep being answered all along, by one worker or the other.
    let answered = 0;
    const failures: number[] = [];
    let asking = true;
    const asker = (async () => {
      while (asking) {
        const answer = await httpGet(`${stack.url}/`).catch(() => ({ status: 0 }));
        if (answer.status === 200) answered += 1;
        else failures.push(answer.status);
        await sleep(50);
      }
    })();

    await sleep(3000);
    const before = await workers(admin);
    for (const row of before) seenPids.add(row.pid);
    expect(before.map((row) => row.state)).toEqual(["ready", "ready"]);
    const victim = before[0]!;
    process.kill(victim.pid, "SIGKILL");
    const killedAt = Date.now();

    let seenDownAfter: number | undefined;
    let replacedAfter: number | undefined;
    while (replacedAfter === undefined && Date.now() - killedAt < 15_000) {
      const row = (await workers(admin)).find((candidate) => candidate.slot === victim.slot)!;
      if (seenDownAfter === undefined && !(row.state === "ready" && row.pid === victim.pid)) seenDownAfter = Date.now() - killedAt;
      if (row.state === "ready" && row.pid !== victim.pid) {
        replacedAfter = Date.now() - killedAt;
        seenPids.add(row.pid);
      }
      await sleep(50);
    }
    expect(seenDownAfter, "the killed worker was seen down").toBeLessThan(2000);
    expect(replacedAfter, "the killed worker was replaced").toBeLessThan(5000);

    // Until every flood has ended, the replacement's too (it floods from its start as well): each file ends with its "done" line.
    const logDir = path.join(dir, ".tsgi", "logs");
    // The file's last line, or its newest rotated file's when it has just been rotated (then it is empty).
    const lastLineOf = (name: string) => {
      const file = path.join(logDir, name);
      const text = readLastBytes(file, 4096) || readLastBytes(`${file}.1`, 4096);
      return text.trimEnd().split("\n").pop() ?? "";
    };
    // The words of a file's last line, without the time the worker stamped it with.
    const lastWordsOf = (name: string) => withoutStamp(lastLineOf(name));
    const done = () => ["flood.0.out.log", "flood.1.out.log"].every((name) => /^flood \d+ done after \d+ lines$/.test(lastWordsOf(name)));
    while (!done() && Date.now() - floodStarted < 40_000) await sleep(200);
    expect(done(), `both slots' floods ended; last lines: ${["flood.0.out.log", "flood.1.out.log"].map(lastWordsOf).join(" / ")}`).toBe(true);
    asking = false;
    await asker;
    rss.stop();
    const peaks = rss.peaks();
    const mib = (pid: number) => `${((peaks.get(pid) ?? 0) / MB).toFixed(0)} MiB`;
    record({
      id: "F4",
      done: "an app flooding its stdout (2 workers) while one is SIGKILLed",
      figure: `peak RSS: stack ${mib(stack.child.pid!)}, pm2 daemon ${mib(daemon)} (bound 150 MB)`,
      pass: (peaks.get(stack.child.pid!) ?? 0) < 150 * MB && (peaks.get(daemon) ?? 0) < 150 * MB,
    });
    expect(peaks.get(stack.child.pid!), "the stack's RSS").toBeLessThan(150 * MB);
    expect(peaks.get(daemon), "pm2's daemon's RSS").toBeLessThan(150 * MB);
    expect(answered).toBeGreaterThan(50);
    // The request in flight to the killed worker may fail; none else.
    expect(failures.length, `failed answers: ${failures.join(", ")}`).toBeLessThanOrEqual(1);

    // On disk: the slot's file and its rotated ones, each within the bound, no more of them than kept.
    const outFiles = readdirSync(logDir).filter((name) => name.startsWith("flood.0.out.log"));
    expect(outFiles.length).toBeGreaterThan(1);
    expect(outFiles.length).toBeLessThanOrEqual(1 + KEEP);
    for (const name of outFiles) expect(statSync(path.join(logDir, name)).size, name).toBeLessThanOrEqual(MAX_FILE + OVERSHOOT);

    // `logs -n 3` reads the end of each file only: the last 3 lines of all, in time order, the last one
    // the last a worker wrote (both floods are over: each file ends with its "done" line).
    const logs = await runCli(["logs", "flood", "-c", file, "-n", "3"]);
    expect(logs.code, logs.stderr).toBe(0);
    const out = logs.stdout.split("\n").filter(Boolean);
    expect(out, logs.stdout).toHaveLength(3);
    const last = /^flood\.(\d) \| (.*)$/.exec(out[2]!);
    expect(last, out[2]).not.toBeNull();
    expect(last![2]).toBe(lastLineOf(`flood.${last![1]}.out.log`));
    expect(withoutStamp(last![2]!)).toMatch(/done after \d+ lines$/);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  }, 90_000);
});
