/**
 * @module proxy/compress/headers
 *
 * A worker's response head as it goes out compressed: Content-Encoding set,
 * Content-Length dropped (node frames the body chunked), Accept-Ranges
 * dropped (a Range request is sent on uncompressed, so its bytes would not
 * fit the compressed ones a client has; nginx's gzip drops it too), a strong ETag made
 * weak (the bytes differ from the worker's, so a strong validator would lie;
 * nginx and Caddy do the same), and Accept-Encoding added to Vary, merged
 * with the worker's own Vary. Pure, on node's flat [name, value, …] lists.
 */
import { joinVary } from "../app-headers.ts";

/** The head's headers by lowercase name (repeated ones joined with ", "), for proxy/compress/negotiate.ts. */
export function headerLookup(flat: readonly string[]): (name: string) => string | undefined {
  return (name) => {
    let value: string | undefined;
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i]!.length === name.length && flat[i]!.toLowerCase() === name) value = value === undefined ? flat[i + 1]! : `${value}, ${flat[i + 1]!}`;
    }
    return value;
  };
}

/** `flat` with Accept-Encoding in its Vary (one Vary header where the first was, the worker's members kept; `*` left alone). */
export function withVary(flat: readonly string[]): string[] {
  const out: string[] = [];
  const values: string[] = [];
  let at = -1;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i]!.toLowerCase() === "vary") {
      if (at === -1) at = out.length;
      values.push(flat[i + 1]!);
      continue;
    }
    out.push(flat[i]!, flat[i + 1]!);
  }
  const vary = ["Vary", joinVary(values.join(", "), "Accept-Encoding")];
  if (at === -1) out.push(...vary);
  else out.splice(at, 0, ...vary);
  return out;
}

/** W/"x" for a strong "x"; a weak one unchanged. */
export function weakETag(etag: string): string {
  return etag.startsWith("W/") ? etag : `W/${etag}`;
}

/** The headers of a response compressed with `encoding` (see the module's comment). */
export function encodedHeaders(flat: readonly string[], encoding: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const lower = flat[i]!.toLowerCase();
    if (lower === "content-length" || lower === "accept-ranges") continue;
    out.push(flat[i]!, lower === "etag" ? weakETag(flat[i + 1]!) : flat[i + 1]!);
  }
  out.push("Content-Encoding", encoding);
  return withVary(out);
}
