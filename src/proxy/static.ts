/**
 * @module proxy/static
 *
 * A static app (`apps.NAME.static: FOLDER`) is served by the proxy itself,
 * as nginx serves a `root`/`alias`: no worker, no hop. The HTTP of file
 * serving — ETag and Last-Modified, If-None-Match / If-Modified-Since (304),
 * If-Match (412), Range (206, 416), index.html, Content-Type by extension,
 * streaming — is the `send` package's (the engine under Express's static
 * middleware, reviewed for years), not ours.
 *
 * What is ours is the part a reverse proxy must get right before it opens a
 * file, because `send` alone does not cover it all:
 *
 *   - the route's mount is taken off the path first (`/assets/logo.png`
 *     under the route `/assets` is FOLDER/logo.png, like nginx `alias`);
 *   - only GET and HEAD (405 with Allow, as nginx's static module);
 *   - a path that could only be an attack is 400, before any file is looked
 *     at: bad percent-encoding, NUL, a backslash, an encoded `/` or `\`, a
 *     `..` segment in any spelling (`..`, `%2e%2e`, `.%2E`). Browsers and
 *     curl remove dot segments before sending, so no real link has one;
 *   - dotfiles (any segment starting with `.`) are 404, as if absent;
 *   - symlinks are followed only while they stay inside the folder: the path
 *     is resolved (realpath) and refused with 404 when it, or the index.html
 *     it would serve, lands outside the folder's own real path (or on a
 *     dotfile). A link inside the folder (`current -> releases/42`) works,
 *     one to `/etc` does not. The check runs just before `send` opens the
 *     file; someone who can swap links in the folder between the two could
 *     still race it, which is why the folder must not be writable by those
 *     the site serves (nginx's `disable_symlinks` closes that race with
 *     O_NOFOLLOW opens; node's fs has no openat);
 *   - a folder URL without its trailing slash is redirected (301) to the
 *     slash form, mount included, so that relative links in its index.html
 *     resolve under the folder;
 *   - every refusal and error is a short text/plain answer naming the URL
 *     path (never a file system path): 404 for what is missing, 403 for
 *     what the proxy may not read (EACCES), 500 for anything else — or the
 *     `error_pages` file for its status, as nginx's error_page replaces a
 *     static location's own errors too. Nothing here throws to the proxy.
 *
 * Caching: `send`'s headers — a weak ETag from size and mtime,
 * Last-Modified, and `Cache-Control: public, max-age=0`, so that browsers
 * revalidate each time and get 304 while the file is unchanged — unless the
 * app has `cache`: then the Cache-Control of the file served is the site's
 * rule for its name (proxy/static-site.ts), on 200, 206 and 304 alike.
 *
 * Index and fallback (the app's `index` and `fallback`): a folder URL serves
 * the first index file that exists (none configured: 403, as nginx without
 * autoindex); a GET or HEAD of a page route where nothing exists (no file,
 * no folder; see isPageRoute) is answered by the fallback file, status 200,
 * with that file's ETag, conditional requests, Range and precompressed
 * siblings. Refused paths (dotfiles, links out of the folder, bad encoding)
 * never fall back.
 *
 * Precompressed files (nginx's gzip_static, Caddy's `precompressed`): when
 * the app has `compress`, a file with a sibling `NAME.br`, `NAME.zst` or
 * `NAME.gz` that the client accepts (Accept-Encoding, negotiated as for a
 * worker's response) is answered with the sibling's bytes, Content-Encoding
 * set, the plain file's Content-Type, and an ETag of its own (the sibling's
 * size and mtime, and the coding: never the plain file's). Every file answer
 * of such an app carries `Vary: Accept-Encoding`. The sibling is looked for
 * only next to a plain file that exists, and goes through the same folder
 * and symlink confinement.
 *
 * Compressed on the fly (nginx's `gzip on`, Caddy's `encode`): a file with no
 * sibling served, whose type is in the app's `types` and whose size is at
 * least `min_length`, goes through the worker path's encoders for a client
 * that accepts one of the codings, unless the request has a Range
 * (proxy/static-compress.ts).
 */
