/**
 * @module config/checks
 *
 * The rules a JSON Schema cannot say, or cannot say clearly (issue #3): each a
 * small function over the file's data (after `${VAR}` expansion, before
 * defaults), each returning problems with their key paths.
 *
 *   - an app has exactly one of `module`, `command`, `static` and
 *     `redirect`; `interface` only with `module`; none of the worker keys
 *     (`instances`, `health`, …) with `static` or `redirect`, which the proxy
 *     answers itself
 *   - `headers` names no header the proxy owns (hop-by-hop, Content-Length)
 *   - `proxy.https_redirect` only with `proxy.tls`
 *   - `trailing_slash: remove` not on a `static` app (its folders redirect to `/`)
 *   - a redirect's absolute `to` is a URL; no redirect app sends a client
 *     round to itself (config/redirect-loops.ts)
 *   - a module file, a `static` folder, a `cwd` folder and the TLS files exist
 *   - no two routes are the same host + path (naming both apps)
 *   - no two listeners share an address
 *   - each `proxy.trusted_proxies` entry is an address or CIDR block
 *   - a `rate_limit` has `nodelay` or `delay`, not both
 *   - each `error_pages` key is a status (400–599) or a class (`4xx`,
 *     `5xx`), and its file one the proxy can read, at most 1 MiB
 *   - `index`, `fallback` and `cache` only with `static`; the fallback is a
 *     file in the folder; every `cache` glob compiles
 *
 * They run alongside the schema so that `validate` reports every error at
 * once, so they read the data defensively and skip any value the schema has
 * already faulted (`faulted(path)`): one mistake, one message.
 */
import type { PathSegment } from "./errors.ts";
import { formatPath } from "./errors.ts";
import { parseCidr } from "./cidr.ts";
import { type Probe, resolveFrom, resolveModuleFile } from "./paths.ts";
import { parseModuleSpec } from "../contract/module-spec.ts";
import { AppSchema, FORMAT, foldHostCase, normalizeRoutePath, splitAddress, StackConfigSchema } from "./schema.ts";
import { MAX_DURATION_MS, parseDuration } from "../contract/units.ts";
import { MAX_ERROR_PAGE_BYTES, parseErrorPageKey } from "../contract/error-pages.ts";
import picomatch from "picomatch";
import nodePath from "node:path";
import { redirectLoops } from "./redirect-loops.ts";

export interface CheckProblem {
  segments: PathSegment[];
  message: string;
}

export interface CheckContext {
  /** The config file's folder: relative paths start there. */
  dir: string;
  probe: Probe;
  /**
   * What is wrong with reading a file of at most `maxBytes` (too large,
   * unreadable), or undefined when it can be read. Absent (a pure parse):
   * only whether the file exists is checked.
   */
  inspectFile?: FileInspector;
  /** True when a problem is already reported at this path, around it or inside it. */
  faulted(segments: readonly PathSegment[]): boolean;
  /** True when a problem is already reported at this path or around it (not inside). */
  faultedAt(segments: readonly PathSegment[]): boolean;
}

export type FileInspector = (absolutePath: string, maxBytes: number) => string | undefined;

type Check = (data: Record<string, unknown>, context: CheckContext) => CheckProblem[];

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function appsOf(data: Record<string, unknown>): [string, Record<string, unknown>][] {
  return isRecord(data.apps) ? Object.entries(data.apps).filter((entry): entry is [string, Record<string, unknown>] => isRecord(entry[1])) : [];
}

/** A string the schema accepted at this path, or undefined. */
function validString(value: unknown, segments: PathSegment[], context: CheckContext): value is string {
  return typeof value === "string" && !context.faulted(segments);
}

/** The keys that say what an app is: exactly one per app. */
const KINDS = ["module", "command", "static", "redirect"] as const;
/** What each kind is, for the messages. */
const KIND_HINTS =
  "`module`: a TSGI, Node or Fetch app file; `command`: any HTTP server that listens on $PORT; `static`: a folder the proxy serves itself; `redirect`: a redirect the proxy answers itself";
