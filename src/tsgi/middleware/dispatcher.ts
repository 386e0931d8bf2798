/**
 * @module tsgi/middleware/dispatcher
 *
 * The URL Dispatcher: mounts apps on path prefixes, as Paste's URLMap and
 * werkzeug's DispatcherMiddleware do for WSGI. The longest matching prefix
 * wins; the prefix moves from PATH_INFO to SCRIPT_NAME (so the mounted app
 * sees paths relative to its mount and can still build absolute URLs), and a
 * path no prefix matches gets a 404 — or goes to the fallback app, if given.
 */
import type { Environ, TsgiApp } from "../types.ts";

export interface DispatcherOptions {
  /** The app for paths no prefix matches (default: a plain 404). */
  fallback?: TsgiApp;
}

const notFound: TsgiApp = (environ, startResponse) => {
  const body = `Not Found: no app is mounted at ${environ.SCRIPT_NAME + environ.PATH_INFO || "/"}\n`;
  startResponse("404 Not Found", [
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Length", String(Buffer.byteLength(body))],
  ]);
  return [body];
};

/** "/api/" and "/api" mount the same place; "/" and "" mount everything. */
function normalizePrefix(prefix: string): string {
  if (prefix !== "" && !prefix.startsWith("/")) {
    throw new TypeError(`Dispatcher: mount prefix ${JSON.stringify(prefix)} must start with "/"`);
  }
  return prefix.replace(/\/+$/, "");
}

/** True when `path` is `prefix` or continues it at a segment boundary ("/api" matches "/api/x", not "/apix"). */
function underPrefix(path: string, prefix: string): boolean {
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/");
}

/**
 * `dispatcher({ "/api": apiApp, "/": siteApp })`. The environ the mounted app
 * gets is a copy: the caller's environ is left as it was.
 */
export function dispatcher(mounts: Record<string, TsgiApp>, options: DispatcherOptions = {}): TsgiApp {
  const table = Object.entries(mounts)
    .map(([prefix, app]) => ({ prefix: normalizePrefix(prefix), app }))
    // Longest first, so "/api/v2" wins over "/api".
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const fallback = options.fallback ?? notFound;

  return (environ, startResponse) => {
    const path = environ.PATH_INFO;
    for (const { prefix, app } of table) {
      if (!underPrefix(path, prefix)) continue;
      const mounted: Environ = {
        ...environ,
        SCRIPT_NAME: environ.SCRIPT_NAME + prefix,
        PATH_INFO: path.slice(prefix.length),
      };
      return app(mounted, startResponse);
    }
    return fallback(environ, startResponse);
  };
}
