/**
 * @module export/nginx-compress
 *
 * An app's `compress` in nginx's words, for export/nginx.ts. nginx's core
 * compresses with gzip alone, so:
 *
 *   compress: { types: [text/*, application/json], min_length: 256, level: { gzip: 6 } }
 *     gzip on; gzip_vary on; gzip_proxied any; gzip_comp_level 6;
 *     gzip_min_length 256; gzip_types text/css text/plain … application/json;
 *     (a static app: gzip_static on too, its precompressed .gz siblings
 *     first, the other files gzipped on the fly as the proxy does)
 *
 * - `gzip_proxied any`: nginx leaves a response to a request that came
 *   through another proxy (it has a Via header) uncompressed by default; the
 *   stack compresses whoever asked.
 * - gzip_types names whole types: nginx has no `text/*`, so a `type/*` is
 *   written as the common types under it (TYPES_UNDER); text/html is
 *   always compressed by nginx and is never listed (nginx warns of it).
 * - br and zstd are modules outside nginx's core (Debian packages brotli as
 *   libnginx-mod-http-brotli-filter): a client that accepts br gets gzip from
 *   nginx. Its response is still compressed, so this is said in a comment
 *   where it applies rather than as a difference that stops the export.
 *   The same goes for a static app's .br/.zst siblings (nginx serves .gz).
 * - One behaviour differs on a static file nginx gzips on the fly: a Range
 *   request gets the whole file gzipped (200; nginx's gzip filter runs before
 *   its range filter), where the proxy answers the plain bytes asked for
 *   (206). Both are valid HTTP (a server may ignore Range); it is said in
 *   docs/proxy.md rather than as a difference.
 */
import type { AppConfig } from "../config/schema.ts";

/** The common types under each `type/*` the defaults or a user may name, as nginx lists them (its mime.types). */
const TYPES_UNDER: Readonly<Record<string, readonly string[]>> = {
  text: ["text/css", "text/plain", "text/javascript", "text/xml", "text/csv", "text/markdown", "text/calendar", "text/vtt", "text/x-component"],
  application: ["application/json", "application/javascript", "application/xml", "application/manifest+json", "application/ld+json", "application/wasm"],
  image: ["image/svg+xml", "image/x-icon", "image/bmp"],
  font: ["font/ttf", "font/otf", "font/collection"],
};

/** Whether the app offers gzip, and which of its codings nginx's core lacks. */
function codings(encodings: readonly string[]): { gzip: boolean; others: string[] } {
  return { gzip: encodings.includes("gzip"), others: encodings.filter((encoding) => encoding !== "gzip") };
}

/** nginx's gzip_types for the app's `types` (text/html left out: nginx always compresses it and warns when it is listed). */
export function gzipTypes(types: readonly string[]): string[] {
  const listed = types.flatMap((type) => {
    const lower = type.toLowerCase();
    return lower.endsWith("/*") ? (TYPES_UNDER[lower.slice(0, -2)] ?? []) : [lower];
  });
  return [...new Set(listed)].filter((type) => type !== "text/html");
}

/** The directives of a location that passes to the app's workers. */
export function compressDirectives(app: AppConfig): string[] {
  const compress = app.compress;
  if (!compress) return [];
  const { gzip, others } = codings(compress.encodings);
  if (!gzip) return [];
  return [
    ...(others.length > 0 ? [`# compress.encodings: ${others.join(", ")} are not in nginx's core; nginx answers those clients with gzip`] : []),
    ...gzipOnTheFly(compress),
  ];
}

/** gzip on the fly, as the app's `compress` says (gzip_vary included). */
function gzipOnTheFly(compress: NonNullable<AppConfig["compress"]>): string[] {
  const types = gzipTypes(compress.types);
  return [
    "gzip on;",
    "gzip_vary on;",
    "gzip_proxied any;",
    `gzip_comp_level ${compress.level.gzip};`,
    `gzip_min_length ${compress.min_length};`,
    ...(types.length > 0 ? [`gzip_types ${types.join(" ")};`] : []),
  ];
}

/**
 * The directives of a location serving a static app's folder: its
 * precompressed .gz siblings (gzip_static), and the other files gzipped on
 * the fly (gzip on), as the proxy serves them.
 */
export function staticCompressDirectives(app: AppConfig): string[] {
  const compress = app.compress;
  if (!compress) return [];
  const { gzip, others } = codings(compress.encodings);
  return [
    ...(others.length > 0
      ? [`# compress.encodings: nginx's core serves no .${others.map((e) => (e === "zstd" ? "zst" : e)).join("/.")} siblings and compresses with gzip alone; gzip_static serves the .gz ones`]
      : []),
    ...(gzip ? ["gzip_static on;", ...gzipOnTheFly(compress)] : []),
  ];
}