/** The keys a `static` app may have: the proxy serves it, so everything about workers is meaningless there (`compress`: its precompressed files, and the others compressed on the fly; its limits per client are the proxy's). */
const STATIC_KEYS = new Set(["static", "index", "fallback", "cache", "routes", "compress", "rate_limit", "conn_limit", "error_pages", "headers", "trailing_slash"]);
/** The keys that say how a folder is served: meaningless for an app with workers, which answers for itself. */
const STATIC_ONLY_KEYS = ["index", "fallback", "cache"] as const;
/** The keys a `redirect` app may have: like nginx's `return`, it answers before any limit or body is looked at. */
const REDIRECT_KEYS = new Set(["redirect", "routes", "headers"]);
const KEYS_OF_KIND: Readonly<Record<string, ReadonlySet<string>>> = { static: STATIC_KEYS, redirect: REDIRECT_KEYS };

/** `a`, `a` and `b`, `a`, `b` and `c`. */
function listKeys(keys: readonly string[]): string {
  const quoted = keys.map((key) => `\`${key}\``);
  return quoted.length <= 1 ? quoted.join("") : `${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1)}`;
}

const exactlyOneKind: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    if (context.faultedAt(["apps", name])) continue; // a bad app name is enough said
    const kinds = KINDS.filter((kind) => app[kind] !== undefined);
    if (kinds.length > 1) {
      problems.push({
        segments: ["apps", name, kinds[1]!],
        message: `an app has one of \`module\`, \`command\`, \`static\` or \`redirect\`, not ${listKeys(kinds)} (${KIND_HINTS})`,
      });
      continue;
    }
    if (kinds.length === 0) {
      problems.push({ segments: ["apps", name], message: `missing \`module\`, \`command\`, \`static\` or \`redirect\` (${KIND_HINTS})` });
      continue;
    }
    if (kinds[0] === "command" && app.interface !== undefined) {
      problems.push({
        segments: ["apps", name, "interface"],
        message: "`interface` applies to `module` apps only: a `command` app is any HTTP server",
      });
    }
    const allowed = KEYS_OF_KIND[kinds[0]!];
    if (!allowed) {
      for (const key of STATIC_ONLY_KEYS) {
        if (app[key] === undefined || context.faulted(["apps", name, key])) continue;
        problems.push({ segments: ["apps", name, key], message: `\`${key}\` applies to \`static\` apps only: an app with workers answers every path itself` });
      }
    }
    if (allowed) {
      // Keys of the schema only: an unknown key is the schema's to report. Written in the file only: defaults do not count.
      for (const key of Object.keys(app)) {
        if (allowed.has(key) || !(key in AppSchema.properties) || context.faulted(["apps", name, key])) continue;
        const appliesTo =
          key === "interface"
            ? "`module` apps only"
            : (STATIC_ONLY_KEYS as readonly string[]).includes(key)
              ? "`static` apps only"
              : STATIC_KEYS.has(key)
                ? "`module`, `command` and `static` apps"
                : "`module` and `command` apps";
        const why = kinds[0] === "redirect" ? "a `redirect` app answers every request with its redirect" : `a \`${kinds[0]}\` app has no workers`;
        problems.push({ segments: ["apps", name, key], message: `\`${key}\` applies to ${appliesTo}: ${why}` });
      }
    }
  }
  return problems;
};

