/**
 * @module export/compose
 *
 * The stack as one Compose file (the Compose specification, `docker compose
 * up`): a service per worker app, running the same image and process as a
 * Kubernetes pod (export/container.ts) with `instances` replicas, and the
 * front door as nginx (`nginx:stable`), its configuration the nginx
 * exporter's, carried in the file itself (a top-level `configs:` entry with
 * `content:`), so that the export is one file to hand over.
 *
 * What the front proxy says is said by that nginx configuration, and what
 * nginx cannot say is noted by its exporter; this module adds what Compose
 * itself changes: nginx finds each app's replicas by the service's name,
 * static folders are bind-mounted read-only into the nginx container, and
 * health checks become the containers' healthchecks, which nginx does not
 * read.
 *
 * Compose interpolates `$VAR` in every value of the file when it reads it;
 * nginx's variables and the app's env are meant literally, so every `$` is
 * written `$$`.
 *
 * Pure: the loaded config (as read here, and relocated to the image) in,
 * YAML text out.
 */
import path from "node:path";
import { stringify } from "yaml";
import type { AddressConfig, AppConfig, StackConfig } from "../config/schema.ts";
import { SCRIPT_NAME_HEADER } from "../contract/script-name.ts";
import { formatDuration } from "../contract/units.ts";
import { killTimeoutMs } from "../contract/stopping.ts";
import { appKind, hasWorkers } from "../stack/proxy-settings.ts";
import { CONTAINER_PORT, memoryLimit, noteContainerDifferences, seconds, type WorkerProcess, workerProcess } from "./container.ts";
import { Differences } from "./differences.ts";
import { nginxConfig, type NginxTarget } from "./nginx.ts";

/** nginx's image: the stable line. */
export const NGINX_IMAGE = "nginx:stable";
/** Where the nginx image reads http-level configuration; the stack's replaces the image's default server. */
const NGINX_CONF = "/etc/nginx/conf.d/default.conf";
/** Where static folders are mounted in the nginx container, one folder per app. */
const STATIC_ROOT = "/srv/tsgi/static";
/** Where the `error_pages` files are mounted in the nginx container, one file each. */
const ERROR_PAGES_ROOT = "/srv/tsgi/error-pages";

/** The ports nginx listens on in its container; the config's listeners are published onto them. */
const NGINX_HTTP_PORT = 80;
const NGINX_TLS_PORT = 443;

/** The `error_pages` files of the config as the image sees it -> the same files here (the config differs only by its folder). */
function hostPageFiles(config: StackConfig, hostConfig: StackConfig): Map<string, string> {
  const files = new Map<string, string>();
  const pair = (there: Readonly<Record<string, string>> | undefined, here: Readonly<Record<string, string>> | undefined) => {
    for (const [key, file] of Object.entries(there ?? {})) if (here?.[key]) files.set(file, here[key]);
  };
  pair(config.proxy.error_pages, hostConfig.proxy.error_pages);
  for (const [name, app] of Object.entries(config.apps)) pair(app.error_pages, hostConfig.apps[name]?.error_pages);
  return files;
}

/** How Docker restarts a container that exits (`restart: unless-stopped`), for the notes. */
const DOCKER_RESTARTS = "Docker restarts a container that exits (restart: unless-stopped, after 100 ms doubling to 1 min)";

export interface ComposeInput {
  /** The config, relocated to where the image has it (export/relocate.ts): what the workers see. */
  config: StackConfig;
  /** The config as read here: the static folders and the certificate are bind-mounted from its paths. */
  hostConfig: StackConfig;
  /**
   * The folder of the config read here: a bind mount under it is written
   * relative (`./examples/static`), as Compose reads it against the project
   * folder — the compose file's own, or `--project-directory`.
   */
  hostConfigDir: string;
  /** The config file as the image has it (`--config-path`). */
  configFile: string;
  /** The project's name (stackName of the file read). */
  name: string;
  /** The image every worker service runs, and the CLI's entry point in it. */
  image: string;
  cli: string;
  force: boolean;
}

type Service = Record<string, unknown>;

/** A Compose byte value (`256m`), exact. */
function bytes(value: number): string {
  for (const [suffix, unit] of [["g", 2 ** 30], ["m", 2 ** 20], ["k", 2 ** 10]] as const) {
    if (value % unit === 0 && value >= unit) return `${value / unit}${suffix}`;
  }
  return `${value}b`;
}

/**
 * The healthcheck: node's fetch of the health path as the stack's checks ask
 * for it (2xx or 3xx passes), or a connection to the port without one.
 */
