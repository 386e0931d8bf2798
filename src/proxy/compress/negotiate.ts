/**
 * @module proxy/compress/negotiate
 *
 * Which content coding a response gets, from the request's Accept-Encoding
 * (RFC 9110 §12.5.3), and whether a response may be compressed at all. Pure:
 * headers in, a decision out (test/proxy/compress-negotiate.test.ts).
 *
 *   - No Accept-Encoding at all: no compression (the RFC allows any coding
 *     then, but nginx and Caddy send identity, and so do we).
 *   - Each coding's q-value counts; q=0 refuses it. `*` stands for every
 *     coding the header does not name. `x-gzip` is gzip (§8.4.1.3).
 *   - Among the codings with the highest q, the server's preference decides:
 *     br, then zstd, then gzip (the order of `encodings` in the config).
 *   - `identity;q=0` with nothing else acceptable still gets identity: a
 *     406 helps no one (nginx and Caddy do the same).
 */
import { qValueOf } from "../../http/qvalue.ts";

/** The codings the proxy can produce, in its order of preference. */
export const ENCODINGS = ["br", "zstd", "gzip"] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Accept-Encoding -> coding (lowercase) -> q (0..1). Malformed members are skipped; a malformed q counts as 0. */
export function parseAcceptEncoding(header: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const member of header.split(",")) {
    const [rawCoding, ...params] = member.split(";");
    let coding = rawCoding!.trim().toLowerCase();
    if (!coding) continue;
    if (coding === "x-gzip") coding = "gzip";
    const q = qValueOf(params);
    // A coding named twice: the higher weight wins (no RFC rule; browsers never do it).
    weights.set(coding, Math.max(q, weights.get(coding) ?? 0));
  }
  return weights;
}

/**
 * The coding to use for a client's `acceptEncoding` among `offered` (in
 * preference order), or undefined for identity.
 */
export function negotiate(acceptEncoding: string | string[] | undefined, offered: readonly Encoding[]): Encoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const header = Array.isArray(acceptEncoding) ? acceptEncoding.join(",") : acceptEncoding;
  const weights = parseAcceptEncoding(header);
  const wildcard = weights.get("*");
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const coding of offered) {
    const q = weights.get(coding) ?? wildcard ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}

/** Whether a Content-Type (parameters ignored) is one of `types` (`text/*` covers every text/ type). */
export function typeMatches(contentType: string | undefined, types: readonly string[]): boolean {
  if (!contentType) return false;
  const semi = contentType.indexOf(";");
  const mediaType = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const slash = mediaType.indexOf("/");
  if (slash <= 0) return false;
  const wildcard = `${mediaType.slice(0, slash)}/*`;
  return types.some((type) => type === mediaType || type === wildcard);
}

/** What the proxy knows of a response when it decides whether to compress it. */
export interface ResponseFacts {
  method: string;
  status: number;
  /** The response's headers by lowercase name (repeated ones joined with ", "). */
  header(name: string): string | undefined;
}

export interface CompressPolicy {
  /** Media types compressed (`text/*` for all of text/). */
  types: readonly string[];
  /** A response whose Content-Length is below this is sent as is. */
  minLength: number;
  /**
   * The codings offered, in preference order, as configured: compressing on
   * the fly (a worker's response, or a static file without a sibling) leaves
   * out those this Node cannot produce (proxy/compress/plan.ts producible); a
   * static app's precompressed files (`.br`, `.zst`, `.gz`) need no encoder.
   */
  encodings: readonly Encoding[];
  levels: Readonly<Record<Encoding, number>>;
}

/**
 * Whether a response is one the proxy would compress for some client (then
 * it varies on Accept-Encoding), regardless of this client's header.
 */
export function compressible(facts: ResponseFacts, policy: CompressPolicy): boolean {
  const { method, status } = facts;
  if (method === "HEAD" || status < 200 || status === 204 || status === 206 || status === 304) return false;
  if (facts.header("content-encoding") !== undefined || facts.header("content-range") !== undefined) return false;
  const cacheControl = facts.header("cache-control");
  if (cacheControl !== undefined && /(^|,)\s*no-transform\s*(,|$)/i.test(cacheControl)) return false;
  const length = facts.header("content-length");
  if (length !== undefined && Number(length) < policy.minLength) return false;
  return typeMatches(facts.header("content-type"), policy.types);
}
