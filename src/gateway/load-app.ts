/**
 * @module gateway/load-app
 *
 * Turns `path/to/module.ts[:export]` into a TSGI app, the way Gunicorn turns
 * `module:app` into a WSGI callable. A TypeScript module loads directly: the
 * loader is registered just before it is imported (gateway/typescript.ts). The export defaults to `app`, then
 * the module's default export. The interface is picked by `--interface`, or
 * told from the value itself:
 *
 *   - an object with `fetch(request)` (a Hono app, `export default { fetch }`) -> fetch
 *   - a Koa app (`callback()`), a Fastify instance (`routing` + `ready`) -> node
 *   - a function with `listen` (Express, Connect) -> node
 *   - any other function -> tsgi
 *
 * A plain `(req, res)` function cannot be told from a TSGI app by looking:
 * pass `--interface node` for one. Every failure is an AppLoadError whose
 * message names the file and the export; the worker exits with APP_LOAD_ERROR.
 * Its subclasses, one per way a load fails, are the catalog's APP group
 * (src/errors.ts, docs/errors.md).
 *
 * HTTP upgrades (WebSocket) are outside TSGI: a module may add an upgrade
 * handler with the signature of node:http's 'upgrade' event, `(req, socket,
 * head)`, which is what `ws`' `WebSocketServer.handleUpgrade` takes. It is the
 * `upgrade` property of the app export when that is a function (an object
 * `export default { fetch, upgrade }`, or `chat.upgrade = …` for one of several
 * apps in a module), else the module's named export `upgrade`. Without one, an
 * upgrade request is a plain request to the app (docs/gateway.md, WebSockets).
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Environ, TsgiApp } from "../tsgi/types.ts";
import { fromNodeListener } from "../tsgi/adapters/node-listener.ts";
import { fromFetchHandler } from "../tsgi/adapters/fetch.ts";
import { importTypeScript, isTypeScriptFile } from "./typescript.ts";
import { type AppInterface, type InterfaceChoice, MODULE_EXTENSIONS, parseModuleSpec } from "../contract/module-spec.ts";
import { errorGroup, TsgiStackError } from "../errors.ts";


/** Why `spec` did not load; `detail` is the import's stack, for the worker's log. `at` is the file (or file:line:column) at fault. */
export abstract class AppLoadError extends TsgiStackError {
  readonly detail?: string;

  constructor(
    readonly spec: string,
    reason: string,
    options: { at?: string; detail?: string } = {},
  ) {
    super(`cannot load app ${spec}: ${reason}`, { at: options.at ?? spec });
    if (options.detail !== undefined) this.detail = options.detail;
  }
}

/** No file at the module path (with any of the extensions tried). */
export class AppModuleNotFound extends AppLoadError {
  static readonly code = "TSGI_ERR_APP_NOT_FOUND";
}

/** Importing the module threw: a syntax or type-stripping error, a missing dependency, or its top level threw. */
export class AppImportFailed extends AppLoadError {
  static readonly code = "TSGI_ERR_APP_IMPORT";
}

/** The module has no export of the name asked for (or no `app` and no default export). */
export class AppExportMissing extends AppLoadError {
  static readonly code = "TSGI_ERR_APP_NO_EXPORT";
}

/** The export is not an app of the interface asked for (or of any, with `auto`). */
export class NotAnApp extends AppLoadError {
  static readonly code = "TSGI_ERR_APP_NOT_AN_APP";
}

/** The module's `upgrade` export is not a function `(req, socket, head)`. */
export class BadUpgradeHandler extends AppLoadError {
  static readonly code = "TSGI_ERR_APP_BAD_UPGRADE";
}

/** Loading an app's module, for the catalog (docs/errors.md). */
export const appErrors = errorGroup("APP", [AppModuleNotFound, AppImportFailed, AppExportMissing, NotAnApp, BadUpgradeHandler]);

/**
 * What a module exports to take over a connection that asked for an HTTP
 * upgrade: node:http's 'upgrade' listener. It owns `socket` from then on
 * (answering 101, or refusing with a plain HTTP response). A returned Promise
 * means the handshake is still going on until it settles.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

/** The name of the upgrade handler: a property of the app export, or a named export of the module. */
export const UPGRADE_EXPORT = "upgrade";

export interface LoadedApp {
  app: TsgiApp;
  interface: AppInterface;
  /** The absolute path of the module file. */
  file: string;
  exportName: string;
  /** The module's upgrade handler, if it has one. */
  upgrade?: UpgradeHandler;
  /** Where the upgrade handler was found: `app.upgrade` (a property of the export) or `upgrade` (a named export). */
  upgradeName?: string;
}

