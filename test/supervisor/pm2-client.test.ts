/**
 * The pm2 adapter against a real pm2 daemon, in a fresh temp PM2_HOME: where
 * pm2's files land, what its bus really reports for a child's process.send,
 * exits and kills, which signal a stop sends, and that a caller exits by
 * itself after disconnect() and after killDaemon().
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Pm2Event, Pm2Client, type ProcessSpec } from "../../src/supervisor/pm2-client.ts";
import { eventually, globalPm2Fingerprint, isAlive, ROOT, tempStateDir } from "./helpers.ts";

const dir = tempStateDir("pm2c");
const home = path.join(dir, "pm2");
const globalBefore = globalPm2Fingerprint();
let client: Pm2Client;
let daemonPid: number | undefined;
const events: Pm2Event[] = [];

/** A child that tells pm2 it is ready (as our worker does) and says which stop signal it got. */
const CHILD = `
process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(0); });
process.on("SIGINT", () => { console.log("got SIGINT"); process.exit(0); });
const code = Number(process.env.EXIT_AT_ONCE ?? "-1");
if (code >= 0) process.exit(code);
setInterval(() => {}, 1000);
console.log("started " + process.pid);
console.error("stderr of " + process.pid);
process.send("ready");
process.send({ type: "tsgi:ready", data: { pid: process.pid, listeners: ["test"] } });
`;
const childFile = path.join(dir, "child.cjs");

function spec(name: string, env: Record<string, string> = {}): ProcessSpec {
  return {
    name,
    executable: process.execPath,
    args: [childFile],
    cwd: dir,
    env: { TSGI_STACK: "pm2c", ...env },
    waitReady: true,
    listenTimeoutMs: 10_000,
    killTimeoutMs: 3000,
    backoffMs: 100,
    maxRestarts: 3,
    minUptimeMs: 1000,
    stopExitCodes: [3, 4],
    outFile: path.join(dir, `${name}.out.log`),
    errFile: path.join(dir, `${name}.err.log`),
  };
}

beforeAll(async () => {
  writeFileSync(childFile, CHILD);
  const started = performance.now();
  client = await Pm2Client.connect({ home });
  console.log(`pm2 connect (spawning the daemon): ${(performance.now() - started).toFixed(0)} ms`);
  client.onEvent((event) => events.push(event));
  daemonPid = Pm2Client.daemonPid(home);
}, 120_000);

afterAll(async () => {
  await client.killDaemon();
  expect(daemonPid !== undefined && isAlive(daemonPid)).toBe(false);
  expect(Pm2Client.daemonPid(home)).toBeUndefined();
  expect(globalPm2Fingerprint()).toBe(globalBefore);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("Pm2Client", () => {
  it("keeps pm2's state in the home it was given, never in ~/.pm2", () => {
    expect(daemonPid).toBeGreaterThan(0);
    for (const file of ["pm2.pid", "rpc.sock", "pub.sock", "pm2.log", "logs", "pids"]) expect(existsSync(path.join(home, file))).toBe(true);
    expect(globalPm2Fingerprint()).toBe(globalBefore);
  });

  it("refuses a second PM2_HOME in the same process (pm2 keeps its paths in module state)", async () => {
    await expect(Pm2Client.connect({ home: path.join(dir, "other") })).rejects.toThrow(/one PM2_HOME per process/);
  });

  it("starts a process that waits for ready, and relays its typed message under the message's own type", async () => {
    const info = await client.start(spec("t:a:0"));
    expect(info.pid).toBeGreaterThan(0);
    const ready = await eventually(() => events.find((event) => event.kind === "message" && event.name === "t:a:0"), 5000, "tsgi:ready");
    expect(ready).toMatchObject({ kind: "message", type: "tsgi:ready", data: { pid: info.pid, listeners: ["test"] } });
    expect(events.some((event) => event.kind === "raw" && event.raw === "ready")).toBe(true);
    expect(events.some((event) => event.kind === "online" && event.name === "t:a:0" && event.startedAt > 0)).toBe(true);
    const [listed] = await client.list("t:a:");
    expect(listed).toMatchObject({ name: "t:a:0", pid: info.pid, status: "online", restarts: 0, env: { TSGI_STACK: "pm2c" } });
    // The process writes its own output into the spec's files; pm2 keeps no copy of it.
    expect(readFileSync(path.join(dir, "t:a:0.out.log"), "utf8")).toContain(`started ${info.pid}`);
    expect(readFileSync(path.join(dir, "t:a:0.err.log"), "utf8")).toContain(`stderr of ${info.pid}`);
    expect(readdirSync(path.join(home, "logs"))).toEqual([]);
  });

  it("stops with SIGTERM (the worker contract), not pm2's default SIGINT", async () => {
    await client.delete("t:a:0");
    expect(await client.list("t:a:")).toEqual([]);
    expect(readFileSync(path.join(dir, "t:a:0.out.log"), "utf8")).toContain("got SIGTERM");
  });

  it("reports a SIGKILLed process as exit code 0 and restarts it", async () => {
    const first = await client.start(spec("t:b:0"));
    events.length = 0;
    process.kill(first.pid, "SIGKILL");
    const exit = await eventually(() => events.find((event) => event.kind === "exit" && event.name === "t:b:0"), 5000, "exit");
    expect(exit).toMatchObject({ exitCode: 0 });
    await eventually(() => events.find((event) => event.kind === "online" && event.name === "t:b:0"), 5000, "online again");
    const [again] = await client.list("t:b:");
    expect(again!.pid).not.toBe(first.pid);
    expect(again!.restarts).toBe(1);
    await client.delete("t:b:0");
  });

  it("does not restart on a stop exit code, but leaves the status 'waiting restart' until stopped", async () => {
    events.length = 0;
    await client.start(spec("t:c:0", { EXIT_AT_ONCE: "4" }));
    await eventually(() => events.find((event) => event.kind === "exit" && event.name === "t:c:0"), 5000, "exit");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [waiting] = await client.list("t:c:");
    expect(waiting).toMatchObject({ restarts: 0, exitCode: 4, pid: 0, status: "waiting restart" });
    await client.stop("t:c:0");
    expect((await client.list("t:c:"))[0]!.status).toBe("stopped");
    await client.delete("t:c:0");
  });

  it("lets the caller exit by itself after disconnect(), and after killDaemon()", async () => {
    const script = path.join(dir, "caller.mts");
    const clientModule = path.join(ROOT, "src/supervisor/pm2-client.ts");
    writeFileSync(
      script,
      `import { Pm2Client } from ${JSON.stringify(clientModule)};
const home = process.argv[2];
const first = await Pm2Client.connect({ home });
await first.list();
await first.disconnect();
const second = await Pm2Client.connect({ home });
await second.killDaemon();
console.log("done");
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script, path.join(dir, "pm2-caller")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (data) => (output += data));
    child.stderr.on("data", (data) => (output += data));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, signal] = await once(child, "exit");
    clearTimeout(timer);
    expect({ code, signal, output: output.trim() }).toEqual({ code: 0, signal: null, output: "done" });
    expect(Pm2Client.daemonPid(path.join(dir, "pm2-caller"))).toBeUndefined();
  });
});
