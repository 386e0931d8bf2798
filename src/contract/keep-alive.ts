/**
 * @module contract/keep-alive
 *
 * How long idle keep-alive connections live on each side of the proxy→worker
 * hop. The proxy must drop an idle upstream connection before the worker
 * does: otherwise the proxy may reuse a connection at the very moment the
 * worker closes it, and the request sent on it fails (nginx's advice for
 * `keepalive_timeout` behind a load balancer). So the proxy's default idle
 * bound is derived from the worker's default keep-alive, one margin below it.
 */

/** A gateway worker's idle keep-alive lifetime (`serve --keep-alive`, Node's own default too). */
export const WORKER_KEEP_ALIVE_MS = 5000;

/** How much sooner than the worker the proxy lets an idle upstream connection go. */
export const UPSTREAM_IDLE_MARGIN_MS = 1000;

/** The proxy's default idle bound on a connection to a worker (`upstream_keepalive_timeout`). */
export const PROXY_UPSTREAM_IDLE_MS = WORKER_KEEP_ALIVE_MS - UPSTREAM_IDLE_MARGIN_MS;

/** `5s` for 5000: how a default in whole seconds is written in flags, the config and its docs. */
export function wholeSeconds(ms: number): string {
  if (ms % 1000 !== 0) throw new RangeError(`${ms} ms is not a whole number of seconds`);
  return `${ms / 1000}s`;
}
