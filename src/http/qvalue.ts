/**
 * @module http/qvalue
 *
 * The weight of one member of an Accept-style header (RFC 9110 §12.4.2),
 * read from its parameters: `text/html;q=0.8`, `gzip;q=0`. Shared by the
 * proxy's two negotiations — the coding of a compressed response
 * (proxy/compress/negotiate.ts) and HTML or plain text for its own error
 * answers (proxy/error-pages/negotiate.ts) — so both read a weight alike.
 */

/** qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
const QVALUE = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/;

/**
 * The q of a member's parameters (the parts after its first `;`): 1 when it
 * has none; 0 when it is malformed (no value, out of range, too many
 * digits), read as a preference that cannot be trusted. The first `q`
 * parameter counts.
 */
export function qValueOf(params: readonly string[]): number {
  for (const param of params) {
    const eq = param.indexOf("=");
    const name = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
    if (name !== "q") continue;
    const value = eq === -1 ? "" : param.slice(eq + 1).trim();
    return QVALUE.test(value) ? Number(value) : 0;
  }
  return 1;
}