export function healthcheckTest(worker: WorkerProcess, timeoutMs: number): string[] {
  const script = worker.healthPath
    ? `fetch(${JSON.stringify(`http://127.0.0.1:${CONTAINER_PORT}${worker.healthPath}`)},{headers:${JSON.stringify(worker.healthHeaders)},redirect:"manual",signal:AbortSignal.timeout(${timeoutMs})})` +
      `.then((r)=>process.exit(r.status>=200&&r.status<400?0:1),()=>process.exit(1))`
    : `require("node:net").connect(${CONTAINER_PORT},"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`;
  return ["CMD", "node", "-e", script];
}

/** One worker app's service. */
function workerService(name: string, app: AppConfig, input: ComposeInput, differences: Differences): Service {
  // The nginx exporter sends the mount in the stack's own header, as the stack's proxy does, and none for a
  // route at the root: no fallback mount, which would mount such a request (nginx is the only way in).
  const worker = workerProcess({ name, app, configDir: path.dirname(input.configFile), cli: input.cli, mountHeader: SCRIPT_NAME_HEADER, fallbackMount: false, differences });
  noteContainerDifferences(name, app, worker, DOCKER_RESTARTS, differences);
  const memory = memoryLimit(app, worker);
  if (app.health) {
    differences.note(
      `apps.${name}.health`,
      `nginx has no active health checks: a replica failing ${app.health.path} is marked unhealthy (docker compose ps) but keeps getting requests until it fails them`,
    );
  }
  const timeoutMs = app.health?.timeout ?? 2000;
  return {
    image: input.image,
    // The image's entrypoint replaced, as a pod's `command` does: the worker is the container's one process.
    entrypoint: worker.argv,
    working_dir: worker.workingDir,
    environment: { ...app.env, ...worker.env },
    expose: [String(CONTAINER_PORT)],
    deploy: {
      replicas: app.instances,
      ...(memory ? { resources: { limits: { memory: bytes(memory) } } } : {}),
    },
    restart: "unless-stopped",
    healthcheck: {
      test: healthcheckTest(worker, timeoutMs),
      interval: formatDuration(app.health?.interval ?? 5000),
      timeout: formatDuration(timeoutMs),
      retries: 1,
      start_period: formatDuration(app.ready_timeout),
    },
    // The drain (graceful_timeout) and the worker's own exit margin, before Docker kills it.
    stop_grace_period: `${seconds(killTimeoutMs(app.graceful_timeout))}s`,
    user: "1000:1000",
    read_only: true,
    tmpfs: ["/tmp"],
    cap_drop: ["ALL"],
    security_opt: ["no-new-privileges:true"],
  };
}

/** `127.0.0.1:8080` published onto a port of the nginx container. */
function published(address: AddressConfig, target: number): Record<string, unknown> {
  return { target, published: String(address.port), host_ip: address.host, protocol: "tcp" };
}

/**
 * The proxy service: nginx with the stack's configuration (the text the
 * nginx exporter wrote, export/nginx.ts), the config's listeners published
 * onto it, static folders (from `staticMounts`: here -> in the container)
 * and the certificate mounted read-only. Returns the service and the
 * `configs:` entry that carries the text.
 */
export function proxyService(
  config: StackConfig,
  hostConfig: StackConfig,
  nginxText: string,
  workers: readonly string[],
  staticMounts: Record<string, string>,
): { service: Service; configs: Record<string, { content: string }> } {
  const tls = config.proxy.tls;
  const hostTls = hostConfig.proxy.tls;
  const bind = (source: string, target: string) => ({ type: "bind", source, target, read_only: true });
  const volumes = [
    ...Object.entries(staticMounts).map(([folder, target]) => bind(folder, target)),
    // nginx's configuration names the certificate by its path in the image: mounted there from here.
    ...(tls && hostTls ? [bind(hostTls.cert, tls.cert), bind(hostTls.key, tls.key)] : []),
  ];
  return {
    service: {
      image: NGINX_IMAGE,
      configs: [{ source: "nginx", target: NGINX_CONF }],
      ports: [
        ...config.proxy.listen.map((address) => published(address, NGINX_HTTP_PORT)),
        ...(tls ? tls.listen.map((address) => published(address, NGINX_TLS_PORT)) : []),
      ],
      ...(volumes.length > 0 ? { volumes } : {}),
      // nginx resolves the services' names when it starts: their replicas must be there by then, and when Compose
      // recreates one (a new image, `up --force-recreate`) it restarts nginx too (`restart: true`), which then
      // finds the new containers' addresses. A container Docker itself restarts (its process exited) does not
      // restart nginx: should it come back on another address, nginx keeps the old one until the proxy restarts.
      ...(workers.length > 0 ? { depends_on: Object.fromEntries(workers.map((name) => [name, { condition: "service_started", restart: true }])) } : {}),
      restart: "unless-stopped",
    },
    configs: { nginx: { content: nginxText } },
  };
}

