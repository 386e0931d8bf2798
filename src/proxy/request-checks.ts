/**
 * @module proxy/request-checks
 *
 * What the proxy refuses to pass on of a request that the front door's
 * rules (http/request-rules.ts) let in.
 */

/**
 * Header names with "_" are dropped, as nginx's ignore_invalid_headers does:
 * `Transfer_Encoding` would otherwise reach a backend that folds "_" into "-".
 */
export function isForwardableHeaderName(name: string): boolean {
  return !name.includes("_");
}
