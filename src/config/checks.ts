/**
 * @module config/checks
 *
 * The rules a JSON Schema cannot say, or cannot say clearly (issue #3): each a
 * small function over the file's data (after `${VAR}` expansion, before
 * defaults), each returning problems with their key paths.
 *
 *   - an app has exactly one of `module` and `command`; `interface` only with `module`
 *   - a module file, a `cwd` folder and the TLS files exist
 *   - no two routes are the same host + path (naming both apps)
 *   - no two listeners share an address
 *
 * They run alongside the schema so that `validate` reports every error at
 * once, so they read the data defensively and skip any value the schema has
 * already faulted (`faulted(path)`): one mistake, one message.
 */
import type { PathSegment } from "./errors.ts";
import { formatPath } from "./errors.ts";
import { type Probe, resolveFrom, resolveModuleFile, splitModuleSpec } from "./paths.ts";
import { normalizeHost, normalizeRoutePath, splitAddress } from "./schema.ts";

export interface CheckProblem {
  segments: PathSegment[];
  message: string;
}

export interface CheckContext {
  /** The config file's folder: relative paths start there. */
  dir: string;
  probe: Probe;
  /** True when a problem is already reported at this path, around it or inside it. */
  faulted(segments: readonly PathSegment[]): boolean;
  /** True when a problem is already reported at this path or around it (not inside). */
  faultedAt(segments: readonly PathSegment[]): boolean;
}

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

const moduleOrCommand: Check = (data, context) => {
  const problems: CheckProblem[] = [];
  for (const [name, app] of appsOf(data)) {
    if (context.faultedAt(["apps", name])) continue; // a bad app name is enough said
    const hasModule = app.module !== undefined;
    const hasCommand = app.command !== undefined;
    if (hasModule && hasCommand) {
      problems.push({
        segments: ["apps", name, "command"],
        message: "an app has `module` or `command`, not both (`module`: served by gateway workers; `command`: any server on $PORT)",
      });
    } else if (!hasModule && !hasCommand) {
      problems.push({
        segments: ["apps", name],
        message: "missing `module` or `command` (`module`: a TSGI, Node or Fetch app file; `command`: any HTTP server that listens on $PORT)",
      });
    }
    if (hasCommand && !hasModule && app.interface !== undefined) {
      problems.push({
        segments: ["apps", name, "interface"],
        message: "`interface` applies to `module` apps only: a `command` app is any HTTP server",
      });
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
  if (isRecord(data.proxy) && isRecord(data.proxy.tls)) {
    requireFile(data.proxy.tls.cert, ["proxy", "tls", "cert"]);
    requireFile(data.proxy.tls.key, ["proxy", "tls", "key"]);
  }
  for (const [name, app] of appsOf(data)) {
    const moduleSegments = ["apps", name, "module"];
    if (validString(app.module, moduleSegments, context)) {
      const { modulePath } = splitModuleSpec(app.module);
      if (!resolveModuleFile(context.dir, modulePath, context.probe)) {
        problems.push({ segments: moduleSegments, message: `no such file: ${resolveFrom(context.dir, modulePath)}` });
      }
    }
    const cwdSegments = ["apps", name, "cwd"];
    if (validString(app.cwd, cwdSegments, context)) {
      const absolute = resolveFrom(context.dir, app.cwd);
      const found = context.probe(absolute);
      if (found !== "dir") problems.push({ segments: cwdSegments, message: found === "file" ? `a file, not a folder: ${absolute}` : `no such folder: ${absolute}` });
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
      const host = typeof route.host === "string" ? normalizeHost(route.host) : undefined;
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

/** The checks, in the order their problems are listed for one key. */
export const CHECKS: readonly Check[] = [moduleOrCommand, filesExist, uniqueRoutes, uniqueListeners];

export function checkProblems(data: unknown, context: CheckContext): CheckProblem[] {
  return isRecord(data) ? CHECKS.flatMap((check) => check(data, context)) : [];
}
