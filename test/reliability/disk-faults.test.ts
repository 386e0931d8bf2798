/**
 * Reliability fault 1: a full or read-only disk under the state dir must
 * never take serving down. Injected for real: the stack's folder is a small
 * tmpfs, filled to the last byte while steady traffic goes through the
 * proxy (the access log, stack.log and the workers' logs all fail with
 * ENOSPC), or remounted read-only (EROFS) — the whole folder before `up`, or
 * a read-only bind mount over a running stack's state dir (a mount with
 * files open for writing cannot be remounted read-only as a whole).
 *
 * What must hold: 0 failed requests, the stack process alive, the dropped
 * log lines counted in `status --json` (logWrites) with the last error;
 * `up` on a read-only state dir refused in one line naming the path and the
 * cause; a worker killed while pm2 cannot open its logs shown in `status`
 * with that cause, and back once the disk is writable again.
 *
 * Mounting needs root (the test machine runs as root). If mounting a tmpfs
 * fails anyway, the full-disk cases point the logs at /dev/full (every
 * write fails with ENOSPC) instead; the read-only cases have no such
 * stand-in (root writes through any permission), so they fail, never skip.
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixture, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { pm2DaemonPid, statusJson, up } from "../helpers/stack.ts";
import { failedFigure, record } from "./record.ts";

const started = new Set<ChildProcess>();
/** Every pid seen (stacks, workers, pm2 daemons), killed at the end if still alive. */
const seenPids = new Set<number>();
/** Stack folders: each a tmpfs mount (or a plain folder when mounting failed), with any bind mounts over it. */
const mounts: string[] = [];
const folders: string[] = [];

