/**
 * @module proxy/refusal
 *
 * Every answer the proxy makes up itself, in one place (Caddy's
 * `statusError` is the model): a request pass or a failed try says *what*
 * went wrong as a typed `Refusal`, and `answerFor` alone turns it into a
 * status, a short text, headers and whether the connection must close.
 * Both the request path and the upgrade path answer through it.
 *
 * A refusal carries only the proxy's own facts (a limit, an app name, the
 * kind of an upstream failure): there is no field a worker's bytes could
 * travel in, so no status line or header of a worker ever reaches a client
 * in an error.
 *
 * The statuses are nginx's, each with the reason it was chosen.
 */
import { STATUS_CODES } from "node:http";
import * as codes from "./errors.ts";
import type { FailureKind } from "./upstream/connection.ts";

export type Refusal =
  /**
   * A head the front door's rules refuse (http/request-rules.ts): 400 for
   * framing another parser could read differently, a bad Host or target;
   * 414/431 for sizes; 505 for a version; 405 for TRACE. Nothing after it on
   * the connection is trusted, except after a 405 (the head was fine).
   */
  | { kind: "bad-head"; status: 400 | 405 | 414 | 431 | 505; reason: string; allow?: string }
  /** A chunked body whose framing broke: 400, and the connection closes (node's parser gave up on it). */
  | { kind: "bad-body-framing" }
  /** No route for the host and path: 404, as nginx's default server. */
  | { kind: "no-route"; host: string; path: string }
  /** A body over client_max_body_size: 413; the rest of it is unread, so the connection closes. */
  | { kind: "body-too-large"; limit: number; declared: boolean }
  /** A body that stalled longer than client_body_timeout: 408, and the connection closes (nginx does the same). */
  | { kind: "body-stalled"; ms: number }
  /** The app has no worker to offer the request to: 503 with Retry-After, since workers come back on their own. */
  | { kind: "no-ready-worker"; app: string }
  /**
   * A worker could not be reached, broke before answering, or answered
   * something unframeable: 502. Only the failure's kind is kept, never its
   * message (a protocol failure's message quotes the worker's status line).
   */
  | { kind: "upstream-failed"; app: string; failure: FailureKind }
  /** A head node would not write (a value its checks refuse): 502, as for any head we will not pass on. */
  | { kind: "invalid-response-head"; app: string }
  /** The worker was silent longer than the upstream timeout: 504, not resent (it may still be working on it). */
  | { kind: "upstream-timeout"; app: string; ms: number }
  /**
   * A client over its app's `rate_limit` (nginx's limit_req): the configured
   * status (429 by default, where nginx's limit_req_status defaults to 503:
   * 429 is what clients and their retry libraries understand as "slow down"),
   * with Retry-After when the client's next request would be accepted.
   */
  | { kind: "rate-limited"; app: string; status: number; retryAfterS: number }
  /** A client with `conn_limit` requests already in flight (nginx's limit_conn): the configured status (429 by default), Retry-After: 1. */
  | { kind: "conn-limited"; app: string; status: number }
  /**
   * Not a refusal but an answer all the same: a redirect the proxy makes
   * itself (a `redirect` app, `trailing_slash`, `proxy.https_redirect`:
   * proxy/redirects.ts builds the Location). No catalog code: it is not an
   * error, and the access log shows it as any 3xx.
   */
  | { kind: "redirect"; status: number; location: string };

/** What the client is told: the status, a one-line text, extra headers, and whether the connection closes after it. */
export interface Answer {
  status: number;
  /** `reason: detail`, the plain-text body (without its newline). */
  text: string;
  /** The reason phrase the text starts with (`Bad Gateway`). */
  reason: string;
  /** What happened, the text past its reason (`app "api" did not answer`), for the HTML page (proxy/error-pages/). */
  detail: string;
  headers: Readonly<Record<string, string>>;
  close: boolean;
  /** False when the answer was already written by someone else (node's clientError handler). */
  write: boolean;
  /** The catalog code of this kind of answer (proxy/errors.ts), for the access log; none for a redirect. */
  code?: string;
}

