/**
 * @module supervisor/probes
 *
 * The supervisor's small I/O helpers, each standing alone so the pool logic
 * stays pure: does an address accept a connection (readiness of command apps,
 * and the fallback for module apps), a free loopback port, the last lines of
 * a log file, whether a worker's log files can be opened, which of our
 * pids are still alive (to prove a stop left nothing behind), and which
 * processes carry a stack's marks in their environment (what pm2 forgot).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import net from "node:net";
import { isAlive, procStat } from "../contract/pids.ts";
import { withoutLineStamp } from "../contract/line-stamp.ts";
import type { WorkerAddress } from "./types.ts";

export { isAlive };

/**
 * Why pm2 cannot start a worker, if it is its log files: pm2 opens both
 * before it spawns, and when that fails (a read-only or vanished disk) it
 * only writes a trace to its own log and leaves the process down. Opened for
 * appending, as pm2 opens them, and closed at once. Undefined when both open.
 */
export function logFileProblem(files: { out: string; err: string }): string | undefined {
  for (const file of [files.out, files.err]) {
    try {
      closeSync(openSync(file, "a"));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return `cannot open its log file ${file}: ${code ? (error as Error).message.replace(/, \w+(?: '[^']*')?$/, "") : (error as Error).message}`;
    }
  }
  return undefined;
}

/** How often a readiness probe retries a refused connection. */
const PROBE_INTERVAL_MS = 50;
/** How much of a log file's end is read to find its last lines. */
const TAIL_BYTES = 16 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One connection attempt: true if the address accepted it. */
export function accepts(address: WorkerAddress, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = address.kind === "unix" ? net.connect(address.path) : net.connect(address.port, address.host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Retries until the address accepts a connection (true), the deadline passes
 * (false), or `stillWanted` says the answer no longer matters (false).
 */
export async function waitUntilAccepting(address: WorkerAddress, deadline: number, stillWanted: () => boolean): Promise<boolean> {
  while (stillWanted() && Date.now() < deadline) {
    if (await accepts(address, Math.max(1, Math.min(1000, deadline - Date.now())))) return true;
    await sleep(PROBE_INTERVAL_MS);
  }
  return false;
}

/** A loopback port that was free a moment ago (the kernel's pick for port 0). */
export function freeLoopbackPort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * The last `count` non-empty lines of a file ([] if it does not exist),
 * written after byte offset `from` (where the file ended when a worker was
 * launched: its own lines, not an earlier worker's of the same slot).
 * A line's time stamp (contract/line-stamp.ts) is taken off.
 */
export async function tailLines(file: string, count: number, from = 0): Promise<string[]> {
  if (!file || !existsSync(file)) return [];
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    // A file shorter than the mark was truncated or replaced since: all of it is new.
    const start = Math.max(size < from ? 0 : from, size - TAIL_BYTES);
    const length = size - start;
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, start);
    // A gateway worker's lines start with their time: the words are what an error quotes.
    const lines = buffer.toString("utf8").split("\n").map((line) => withoutLineStamp(line).trimEnd()).filter(Boolean);
    // The first line may be cut by the read window: drop it unless the window began at the mark.
    if (start > (size < from ? 0 : from)) lines.shift();
    return lines.slice(-count);
  } finally {
    await handle.close();
  }
}

/** A file's size in bytes, 0 if it does not exist (never rejects). */
export async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/**
 * `pid` and its descendants, from /proc (Linux); elsewhere just `pid`. A
 * command app runs under `sh -c`, so the server itself is the shell's child.
 */
export function processTree(pid: number): number[] {
  if (!existsSync("/proc/self/stat")) return [pid];
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    // A process that ended while we read has no entry: it is nobody's descendant any more.
    const parent = procStat(Number(entry))?.[1];
    if (parent !== undefined) parentOf.set(Number(entry), Number(parent));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** Waits until none of `pids` is alive; returns the ones still alive at the deadline. */
export async function waitForPidsGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(25);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/**
 * Live processes whose environment holds every one of `marks` (`KEY=value`),
 * from /proc (Linux); elsewhere none. A worker keeps the environment it was
 * launched with — its TSGI_STACK and pm2's PM2_HOME — and so do its children,
 * so this finds a stack's workers even when pm2 no longer lists them.
 */
export function processesMarked(marks: readonly string[]): number[] {
  if (!existsSync("/proc/self/environ")) return [];
  const wanted = marks.map((mark) => `\0${mark}\0`);
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = `\0${readFileSync(`/proc/${entry}/environ`, "latin1")}`;
      if (wanted.every((mark) => environ.includes(mark)) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // Gone while we read, or another user's: not ours to stop either way.
    }
  }
  return found;
}

/**
 * Waits up to `graceMs` for `pids` to exit, SIGKILLs the ones that did not,
 * and returns those (an empty list: everything stopped by itself).
 */
export async function reap(pids: readonly number[], graceMs: number): Promise<number[]> {
  const survivors = await waitForPidsGone(pids, graceMs);
  for (const pid of survivors) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone between the check and the kill: what we wanted.
    }
  }
  await waitForPidsGone(survivors, 1000);
  return survivors;
}

/** SIGTERMs `pids` (the workers' graceful stop), then reaps them as reap() does; returns the ones SIGKILLed. */
export async function terminate(pids: readonly number[], graceMs: number): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
  return reap(pids, graceMs);
}
