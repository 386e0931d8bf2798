/**
 * A FrontProxy configuration with the front door's features switched on,
 * for the conformance suites (smuggling, front door) to run once more
 * against: the malformed and edge-case requests must be answered the same
 * with every feature in the path as without.
 *
 * Loaded from YAML through the real loader and `frontProxyOptions`, as a
 * running stack builds its proxy. The app `web` (routed at `/`, the app the
 * suites send to) has compression, rate and connection limits far above
 * what a suite sends, response headers and 5xx error pages; the stack has
 * error pages too; beside it, a redirect app, a single-page static app
 * (index, fallback, cache, precompressed siblings, files compressed on the
 * fly) and an app with
 * trailing_slash: add, at prefixes the suites never ask for. What is left
 * out, and why: `https_redirect` (it answers every plain-listener request
 * before routing, so no case would reach an app) and HTTP/2 (the suites
 * speak HTTP/1.1 in plain text).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { frontProxyOptions, type ProxyOptionsData } from "../../src/stack/proxy-settings.ts";

const CONFIG = `
proxy:
  error_pages: { 502: pages/502.html }
apps:
  web:
    module: app.mjs
    routes: [{ path: / }]
    compress: { min_length: 1 }
    rate_limit: { rate: 100000r/s, burst: 100000, nodelay: true }
    conn_limit: { max: 10000 }
    headers: { Strict-Transport-Security: max-age=31536000, X-Frame-Options: DENY }
    error_pages: { 5xx: pages/5xx.html }
  old:
    redirect: { to: /web-new, status: 308 }
    routes: [{ path: /old }]
  site:
    static: site
    routes: [{ path: /site }]
    index: [index.html]
    fallback: /index.html
    cache: { max_age: 1h, immutable: ["assets/**"] }
    compress: {}
  docs:
    module: app.mjs
    routes: [{ path: /docs }]
    trailing_slash: add
`;

/** The headers `web` adds to every response (its `headers` above), as a client reads them: names in lower case. */
export const EVERY_FEATURE_WEB_HEADERS: Readonly<Record<string, string>> = { "strict-transport-security": "max-age=31536000", "x-frame-options": "DENY" };

export interface EveryFeature {
  /** The proxy's options (routes, compress, limits, headers, pages, redirects, static site). */
  options: ProxyOptionsData;
  /** Removes the config's folder. */
  cleanup(): void;
}

export function everyFeature(): EveryFeature {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-every-feature-"));
  writeFileSync(path.join(dir, "app.mjs"), "export default (environ, start) => { start('200 OK', []); return ['ok']; };\n");
  mkdirSync(path.join(dir, "pages"));
  writeFileSync(path.join(dir, "pages", "502.html"), "<p>stack 502</p>\n");
  writeFileSync(path.join(dir, "pages", "5xx.html"), "<p>web 5xx</p>\n");
  mkdirSync(path.join(dir, "site", "assets"), { recursive: true });
  writeFileSync(path.join(dir, "site", "index.html"), "<!doctype html><title>site</title>\n");
  writeFileSync(path.join(dir, "site", "assets", "app.3f9a2c1b.js"), "console.log('site');\n");
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, CONFIG);
  const loaded = loadConfig(file);
  if (!loaded.ok) throw new Error(`the every-feature config does not load:\n${loaded.errors.map(String).join("\n")}`);
  return {
    options: frontProxyOptions(loaded.config),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