const filesExist: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  const requireFile = (value: unknown, segments: PathSegment[]) => {
    if (!validString(value, segments, context)) return;
    const absolute = resolveFrom(context.dir, value);
    const found = context.probe(absolute);
    if (found !== "file") problems.push({ segments, message: found === "dir" ? `a folder, not a file: ${absolute}` : `no such file: ${absolute}` });
  };
  const requireFolder = (value: string, segments: PathSegment[]) => {
    const absolute = resolveFrom(context.dir, value);
    const found = context.probe(absolute);
    if (found !== "dir") problems.push({ segments, message: found === "file" ? `a file, not a folder: ${absolute}` : `no such folder: ${absolute}` });
  };
  // The state dir is created when missing; an existing file in its place would fail later with a raw EEXIST.
  if (typeof data.state_dir === "string" && !context.faulted(["state_dir"])) {
    const absolute = resolveFrom(context.dir, data.state_dir);
    if (context.probe(absolute) === "file") problems.push({ segments: ["state_dir"], message: `a file, not a folder: ${absolute}` });
  }
  if (isRecord(data.proxy) && isRecord(data.proxy.tls)) {
    requireFile(data.proxy.tls.cert, ["proxy", "tls", "cert"]);
    requireFile(data.proxy.tls.key, ["proxy", "tls", "key"]);
  }
  for (const [name, app] of appsOf(data)) {
    const moduleSegments = ["apps", name, "module"];
    if (validString(app.module, moduleSegments, context)) {
      const { modulePath } = parseModuleSpec(app.module);
      if (!resolveModuleFile(context.dir, modulePath, context.probe)) {
        problems.push({ segments: moduleSegments, message: `no such file: ${resolveFrom(context.dir, modulePath)}` });
      }
    }
    const staticSegments = ["apps", name, "static"];
    if (validString(app.static, staticSegments, context)) {
      requireFolder(app.static, staticSegments);
      const fallbackSegments = ["apps", name, "fallback"];
      if (validString(app.fallback, fallbackSegments, context)) problems.push(...fallbackProblems(resolveFrom(context.dir, app.static), app.fallback, fallbackSegments, context));
    }
    const cwdSegments = ["apps", name, "cwd"];
    if (validString(app.cwd, cwdSegments, context)) requireFolder(app.cwd, cwdSegments);
  }
  return problems;
};

/** The fallback is a file of the folder, reached without leaving it (no `..`) and no dotfile, which the folder never serves. */
function fallbackProblems(folder: string, fallback: string, segments: PathSegment[], context: CheckContext): CheckProblem[] {
  const names = fallback.split("/").filter((name) => name !== "");
  if (names.includes("..")) return [{ segments, message: `${JSON.stringify(fallback)} leaves the folder: the fallback is a file in ${folder}` }];
  if (names.some((name) => name.startsWith("."))) return [{ segments, message: `${JSON.stringify(fallback)} is a dotfile, which the folder never serves` }];
  const absolute = nodePath.join(folder, ...names);
  const found = context.probe(absolute);
  if (found === "file" || context.probe(folder) !== "dir") return [];
  return [{ segments, message: found === "dir" ? `a folder, not a file: ${absolute}` : `no such file in the folder: ${absolute}` }];
}

/**
 * The `cache` globs compile (picomatch turns a broken one into a pattern
 * that never matches, silently) and are relative to the folder.
 */
const cacheGlobs: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    if (!isRecord(app.cache)) continue;
    for (const key of ["immutable", "no_cache"] as const) {
      const globs = app.cache[key];
      if (!Array.isArray(globs)) continue;
      globs.forEach((glob: unknown, index) => {
        const segments: PathSegment[] = ["apps", name, "cache", key, index];
        if (!validString(glob, segments, context)) return;
        if (glob.startsWith("/")) {
          problems.push({ segments, message: `${JSON.stringify(glob)} starts with /: globs are relative to the folder (such as assets/** or *.html)` });
          return;
        }
        try {
          picomatch.makeRe(glob, { debug: true });
        } catch (error) {
          problems.push({ segments, message: `${JSON.stringify(glob)} is not a glob: ${(error as Error).message.split(": ").at(-1)}` });
        }
      });
    }
  }
  return problems;
};

