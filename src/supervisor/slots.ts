/**
 * @module supervisor/slots
 *
 * Where each worker of a stack lives, by name: the pm2 process name
 * `tsgi:<stackId>:<app>:<slot>` (so `pm2 ls` with PM2_HOME set shows stack,
 * app and slot), its socket and its log files under the state dir. Pure
 * functions; the same inputs always give the same paths, so a later
 * `tsgi-stack status` or `down` finds a detached stack's workers again.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { WorkerAddress } from "./types.ts";

const NAME_PART = /^[A-Za-z0-9_.-]+$/;
const PREFIX = "tsgi";

/**
 * Unix socket paths are limited to 108 bytes (sun_path) on Linux, 104 on
 * macOS: a longer one cannot be bound, so such a slot listens on loopback TCP.
 */
export const MAX_SOCKET_PATH = 100;

/** Throws for a stack id or app name that would break the process-name scheme. */
export function checkNamePart(kind: string, value: string): void {
  if (!NAME_PART.test(value)) throw new TypeError(`${kind} ${JSON.stringify(value)}: use letters, digits, "_", "." and "-" only`);
}

export function stackPrefix(stackId: string): string {
  return `${PREFIX}:${stackId}:`;
}

export function appPrefix(stackId: string, app: string): string {
  return `${stackPrefix(stackId)}${app}:`;
}

export function processName(stackId: string, app: string, slot: number): string {
  return `${appPrefix(stackId, app)}${slot}`;
}

/** The app and slot of one of this stack's process names, or undefined for any other name. */
export function parseProcessName(stackId: string, name: string): { app: string; slot: number } | undefined {
  const prefix = stackPrefix(stackId);
  if (!name.startsWith(prefix)) return undefined;
  const match = /^([^:]+):(\d+)$/.exec(name.slice(prefix.length));
  return match ? { app: match[1]!, slot: Number(match[2]) } : undefined;
}

import type { StatePaths } from "../contract/state-dir.ts";

export { type StatePaths, statePaths } from "../contract/state-dir.ts";

/** The state dir's folders the supervisor owns, made if missing (at start, and before every launch). */
export function ensureStateDirs(paths: StatePaths): void {
  for (const dir of [paths.sockets, paths.logs, paths.heartbeats]) mkdirSync(dir, { recursive: true });
}

export function socketPath(paths: StatePaths, app: string, slot: number): string {
  return path.join(paths.sockets, `${app}.${slot}.sock`);
}

export function logFiles(paths: StatePaths, app: string, slot: number): { out: string; err: string } {
  return { out: path.join(paths.logs, `${app}.${slot}.out.log`), err: path.join(paths.logs, `${app}.${slot}.err.log`) };
}

/** `unix:/path` or `tcp:host:port`: how a slot's address travels in its environment (TSGI_ADDRESS). */
export function formatWorkerAddress(address: WorkerAddress): string {
  return address.kind === "unix" ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
}

export function parseWorkerAddress(value: string | undefined): WorkerAddress | null {
  if (!value) return null;
  if (value.startsWith("unix:")) return { kind: "unix", path: value.slice(5) };
  const match = /^tcp:(.+):(\d+)$/.exec(value);
  return match ? { kind: "tcp", host: match[1]!, port: Number(match[2]) } : null;
}

/** The lowest slot numbers not in use: a pool scaled down and up again reuses its names. */
export function freeSlots(used: Iterable<number>, count: number): number[] {
  const taken = new Set(used);
  const slots: number[] = [];
  for (let slot = 0; slots.length < count; slot++) if (!taken.has(slot)) slots.push(slot);
  return slots;
}
