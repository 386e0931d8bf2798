/**
 * @module admin/auth
 *
 * Who may use the admin listener. On loopback (the default) anyone on this
 * machine may, as with the control socket; on any other address a token is
 * required (`proxy.admin_token`, or TSGI_ADMIN_TOKEN in the stack's
 * environment), sent as `Authorization: Bearer <token>` by scripts and
 * Prometheus, or as a Basic password by a browser (it asks once, then sends
 * it with every request, the live feed's too). Tokens are compared in
 * constant time: digests of equal length through timingSafeEqual, so the
 * time taken says nothing about how much of a guess was right.
 *
 * Two browser attacks are closed whatever the address:
 * - DNS rebinding: a web page whose name now resolves to 127.0.0.1 reaches a
 *   loopback listener as its "own origin". A listener without a token only
 *   answers requests whose Host is a loopback name or address.
 * - Cross-site requests: a page elsewhere may make the browser POST here (a
 *   form needs no CORS). A write whose Origin is not this listener, or that
 *   the browser marks as cross-site (Sec-Fetch-Site), is refused. curl and
 *   scripts send neither header and are not affected.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import net from "node:net";

export type AdminVerdict = { ok: true } | { ok: false; status: 401 | 403; reason: string };

const digest = (text: string) => createHash("sha256").update(text).digest();

/** The token sent with a request: a Bearer token, or a Basic password (any user name). */
export function tokenOf(req: http.IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const [scheme, value = ""] = header.trim().split(/\s+/, 2);
  if (scheme?.toLowerCase() === "bearer") return value;
  if (scheme?.toLowerCase() === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/** Whether `host` (a listen address's host) is loopback only: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (net.isIPv4(bare)) return bare.startsWith("127.");
  if (net.isIPv6(bare)) return bare === "::1" || bare.startsWith("::ffff:127.");
  return false;
}

/** The host part of a Host header or an Origin's host (`name`, `name:port`, `[v6]:port`). */
function hostPart(value: string): string {
  const trimmed = value.trim();
  if (trimmed.startsWith("[")) return trimmed.slice(0, trimmed.indexOf("]") + 1);
  return trimmed.split(":")[0] ?? "";
}

export class AdminAuth {
  private readonly expected: Buffer | undefined;

  /** `token`: required of every request when set; the listener must not leave loopback without one (the stack refuses to start). */
  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  get required(): boolean {
    return this.expected !== undefined;
  }

  /** Whether `req` may be answered; `write`: it changes something (reload, restart, scale). */
  check(req: http.IncomingMessage, write: boolean): AdminVerdict {
    if (this.expected) {
      const given = tokenOf(req);
      if (given === undefined || !timingSafeEqual(digest(given), this.expected)) {
        return { ok: false, status: 401, reason: given === undefined ? "a token is required" : "wrong token" };
      }
    } else if (!isLoopbackHost(hostPart(req.headers.host ?? ""))) {
      return { ok: false, status: 403, reason: `Host ${JSON.stringify(req.headers.host ?? "")} is not a loopback name: set proxy.admin_token to reach the admin listener by another name` };
    }
    if (write) {
      const site = req.headers["sec-fetch-site"];
      if (site === "cross-site" || site === "same-site") return { ok: false, status: 403, reason: "cross-site request refused" };
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== "null") {
        let originHost = "";
        try {
          originHost = new URL(origin).host;
        } catch {
          // not a URL: refused below
        }
        if (originHost.toLowerCase() !== (req.headers.host ?? "").toLowerCase()) return { ok: false, status: 403, reason: `Origin ${origin} is not this listener` };
      } else if (origin === "null") {
        return { ok: false, status: 403, reason: "Origin null refused" };
      }
    }
    return { ok: true };
  }
}
