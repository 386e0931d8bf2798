/**
 * @module export/container
 *
 * One worker app as a container runs it: the part `export k8s` and `export
 * compose` share. Where the stack starts `instances` workers under pm2, a
 * container engine starts `instances` containers of one image, each running
 * one gateway worker, or a command app through `sh -c` with PORT set, as
 * supervisor/launch.ts does.
 *
 * A gateway worker that leaves by design — recycled after `max_requests`,
 * or replaced after a request ran past `timeout` — must not take its
 * container with it: the engine would count each exit as a crash
 * (Kubernetes' CrashLoopBackOff, 10 s doubling to 5 min, the pod not ready
 * meanwhile). So when either is set the container runs `serve --workers 1`:
 * the arbiter holds the listener, starts the replacement while the leaving
 * worker still serves (gateway/arbiter.ts), replaces a crashed worker
 * in-process, and drains on SIGTERM (it retires its worker with SIGTERM and
 * kills it 1 s after graceful_timeout, within the kill margin). The probes
 * reach whichever worker is accepting on the shared listener; the arbiter
 * writes no file (node:cluster talks over pipes), so the read-only root
 * still holds. Only a worker that never leaves by itself runs alone
 * (`serve --no-arbiter`: the engine restarts it, the engine stops it).
 *
 * The image is the user's, deploy/Dockerfile's by default: tsgi-stack built
 * at /app/dist, the config and its apps in /app (`--config-path` says where
 * else; the caller relocates the config there, export/relocate.ts), `node`
 * on the PATH. A path outside the config's folder is not in the image unless
 * the user puts it there, and is a difference.
 *
 * Where a path route mounts a module app (SCRIPT_NAME) is told by the proxy
 * in front, per request, in a header the worker reads with
 * `--script-name-header`: the route the proxy matched decides, as with the
 * stack's own proxy, so a host route and a path route of one app each give
 * the app the right SCRIPT_NAME. Where clients may reach the workers without
 * that proxy (a Kubernetes Service), an app with one mount falls back to
 * `--script-name` (the gateway mounts a request only when its path is under
 * it: elsewhere SCRIPT_NAME stays empty), and the proxy must then send `/`
 * for a route at the root, as the probes do.
 *
 * Pure: config in, data out.
 */
import path from "node:path";
import { applyDefaults } from "../config/defaults.ts";
import { type AnySchema, type AppConfig, AppSchema, type RestartConfig } from "../config/schema.ts";
import { Value } from "../config/typebox.ts";
import { parseModuleSpec } from "../contract/module-spec.ts";
import { SETTING_KINDS, settingArgs, settingsFromConfig, WORKER_SETTINGS } from "../contract/worker-settings.ts";
import { healthPathFor } from "../stack/proxy-settings.ts";
import { shellCommand } from "../supervisor/launch.ts";
import type { Differences } from "./differences.ts";

/** Where deploy/Dockerfile's image holds the config (the default of `--config-path`'s folder). */
export const IMAGE_ROOT = "/app";
/** The CLI as deploy/Dockerfile's image has it (the default of `--cli`). */
export const IMAGE_CLI = `${IMAGE_ROOT}/dist/cli/bin.js`;
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
/**
 * What the arbiter adds to a container's memory beside its worker: a node
 * process that only forks and listens (about 10 MiB of its own, measured on
 * node 20; its ~40 MiB of node's code pages are shared with the worker, and
 * the container is charged for them once), and a replacement booting while
 * the worker it replaces still serves. Added to `max_memory` for the
 * container's limit, so that the worker still gets what the config gives it.
 */
export const ARBITER_MEMORY = 64 * 2 ** 20;

