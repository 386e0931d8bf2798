/**
 * @module proxy/error-pages/negotiate
 *
 * Whether a client would rather read the proxy's own error answer as HTML
 * than as plain text, by its Accept header (RFC 9110 §12.5.1): each of the
 * two types takes the q-value of the most specific range that matches it
 * (`text/html` over `text/*` over `*\/*`), and HTML wins when its q is
 * higher, or equal and named more specifically. So a browser's Accept
 * (`text/html,…,*\/*;q=0.8`) gets HTML, and `*\/*` alone — curl's default —
 * or no Accept at all keeps plain text, as the proxy always answered.
 * Pure; run only when the proxy answers an error itself.
 */
import { qValueOf } from "../../http/qvalue.ts";

/** How a media type matched: the range's q, and how specific the range was (2: type/subtype, 1: type/*, 0: *\/*; -1: no match). */
interface Match {
  q: number;
  specificity: number;
}

const NO_MATCH: Match = { q: 0, specificity: -1 };

/** How `type/subtype` matches the Accept header's ranges: the most specific one that names it decides its q. */
function matchOf(accept: string, type: string, subtype: string): Match {
  let best = NO_MATCH;
  for (const element of accept.split(",")) {
    const [range, ...params] = element.split(";");
    const [rangeType, rangeSubtype] = (range ?? "").trim().toLowerCase().split("/");
    let specificity: number;
    if (rangeType === type && rangeSubtype === subtype) specificity = 2;
    else if (rangeType === type && rangeSubtype === "*") specificity = 1;
    else if (rangeType === "*" && rangeSubtype === "*") specificity = 0;
    else continue;
    if (specificity > best.specificity) best = { q: qValueOf(params), specificity };
  }
  return best;
}

/** True when the client's Accept prefers text/html to text/plain (see the module's comment for the rule). */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = matchOf(accept, "text", "html");
  if (html.q <= 0) return false;
  const plain = matchOf(accept, "text", "plain");
  return html.q > plain.q || (html.q === plain.q && html.specificity > plain.specificity);
}