const NONE: Readonly<Record<string, string>> = Object.freeze({});

export function answerFor(refusal: Refusal): Answer {
  const code = refusal.kind === "redirect" ? undefined : CODES[refusal.kind];
  const answer = (status: number, detail: string, close = false, headers = NONE, reason = REASON_PHRASES[status]!): Answer => ({
    status,
    text: `${reason}: ${detail}`,
    reason,
    detail,
    headers,
    close,
    write: true,
    code,
  });
  switch (refusal.kind) {
    case "bad-head":
      return answer(
        refusal.status,
        refusal.reason,
        refusal.status !== 405,
        refusal.allow === undefined ? NONE : { Allow: refusal.allow },
      );
    case "bad-body-framing":
      return answer(400, "malformed chunked body", true);
    case "no-route":
      return answer(404, `no app is routed for ${refusal.host}${refusal.path}`);
    case "body-too-large":
      return answer(
        413,
        refusal.declared
          ? `the limit is ${refusal.limit} bytes`
          : `request body larger than client_max_body_size (${refusal.limit} bytes)`,
        true,
      );
    case "body-stalled":
      return answer(408, `the request body stalled for ${refusal.ms} ms`, true);
    case "no-ready-worker":
      return answer(503, `app "${refusal.app}" has no ready worker`, false, RETRY_SOON);
    case "upstream-failed":
      return answer(502, `app "${refusal.app}" ${refusal.failure === "protocol" ? "sent an invalid response" : "did not answer"}`);
    case "invalid-response-head":
      return answer(502, `app "${refusal.app}" sent an invalid response`);
    case "upstream-timeout":
      return answer(504, `app "${refusal.app}" did not answer within ${refusal.ms} ms`);
    case "rate-limited":
      return answer(
        refusal.status,
        `too many requests from this address for app "${refusal.app}"`,
        false,
        retryAfter(refusal.retryAfterS),
        limitPhrase(refusal.status),
      );
    case "conn-limited":
      return answer(
        refusal.status,
        `too many requests in flight from this address for app "${refusal.app}"`,
        false,
        RETRY_SOON,
        limitPhrase(refusal.status),
      );
    case "redirect":
      return answer(refusal.status, refusal.location, false, { Location: refusal.location });
  }
}

/** Each kind's code in the catalog. */
const CODES: Readonly<Record<Exclude<Refusal["kind"], "redirect">, string>> = {
  "bad-head": codes.BadRequestHead.code,
  "bad-body-framing": codes.BadBodyFraming.code,
  "no-route": codes.NoRoute.code,
  "body-too-large": codes.RequestBodyTooLarge.code,
  "body-stalled": codes.BodyStalled.code,
  "no-ready-worker": codes.NoReadyWorker.code,
  "upstream-failed": codes.NoWorkerAnswer.code,
  "invalid-response-head": codes.InvalidWorkerResponse.code,
  "upstream-timeout": codes.WorkerTimeout.code,
  "rate-limited": codes.RateLimited.code,
  "conn-limited": codes.ConnLimited.code,
};

/** Workers are replaced within about a second; a client that honours Retry-After comes back then. */
const RETRY_SOON: Readonly<Record<string, string>> = Object.freeze({ "Retry-After": "1" });

/** The reason phrase of a limit's configured status (any 4xx or 5xx). */
function limitPhrase(status: number): string {
  return REASON_PHRASES[status] ?? STATUS_CODES[status] ?? "Refused";
}

/** Retry-After in whole seconds (at least 1; the common 1 shares RETRY_SOON). */
function retryAfter(seconds: number): Readonly<Record<string, string>> {
  return seconds <= 1 ? RETRY_SOON : Object.freeze({ "Retry-After": String(seconds) });
}

/** The reason phrases of the statuses the proxy answers with itself (the upgrade path writes its status line by hand). */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};