afterAll(async () => {
  for (const dir of folders) {
    const file = path.join(dir, "tsgi.yaml");
    // A stack left up by a failed test: `down` first (it stops its workers and pm2), then by pid.
    for (const mount of [...mounts].reverse()) if (mount.startsWith(`${dir}/`)) umount(mount);
    if (existsSync(file)) await runCli(["down", "-c", file], 60_000).catch(() => undefined);
    const daemon = pm2DaemonPid(dir);
    if (daemon !== undefined) seenPids.add(daemon);
  }
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  // A mount is busy until the processes with files open in it are gone.
  const deadline = Date.now() + 10_000;
  while ([...seenPids].some(isAlive) && Date.now() < deadline) await sleep(100);
  for (const mount of [...mounts].reverse()) umount(mount);
  expect(mounts, "every mount of this file undone").toEqual([]);
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

function umount(dir: string): void {
  const index = mounts.indexOf(dir);
  if (index === -1) return;
  try {
    execFileSync("umount", [dir], { stdio: "ignore" });
    mounts.splice(index, 1);
  } catch {
    // Busy: a process of the stack still has a file open there; the kill above frees it, and the next try succeeds.
  }
}

function mount(args: string[], dir: string): boolean {
  try {
    execFileSync("mount", [...args, dir], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** A new folder on a tmpfs of `size` (undefined: mounting failed, a plain folder) holding `tsgi.yaml`. */
function stackOnTmpfs(config: string, size = "8m"): { dir: string; file: string; mounted: boolean } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-disk-"));
  folders.push(dir);
  const mounted = mount(["-t", "tmpfs", "-o", `size=${size}`, "tmpfs"], dir);
  if (mounted) mounts.push(dir);
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, config);
  return { dir, file, mounted };
}

/** Fills the disk under `dir` to the last byte (a file grown until ENOSPC); returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, "filler");
  const fd = openSync(filler, "w");
  const chunk = Buffer.alloc(64 * 1024, 120);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
  }
  // The last partial chunk: byte by byte, until not one more fits.
  try {
    for (;;) writeSync(fd, chunk, 0, 512);
  } catch {
    // full
  }
  closeSync(fd);
  return filler;
}

/** The fallback when mounting is not possible: the stack's logs are /dev/full, where every write fails with ENOSPC. */
function logsToDevFull(dir: string): void {
  mkdirSync(path.join(dir, ".tsgi", "logs"), { recursive: true });
  symlinkSync("/dev/full", path.join(dir, ".tsgi", "logs", "access.log"));
  symlinkSync("/dev/full", path.join(dir, ".tsgi", "stack.log"));
}

/** `count` GETs of `url`, `concurrency` at a time on kept-alive connections: how many answered 200 and what the others got. */
async function steadyRequests(url: string, count: number, concurrency = 8): Promise<{ ok: number; failed: number; failures: Record<string, number> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const failures: Record<string, number> = {};
  let ok = 0;
  let sent = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) ok += 1;
          else failures[String(res.statusCode)] = (failures[String(res.statusCode)] ?? 0) + 1;
          resolve();
        });
      });
      req.on("error", (error: NodeJS.ErrnoException) => {
        failures[error.code ?? error.message] = (failures[error.code ?? error.message] ?? 0) + 1;
        resolve();
      });
    });
  const lane = async () => {
    while (sent < count) {
      sent += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  agent.destroy();
  return { ok, failed: count - ok, failures };
}

/** Polls `status --json` until `check` holds (then returns that status) or `timeoutMs` passes (then fails with the last one). */
async function statusUntil(file: string, check: (status: any) => boolean, timeoutMs: number, what: string): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let status: any;
  for (;;) {
    status = await statusJson(file);
    if (check(status)) return status;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last status: ${JSON.stringify(status.workers)} ${JSON.stringify(status.logWrites)}`);
    await sleep(500);
  }
}

/** Records the pids of a running stack (itself, its workers, its pm2 daemon) for the cleanup. */
function remember(status: any, dir: string): void {
  seenPids.add(status.pid);
  for (const worker of status.workers) if (worker.pid) seenPids.add(worker.pid);
  const daemon = pm2DaemonPid(dir);
  if (daemon !== undefined) seenPids.add(daemon);
}

const config = (instances = 2) => `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  chatty:
    module: ${fixture("chatty.ts")}
    instances: ${instances}
    routes: [{ path: / }]
`;

/** One line, naming the state dir and the system's reason, and no stack trace. */
function expectOneLineError(stderr: string, reason: RegExp): void {
  expect(stderr).not.toMatch(/^\s+at /m);
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tsgi-stack: state_dir \S+\.tsgi /);
  expect(lines[0]).toMatch(reason);
}

describe("a full disk under the state dir", () => {
  it("up (foreground): the proxy serves every request, the stack lives, status counts the access log lines dropped", async () => {
    const { dir, file, mounted } = stackOnTmpfs(config());
    if (!mounted) logsToDevFull(dir);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    remember(await statusJson(file), dir);
    const filler = mounted ? fillDisk(dir) : undefined;

    const traffic = await steadyRequests(`${stack.url}/`, 3000);
    record({
      id: "F1",
      done: `3000 requests with the state dir's disk full (${mounted ? "a full tmpfs" : "logs on /dev/full"})`,
      figure: `${failedFigure(traffic.failed, traffic.ok + traffic.failed)}; stack process ${isAlive(stack.child.pid!) ? "alive" : "DEAD"}`,
      pass: traffic.failed === 0 && isAlive(stack.child.pid!),
    });
    expect(traffic, JSON.stringify(traffic.failures)).toMatchObject({ failed: 0, ok: 3000 });
    expect(stack.child.exitCode).toBe(null);
    expect(isAlive(stack.child.pid!)).toBe(true);

    // The proxy reports its dropped lines at most once a second.
    const status = await statusUntil(file, (s) => s.logWrites.access.dropped >= 3000 - 50, 5000, "the access log's dropped lines");
    expect(status.logWrites.access.lastError).toMatchObject({ code: "ENOSPC", message: expect.stringMatching(/no space left on device/) });
    expect(status.state).toBe("running");
    expect(stack.output()).toMatch(/access log: cannot write \(ENOSPC\)/);
    const text = await runCli(["status", "-c", file]);
    expect(text.stdout).toMatch(/access log: \d+ line\(s\) not written \(last at \S+: ENOSPC: no space left on device/);

    // Space again: the access log takes lines again, with no restart.
    if (filler) {
      unlinkSync(filler);
      const before = statSync(path.join(dir, ".tsgi", "logs", "access.log")).size;
      expect((await steadyRequests(`${stack.url}/`, 20)).failed).toBe(0);
      await sleep(200);
      expect(statSync(path.join(dir, ".tsgi", "logs", "access.log")).size).toBeGreaterThan(before);
    }

    stack.child.kill("SIGINT");
    expect(await stack.exited).toBe(0);
  }, 90_000);

  it("up -d: stack.log full as the workers' output pours in: no request fails, the stack lives, a killed worker comes back, both logs counted", async () => {
    const { dir, file, mounted } = stackOnTmpfs(config());
    if (!mounted) logsToDevFull(dir);
    const upped = await runCli(["up", "-d", "-c", file], 60_000);
    expect(upped.code, upped.stderr).toBe(0);
    const before = await statusJson(file);
    remember(before, dir);
    const url = `http://${before.listen[0]}/`;
    if (mounted) fillDisk(dir);

    // Each request makes its worker print a line, which the stack writes to stack.log: on a full disk.
    const first = await steadyRequests(url, 1500);
    expect(first, JSON.stringify(first.failures)).toMatchObject({ failed: 0 });
    // A worker killed on the full disk: pm2 can still open its log (writes fail, opens do not), so it comes back.
    const killed = before.workers[0];
    process.kill(killed.pid, "SIGKILL");
    const second = await steadyRequests(url, 1500);
    expect(second, JSON.stringify(second.failures)).toMatchObject({ failed: 0 });
    expect(isAlive(before.pid)).toBe(true);

    const status = await statusUntil(
      file,
      (s) => s.workers.every((row: any) => row.state === "ready") && s.logWrites.access.dropped > 0,
      30_000,
      "every worker ready and the access log's dropped lines counted",
    );
    remember(status, dir);
    expect(status.pid).toBe(before.pid);
    expect(status.workers.find((row: any) => row.slot === killed.slot).pid).not.toBe(killed.pid);
    // stack.log holds only the stack's own few lines (the workers' output is in their own files): they may still fit
    // in the file's last page on a full tmpfs, so whether any was dropped depends on where the page ends.
    if (status.logWrites.stack.dropped > 0) expect(status.logWrites.stack.lastError.code).toBe("ENOSPC");
    expect(status.logWrites.access.lastError.code).toBe("ENOSPC");
    // The workers' lines (one per request) went to their own files on the full disk and were dropped there, not
    // into stack.log: the workers lived through it (the guard on their output), as the pids above show.

    const down = await runCli(["down", "-c", file], 60_000);
    expect(down.code, down.stderr).toBe(0);
    expect(isAlive(before.pid)).toBe(false);
  }, 120_000);
});

