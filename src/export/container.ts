/**
 * @module export/container
 *
 * One worker app as a container runs it: the part `export k8s` and `export
 * compose` share. Where the stack starts `instances` workers under pm2, a
 * container engine starts `instances` containers of one image, each running
 * one gateway worker in the foreground (`serve --no-arbiter`, the worker
 * alone: the engine restarts it, the engine stops it) or a command app
 * through `sh -c` with PORT set, as supervisor/launch.ts does.
 *
 * The image is the user's: the config's folder at IMAGE_ROOT, with its
 * dependencies (tsgi-stack among them) installed, and `node` on the PATH.
 * Paths of the loaded config (absolute on this machine) are written as the
 * image sees them; a path outside the config's folder cannot be, and is a
 * difference.
 *
 * Where a path route mounts a module app (SCRIPT_NAME) is told by the proxy
 * in front, per request, in a header the worker reads with
 * `--script-name-header`: the route the proxy matched decides, as the stack's
 * own proxy does, so a host route and a path route of one app each give the
 * app the right SCRIPT_NAME. When no proxy sends it (a client inside the
 * cluster calling the Service, a probe), an app with one mount falls back to
 * `--script-name` (the gateway mounts a request only when its path is under
 * it: elsewhere SCRIPT_NAME stays empty). Probes send the header with `/`,
 * so a check gets the path as the stack's checks do: unmounted.
 *
 * Pure: config in, data out.
 */
import path from "node:path";
import type { AppConfig } from "../config/schema.ts";
import { parseModuleSpec } from "../contract/module-spec.ts";
import { SETTING_KINDS, settingArgs, settingsFromConfig, WORKER_SETTINGS } from "../contract/worker-settings.ts";
import { healthPathFor } from "../stack/proxy-settings.ts";
import { shellCommand } from "../supervisor/launch.ts";
import type { Differences } from "./differences.ts";

/** Where the image holds the config's folder. */
export const IMAGE_ROOT = "/app";
/** The CLI as the image has it: the project's own dependency, built. */
export const IMAGE_CLI = `${IMAGE_ROOT}/node_modules/tsgi-stack/dist/cli/bin.js`;
/** The port every worker container listens on (a container has its own network namespace). */
export const CONTAINER_PORT = 8000;
/**
 * The worker's idle keep-alive in a container: longer than the proxy's own
 * idle bound for its upstream connections (60 s in nginx and ingress-nginx),
 * so that the proxy, not the worker, closes an idle connection and never
 * reuses one the worker is closing (the race contract/keep-alive.ts avoids
 * in the stack by the other side's bound).
 */
export const CONTAINER_KEEP_ALIVE_MS = 75_000;

/** A gateway worker's process, ready for a container's `command`. */
export interface WorkerProcess {
  /** The whole argv: `node … serve …`, or `sh -c …` for a command app. */
  argv: string[];
  /** The working directory, as the image has it. */
  workingDir: string;
  /** Set by the container itself (PORT for a command app), on top of the app's `env`. */
  env: Record<string, string>;
  /** The path a health check GETs, as the stack's proxy asks for it. */
  healthPath?: string;
  /** Headers a health check sends: the mount header saying "no mount", for a module app. */
  healthHeaders: Record<string, string>;
}

/** The distinct mount points of an app's routes ("" for a route at `/`), in the order the routes give them. */
export function mountsOf(app: AppConfig): string[] {
  return [...new Set(app.routes.map((route) => mountOf(route.path)))];
}

/** A route's mount point: its path, or "" for `/` (the proxy's router says the same). */
export function mountOf(routePath: string): string {
  return routePath === "/" ? "" : routePath;
}

/**
 * A path of this machine as the image sees it: under IMAGE_ROOT, at the
 * same place relative to the config's folder. A path outside that folder is
 * written as it is, and noted.
 */
export function inImage(configDir: string, file: string, key: string, differences: Differences): string {
  const relative = path.relative(configDir, file);
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    differences.note(key, `${file} is outside the config's folder, which the image holds at ${IMAGE_ROOT}; written as it is, so the image must have it there`);
    return file;
  }
  return path.posix.join(IMAGE_ROOT, ...relative.split(path.sep));
}

/** `--keep-alive 75000ms`: the table's own row and format, for the one setting the config does not set. */
function keepAliveArgs(): string[] {
  const row = WORKER_SETTINGS.find((setting) => setting.key === "keepAliveTimeoutMs")!;
  return [row.flag, SETTING_KINDS[row.kind].format(CONTAINER_KEEP_ALIVE_MS)];
}

export interface WorkerProcessInput {
  name: string;
  app: AppConfig;
  /** The config file's folder (absolute): what the image holds at IMAGE_ROOT. */
  configDir: string;
  /** The header the proxy in front sets to each request's mount point. */
  mountHeader: string;
  differences: Differences;
}

/** The process one container of a worker app runs (never a static app: it has none). */
export function workerProcess({ name, app, configDir, mountHeader, differences }: WorkerProcessInput): WorkerProcess {
  const workingDir = inImage(configDir, app.cwd, `apps.${name}.cwd`, differences);
  const healthPath = app.health ? healthPathFor(app) : undefined;
  if (app.command !== undefined) {
    // As the stack runs it: through the shell, `exec`ed when it is one simple command, so the signal reaches the server.
    return { argv: ["sh", "-c", shellCommand(app.command)], workingDir, env: { PORT: String(CONTAINER_PORT) }, ...(healthPath ? { healthPath } : {}), healthHeaders: {} };
  }
  const { modulePath, exportName } = parseModuleSpec(app.module!);
  const module = inImage(configDir, modulePath, `apps.${name}.module`, differences) + (exportName ? `:${exportName}` : "");
  const mounts = mountsOf(app).filter((mount) => mount !== "");
  const argv = [
    "node",
    IMAGE_CLI,
    "serve",
    module,
    "--no-arbiter",
    "--http",
    `0.0.0.0:${CONTAINER_PORT}`,
    "--interface",
    app.interface,
    // The configured worker settings, written by the table serve parses them with.
    ...settingArgs(settingsFromConfig((key) => app[key])),
    ...keepAliveArgs(),
    // As under the stack: the engine may run several, and scaling changes how many.
    "--multiprocess",
    "--script-name-header",
    mountHeader,
    // Without a proxy's header, the one mount there is (a request outside it keeps SCRIPT_NAME empty).
    ...(mounts.length === 1 ? ["--script-name", mounts[0]!] : []),
    ...(app.allow_trace ? ["--allow-trace"] : []),
  ];
  return { argv, workingDir, env: {}, ...(healthPath ? { healthPath } : {}), healthHeaders: { [mountHeader]: "/" } };
}

/** Whole seconds for a setting the target counts in seconds: at least `min`, rounded up. */
export function seconds(ms: number, min = 1): number {
  return Math.max(min, Math.ceil(ms / 1000));
}
