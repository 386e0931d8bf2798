/**
 * The stack's logs as a user reads them, on a real stack (pm2, the front
 * proxy, gateway workers on 127.0.0.1 port 0): `tsgi-stack logs APP -n N`
 * and `-f` merge an app's slots and streams by the time each worker line is
 * stamped with; `logs --access` reads the access log (of one app with APP);
 * `up` on a pipe writes JSON records, and TSGI_LOG_FORMAT=pretty readable
 * lines. Every process started here is stopped by its pid in afterAll.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStackLog, STAMPED, withoutStamp } from "../helpers/log-lines.ts";
import { BIN, ROOT, fixture, httpGet, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir as makeStackDir, statusJson, up, type Up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

function stackDir(config: string): { dir: string; file: string } {
  const made = makeStackDir(config, "tsgi-logs-");
  dirs.push(made.dir);
  return made;
}

const config = (accessLog = "combined") => `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: ${accessLog}
apps:
  says:
    module: ${fixture("says.ts")}
    instances: 2
    routes: [{ path: /say }]
  other:
    module: ${fixture("says.ts")}
    routes: [{ path: /other }]
`;

async function startStack(file: string, dir: string): Promise<Up> {
  const stack = await up(file, {
    onSpawn: (child) => {
      started.add(child);
      seenPids.add(child.pid!);
    },
  });
  for (const row of (await statusJson(file)).workers) seenPids.add(row.pid);
  seenPids.add(pm2DaemonPid(dir)!);
  return stack;
}

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** `logs ARGS…` run to its end with stdout and stderr into one file, so their lines keep the order they were written in. */
async function logsInOneStream(dir: string, args: string[]): Promise<{ code: number | null; lines: string[] }> {
  const into = path.join(dir, `logs-${Date.now()}.txt`);
  const fd = openSync(into, "w");
  const child = spawn(process.execPath, [BIN, "logs", ...args], { cwd: ROOT, stdio: ["ignore", fd, fd] });
  started.add(child);
  closeSync(fd);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, lines: readFileSync(into, "utf8").split("\n").filter(Boolean) };
}

/** `n` requests, one after the other, each asking a worker of `says` to print `said N` (odd ones on stderr); the slots that answered. */
async function say(url: string, from: number, count: number): Promise<Map<number, string>> {
  const slots = new Map<number, string>();
  for (let n = from; n < from + count; n++) {
    const response = await httpGet(`${url}/say?n=${n}${n % 2 ? "&stream=err" : ""}`);
    expect(response.status).toBe(200);
    slots.set(n, response.body);
  }
  return slots;
}

/** What a `logs` line of `said N` looks like, from the slot that printed it. */
const saidLine = (slot: string, n: number) =>
  new RegExp(`^says\\.${slot} \\| ${STAMPED}said ${n}${n % 2 ? "" : String.raw` \(in two writes\)`}$`);

const stampOf = (line: string) => Date.parse(/\| (\S+) /.exec(line)![1]!);

