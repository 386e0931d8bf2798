/**
 * @module gateway/uwsgi/errors
 *
 * One error class per way a uwsgi request can fail before (or while) the app
 * runs, in the manner of Gunicorn's `uwsgi/errors.py`. Each carries a stable
 * `code`, the HTTP `status` the failure corresponds to, and the offending
 * value, so that the server's one log line says exactly what was wrong.
 *
 * What the server does with each is decided in uwsgi/server.ts, not here:
 * framing errors (the packet itself is broken, too large, or from a peer not
 * allowed) close the connection without a response, because nothing after a
 * broken packet can be trusted; errors in the vars of a well-formed packet are
 * answered with their status. This module does no I/O.
 *
 * These are the catalog's UWSGI group (src/errors.ts, docs/errors.md).
 */
import { errorGroup, TsgiStackError } from "../../errors.ts";

/** How much of an offending value goes into a message: enough to recognise it, not enough to flood a log. */
const PREVIEW_LENGTH = 64;

/** A value as it appears in messages: quoted, escaped (one log line stays one line), and cut short. */
export function preview(value: string): string {
  const cut = value.length > PREVIEW_LENGTH ? `${value.slice(0, PREVIEW_LENGTH)}…` : value;
  return JSON.stringify(cut);
}

/**
 * The base of every uwsgi failure; `instanceof UwsgiError` is how callers tell
 * these from bugs. Each class states its code and status as statics (the
 * catalog's convention, src/errors.ts); every uwsgi failure has a status.
 */
export abstract class UwsgiError extends TsgiStackError {
  /** The HTTP status this failure corresponds to (what Gunicorn answers with). */
  declare readonly status: number;
}

/** The packet's framing is broken: a var length runs past the vars block, a name is empty or not printable ASCII. */
export class InvalidUwsgiHeader extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_INVALID_HEADER";
  static readonly status = 400;
  constructor(
    readonly reason: string,
    /** Where in the vars block the problem was found (bytes from the start of the packet). */
    readonly offset: number,
  ) {
    super(`invalid uwsgi packet: ${reason} (at byte ${offset})`);
  }
}

/** modifier1/modifier2 name a packet type other than 0/0, the only one we serve (a WSGI-style HTTP request). */
export class UnsupportedModifier extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_UNSUPPORTED_MODIFIER";
  static readonly status = 501;
  constructor(
    readonly modifier1: number,
    readonly modifier2: number,
  ) {
    super(`unsupported uwsgi packet type: modifier1=${modifier1} modifier2=${modifier2} (only 0/0, an HTTP request, is served)`);
  }
}

/** The vars block announced in the header is larger than this server accepts. */
export class UwsgiPacketTooLarge extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_PACKET_TOO_LARGE";
  static readonly status = 431;
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`uwsgi vars block of ${size} bytes is over the limit of ${limit} bytes`);
  }
}

/** The vars block holds more vars than this server accepts. */
export class TooManyUwsgiVars extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_TOO_MANY_VARS";
  static readonly status = 431;
  constructor(readonly limit: number) {
    super(`uwsgi packet has more than ${limit} vars`);
  }
}

/** The peer closed the connection after part of a packet. */
export class IncompleteUwsgiPacket extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_INCOMPLETE_PACKET";
  static readonly status = 400;
  constructor(
    readonly received: number,
    /** The bytes the packet needed: 4 until the header is in, then 4 + its vars size. */
    readonly expected: number,
  ) {
    super(`connection closed after ${received} of the ${expected} bytes of a uwsgi packet`);
  }
}

/** The peer did not send a complete packet in time (a stalled or hostile peer: slowloris). */
export class UwsgiHeaderTimeout extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_HEADER_TIMEOUT";
  static readonly status = 408;
  constructor(
    readonly timeoutMs: number,
    readonly received: number,
  ) {
    super(`no complete uwsgi packet within ${timeoutMs} ms (${received} bytes received)`);
  }
}

/** The peer's address is not in the allowed list (Gunicorn's uwsgi_allow_ips). */
export class ForbiddenUwsgiPeer extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_FORBIDDEN_PEER";
  static readonly status = 403;
  constructor(readonly address: string) {
    super(`uwsgi peer ${address} is not in the allowed peers`, { at: address });
  }
}

/** A well-formed packet whose vars the environ cannot represent (a bad CONTENT_LENGTH, a missing REQUEST_METHOD). */
export class InvalidUwsgiVar extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_INVALID_VAR";
  static readonly status = 400;
  constructor(
    readonly varName: string,
    readonly value: string | undefined,
    readonly reason: string,
  ) {
    super(`uwsgi var ${varName}${value === undefined ? "" : `=${preview(value)}`}: ${reason}`, { at: varName });
  }
}

/** CONTENT_LENGTH is over the server's body limit; the app is not called. */
export class UwsgiBodyTooLarge extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_BODY_TOO_LARGE";
  static readonly status = 413;
  constructor(
    readonly contentLength: number,
    readonly limit: number,
  ) {
    super(`request body of ${contentLength} bytes is over the limit of ${limit} bytes`);
  }
}

/** The connection ended before CONTENT_LENGTH bytes of body arrived: what the app reading tsgi.input sees. */
export class IncompleteUwsgiBody extends UwsgiError {
  static readonly code = "TSGI_ERR_UWSGI_INCOMPLETE_BODY";
  static readonly status = 400;
  constructor(
    readonly received: number,
    readonly expected: number,
  ) {
    super(`connection closed after ${received} of the ${expected} request body bytes (CONTENT_LENGTH)`);
  }
}

/** The uwsgi protocol's failures, for the catalog (docs/errors.md; docs/uwsgi.md says how the server answers each). */
export const uwsgiErrors = errorGroup("UWSGI", [
  InvalidUwsgiHeader,
  UnsupportedModifier,
  UwsgiPacketTooLarge,
  TooManyUwsgiVars,
  IncompleteUwsgiPacket,
  UwsgiHeaderTimeout,
  ForbiddenUwsgiPeer,
  InvalidUwsgiVar,
  UwsgiBodyTooLarge,
  IncompleteUwsgiBody,
]);