/** A gateway worker's process, ready for a container's `command`. */
export interface WorkerProcess {
  /** The whole argv: `node … serve …`, or `sh -c …` for a command app. */
  argv: string[];
  /** Whether the container runs the arbiter above its one worker (`serve --workers 1`). */
  arbiter: boolean;
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
 * A path of the (relocated) config, which the image has when it is under
 * the config's folder; one outside it is written as it is, and noted.
 */
export function inImage(configDir: string, file: string, key: string, differences: Differences): string {
  const relative = path.posix.relative(configDir, file);
  if (relative.startsWith("..") || path.posix.isAbsolute(relative)) {
    differences.note(key, `${file} is outside the config's folder (${configDir} in the image): written as it is, so the image must have it there too`);
  }
  return file;
}

/** `--keep-alive 75000ms`: the table's own row and format, for the one setting the config does not set. */
function keepAliveArgs(): string[] {
  const row = WORKER_SETTINGS.find((setting) => setting.key === "keepAliveTimeoutMs")!;
  return [row.flag, SETTING_KINDS[row.kind].format(CONTAINER_KEEP_ALIVE_MS)];
}

export interface WorkerProcessInput {
  name: string;
  app: AppConfig;
  /** The config file's folder in the image (the config is relocated there). */
  configDir: string;
  /** The CLI's entry point in the image. */
  cli: string;
  /** The header the proxy in front sets to each request's mount point. */
  mountHeader: string;
  /** Fall back to the app's one mount when no header came (clients reach the workers without the proxy). */
  fallbackMount: boolean;
  differences: Differences;
}

/** The process one container of a worker app runs (never a static app: it has none). */
export function workerProcess({ name, app, configDir, cli, mountHeader, fallbackMount, differences }: WorkerProcessInput): WorkerProcess {
  const workingDir = inImage(configDir, app.cwd, `apps.${name}.cwd`, differences);
  const healthPath = app.health ? healthPathFor(app) : undefined;
  if (app.command !== undefined) {
    // As the stack runs it: through the shell, `exec`ed when it is one simple command, so the signal reaches the server.
    return { argv: ["sh", "-c", shellCommand(app.command)], arbiter: false, workingDir, env: { PORT: String(CONTAINER_PORT) }, ...(healthPath ? { healthPath } : {}), healthHeaders: {} };
  }
  const { modulePath, exportName } = parseModuleSpec(app.module!);
  const module = inImage(configDir, modulePath, `apps.${name}.module`, differences) + (exportName ? `:${exportName}` : "");
  const mounts = mountsOf(app).filter((mount) => mount !== "");
  // A worker that recycles or times out leaves by design: the arbiter replaces it in the container (see above).
  const arbiter = app.max_requests > 0 || app.timeout > 0;
  const argv = [
    "node",
    cli,
    "serve",
    module,
    ...(arbiter ? ["--workers", "1"] : ["--no-arbiter"]),
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
    ...(fallbackMount && mounts.length === 1 ? ["--script-name", mounts[0]!] : []),
    ...(app.allow_trace ? ["--allow-trace"] : []),
  ];
  // A check asks for the path unmounted, as the stack's checks do: with a fallback mount, that takes saying so.
  return { argv, arbiter, workingDir, env: {}, ...(healthPath ? { healthPath } : {}), healthHeaders: fallbackMount ? { [mountHeader]: "/" } : {} };
}

/** The container's memory limit for `max_memory`: the worker's allowance, plus the arbiter's when it runs one. */
export function memoryLimit(app: AppConfig, worker: WorkerProcess): number | undefined {
  return app.max_memory ? app.max_memory + (worker.arbiter ? ARBITER_MEMORY : 0) : undefined;
}

/** `restart:` as the schema fills it in when the config leaves it out. */
const DEFAULT_RESTART: RestartConfig = Value.Decode(AppSchema.properties.restart, applyDefaults(AppSchema.properties.restart as unknown as AnySchema, {}));

/** `256 MiB`, or bytes when not a whole number of MiB. */
function mebibytes(bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20} MiB` : `${bytes} bytes`;
}

/**
 * What a container engine does otherwise than the stack, whatever the
 * target: `max_memory` becomes a limit the kernel enforces by killing, and
 * `restart` has no counterpart. `restarts` says how the target restarts a
 * container that exits.
 */
export function noteContainerDifferences(name: string, app: AppConfig, worker: WorkerProcess, restarts: string, differences: Differences): void {
  const limit = memoryLimit(app, worker);
  if (app.max_memory && limit !== undefined) {
    differences.note(
      `apps.${name}.max_memory`,
      `${mebibytes(app.max_memory)}: written as the container's memory limit (${mebibytes(limit)}${worker.arbiter ? ", with the arbiter's share" : ""}), ` +
        "which the kernel enforces by killing: the worker's in-flight requests are dropped, where the stack replaces a worker above it gracefully",
    );
  }
  // Only a setting the config changes: the defaults' approximation is docs/deploy.md's to state.
  const changed = (Object.keys(DEFAULT_RESTART) as (keyof RestartConfig)[]).filter((key) => app.restart[key] !== DEFAULT_RESTART[key]);
  if (changed.length > 0) {
    const set = changed.map((key) => (key === "max_restarts" ? `max_restarts ${app.restart[key]}` : `${key} ${app.restart[key]} ms`)).join(", ");
    const how = worker.arbiter
      ? `the arbiter in the container replaces a worker that dies (at once, or after 100 ms doubling to 15 s while workers die young) and ${restarts}; neither ever stops a crash-looping app`
      : `${restarts}, and never stops a crash-looping app`;
    differences.note(`apps.${name}.restart`, `${set}: ${how}`);
  }
}

/** Whole seconds for a setting the target counts in seconds: at least `min`, rounded up. */
export function seconds(ms: number, min = 1): number {
  return Math.max(min, Math.ceil(ms / 1000));
}