describe("tsgi-stack logs on a running stack", () => {
  let dir: string;
  let file: string;
  let stack: Up;
  let next = 1;

  beforeAll(async () => {
    ({ dir, file } = stackDir(config()));
    stack = await startStack(file, dir);
  }, 90_000);

  afterAll(async () => {
    if (stack) {
      stack.child.kill("SIGINT");
      await stack.exited;
    }
    await cleanUpStacks(started, seenPids, dirs);
  }, 60_000);

  it("logs APP -n 4: the last 4 lines of both slots and both streams, stamped, in the order they were written", async () => {
    // Requests until the last four were answered by both slots (the balancer picks; a handful is enough).
    let slots = new Map<number, string>();
    for (let round = 0; round < 10 && new Set([...slots.entries()].filter(([n]) => n >= next - 4).map(([, slot]) => slot)).size < 2; round++) {
      slots = new Map([...slots, ...(await say(stack.url, next, 4))]);
      next += 4;
    }
    const last = [next - 4, next - 3, next - 2, next - 1];
    expect(new Set(last.map((n) => slots.get(n))).size, "both slots answered the last four").toBe(2);

    const logs = await waitFor("logs -n 4 to show the last request's line", async () => {
      const result = await logsInOneStream(dir, ["says", "-c", file, "-n", "4"]);
      return result.lines.at(-1)?.includes(`said ${next - 1}`) ? result : undefined;
    });
    expect(logs.code).toBe(0);
    expect(logs.lines).toHaveLength(4);
    last.forEach((n, index) => expect(logs.lines[index]).toMatch(saidLine(slots.get(n)!, n)));
    const stamps = logs.lines.map(stampOf);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  it("logs APP -f: new lines of both slots and streams, merged in the order they were written", async () => {
    // A line to start from: once `logs -f -n 1` shows it, it follows.
    const marker = next++;
    const markerSlot = (await say(stack.url, marker, 1)).get(marker)!;
    const into = path.join(dir, "follow.txt");
    const fd = openSync(into, "w");
    const follow = spawn(process.execPath, [BIN, "logs", "says", "-f", "-n", "1", "-c", file], { cwd: ROOT, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    started.add(follow);
    seenPids.add(follow.pid!);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => follow.once("exit", (_code, signal) => resolve(signal)));
    try {
      const shown = () => readFileSync(into, "utf8").split("\n").filter(Boolean);
      await waitFor("logs -f to show the last line so far", () => (shown().length > 0 ? true : undefined));
      expect(shown()).toHaveLength(1);
      expect(shown()[0]).toMatch(saidLine(markerSlot, marker));
      const from = next;
      const slots = await say(stack.url, from, 6);
      next += 6;
      const lines = await waitFor("logs -f to show the six new lines", () => (shown().length >= 7 ? shown().slice(1) : undefined));
      expect(lines).toHaveLength(6);
      for (const [index, line] of lines.entries()) expect(line).toMatch(saidLine(slots.get(from + index)!, from + index));
    } finally {
      process.kill(follow.pid!, "SIGTERM");
      expect(await exited).toBe("SIGTERM");
    }
  });

  it("logs --access -n 1: the last request through the proxy; with APP, that app's last one", async () => {
    const mine = await httpGet(`${stack.url}/say?n=${next++}`, { "x-request-id": "logs-test-says" });
    expect(mine.status).toBe(200);
    const other = await httpGet(`${stack.url}/other?n=0`, { "x-request-id": "logs-test-other" });
    expect(other.status).toBe(200);

    const last = await waitFor("the access log to hold the last request", async () => {
      const result = await runCli(["logs", "--access", "-n", "1", "-c", file]);
      return result.stdout.includes("rid=logs-test-other") ? result : undefined;
    });
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/other\?n=0 HTTP\/1\.1" 200 \d+ .* app=other worker=other\.0 rt=\S+ rid=logs-test-other\n$/);

    const ofSays = await runCli(["logs", "says", "--access", "-n", "1", "-c", file]);
    expect(ofSays.code, ofSays.stderr).toBe(0);
    expect(ofSays.stdout).toMatch(/^127\.0\.0\.1 .*"GET \/say\?n=\d+ HTTP\/1\.1" 200 .* app=says worker=says\.\d rt=\S+ rid=logs-test-says\n$/);
  });

  it("up on a pipe: one JSON record a line, the stack's words in msg, a worker's line with app, slot, stream and its stamp", async () => {
    const from = next;
    const slots = await say(stack.url, from, 2);
    next += 2;
    // `said N`, with " (in two writes)" on stdout (even N), from console.error on stderr (odd N).
    const words = (n: number) => `said ${n}${n % 2 ? "" : " (in two writes)"}`;
    const relayed = await waitFor("up to relay both lines", () => {
      const read = readStackLog(stack.output()).filter((line) => line.app === "says");
      const both = [from, from + 1].map((n) => read.find((line) => line.msg === words(n)));
      return both.every(Boolean) ? both : undefined;
    });
    const serving = readStackLog(stack.output()).find((line) => line.msg.startsWith("serving on "));
    expect(serving).toMatchObject({ json: true, msg: expect.stringMatching(/^serving on http:\/\/127\.0\.0\.1:\d+\/ /) });
    for (const [index, n] of [from, from + 1].entries()) {
      expect(relayed[index]).toMatchObject({
        json: true,
        app: "says",
        slot: Number(slots.get(n)),
        stream: n % 2 ? "err" : "out",
        written: expect.stringMatching(new RegExp(`^${STAMPED.trimEnd()}$`)),
      });
    }
  });

  it("the worker log files hold one stamped line per line written, in one file per slot and stream", () => {
    const text = readFileSync(path.join(dir, ".tsgi", "logs", "says.0.out.log"), "utf8");
    const lines = text.split("\n").filter(Boolean);
    for (const line of lines) expect(line).toMatch(new RegExp(`^${STAMPED}`));
    expect(lines.map(withoutStamp)).toContainEqual(expect.stringMatching(/^tsgi worker \d+: ready: /));
  });

  it("after a reload: still one file per slot and stream (the new workers' slots), and logs -n shows the new workers' lines in time order", async () => {
    const reload = await runCli(["reload", "says", "-c", file], 60_000);
    expect(reload.code, reload.stderr).toBe(0);
    const workers = (await statusJson(file)).workers.filter((row: { app: string }) => row.app === "says");
    for (const row of workers) seenPids.add(row.pid);
    const names = readdirSync(path.join(dir, ".tsgi", "logs"));
    for (const name of names) expect(name).toMatch(/^(says|other)\.\d+\.(out|err)\.log$|^access\.log$/);
    for (const row of workers) expect(names).toEqual(expect.arrayContaining([`says.${row.slot}.out.log`, `says.${row.slot}.err.log`]));

    const from = next;
    const slots = await say(stack.url, from, 2);
    next += 2;
    const logs = await waitFor("logs -n 3 to show the last request's line", async () => {
      const result = await logsInOneStream(dir, ["says", "-c", file, "-n", "3"]);
      return result.lines.at(-1)?.includes(`said ${from + 1}`) ? result : undefined;
    });
    expect(logs.lines).toHaveLength(3);
    expect(logs.lines[1]).toMatch(saidLine(slots.get(from)!, from));
    expect(logs.lines[2]).toMatch(saidLine(slots.get(from + 1)!, from + 1));
    const stamps = logs.lines.map(stampOf);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });
});

describe("tsgi-stack logs and up, told no", () => {
  afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

  it("logs --access with access_log: off: one line naming the key, exit 1", async () => {
    const { file } = stackDir(config("off"));
    const result = await runCli(["logs", "--access", "-c", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("tsgi-stack: proxy.access_log is off in the config: the front proxy keeps no access log to read\n");
  });

  it("up with TSGI_LOG_FORMAT=xml: one line naming the variable, exit 1, nothing started", async () => {
    const { file } = stackDir(config());
    const child = spawn(process.execPath, [BIN, "up", "-c", file], { cwd: ROOT, env: { ...process.env, TSGI_LOG_FORMAT: "xml" }, stdio: ["ignore", "pipe", "pipe"] });
    started.add(child);
    let stderr = "";
    child.stderr!.on("data", (data) => (stderr += data));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toBe('tsgi-stack: TSGI_LOG_FORMAT=xml: the stack\'s log format is "pretty" or "json"\n');
  });
});

describe("up with TSGI_LOG_FORMAT=pretty on a pipe", () => {
  afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

  it("writes readable lines: time, level, then the words up always printed", async () => {
    const { dir, file } = stackDir(config());
    process.env.TSGI_LOG_FORMAT = "pretty";
    let stack: Up;
    try {
      stack = await startStack(file, dir);
    } finally {
      delete process.env.TSGI_LOG_FORMAT;
    }
    await httpGet(`${stack.url}/say?n=1&stream=err`);
    const output = await waitFor("up to relay the line", () => (/says\.\d \| said 1$/m.test(stack.output()) ? stack.output() : undefined));
    expect(output).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: tsgi-stack: serving on http:\/\/127\.0\.0\.1:\d+\/ /m);
    expect(output).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: says\.\d \| said 1$/m);
    expect(output).not.toMatch(/^\{/m);
    stack.child.kill("SIGINT");
    expect(await stack.exited).toBe(0);
  }, 90_000);
});