function resolveModule(modulePath: string, cwd: string, spec: string): string {
  const base = path.resolve(cwd, modulePath);
  for (const extension of MODULE_EXTENSIONS) {
    const candidate = base + extension;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new AppModuleNotFound(spec, `no such file: ${base}`, { at: base });
}

type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

interface KoaLike {
  callback(): NodeListener;
  middleware: unknown;
}
interface FastifyLike {
  routing: NodeListener;
  ready(): Promise<unknown>;
}
interface FetchLike {
  fetch(request: Request, environ: Environ): Response | Promise<Response>;
}

const isKoa = (value: any): value is KoaLike =>
  value != null && typeof value.callback === "function" && "middleware" in value;
const isFastify = (value: any): value is FastifyLike =>
  value != null && typeof value.routing === "function" && typeof value.ready === "function";
const isFetch = (value: any): value is FetchLike => value != null && typeof value.fetch === "function";

function detectInterface(value: unknown): AppInterface | undefined {
  if (isFastify(value) || isKoa(value)) return "node";
  if (typeof value === "function") return typeof (value as { listen?: unknown }).listen === "function" ? "node" : "tsgi";
  if (isFetch(value)) return "fetch";
  return undefined;
}

/** The Node request listener inside an Express, Koa or Fastify app, or a plain listener. */
async function nodeListenerOf(value: unknown): Promise<NodeListener | undefined> {
  if (isFastify(value)) {
    await value.ready();
    return (req, res) => value.routing(req, res);
  }
  if (isKoa(value)) return value.callback();
  if (typeof value === "function") return value as NodeListener;
  return undefined;
}

async function adapt(value: unknown, chosen: AppInterface): Promise<TsgiApp | undefined> {
  switch (chosen) {
    case "tsgi":
      return typeof value === "function" ? (value as TsgiApp) : undefined;
    case "fetch":
      // The environ goes along as the second argument: Hono apps see it as `c.env`.
      if (isFetch(value)) return fromFetchHandler((request, environ) => value.fetch(request, environ));
      return typeof value === "function" ? fromFetchHandler(value as FetchLike["fetch"]) : undefined;
    case "node": {
      const listener = await nodeListenerOf(value);
      return listener && fromNodeListener(listener);
    }
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!;
}

/** esbuild's message for TypeScript that does not compile (tsx's loader passes on its text): `FILE:LINE:COLUMN: ERROR: what`. */
const COMPILE_ERROR = /^(\/[^\n]*?):(\d+):(\d+): ERROR: (.*)$/m;

/** `node --check`'s report of a JavaScript syntax error: `FILE:LINE`, the line, a caret under the column. */
const CHECK_REPORT = /^(\/[^\n]*):(\d+)\n[^\n]*\n( *)\^/;

/**
 * Why importing the module failed, in one line that starts with
 * `file:line:column` when the failure is a syntax error: from esbuild's
 * message for TypeScript (its columns count from 0, editors' from 1), and for
 * JavaScript from `node --check` of the file (Node keeps the position of an
 * ES module's syntax error out of the error it throws; this runs only on the
 * way out of a failed load). Anything else: the error's first line.
 */
export function importFailure(error: unknown, file: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const compile = COMPILE_ERROR.exec(message);
  if (compile) return `${compile[1]}:${compile[2]}:${Number(compile[3]) + 1}: ${compile[4]}`;
  if (error instanceof SyntaxError && !isTypeScriptFile(file)) {
    const check = spawnSync(process.execPath, ["--check", file], { encoding: "utf8", timeout: 10_000 });
    const at = CHECK_REPORT.exec(check.stderr ?? "");
    if (at) return `${at[1]}:${at[2]}:${at[3]!.length + 1}: ${firstLine(error)}`;
  }
  return firstLine(error);
}

/**
 * The upgrade handler for the app export `value` (named `name`): its own
 * `upgrade` method first (called as a method, so `this` is the export), then
 * the module's `upgrade` export. A property that is not a function is left
 * alone (it is the framework's business); an `upgrade` export that is not one
 * is an error, since the author meant it as a handler.
 */
function findUpgrade(
  namespace: Record<string, unknown>,
  value: unknown,
  name: string,
  spec: string,
  file: string,
): Pick<LoadedApp, "upgrade" | "upgradeName"> {
  const owner = value as { [UPGRADE_EXPORT]?: unknown } | null | undefined;
  if (owner != null && typeof owner[UPGRADE_EXPORT] === "function") {
    const method = owner[UPGRADE_EXPORT] as UpgradeHandler;
    return { upgrade: (req, socket, head) => method.call(owner, req, socket, head), upgradeName: `${name}.${UPGRADE_EXPORT}` };
  }
  if (name === UPGRADE_EXPORT || namespace[UPGRADE_EXPORT] === undefined) return {};
  const handler = namespace[UPGRADE_EXPORT];
  if (typeof handler !== "function") {
    throw new BadUpgradeHandler(
      spec,
      `export "${UPGRADE_EXPORT}" of ${file} is ${handler === null ? "null" : typeof handler}, not an upgrade handler (req, socket, head)`,
    );
  }
  return { upgrade: handler as UpgradeHandler, upgradeName: UPGRADE_EXPORT };
}

/** Imports the module, picks the export, adapts it to TSGI, finds its upgrade handler. Throws AppLoadError. */
export async function loadApp(spec: string, options: { cwd?: string; interface?: InterfaceChoice } = {}): Promise<LoadedApp> {
  const { modulePath, exportName } = parseModuleSpec(spec);
  const file = resolveModule(modulePath, options.cwd ?? process.cwd(), spec);
  let namespace: Record<string, unknown>;
  try {
    const url = pathToFileURL(file).href;
    namespace = isTypeScriptFile(file) ? await importTypeScript(url) : await import(url);
  } catch (error) {
    const detail = error instanceof Error ? error.stack : undefined;
    throw new AppImportFailed(spec, `importing ${file} failed: ${importFailure(error, file)}`, { at: file, ...(detail === undefined ? {} : { detail }) });
  }

  const name = exportName ?? ("app" in namespace ? "app" : "default");
  if (!(name in namespace) || namespace[name] === undefined) {
    const available = Object.keys(namespace).join(", ") || "none";
    throw new AppExportMissing(spec, `${file} has no export "${name}" (its exports: ${available})`, { at: file });
  }
  const value = namespace[name];
  const requested = options.interface ?? "auto";
  const chosen = requested === "auto" ? detectInterface(value) : requested;
  const app = chosen && (await adapt(value, chosen));
  if (!chosen || !app) {
    throw new NotAnApp(
      spec,
      `export "${name}" of ${file} is ${value === null ? "null" : typeof value}, not a ${chosen ?? "TSGI, Node or Fetch"} app`,
    );
  }
  return { app, interface: chosen, file, exportName: name, ...findUpgrade(namespace, value, name, spec, file) };
}