const uniqueRoutes: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  const owners = new Map<string, { app: string; segments: PathSegment[] }>();
  for (const [name, app] of appsOf(data)) {
    if (!Array.isArray(app.routes)) continue;
    app.routes.forEach((route: unknown, index) => {
      const segments: PathSegment[] = ["apps", name, "routes", index];
      if (!isRecord(route) || context.faulted(segments)) return;
      const host = typeof route.host === "string" ? foldHostCase(route.host) : undefined;
      const urlPath = normalizeRoutePath(typeof route.path === "string" ? route.path : "/");
      const key = `${host ?? "*"} ${urlPath}`;
      const owner = owners.get(key);
      const what = host === undefined ? `path ${urlPath}` : `host ${host}, path ${urlPath}`;
      if (!owner) owners.set(key, { app: name, segments });
      else if (owner.app === name) problems.push({ segments, message: `duplicate route (${what}): the same as ${formatPath(owner.segments)}` });
      else problems.push({ segments, message: `duplicate route (${what}): app "${owner.app}" has it too (${formatPath(owner.segments)})` });
    });
  }
  return problems;
};

const uniqueListeners: Check = (data, context) => {
  if (!isRecord(data.proxy)) return [];
  const proxy = data.proxy;
  const listeners: [unknown, PathSegment[]][] = [];
  const addList = (value: unknown, segments: PathSegment[]) => {
    if (Array.isArray(value)) value.forEach((item, index) => listeners.push([item, [...segments, index]]));
  };
  addList(proxy.listen ?? ["127.0.0.1:8080"], ["proxy", "listen"]);
  listeners.push([proxy.admin ?? "127.0.0.1:8081", ["proxy", "admin"]]);
  if (isRecord(proxy.tls)) addList(proxy.tls.listen ?? ["127.0.0.1:8443"], ["proxy", "tls", "listen"]);

  const problems: CheckProblem[] = [];
  const users = new Map<string, PathSegment[]>();
  for (const [value, segments] of listeners) {
    if (!validString(value, segments, context)) continue;
    const { host, port } = splitAddress(value);
    if (port === 0) continue; // the kernel picks a free port for each
    const key = `${host}:${port}`;
    const user = users.get(key);
    if (user) problems.push({ segments, message: `${key} is already used by ${formatPath(user)}` });
    else users.set(key, segments);
  }
  return problems;
};

const trustedProxiesParse: Check = (data, context) => {
  if (!isRecord(data.proxy) || !Array.isArray(data.proxy.trusted_proxies)) return [];
  const problems: CheckProblem[] = [];
  data.proxy.trusted_proxies.forEach((entry: unknown, index) => {
    const segments: PathSegment[] = ["proxy", "trusted_proxies", index];
    if (!validString(entry, segments, context) || parseCidr(entry)) return;
    problems.push({ segments, message: `${JSON.stringify(entry)} is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)` });
  });
  return problems;
};

/** nginx takes the last of `nodelay` and `delay=`; a file that says both is a mistake either way. */
const delayOrNodelay: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    const limit = app.rate_limit;
    const segments: PathSegment[] = ["apps", name, "rate_limit", "delay"];
    if (!isRecord(limit) || limit.nodelay !== true || limit.delay === undefined || context.faulted(segments)) continue;
    problems.push({ segments, message: "`delay` and `nodelay: true` say different things: `nodelay` serves the whole burst at once, `delay` only its first requests" });
  }
  return problems;
};

/**
 * `error_pages` (on the proxy and on each app): a key nginx's error_page
 * could take (a status from 400 to 599, or a class), each file one the proxy
 * can read whole. A bad page is found here, at `validate` and at a reload
 * (which is then refused: the running pages stay), never at the request it
 * was meant for.
 */
