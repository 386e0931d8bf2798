/**
 * @module proxy/errors
 *
 * The proxy's own answers, as the catalog's PROXY group (src/errors.ts,
 * docs/errors.md): one class per kind of refusal in proxy/refusal.ts, with
 * its stable code and its status. The proxy never throws these — a refusal
 * is an answer on the wire — but the code is what the access log records for
 * it (`err=` in the combined format, `error` in JSON), so that a script can
 * count "no ready worker" apart from "worker did not answer" while the
 * wording of the answers may change.
 */
import { errorGroup, TsgiStackError } from "../errors.ts";

abstract class ProxyRefusal extends TsgiStackError {}

/** A request head the front door's rules refuse (http/request-rules.ts): 400, 405, 414, 431 or 505 — the status says which. */
export class BadRequestHead extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_BAD_HEAD";
}
/** A chunked request body whose framing broke. */
export class BadBodyFraming extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_BAD_BODY";
  static readonly status = 400;
}
/** No route for the request's host and path. */
export class NoRoute extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_NO_ROUTE";
  static readonly status = 404;
}
/** A request body over client_max_body_size. */
export class RequestBodyTooLarge extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_BODY_TOO_LARGE";
  static readonly status = 413;
}
/** A request body that stalled longer than body_timeout. */
export class BodyStalled extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_BODY_TIMEOUT";
  static readonly status = 408;
}
/** The app has no worker ready to take the request. */
export class NoReadyWorker extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_NO_READY_WORKER";
  static readonly status = 503;
}
/** No worker could be reached, or each broke off before answering. */
export class NoWorkerAnswer extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_UPSTREAM_FAILED";
  static readonly status = 502;
}
/** A worker answered something the proxy will not pass on (an unframeable or invalid head). */
export class InvalidWorkerResponse extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_UPSTREAM_INVALID";
  static readonly status = 502;
}
/** A worker said nothing within upstream_timeout. */
export class WorkerTimeout extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_UPSTREAM_TIMEOUT";
  static readonly status = 504;
}

/** A client over its app's `rate_limit` (nginx's limit_req): 429 unless `rate_limit.status` says otherwise. */
export class RateLimited extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_RATE_LIMITED";
}
/** A client over its app's `conn_limit` (nginx's limit_conn): 429 unless `conn_limit.status` says otherwise. */
export class ConnLimited extends ProxyRefusal {
  static readonly code = "TSGI_ERR_PROXY_CONN_LIMITED";
}

export const proxyErrors = errorGroup("PROXY", [
  BadRequestHead,
  BadBodyFraming,
  NoRoute,
  RequestBodyTooLarge,
  BodyStalled,
  NoReadyWorker,
  NoWorkerAnswer,
  InvalidWorkerResponse,
  WorkerTimeout,
  RateLimited,
  ConnLimited,
]);