import { realpath, stat } from "node:fs/promises";
import type http from "node:http";
import nodePath from "node:path";
import send from "send";
import { type CompressPolicy, type Encoding, negotiate } from "./compress/negotiate.ts";
import { compressOnTheFly, type OnTheFly, onTheFlyFor } from "./static-compress.ts";
import { strictPreconditions } from "./static-preconditions.ts";
import { STATIC_METHODS } from "../http/request-rules.ts";
import { joinVary } from "./app-headers.ts";
import { isPageRoute, PLAIN_SITE, type StaticSite } from "./static-site.ts";

/** The file name suffix of a precompressed sibling, per coding. */
const SUFFIX: Record<Encoding, string> = { br: ".br", zstd: ".zst", gzip: ".gz" };

/** What the proxy logs for one static response. */
export interface StaticResult {
  status: number;
  /** Body bytes written (0 for HEAD and 304). */
  bytes: number;
}

/** An answer given without opening a file. */
interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

const METHODS = new Set(STATIC_METHODS.split(", "));

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  412: "Precondition Failed",
  416: "Range Not Satisfiable",
  500: "Internal Server Error",
};

/** The headers `send` may have set before it failed: an error answer must not carry a file's metadata. */
const SEND_HEADERS = ["accept-ranges", "cache-control", "content-length", "content-range", "content-type", "etag", "last-modified", "content-encoding"];

/** Fs error codes that mean "there is nothing there" (ELOOP: a link cycle; EISDIR: a file that became a folder). */
const ABSENT = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG", "ELOOP", "EISDIR"]);
/** Fs error codes that mean "there is something the proxy may not read". */
const DENIED = new Set(["EACCES", "EPERM"]);

function methodProblem(req: http.IncomingMessage): Refusal | undefined {
  if (METHODS.has(req.method ?? "GET")) return undefined;
  return { status: 405, message: `a static folder answers GET and HEAD, not ${req.method}`, headers: { Allow: STATIC_METHODS } };
}

/** A segment that names a dotfile (or `..`); `.` alone is harmless and `send` drops it. */
const isDotSegment = (segment: string) => segment.length > 1 && segment.startsWith(".");

/**
 * The path under the mount, decoded, or why it is refused. `raw` is the
 * request's path after the mount, still percent-encoded.
 */
export function pathProblem(raw: string): Refusal | { decoded: string } {
  if (!raw.startsWith("/") && raw !== "") return { status: 400, message: "the request target is not a path" };
  if (/%(2f|5c)/i.test(raw)) return { status: 400, message: "an encoded / or \\ in the path" };
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return { status: 400, message: "bad percent-encoding in the path" };
  }
  if (decoded.includes("\0")) return { status: 400, message: "a NUL byte in the path" };
  if (decoded.includes("\\")) return { status: 400, message: "a backslash in the path" };
  const segments = decoded.split("/");
  if (segments.includes("..")) return { status: 400, message: "a .. segment in the path" };
  if (segments.some(isDotSegment)) return { status: 404, message: "" };
  return { decoded };
}

const inside = (root: string, target: string) => target === root || target.startsWith(root.endsWith(nodePath.sep) ? root : root + nodePath.sep);

/** True when `real` (a resolved path) is in the folder and is no dotfile there. */
function confinedTo(realRoot: string, real: string): boolean {
  return inside(realRoot, real) && !nodePath.relative(realRoot, real).split(nodePath.sep).some(isDotSegment);
}

