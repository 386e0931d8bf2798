/**
 * @module proxy/compress/plan
 *
 * The response pass of compression: given the request, the worker's status
 * and headers (as the client would get them) and the app's policy, the
 * headers to send and the coding to apply (none: the body goes as is).
 * A response that could be compressed for some client carries
 * `Vary: Accept-Encoding` whether or not this client gets it compressed, so
 * that a cache never hands a gzip body to a client that did not ask for one.
 */
import { encodedHeaders, headerLookup, withVary } from "./headers.ts";
import { type CompressPolicy, compressible, type Encoding, negotiate } from "./negotiate.ts";
import { AVAILABLE_ENCODINGS } from "./stream.ts";

/** Whether this Node produces every coding (zstd: Node 22.15+); if not, the missing ones are never offered. */
const ALL_AVAILABLE = AVAILABLE_ENCODINGS.length === 3;

/** The codings of `encodings` this Node can produce on the fly, in their order (zstd needs Node 22.15+). */
export function producible(encodings: readonly Encoding[]): readonly Encoding[] {
  return ALL_AVAILABLE ? encodings : encodings.filter((coding) => AVAILABLE_ENCODINGS.includes(coding));
}

export interface CompressionPlan {
  headers: string[];
  encoding?: Encoding;
}

export function planCompression(
  req: { method?: string; headers: { "accept-encoding"?: string | string[] } },
  status: number,
  headers: string[],
  policy: CompressPolicy | undefined,
): CompressionPlan {
  if (!policy) return { headers };
  if (!compressible({ method: req.method ?? "GET", status, header: headerLookup(headers) }, policy)) return { headers };
  const encoding = negotiate(req.headers["accept-encoding"], producible(policy.encodings));
  return encoding ? { headers: encodedHeaders(headers, encoding), encoding } : { headers: withVary(headers) };
}
