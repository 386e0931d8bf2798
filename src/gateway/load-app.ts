/**
 * @module gateway/load-app
 *
 * Turns `path/to/module.ts[:export]` into a TSGI app, the way Gunicorn turns
 * `module:app` into a WSGI callable. TypeScript loads directly (tsx is
 * registered by the CLI before this runs). The export defaults to `app`, then
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
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Environ, TsgiApp } from "../tsgi/types.ts";
import { fromNodeListener } from "../tsgi/adapters/node-listener.ts";
import { fromFetchHandler } from "../tsgi/adapters/fetch.ts";

export type AppInterface = "tsgi" | "node" | "fetch";
export type InterfaceChoice = AppInterface | "auto";
export const INTERFACE_CHOICES: readonly InterfaceChoice[] = ["auto", "tsgi", "node", "fetch"];

export class AppLoadError extends Error {
  constructor(
    readonly spec: string,
    reason: string,
    readonly detail?: string,
  ) {
    super(`cannot load app ${spec}: ${reason}`);
    this.name = "AppLoadError";
  }
}

export interface LoadedApp {
  app: TsgiApp;
  interface: AppInterface;
  /** The absolute path of the module file. */
  file: string;
  exportName: string;
}

/** Splits `file.ts:name` into file and export; a bare `file.ts` has no export name. */
export function parseAppSpec(spec: string): { modulePath: string; exportName?: string } {
  const colon = spec.lastIndexOf(":");
  if (colon > 0) {
    const name = spec.slice(colon + 1);
    if (/^[A-Za-z_$][\w$]*$/.test(name)) return { modulePath: spec.slice(0, colon), exportName: name };
  }
  return { modulePath: spec };
}

const PROBED_EXTENSIONS = ["", ".ts", ".mts", ".js", ".mjs", "/index.ts", "/index.js"];

function resolveModule(modulePath: string, cwd: string, spec: string): string {
  const base = path.resolve(cwd, modulePath);
  for (const extension of PROBED_EXTENSIONS) {
    const candidate = base + extension;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new AppLoadError(spec, `no such file: ${base}`);
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

/** Imports the module, picks the export, adapts it to TSGI. Throws AppLoadError. */
export async function loadApp(spec: string, options: { cwd?: string; interface?: InterfaceChoice } = {}): Promise<LoadedApp> {
  const { modulePath, exportName } = parseAppSpec(spec);
  const file = resolveModule(modulePath, options.cwd ?? process.cwd(), spec);
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new AppLoadError(spec, `importing ${file} failed: ${firstLine(error)}`, error instanceof Error ? error.stack : undefined);
  }

  const name = exportName ?? ("app" in namespace ? "app" : "default");
  if (!(name in namespace) || namespace[name] === undefined) {
    const available = Object.keys(namespace).join(", ") || "none";
    throw new AppLoadError(spec, `${file} has no export "${name}" (its exports: ${available})`);
  }
  const value = namespace[name];
  const requested = options.interface ?? "auto";
  const chosen = requested === "auto" ? detectInterface(value) : requested;
  const app = chosen && (await adapt(value, chosen));
  if (!chosen || !app) {
    throw new AppLoadError(
      spec,
      `export "${name}" of ${file} is ${value === null ? "null" : typeof value}, not a ${chosen ?? "TSGI, Node or Fetch"} app`,
    );
  }
  return { app, interface: chosen, file, exportName: name };
}
