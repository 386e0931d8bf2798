/**
 * @module export/nginx-limits
 *
 * An app's `rate_limit` and `conn_limit` in nginx's words, for
 * export/nginx.ts: they are nginx's limit_req and limit_conn, so each maps
 * one to one —
 *
 *   rate_limit: { rate: 10r/s, burst: 20, nodelay: true, status: 429, max_clients: 10000 }
 *     limit_req_zone $binary_remote_addr zone=<stack>_<app>_req:1m rate=10r/s;   (http level)
 *     limit_req zone=<stack>_<app>_req burst=20 nodelay; limit_req_status 429;   (the app's locations)
 *   conn_limit: { max: 10, status: 429, max_clients: 10000 }
 *     limit_conn_zone $binary_remote_addr zone=<stack>_<app>_conn:1m;
 *     limit_conn <stack>_<app>_conn 10; limit_conn_status 429;
 *
 * The key is the client address after the realip module, which the export
 * sets from `proxy.trusted_proxies`: the same address the stack limits on.
 * A zone is sized from `max_clients` by nginx's own figures (about 16,000
 * limit_req states and 32,000 limit_conn states a megabyte), at least 1m.
 * What nginx does not do: it sends no Retry-After with its refusals. Each
 * nginx worker shares the zone, so with nginx the limits are exact across
 * worker processes, where the stack's proxy processes each keep their own.
 */
import type { StackConfig } from "../config/schema.ts";
import { ident } from "./nginx-syntax.ts";

const zoneName = (stack: string, app: string, kind: "req" | "conn") => `${ident(stack)}_${ident(app)}_${kind}`;

/** nginx's figures: "One megabyte zone can keep about 16 thousand 64-byte states" (limit_req), 32 thousand 32-byte ones (limit_conn). */
const STATES_PER_MB = { req: 16_000, conn: 32_000 } as const;

function zoneSize(maxClients: number, kind: "req" | "conn"): string {
  return `${Math.max(1, Math.ceil(maxClients / STATES_PER_MB[kind]))}m`;
}

/** A rate as nginx writes it: whole requests a second, else a minute. */
function nginxRate(perSecond: number): string {
  return Number.isInteger(perSecond) ? `${perSecond}r/s` : `${Math.round(perSecond * 60)}r/m`;
}

/** The http-level zones of every app with a limit (the stack's name keeps two stacks' zones apart). */
export function limitZones(config: StackConfig, stack: string): string[] {
  const lines: string[] = [];
  for (const [app, settings] of Object.entries(config.apps)) {
    const rate = settings.rate_limit;
    const conn = settings.conn_limit;
    if (rate) lines.push(`limit_req_zone $binary_remote_addr zone=${zoneName(stack, app, "req")}:${zoneSize(rate.max_clients, "req")} rate=${nginxRate(rate.rate)};`);
    if (conn) lines.push(`limit_conn_zone $binary_remote_addr zone=${zoneName(stack, app, "conn")}:${zoneSize(conn.max_clients, "conn")};`);
  }
  return lines.length > 0 ? ["", ...lines] : [];
}

/** The directives of a location serving `app` (its workers, its upgrades, its folder). */
export function limitDirectives(config: StackConfig, stack: string, app: string): string[] {
  const settings = config.apps[app];
  const rate = settings?.rate_limit;
  const conn = settings?.conn_limit;
  const lines: string[] = [];
  if (rate) {
    const delay = rate.nodelay ? " nodelay" : rate.delay > 0 ? ` delay=${rate.delay}` : "";
    lines.push(`limit_req zone=${zoneName(stack, app, "req")}${rate.burst > 0 ? ` burst=${rate.burst}` : ""}${delay};`, `limit_req_status ${rate.status};`);
  }
  if (conn) lines.push(`limit_conn ${zoneName(stack, app, "conn")} ${conn.max};`, `limit_conn_status ${conn.status};`);
  return lines;
}
