/**
 * @module contract/address
 *
 * Where a gateway worker listens, as a value and as text. A worker's address
 * travels from the supervisor (which picks a unix socket path, or a loopback
 * port when the path would be too long) through `serve`'s flags to the worker,
 * and from the worker's ready message to the stack; all of them speak this
 * one type.
 *
 * As flags write it: `HOST:PORT`, `[::1]:PORT`, `:PORT` (loopback), or a unix
 * socket path (`unix:/path`, or any value with a `/` where unix sockets are
 * allowed). Port 0 asks the kernel for a free port; the worker reports the
 * one it got. Pure: binding is the gateway's (gateway/address.ts).
 */
import { errorGroup, TsgiStackError } from "../errors.ts";

export type ListenAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

/** A flag's value that is no address; the message names the flag, and `at` is the flag. */
export class AddressError extends TsgiStackError {
  static readonly code = "TSGI_ERR_GATEWAY_ADDRESS";

  constructor(flag: string, value: string, expected: string) {
    super(`${flag} ${JSON.stringify(value)}: expected ${expected}`, { at: flag });
  }
}

/** A worker's listen address that does not parse, for the catalog (docs/errors.md). */
export const addressErrors = errorGroup("GATEWAY", [AddressError]);

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

/** `HOST:PORT` (IPv6 in brackets), as `--http` reads it back. */
export function formatHostPort(address: { host: string; port: number }): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** `http://127.0.0.1:8000`, `uwsgi+unix:/path`: how a worker names a bound listener in its log and ready message. */
export function formatAddress(address: ListenAddress, scheme: string): string {
  if (address.kind === "unix") return `${scheme}+unix:${address.path}`;
  return `${scheme}://${formatHostPort(address)}`;
}
