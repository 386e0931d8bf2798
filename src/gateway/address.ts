/**
 * @module gateway/address
 *
 * Listen addresses as flags write them: `HOST:PORT`, `[::1]:PORT`, `:PORT`
 * (loopback: trust defaults to this machine), or a unix socket path. Port 0
 * asks the kernel for a free port; the worker reports the one it got.
 */
import { existsSync, unlinkSync } from "node:fs";
import net from "node:net";

export type ListenAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export class AddressError extends Error {
  constructor(flag: string, value: string, expected: string) {
    super(`${flag} ${JSON.stringify(value)}: expected ${expected}`);
    this.name = "AddressError";
  }
}

/** Parses `HOST:PORT`; `unix:/path` (or, with allowUnix, any value containing "/") is a unix socket. */
export function parseAddress(value: string, flag: string, allowUnix = true): ListenAddress {
  if (allowUnix && (value.startsWith("unix:") || value.includes("/"))) {
    return { kind: "unix", path: value.replace(/^unix:/, "") };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) throw new AddressError(flag, value, "HOST:PORT, such as 127.0.0.1:8000");
  return { kind: "tcp", host: match[1] ?? (match[2] || "127.0.0.1"), port };
}

export function formatAddress(address: ListenAddress, scheme: string): string {
  if (address.kind === "unix") return `${scheme}+unix:${address.path}`;
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${scheme}://${host}:${address.port}`;
}

/** The address a listening server actually got (the real port when 0 was asked for). */
function boundAddress(server: net.Server, asked: ListenAddress): ListenAddress {
  const bound = server.address();
  if (asked.kind === "unix" || bound === null || typeof bound === "string") return asked;
  return { kind: "tcp", host: asked.host, port: bound.port };
}

/**
 * Removes a unix socket file left behind by a process that died, so that
 * listen() does not fail with EADDRINUSE; a socket someone still answers on is
 * left alone (and listen() then reports the conflict).
 */
export async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const answered = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (!answered) unlinkSync(path);
}

/** listen() as a Promise that rejects with the real error (EADDRINUSE, EACCES). */
export function listen(server: net.Server, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    const onListening = () => {
      server.off("error", onError);
      resolve(boundAddress(server, address));
    };
    if (address.kind === "unix") server.listen(address.path, onListening);
    else server.listen(address.port, address.host, onListening);
  });
}