/** Every `$` of every string written `$$`: Compose reads the rest literally. */
function literal<T>(value: T): T {
  if (typeof value === "string") return value.replace(/\$/g, "$$$$") as T;
  if (Array.isArray(value)) return value.map(literal) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, literal(inner)])) as T;
  return value;
}

/** A path under the config's folder as Compose writes it relative to the project folder (`./public`); any other as it is. */
function projectRelative(file: string, configDir: string): string {
  const relative = path.relative(configDir, file);
  return relative === "" ? "." : relative.startsWith("..") || path.isAbsolute(relative) ? file : `./${relative}`;
}

/** The Compose file; throws Inexpressible (writing nothing) on differences without force. */
export function composeFile(input: ComposeInput): string {
  const { config } = input;
  const differences = new Differences();
  const workers = Object.entries(config.apps).filter(([, app]) => hasWorkers(appKind(app)));
  const proxyName = config.apps.proxy ? "tsgi-proxy" : "proxy";
  const services: Record<string, Service> = {};
  for (const [app, settings] of workers) services[app] = workerService(app, settings, input, differences);
  // Each static folder, from where it is here, at its own mount in the nginx container (and each error page file).
  const staticMounts: Record<string, string> = {};
  const pageMounts = new Map<string, string>();
  const hostPages = hostPageFiles(config, input.hostConfig);
  const target: NginxTarget = {
    protocol: "http",
    name: input.name,
    // The nginx image's own logs go to the container's output (docker compose logs): so does this one.
    accessLog: "/dev/stdout",
    // Docker's DNS gives the service's name every replica's address.
    upstream: (app) => (services[app] ? { servers: [`${app}:${CONTAINER_PORT}`] } : { unreachable: `no service runs ${app}` }),
    staticFolder: (app) => (staticMounts[input.hostConfig.apps[app]!.static!] = `${STATIC_ROOT}/${app}`),
    // Each error page, from where it is here, as a file of its own in the nginx container.
    errorPageFile: (file) => {
      const here = hostPages.get(file) ?? file;
      let inside = pageMounts.get(here);
      if (inside === undefined) pageMounts.set(here, (inside = `${ERROR_PAGES_ROOT}/${pageMounts.size}.html`));
      return (staticMounts[here] = inside);
    },
    // The container's ports, which the config's listeners are published onto; HTTPS only with a certificate.
    listen: { http: [String(NGINX_HTTP_PORT)], tls: config.proxy.tls ? [String(NGINX_TLS_PORT)] : [] },
  };
  const nginxText = nginxConfig(config, target, differences);
  // What is bind-mounted from here (the static folders, the certificate) is named relative to the project folder.
  const here = (file: string) => projectRelative(file, input.hostConfigDir);
  const hostTls = input.hostConfig.proxy.tls;
  const mounted = { ...input.hostConfig, proxy: { ...input.hostConfig.proxy, tls: hostTls && { ...hostTls, cert: here(hostTls.cert), key: here(hostTls.key) } } };
  const mounts = Object.fromEntries(Object.entries(staticMounts).map(([folder, inside]) => [here(folder), inside]));
  const proxy = proxyService(config, mounted, nginxText, Object.keys(services), mounts);
  services[proxyName] = proxy.service;
  const notes = differences.settle("compose", input.configFile, input.force);
  const header = [
    `Written by \`tsgi-stack export compose\` for ${input.configFile}: docker compose -f THIS_FILE up -d`,
    "Its ./ paths are the config's folder: keep this file beside the config, or add --project-directory CONFIG_FOLDER.",
    `The image (${input.image}) has the config at ${input.configFile}, its apps beside it, and tsgi-stack at ${input.cli} (deploy/Dockerfile's layout by default).`,
    `The front door is ${NGINX_IMAGE}, its configuration under configs.nginx; every $ is written $$ for Compose.`,
    "nginx finds an app's replicas when it starts: after scaling one, restart the proxy service.",
    ...notes,
  ];
  const document = literal({ name: input.name, services, configs: proxy.configs });
  return `${header.map((line) => `# ${line}`).join("\n")}\n${stringify(document, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