const errorPageFiles: Check = (data, context) => {
  const maps: [PathSegment[], unknown][] = [];
  if (isRecord(data.proxy)) maps.push([["proxy", "error_pages"], data.proxy.error_pages]);
  for (const [name, app] of appsOf(data)) maps.push([["apps", name, "error_pages"], app.error_pages]);
  const problems: CheckProblem[] = [];
  for (const [base, pages] of maps) {
    if (!isRecord(pages) || context.faultedAt(base)) continue;
    for (const [key, file] of Object.entries(pages)) {
      const segments = [...base, key];
      if (!parseErrorPageKey(key)) {
        problems.push({ segments, message: `${JSON.stringify(key)} is not an error status: expected a status from 400 to 599 (such as 502) or a class (4xx or 5xx)` });
        continue;
      }
      if (!validString(file, segments, context)) continue;
      const absolute = resolveFrom(context.dir, file);
      const found = context.probe(absolute);
      if (found !== "file") {
        problems.push({ segments, message: found === "dir" ? `a folder, not an error page file: ${absolute}` : `no such file: ${absolute}` });
        continue;
      }
      const problem = context.inspectFile?.(absolute, MAX_ERROR_PAGE_BYTES);
      if (problem) problems.push({ segments, message: problem });
    }
  }
  return problems;
};

/**
 * Response header names `headers` may not set: those of one connection
 * (RFC 9110 §7.6.1 and the ones node and nginx treat so), which the proxy
 * writes for each hop itself, and the framing it computes. Each with why.
 */
export const PROXY_OWNED_HEADERS: ReadonlyMap<string, string> = new Map([
  ["connection", "it is about one connection, which the proxy manages"],
  ["keep-alive", "it is about one connection, which the proxy manages"],
  ["proxy-connection", "it is about one connection, which the proxy manages"],
  ["transfer-encoding", "the proxy frames each response itself"],
  ["te", "it is a request header about one connection"],
  ["trailer", "the proxy frames each response itself"],
  ["upgrade", "it is about one connection, which the proxy manages"],
  ["content-length", "the proxy frames each response itself"],
  ["x-request-id", "the proxy sets it on every response"],
]);

/**
 * What a `static` app's file server says of each file it sends, which an
 * app's `headers` would contradict (a Cache-Control of the app's against the
 * folder's `cache` rule, an ETag the same for every file).
 */
export const FILE_SERVER_HEADERS: ReadonlyMap<string, string> = new Map([
  ["cache-control", "the folder's `cache` key sets it per file"],
  ["etag", "the file server sets it per file"],
  ["last-modified", "the file server sets it per file"],
  ["content-type", "the file server sets it per file, from its name"],
  ["content-encoding", "the file server sets it per file (`compress`)"],
  ["accept-ranges", "the file server sets it per file"],
  ["content-range", "the file server sets it per file"],
]);

const headersTheProxyOwns: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    if (!isRecord(app.headers)) continue;
    for (const key of Object.keys(app.headers)) {
      const why = PROXY_OWNED_HEADERS.get(key.toLowerCase()) ?? (app.static !== undefined ? FILE_SERVER_HEADERS.get(key.toLowerCase()) : undefined);
      const segments: PathSegment[] = ["apps", name, "headers", key];
      if (why === undefined || context.faulted(segments)) continue;
      problems.push({ segments, message: `${key} cannot be set by \`headers\`: ${why}` });
    }
  }
  return problems;
};

/** Redirecting plain HTTP to HTTPS with no HTTPS listener would send every client to a port nothing answers. */
const httpsRedirectNeedsTls: Check = (data, context) => {
  if (!isRecord(data.proxy) || data.proxy.https_redirect === undefined || data.proxy.tls !== undefined) return [];
  const segments: PathSegment[] = ["proxy", "https_redirect"];
  if (context.faultedAt(segments)) return [];
  return [{ segments, message: "needs `proxy.tls`: without an HTTPS listener every client would be sent where nothing answers" }];
};

/** A static folder's URL is redirected to its slash form (`/docs` -> `/docs/`): removing the slash again would loop. */
const noSlashRemovalOnFolders: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    const segments: PathSegment[] = ["apps", name, "trailing_slash"];
    if (app.static === undefined || app.trailing_slash !== "remove" || context.faulted(segments)) continue;
    problems.push({ segments, message: "`remove` on a `static` app would loop: the proxy redirects a folder's URL to its `/` form (`/docs` -> `/docs/`)" });
  }
  return problems;
};

