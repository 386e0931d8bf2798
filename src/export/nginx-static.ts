/**
 * @module export/nginx-static
 *
 * A static app's `index`, `fallback` and `cache` in nginx's words, for
 * export/nginx.ts (checked with the real nginx in test/export/nginx.test.ts):
 *
 * - `index` as nginx's `index`; `index: []` as a 403 for any URL ending in
 *   `/` (nginx always has an index list).
 * - `cache` as `add_header Cache-Control $var`, the variable a `map` of
 *   `$uri` per (app, mount): the no_cache globs, then the immutable ones,
 *   then max_age, each glob the regex picomatch compiles it to (PCRE reads
 *   it), under the mount. Without `always`, as the stack: an error answer
 *   carries none. After try_files or index, `$uri` is the file served, so
 *   the fallback's answer has the fallback file's Cache-Control, as ours.
 * - `fallback` as `try_files $uri $uri/ $var`, the variable a `map` that
 *   keeps the stack's rule: a path whose last segment has a dot goes to a
 *   named location answering 404, any other to one that rewrites to the
 *   fallback's URL. A literal last URI would serve the fallback for
 *   /missing.js too, and a variable URI there is read through `alias` (a
 *   long-standing nginx bug): named locations avoid both. A named location
 *   is the server's, and inherits only the server's error_page and no
 *   add_header: so each app has its own 404 one, with the app's headers and
 *   its error_page list (its pages, or the stack's served with its headers).
 */
import picomatch from "picomatch";
import type { AppConfig, StackConfig } from "../config/schema.ts";
import { IMMUTABLE_CACHE_CONTROL, NO_CACHE } from "../proxy/static-site.ts";
import type { Differences } from "./differences.ts";
import { headerDirectives } from "./nginx-answers.ts";
import type { NginxErrorPages } from "./nginx-error-pages.ts";
import { ident, quoted, quotedLiteral, regexLiteral } from "./nginx-syntax.ts";

/** The mounts of an app, as the Router gives them ("" for `/` and host-only routes), in a stable order. */
function mountsOf(app: AppConfig): string[] {
  return [...new Set(app.routes.map((route) => (route.path === "/" ? "" : route.path)))].sort();
}

/** Whether a static app has a map to write. */
const hasMaps = (app: AppConfig) => app.static !== undefined && (app.fallback !== undefined || app.cache !== undefined);

/** The variables and named locations of one (app, mount). */
function names(stack: string, app: string, config: StackConfig, mount: string) {
  const base = `${ident(stack)}_static_${ident(app)}_${mountsOf(config.apps[app]!).indexOf(mount)}`;
  return { cache: `$${base}_cache`, fallback: `$${base}_fallback`, rewrite: `@${base}_fallback`, missing: `@${ident(stack)}_static_${ident(app)}_404` };
}

/** A glob relative to the folder as a regex of `$uri` under `mount`; one without `/` matches a name in any folder. */
function globRegex(glob: string, mount: string): string {
  // picomatch's source is ^(?:BODY)$: the body is kept, anchored under the mount.
  const body = picomatch.makeRe(glob).source.replace(/^\^\(\?:/, "").replace(/\)\$$/, "");
  return `~^${regexLiteral(mount)}/${glob.includes("/") ? "" : "(?:.*/)?"}(?:${body})$`;
}

/** The http-level maps of every static app with `cache` or `fallback`, one per mount. */
export function staticMaps(config: StackConfig, stack: string): string[] {
  const lines: string[] = [];
  for (const [name, app] of Object.entries(config.apps)) {
    if (!hasMaps(app)) continue;
    for (const mount of mountsOf(app)) {
      const vars = names(stack, name, config, mount);
      if (app.cache) {
        const rules = [
          ...app.cache.no_cache.map((glob) => `    ${quoted(globRegex(glob, mount))} ${quoted(NO_CACHE)};`),
          ...app.cache.immutable.map((glob) => `    ${quoted(globRegex(glob, mount))} ${quoted(IMMUTABLE_CACHE_CONTROL)};`),
        ];
        lines.push("", `map $uri ${vars.cache} {`, ...rules, `    default ${quoted(`public, max-age=${Math.floor(app.cache.max_age / 1000)}`)};`, "}");
      }
      if (app.fallback !== undefined) {
        // A last segment with a dot is a missing file, not a page route (proxy/static-site.ts isPageRoute).
        lines.push("", `map $uri ${vars.fallback} {`, `    ${quoted("~\\.[^/]*$")} ${vars.missing};`, `    default ${vars.rewrite};`, "}");
      }
    }
  }
  return lines;
}

/**
 * The directives of a location serving `app` under `mount`, besides the
 * alias and the refusals: its `index` (after the alias), and the rest (after
 * the refusals).
 */
export function staticSiteDirectives(config: StackConfig, stack: string, app: string, mount: string, differences: Differences): { index: string[]; rest: string[] } {
  const settings = config.apps[app]!;
  const vars = names(stack, app, config, mount);
  const indexNames = settings.index ?? ["index.html"];
  const index: string[] = [];
  const lines: string[] = [];
  if (indexNames.length > 0) index.push(`index ${indexNames.map((file) => (/^[A-Za-z0-9._-]+$/.test(file) ? file : quotedLiteral(file))).join(" ")};`);
  else if (settings.fallback === undefined) index.push("index index.html;", `if ($uri ~ "/$") { return 403; }`);
  else {
    index.push("index index.html;");
    differences.note(
      `apps.${app}.index`,
      "nginx has no empty index list, and a 403 for folder URLs would also refuse the page routes ending in / that the fallback answers; nearest: index.html",
    );
  }
  if (settings.cache) lines.push(`add_header Cache-Control ${vars.cache};`);
  if (settings.fallback !== undefined) lines.push(`try_files $uri $uri/ ${vars.fallback};`);
  return { index, rest: lines };
}

/**
 * The named locations of a server whose locations serve these (app, mount)
 * pairs: the fallback rewrites, and each app's 404 (its headers and pages,
 * which a named location would not inherit from the app's locations).
 */
export function staticNamedLocations(config: StackConfig, stack: string, served: readonly { app: string; mount: string }[], pages: NginxErrorPages): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const { app, mount } of served) {
    const settings = config.apps[app]!;
    if (settings.fallback === undefined) continue;
    const vars = names(stack, app, config, mount);
    if (!seen.has(vars.missing)) {
      seen.add(vars.missing);
      const own = [...headerDirectives(settings, undefined), ...pages.staticLines(app)];
      lines.push("", `location ${vars.missing} { ${own.map((line) => `${line} `).join("")}return 404; }`);
    }
    if (seen.has(vars.rewrite)) continue;
    seen.add(vars.rewrite);
    lines.push("", `location ${vars.rewrite} { rewrite ^ ${quotedLiteral(`${mount}${settings.fallback}`)} last; }`);
  }
  return lines;
}
