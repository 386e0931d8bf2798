/**
 * @module supervisor/ports
 *
 * Where each worker listens: a module worker on a unix socket in the state
 * dir, unless that path is too long to bind (then, like a command app, on a
 * loopback port). Ports are found before the loop needs them, since finding
 * one is I/O and the loop's handlers never wait.
 */
import { freeLoopbackPort } from "./probes.ts";
import { MAX_SOCKET_PATH, socketPath, type StatePaths } from "./slots.ts";
import type { PoolSpec, WorkerAddress } from "./types.ts";

/** A slot's address; takes a port from `ports` when it needs one. */
export function addressFor(paths: StatePaths, spec: PoolSpec, slot: number, ports: number[]): WorkerAddress {
  const path = socketPath(paths, spec.name, slot);
  if (spec.kind === "module" && Buffer.byteLength(path) <= MAX_SOCKET_PATH) return { kind: "unix", path };
  const port = ports.shift();
  if (port === undefined) throw new Error(`no port was set aside for ${spec.name}.${slot}`);
  return { kind: "tcp", host: "127.0.0.1", port };
}

/** How many loopback ports `slots` new workers of `spec` need. */
export function portsNeeded(paths: StatePaths, spec: PoolSpec, slots: number): number {
  const socketsFit = Buffer.byteLength(socketPath(paths, spec.name, 9999)) <= MAX_SOCKET_PATH;
  return spec.kind === "command" || !socketsFit ? slots : 0;
}

/** `count` distinct free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freeLoopbackPort());
  return [...ports];
}