/** The schema's pattern only shapes a target; an absolute one must also be a URL a client can follow (`https://[zz` is not). */
const redirectTargetsParse: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    const segments: PathSegment[] = ["apps", name, "redirect", "to"];
    const to = isRecord(app.redirect) ? app.redirect.to : undefined;
    if (!validString(to, segments, context) || to.startsWith("/") || URL.canParse(to)) continue;
    problems.push({ segments, message: `${JSON.stringify(to)} is not a URL a client can follow (its host is malformed)` });
  }
  return problems;
};

const noRedirectLoops: Check = (data, context) => redirectLoops(appsOf(data), context);

/**
 * Environment variables the stack sets for each worker itself: PORT (a
 * command app's own port; a gateway worker listens where the supervisor
 * says) and TSGI_* (which stack, app and slot a worker is). An app's `env`
 * setting one would be silently overridden: it is an error instead.
 */
const stackOwnedEnv: Check = (data) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    if (!isRecord(app.env)) continue;
    for (const key of Object.keys(app.env)) {
      if (key === "PORT") {
        problems.push({
          segments: ["apps", name, "env", key],
          message: "PORT is the stack's: each worker gets its own (a `command` app reads it; a gateway worker listens where the supervisor says)",
        });
      } else if (key.startsWith("TSGI_")) {
        problems.push({ segments: ["apps", name, "env", key], message: `${key} is the stack's: it tells each worker which stack, app and slot it is` });
      }
    }
  }
  return problems;
};

/** The schema's fields of one format, with the values the file gives them and where (records and lists walked). */
function* valuesOfFormat(schema: unknown, data: unknown, format: string, segments: PathSegment[]): Generator<[unknown, PathSegment[]]> {
  if (!isRecord(schema) || data === undefined) return;
  if (schema[FORMAT] === format) {
    yield [data, segments];
    return;
  }
  if (isRecord(schema.properties) && isRecord(data)) {
    for (const [key, child] of Object.entries(schema.properties)) yield* valuesOfFormat(child, data[key], format, [...segments, key]);
  }
  if (isRecord(schema.patternProperties) && isRecord(data)) {
    const [child] = Object.values(schema.patternProperties);
    for (const [key, value] of Object.entries(data)) yield* valuesOfFormat(child, value, format, [...segments, key]);
  }
  if (isRecord(schema.items) && Array.isArray(data)) {
    for (const [index, value] of data.entries()) yield* valuesOfFormat(schema.items, value, format, [...segments, index]);
  }
}

/**
 * Every duration within what Node's timers take (contract/units.ts
 * MAX_DURATION_MS, about 24.8 days): a longer one would fire at once.
 */
const durationsInRange: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [value, segments] of valuesOfFormat(StackConfigSchema, data, "duration", [])) {
    if (context.faulted(segments) || (typeof value !== "string" && typeof value !== "number")) continue;
    // A Cache-Control max-age is no timer: a month or a year is fine there.
    if (segments.at(-2) === "cache" && segments.at(-1) === "max_age") continue;
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch {
      continue; // the schema has said what is wrong with it
    }
    if (ms > MAX_DURATION_MS) problems.push({ segments, message: `${JSON.stringify(value)} is longer than Node's timers allow: at most 24d` });
  }
  return problems;
};

/** The checks, in the order their problems are listed for one key. */
export const CHECKS: readonly Check[] = [
  exactlyOneKind,
  filesExist,
  cacheGlobs,
  uniqueRoutes,
  uniqueListeners,
  trustedProxiesParse,
  delayOrNodelay,
  errorPageFiles,
  headersTheProxyOwns,
  httpsRedirectNeedsTls,
  noSlashRemovalOnFolders,
  redirectTargetsParse,
  noRedirectLoops,
  stackOwnedEnv,
  durationsInRange,
];

export function checkProblems(data: unknown, context: CheckContext): CheckProblem[] {
  return isRecord(data) ? CHECKS.flatMap((check) => check(data, context)) : [];
}
