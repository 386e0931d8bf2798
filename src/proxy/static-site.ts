/**
 * @module proxy/static-site
 *
 * How one static folder is served past "the file at this path": its index
 * files, its single-page-app fallback and the Cache-Control of its files
 * (the config's `index`, `fallback` and `cache`). The spec is plain data (it
 * crosses to the proxy processes as JSON); `compileStaticSite` turns it into
 * the rules `serveStatic` asks per request, once per (re)configure: the
 * globs are compiled there, never per request.
 *
 * Pure: no file system here.
 */
import picomatch from "picomatch";

/** Cache-Control by file name (the config's `cache`). */
export interface StaticCacheSpec {
  /** `public, max-age=` this many seconds for a file no other rule matches. */
  maxAgeSeconds: number;
  /** Globs (relative to the folder; without a `/`: the file name) of files never revalidated. */
  immutable: readonly string[];
  /** Globs of files revalidated on every use; checked before `immutable`. */
  noCache: readonly string[];
}

export interface StaticSiteSpec {
  /** The files served for a folder URL, the first that exists; [] for none (403). Absent: index.html. */
  index?: readonly string[];
  /** The file (a URL path in the folder, `/index.html`) answering a page route where nothing exists. */
  fallback?: string;
  /** Absent: send's own `public, max-age=0` for every file. */
  cache?: StaticCacheSpec;
}

/** What `serveStatic` asks of a folder's rules. */
export interface StaticSite {
  readonly index: readonly string[];
  /** The fallback file's path in the folder, decoded (`/index.html`), and percent-encoded as `send` takes it. */
  readonly fallback?: { readonly decoded: string; readonly raw: string };
  /** The Cache-Control of a file, by its path relative to the folder (`assets/app.js`). Absent: send's `public, max-age=0`, and no work per request. */
  readonly cacheControl?: (relativePath: string) => string;
}

/** The Cache-Control max-age of an immutable file: a year, the common practice for hashed names. */
export const IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable";
export const NO_CACHE = "no-cache";

/** A folder with no settings of its own: what every static folder did before `index`, `fallback` and `cache`. */
export const PLAIN_SITE: StaticSite = { index: ["index.html"] };

/** A glob list as one matcher; a glob without `/` matches the file name in any folder (as nginx users expect of `*.html`). */
function matcherOf(globs: readonly string[]): (relativePath: string) => boolean {
  // picomatch's own `basename` option would apply to the globs with a `/` too (`assets/**` would never match).
  const ofName = globs.filter((glob) => !glob.includes("/"));
  const ofPath = globs.filter((glob) => glob.includes("/"));
  const never = () => false;
  const name = ofName.length > 0 ? picomatch(ofName) : never;
  const whole = ofPath.length > 0 ? picomatch(ofPath) : never;
  return (relativePath) => whole(relativePath) || name(relativePath.slice(relativePath.lastIndexOf("/") + 1));
}

/** The Cache-Control rule of a folder: no_cache, then immutable, then max-age. */
export function cacheControlOf(spec: StaticCacheSpec): (relativePath: string) => string {
  const noCache = matcherOf(spec.noCache);
  const immutable = matcherOf(spec.immutable);
  const otherwise = `public, max-age=${Math.floor(spec.maxAgeSeconds)}`;
  return (relativePath) => (noCache(relativePath) ? NO_CACHE : immutable(relativePath) ? IMMUTABLE_CACHE_CONTROL : otherwise);
}

export function compileStaticSite(spec: StaticSiteSpec | undefined): StaticSite {
  if (!spec) return PLAIN_SITE;
  const fallback = spec.fallback === undefined ? undefined : { decoded: spec.fallback, raw: spec.fallback.split("/").map(encodeURIComponent).join("/") };
  return { index: spec.index ?? PLAIN_SITE.index, ...(fallback ? { fallback } : {}), ...(spec.cache ? { cacheControl: cacheControlOf(spec.cache) } : {}) };
}

/**
 * True when a path where nothing exists gets the fallback: it ends in `/`,
 * or its last segment has no dot. `/users/42`, `/about/` and
 * `/users/jane.doe/` are page routes of the app; a missing
 * `/assets/app.3f9a.js` or `/favicon.ico` is a missing file, and a 404 (not
 * the app's HTML, which a script tag would try to run) is the useful answer.
 * The rule of webpack-dev-server's historyApiFallback; nginx's try_files
 * makes no such difference (the nginx export keeps ours).
 */
export function isPageRoute(decodedPath: string): boolean {
  // The nginx export's map tests the same: a dot in what follows the last slash.
  return !decodedPath.slice(decodedPath.lastIndexOf("/") + 1).includes(".");
}