/** Where a path really is, or undefined when nothing is there. Other errors (EACCES) are thrown. */
async function resolved(target: string): Promise<string | undefined> {
  try {
    return await realpath(target);
  } catch (error) {
    if (ABSENT.has((error as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw error;
  }
}

/** What symlinkProblem says of a path where nothing exists: `send` would answer it 404, a fallback may answer it. */
const NOTHING_THERE = "nothing there";

/**
 * Symlinks: the refusal when the path (or the index file a folder URL would
 * serve: the first that exists) resolves outside the folder or onto a
 * dotfile; NOTHING_THERE when the path does not exist; undefined to go on.
 */
async function symlinkProblem(realRoot: string, decoded: string, index: readonly string[]): Promise<Refusal | typeof NOTHING_THERE | undefined> {
  const real = await resolved(nodePath.join(realRoot, decoded));
  if (real === undefined) return NOTHING_THERE;
  if (!confinedTo(realRoot, real)) return { status: 404, message: "" };
  if (decoded.endsWith("/")) {
    for (const name of index) {
      const file = await resolved(nodePath.join(real, name));
      if (file === undefined) continue;
      if (!confinedTo(realRoot, file)) return { status: 404, message: "" };
      break;
    }
  }
  return undefined;
}

/** `%XX` for every byte outside printable ASCII (node hands over the request target as latin1: a char is a byte). */
const headerSafe = (text: string) =>
  text.replace(/[^\x21-\x7e]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);

/** The trailing-slash form of a folder URL, mount and query kept; never `//host` (an open redirect). */
function folderLocation(mount: string, raw: string, query: string): string {
  const location = `/${`${mount}${raw}/`.replace(/^\/+/, "")}`;
  return headerSafe(query ? `${location}?${query}` : location);
}

/** A short text answer (or the configured error page); destroys the connection instead when a file's headers are already out. */
function answer(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}, page?: Buffer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of SEND_HEADERS) res.removeHeader(name);
  const body = page ?? `${message}\n`;
  res.writeHead(status, {
    "Content-Type": page ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(body)),
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(body);
}

/** Counts the body bytes written to `res` from now on (none for HEAD: node drops a HEAD response's body). */
function countBodyBytes(req: http.IncomingMessage, res: http.ServerResponse): () => number {
  let bytes = 0;
  if (req.method === "HEAD") return () => 0;
  const count = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === "string") bytes += Buffer.byteLength(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
    else if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: http.ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: http.ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== "function") count(chunk, rest[0]);
    return (end as (...args: unknown[]) => http.ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  return () => bytes;
}

/** The status of an error `send` reports: its own, but 403 for a file the proxy may not read and 404 for one gone meanwhile. */
function statusOf(error: { status?: number; statusCode?: number; code?: string }): number {
  if (error.code && DENIED.has(error.code)) return 403;
  if (error.code && ABSENT.has(error.code)) return 404;
  return error.status ?? error.statusCode ?? 500;
}

type SendError = { status?: number; statusCode?: number; code?: string; headers?: Record<string, string> };

/** A precompressed file to serve instead of the one asked for. */
interface Sibling {
  encoding: Encoding;
  /** Its suffix (`.br`), added to the path `send` is given. */
  suffix: string;
  /** For a folder URL: the index file it is the sibling of. */
  index?: string;
}

/** The index file a folder URL serves (the first that is a file), or undefined. */
async function indexFile(folder: string, index: readonly string[]): Promise<string | undefined> {
  for (const name of index) if (await isFile(nodePath.join(folder, name))) return name;
  return undefined;
}

async function isFile(target: string): Promise<boolean> {
  try {
    return (await stat(target)).isFile();
  } catch {
    return false;
  }
}

/**
 * The precompressed sibling to serve for `decoded` (index.html for a folder
 * URL), or undefined: the client must accept its coding, the plain file must
 * be a file, and the sibling a file confined to the folder like any other.
 */
async function siblingFor(
  req: http.IncomingMessage,
  realRoot: string,
  decoded: string,
  offered: readonly Encoding[],
  indexNames: readonly string[],
): Promise<Sibling | undefined> {
  const accepted = negotiate(req.headers["accept-encoding"], offered);
  if (!accepted) return undefined;
  const index = decoded.endsWith("/") ? await indexFile(nodePath.join(realRoot, decoded), indexNames) : undefined;
  if (decoded.endsWith("/") && index === undefined) return undefined;
  const plain = nodePath.join(realRoot, index === undefined ? decoded : `${decoded}${index}`);
  if (index === undefined && !(await isFile(plain))) return undefined; // indexFile found the index to be a file already
  // The best accepted coding whose file exists; then the next the client accepts.
  for (let rest = offered; rest.length > 0; ) {
    const encoding = negotiate(req.headers["accept-encoding"], rest);
    if (!encoding) return undefined;
    const real = await resolved(plain + SUFFIX[encoding]);
    if (real !== undefined && confinedTo(realRoot, real) && (await isFile(real))) return { encoding, suffix: SUFFIX[encoding], ...(index === undefined ? {} : { index }) };
    rest = rest.filter((other) => other !== encoding);
  }
  return undefined;
}

/**
 * Hands the file over to `send`, with our answers for its folder redirect and
 * its errors. Those run in `send`'s fs callbacks, where a throw would take
 * the proxy down: each is guarded, and at worst the connection is dropped.
 */
function sendFile(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  realRoot: string,
  raw: string,
  onError: (status: number, headers?: Record<string, string>) => void,
  onFolder: () => void,
  site: StaticSite,
  sibling?: Sibling,
  onTheFly?: OnTheFly,
): void {
  const guarded =
    <A extends unknown[]>(callback: (...args: A) => void) =>
    (...args: A) => {
      try {
        callback(...args);
      } catch {
        res.destroy();
      }
    };
  // A folder URL's precompressed index is asked for by name: `send` would look for index.html.br's folder otherwise.
  const target = sibling ? `${sibling.index === undefined ? raw : `${raw}${encodeURIComponent(sibling.index)}`}${sibling.suffix}` : raw;
  const stream = send(req, target, {
    root: realRoot,
    index: [...site.index],
    dotfiles: "ignore",
    etag: true,
    lastModified: true,
    acceptRanges: true,
    cacheControl: true,
    maxAge: 0,
  });
  strictPreconditions(stream);
  if (sibling) precompressedHeaders(stream, sibling);
  else if (onTheFly) compressOnTheFly(stream, res, onTheFly);
  if (site.cacheControl) cacheHeaders(stream, realRoot, site.cacheControl, sibling);
  stream.on("directory", guarded(onFolder));
  stream.on("error", guarded((error: SendError) => onError(statusOf(error), error.headers)));
  stream.pipe(res);
}

/**
 * What `send` says of a precompressed sibling, corrected: the Content-Type is
 * the plain file's (send's `type` is asked about the name without the
 * suffix), the ETag the sibling's own with its coding in it (set before send
 * sets one, so that its If-None-Match checks compare with it), and
 * Content-Encoding set.
 */
function precompressedHeaders(stream: ReturnType<typeof send>, sibling: Sibling): void {
  const typed = stream as unknown as { type?: (path: string) => void };
  const type = typed.type;
  if (typeof type === "function") typed.type = (path: string) => type.call(stream, path.endsWith(sibling.suffix) ? path.slice(0, -sibling.suffix.length) : path);
  stream.on("headers", (res: http.ServerResponse, _path: string, stats: { size: number; mtime: Date }) => {
    res.setHeader("Content-Encoding", sibling.encoding);
    res.setHeader("ETag", `W/"${stats.size.toString(16)}-${stats.mtime.getTime().toString(16)}-${sibling.encoding}"`);
  });
}

/**
 * The site's Cache-Control for the file `send` opens, named by its path in
 * the folder (a precompressed sibling by its plain file's). Set from send's
 * `headers` event, before send would set its own (it keeps one already set).
 */
function cacheHeaders(stream: ReturnType<typeof send>, realRoot: string, cacheControl: (relativePath: string) => string, sibling?: Sibling): void {
  stream.on("headers", (res: http.ServerResponse, path: string) => {
    const file = sibling && path.endsWith(sibling.suffix) ? path.slice(0, -sibling.suffix.length) : path;
    res.setHeader("Cache-Control", cacheControl(nodePath.relative(realRoot, file).split(nodePath.sep).join("/")));
  });
}

/**
 * Serves one request from `root` (an absolute folder), the route's `mount`
 * ("" for a host-only or `/` route) taken off its path. Resolves, never
 * rejects, once the response is finished or the client is gone, with the
 * status sent and the body bytes written.
 */
export function serveStatic(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  root: string,
  mount: string,
  /** The app's `compress`: its codings' precompressed siblings are served, other files compressed on the fly; absent: plain files only. */
  compression?: CompressPolicy,
  /** The app's `error_pages` file for an error status, if any (proxy/error-pages/pages.ts). */
  errorPage?: (status: number) => Buffer | undefined,
  /** The folder's index files, fallback and Cache-Control (the app's `index`, `fallback`, `cache`). */
  site: StaticSite = PLAIN_SITE,
): Promise<StaticResult> {
  const bytes = countBodyBytes(req, res);
  const done = new Promise<StaticResult>((resolve) => {
    const finish = () => resolve({ status: res.headersSent || res.writableFinished ? res.statusCode : 499, bytes: bytes() });
    res.once("finish", finish);
    res.once("close", finish);
  });
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const urlPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? "" : url.slice(queryAt + 1);
  const base = mount === "/" ? "" : mount;
  const raw = urlPath.startsWith(base) ? urlPath.slice(base.length) : urlPath;
  const say = (status: number, headers?: Record<string, string>, reason?: string) =>
    answer(res, status, `${REASONS[status] ?? `Error ${status}`}: ${urlPath}${reason ? `: ${reason}` : ""}`, headers, errorPage?.(status));
  const refuse = (refusal: Refusal) => say(refusal.status, refusal.headers, refusal.message);

  void (async () => {
    const early = methodProblem(req);
    if (early) return refuse(early);
    const checked = pathProblem(raw);
    if ("status" in checked) return refuse(checked);
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch (error) {
      // The folder was there when the config loaded; gone now, it serves nothing.
      return say(DENIED.has((error as NodeJS.ErrnoException).code ?? "") ? 403 : 404);
    }
    const escape = await symlinkProblem(realRoot, checked.decoded, site.index);
    const fellBack = escape === NOTHING_THERE && site.fallback !== undefined && isPageRoute(checked.decoded);
    const target = fellBack ? site.fallback! : { decoded: checked.decoded, raw };
    const problem = fellBack ? await symlinkProblem(realRoot, target.decoded, site.index) : escape;
    if (problem && problem !== NOTHING_THERE) return refuse(problem);
    const sibling = compression ? await siblingFor(req, realRoot, target.decoded, compression.encodings, site.index) : undefined;
    if (res.destroyed) return; // the client left while we looked
    // Joined with the app's own Vary (its `headers`), never in its place.
    if (compression) res.setHeader("Vary", joinVary(res.getHeader("Vary")?.toString(), "Accept-Encoding"));
    const onFolder = () => {
      // A folder URL with no index file to serve (`index: []`), or a fallback that became a folder: nothing to redirect to.
      if (fellBack) return say(404);
      if (raw.endsWith("/")) return say(403);
      answer(res, 301, `Moved Permanently: ${folderLocation(base, raw, query)}`, { Location: folderLocation(base, raw, query) });
    };
    sendFile(req, res, realRoot, target.raw, say, onFolder, site, sibling, sibling ? undefined : onTheFlyFor(req, compression));
  })().catch((error: NodeJS.ErrnoException) => {
    // EACCES on the realpath of a file, or anything unforeseen: an answer, never a crash of the proxy.
    try {
      say(DENIED.has(error.code ?? "") ? 403 : 500);
    } catch {
      res.destroy();
    }
  });
  return done;
}