describe("a disk already full at up", () => {
  it("up and up -d refuse in one line naming the state dir and ENOSPC, and start nothing", async () => {
    const { dir, file, mounted } = stackOnTmpfs(config(1), "1m");
    expect(mounted, "mounting a tmpfs needs root: this test injects ENOSPC for real").toBe(true);
    fillDisk(dir);
    for (const args of [["up"], ["up", "-d"]]) {
      const result = await runCli([...args, "-c", file], 30_000);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(1);
      expectOneLineError(result.stderr, /\.tsgi is not writable: ENOSPC: no space left on device$/);
    }
    // Refused before pm2 was asked: no daemon, no half-written pm2 home.
    expect(existsSync(path.join(dir, ".tsgi", "pm2"))).toBe(false);
  }, 60_000);
});

describe("a read-only state dir", () => {
  it("up and up -d refuse in one line naming the path and EROFS, with no stack trace", async () => {
    const { dir, file, mounted } = stackOnTmpfs(config(1), "1m");
    expect(mounted, "mounting a tmpfs needs root: this test injects EROFS for real").toBe(true);
    expect(mount(["-o", "remount,ro"], dir)).toBe(true);

    for (const args of [["up"], ["up", "-d"]]) {
      const result = await runCli([...args, "-c", file], 30_000);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(1);
      expectOneLineError(result.stderr, new RegExp(`${dir}(/\\.tsgi)? is not writable: EROFS: read-only file system$`));
    }

    // The same with the state dir there, read-only itself: its own path is named.
    expect(mount(["-o", "remount,rw"], dir)).toBe(true);
    mkdirSync(path.join(dir, ".tsgi"));
    expect(mount(["-o", "remount,ro"], dir)).toBe(true);
    const result = await runCli(["up", "-c", file], 30_000);
    expect(result.code).toBe(1);
    expectOneLineError(result.stderr, /\.tsgi is not writable: EROFS: read-only file system$/);
    expect(existsSync(path.join(dir, ".tsgi", "pm2"))).toBe(false);
  }, 60_000);

  it("a running stack whose state dir turns read-only: a second up is refused, nothing running is lost, a killed worker's cause shows in status, and it comes back once writable", async () => {
    const { dir, file, mounted } = stackOnTmpfs(config());
    expect(mounted, "mounting a tmpfs needs root: this test injects EROFS for real").toBe(true);
    const upped = await runCli(["up", "-d", "-c", file], 60_000);
    expect(upped.code, upped.stderr).toBe(0);
    const before = await statusJson(file);
    remember(before, dir);
    const url = `http://${before.listen[0]}/`;

    // Read-only from now on for every new open (the files already open stay writable, as on a real remount).
    const stateDir = path.join(dir, ".tsgi");
    expect(mount(["--bind", stateDir], stateDir)).toBe(true);
    mounts.push(stateDir);
    expect(mount(["-o", "remount,bind,ro"], stateDir)).toBe(true);
    expect(() => writeFileSync(path.join(stateDir, "probe"), "")).toThrow(/EROFS/);

    const again = await runCli(["up", "-d", "-c", file], 30_000);
    expect(again.code).toBe(1);
    expect(again.stderr).not.toMatch(/^\s+at /m);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect((await steadyRequests(url, 300)).failed).toBe(0);

    // A worker killed now cannot bind its socket (nor open its log files) in the read-only state dir: it stays down
    // with that cause in status, and the other worker serves.
    const killed = before.workers[0];
    process.kill(killed.pid, "SIGKILL");
    const stuck = await statusUntil(
      file,
      (s) => /cannot open its log file .*EROFS: read-only file system/.test(s.workers.find((row: any) => row.slot === killed.slot)?.lastError ?? ""),
      30_000,
      "the killed worker's cause in status",
    );
    expect(stuck.workers.find((row: any) => row.slot === killed.slot).state).not.toBe("ready");
    const during = await steadyRequests(url, 500);
    expect(during, JSON.stringify(during.failures)).toMatchObject({ failed: 0 });
    const text = await runCli(["status", "-c", file]);
    expect(text.stdout).toMatch(new RegExp(`chatty\\.${killed.slot}: .*cannot open its log file \\S+: EROFS: read-only file system`));

    // Writable again: the supervisor's next try brings the worker back, with no command.
    umount(stateDir);
    expect(mounts).not.toContain(stateDir);
    const back = await statusUntil(file, (s) => s.workers.length === 2 && s.workers.every((row: any) => row.state === "ready"), 40_000, "the worker back");
    remember(back, dir);
    expect(back.pid).toBe(before.pid);
    expect((await steadyRequests(url, 300)).failed).toBe(0);

    const down = await runCli(["down", "-c", file], 60_000);
    expect(down.code, down.stderr).toBe(0);
  }, 120_000);
});
