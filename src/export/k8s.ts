/**
 * @module export/k8s
 *
 * The stack as Kubernetes manifests: what runs each worker app, what finds
 * it, and the front door. Per worker app a Deployment (its `instances` as
 * replicas, each pod one gateway worker: export/container.ts), a Service,
 * a ConfigMap of its `env`; and Ingresses carrying every route.
 *
 * The front proxy's part goes to the cluster's ingress controller. An
 * Ingress says hosts and path prefixes (pathType Prefix matches whole path
 * segments, as our router does: `/api` takes `/api` and `/api/x`, never
 * `/apix`); what it cannot say (limits, timeouts, retries, balancing) is
 * written as annotations of ingress-nginx, the common controller, under
 * `ingressClassName: nginx`. Another controller ignores them; what neither
 * the Ingress nor ingress-nginx's annotations can express is a Difference
 * (export/differences.ts), under its config key.
 *
 * Two rules of our router an Ingress does not have by itself, written out:
 *
 *   - A host route beats a route for any host, whatever their paths: the
 *     stack sends `shop.example.com/api` to the app routed by that host even
 *     when another app has `/api` for any host. An ingress controller keeps
 *     each host's paths apart instead (a request for a host that has rules
 *     never reaches the rules without a host), so a less specific route is
 *     copied into a host's rule where the stack would reach it there: where
 *     no route of that host covers its path.
 *   - The mount point: an Ingress cannot set our header, but ingress-nginx
 *     sets X-Forwarded-Prefix from an Ingress' `x-forwarded-prefix`
 *     annotation, for every path of that Ingress, replacing a client's. So
 *     there is one Ingress per app and mount point, and the workers read the
 *     mount from that header; `/` for a route at the root, so that no client
 *     can choose one there.
 *
 * Pure: the loaded config in, YAML text out.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { stringify } from "yaml";
import type { AppConfig, StackConfig } from "../config/schema.ts";
import { killTimeoutMs } from "../contract/stopping.ts";
import { appKind } from "../stack/proxy-settings.ts";
import { CONTAINER_PORT, memoryLimit, mountOf, noteContainerDifferences, seconds, type WorkerProcess, workerProcess } from "./container.ts";
import { Differences } from "./differences.ts";

export interface K8sInput {
  /** The config, relocated to where the image has it (export/relocate.ts). */
  config: StackConfig;
  /** The config file as the image has it (`--config-path`). */
  configFile: string;
  /** The stack's name: `app.kubernetes.io/part-of` of everything, and the TLS Secret's (stackName of the file read). */
  name: string;
  /** The image every worker container runs, and the CLI's entry point in it. */
  image: string;
  cli: string;
  /** Written into every object; absent: kubectl's current namespace. */
  namespace?: string;
  /** Write despite differences, listing them at the top. */
  force: boolean;
}

/** The header ingress-nginx's `x-forwarded-prefix` annotation sets: where the matched path mounts the app. */
export const K8S_MOUNT_HEADER = "x-forwarded-prefix";
/** ingress-nginx's annotations, by their prefix. */
const NGINX = "nginx.ingress.kubernetes.io";
/** ingress-nginx's IngressClass, as its install creates it. */
const INGRESS_CLASS = "nginx";
/**
 * How long a stopping pod keeps serving before its worker is told to stop:
 * the endpoints controller and the ingress controller learn of the stop
 * while the pod is already stopping, and may still send it requests for a
 * moment, which a worker that closed its listener would refuse. An `exec`
 * of sleep(1) (coreutils, in deploy/Dockerfile's bookworm-slim image), not
 * the `sleep` action, which older clusters refuse (beta, and on by default,
 * only from Kubernetes 1.30).
 */
const PRE_STOP_SLEEP_S = 5;
/** How the kubelet restarts a container that exits, for the notes. */
const K8S_RESTARTS = "the kubelet restarts a container that exits (after 10 s doubling to 5 min: CrashLoopBackOff)";
/**
 * Paths ingress-nginx accepts in a Prefix rule (its strict path validation,
 * the default) and in `x-forwarded-prefix`: letters, digits, `_`, `-`, `/`.
 */
const NGINX_PATH = /^\/[A-Za-z0-9_\-/]*$/;
/** The controller's own defaults for what it sets only for all Ingresses at once (its ConfigMap). */
const CONTROLLER_DEFAULTS = { header_timeout: 60_000, body_timeout: 60_000 } as const;

type Manifest = Record<string, unknown>;

/** A Kubernetes name (a DNS label) from an app name, which may hold `_`. */
export function k8sName(name: string): string {
  return name.replace(/_/g, "-").slice(0, 63).replace(/-+$/, "");
}

/** The stack's name: the config folder's, as a DNS label. */
export function stackName(configFile: string): string {
  const base = k8sName(path.basename(path.dirname(configFile)).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, ""));
  return base || "tsgi-stack";
}

/** `256Mi` for 256 MiB: a Kubernetes quantity, exact. */
export function quantity(bytes: number): string {
  for (const [suffix, unit] of [["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]] as const) {
    if (bytes % unit === 0 && bytes >= unit) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

/** nginx's size syntax (`10m`, `512k`), exact; `0` is "no limit" in both. */
function nginxSize(bytes: number): string {
  if (bytes > 0 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}m`;
  if (bytes > 0 && bytes % 2 ** 10 === 0) return `${bytes / 2 ** 10}k`;
  return String(bytes);
}

/** A route as the Ingress sees it: its app, host, path and index in the app's `routes`. */
interface Route {
  app: string;
  host?: string;
  path: string;
  mount: string;
  index: number;
}

/** How specific a route's host is for a rule's host (the router's rank), or -1 when the route never matches there. */
function rankFor(route: Route, ruleHost: string | undefined): number {
  if (route.host === ruleHost) return route.host === undefined ? 0 : route.host.startsWith("*.") ? 1 : 2;
  if (route.host === undefined) return 0;
  if (!route.host.startsWith("*.") || ruleHost === undefined) return -1;
  // The router's wildcard takes any name ending in `.suffix`: an exact host under it, or a narrower wildcard.
  const suffix = route.host.slice(1);
  const name = ruleHost.startsWith("*.") ? ruleHost.slice(1) : ruleHost;
  return name.endsWith(suffix) && name.length > suffix.length ? 1 : -1;
}

/** Whether requests under `mount` all fall under `outer` (segment-wise; "" covers everything). */
function covers(outer: string, mount: string): boolean {
  return outer === "" || mount === outer || mount.startsWith(`${outer}/`);
}

/**
 * Each rule's paths: for each host that has routes (then for no host), the
 * routes the stack's router would use for a request to that host, most
 * specific host first. A less specific route joins only where no more
 * specific one covers its path: the controller's longest-prefix match then
 * picks what the router picks.
 */
export function ruleRoutes(routes: readonly Route[]): { host?: string; routes: Route[] }[] {
  const hosts = [...new Set(routes.flatMap((route) => (route.host === undefined ? [] : [route.host])))];
  const rules: { host?: string; routes: Route[] }[] = [];
  for (const host of [...hosts, undefined]) {
    const candidates = routes
      .map((route) => ({ route, rank: rankFor(route, host) }))
      .filter(({ rank }) => rank >= 0)
      .sort((a, b) => b.rank - a.rank);
    const taken: { route: Route; rank: number }[] = [];
    for (const candidate of candidates) {
      const hidden = taken.some((more) => more.rank > candidate.rank && covers(more.route.mount, candidate.route.mount));
      if (!hidden) taken.push(candidate);
    }
    if (taken.length > 0) rules.push({ ...(host === undefined ? {} : { host }), routes: taken.map(({ route }) => route) });
  }
  return rules;
}

/**
 * ingress-nginx's custom-http-errors annotation sends the statuses it names
 * to a default backend (a service that serves the pages) — one more
 * deployment, not written here.
 */
const ERROR_PAGES_DIFFERENCE =
  "ingress-nginx serves custom error pages only from a default backend you deploy (custom-http-errors and default-backend annotations); not written: the controller's own pages";

/** The config's settings of the front proxy, as ingress-nginx annotations; what they cannot carry is noted. */
function proxyAnnotations(config: StackConfig, differences: Differences): Record<string, string> {
  const { limits } = config.proxy;
  const wholeSeconds = (key: string, ms: number): string => {
    if (ms % 1000 !== 0 || ms === 0) differences.note(`proxy.limits.${key}`, `${ms} ms: ingress-nginx counts this timeout in whole seconds, at least 1; written as ${seconds(ms)} s`);
    return String(seconds(ms));
  };
  for (const key of ["header_timeout", "body_timeout"] as const) {
    if (limits[key] !== CONTROLLER_DEFAULTS[key]) {
      const setting = key === "header_timeout" ? "client-header-timeout" : "client-body-timeout";
      differences.note(
        `proxy.limits.${key}`,
        `${limits[key]} ms: ingress-nginx sets this for all Ingresses at once (${setting} in its ConfigMap), not per Ingress; the controller's own applies (60 s unless changed there)`,
      );
    }
  }
  if (limits.websocket_idle_timeout !== limits.upstream_timeout) {
    differences.note(
      "proxy.limits.websocket_idle_timeout",
      `${limits.websocket_idle_timeout} ms: ingress-nginx closes an idle WebSocket at its read/send timeout, which is upstream_timeout's (${limits.upstream_timeout} ms) here`,
    );
  }
  // The controller logs every request in its own format (nginx's combined plus the upstream, times and request
  // id: what `combined` says), set for all Ingresses at once; it can only be turned off per Ingress.
  if (config.proxy.access_log === "json") {
    differences.note(
      "proxy.access_log",
      "json: ingress-nginx's log format is set for all Ingresses at once (log-format-upstream and log-format-escape-json in its ConfigMap); its default format is written",
    );
  }
  if (config.proxy.tls?.http2 === false) {
    differences.note("proxy.tls.http2", "ingress-nginx offers HTTP/2 to every Ingress at once (use-http2 in its ConfigMap); it stays on for this one");
  }
  if (config.proxy.trusted_proxies.length > 0) {
    differences.note(
      "proxy.trusted_proxies",
      "ingress-nginx decides whom it believes X-Forwarded-* from for all Ingresses at once (use-forwarded-headers and proxy-real-ip-cidr in its ConfigMap); by default it replaces them",
    );
  }
  if (config.proxy.error_pages) differences.note("proxy.error_pages", ERROR_PAGES_DIFFERENCE);
  return {
    [`${NGINX}/proxy-body-size`]: nginxSize(limits.client_max_body_size),
    [`${NGINX}/proxy-connect-timeout`]: wholeSeconds("connect_timeout", limits.connect_timeout),
    [`${NGINX}/proxy-read-timeout`]: wholeSeconds("upstream_timeout", limits.upstream_timeout),
    [`${NGINX}/proxy-send-timeout`]: String(seconds(limits.upstream_timeout)),
    // Without https_redirect the stack serves HTTP and HTTPS alike; ingress-nginx would redirect HTTP to HTTPS for a host with TLS.
    ...(config.proxy.tls ? { [`${NGINX}/ssl-redirect`]: httpsRedirectAnnotation(config, differences) } : {}),
    ...(config.proxy.access_log === "off" ? { [`${NGINX}/enable-access-log`]: "false" } : {}),
  };
}

/**
 * `proxy.https_redirect` as ingress-nginx's ssl-redirect, which is the same
 * thing with the defaults: a 308 (the controller's http-redirect-code) to
 * port 443, ACME's challenge path left alone. Other settings are the
 * controller's ConfigMap's, not an Ingress's.
 */
function httpsRedirectAnnotation(config: StackConfig, differences: Differences): string {
  const https = config.proxy.https_redirect;
  if (!https) return "false";
  if (https.status !== 308) differences.note("proxy.https_redirect.status", `${https.status}: ingress-nginx redirects with its ConfigMap's http-redirect-code (308 unless changed there), not per Ingress`);
  if (https.port !== undefined && https.port !== 443) differences.note("proxy.https_redirect.port", `${https.port}: ingress-nginx redirects to the Ingress's own HTTPS port`);
  const except = https.except.map((prefix) => prefix.replace(/\/+$/, ""));
  if (except.length !== 1 || except[0] !== "/.well-known/acme-challenge") {
    differences.note("proxy.https_redirect.except", "ingress-nginx leaves only ACME's challenge path on plain HTTP (cert-manager's); written: that path alone");
  }
  return "true";
}

/** An app's own settings of the front proxy, as ingress-nginx annotations. */
function appAnnotations(name: string, app: AppConfig, differences: Differences): Record<string, string> {
  const annotations: Record<string, string> =
    app.retry.tries <= 1
      ? { [`${NGINX}/proxy-next-upstream`]: "off" }
      : {
          // nginx's proxy_next_upstream, as the nginx exporter writes it: a request not sent, or dropped before an answer, goes to the next pod.
          [`${NGINX}/proxy-next-upstream`]: app.retry.non_idempotent ? "error timeout non_idempotent" : "error timeout",
          [`${NGINX}/proxy-next-upstream-tries`]: String(app.retry.tries),
        };
  if (app.balance === "ip_hash") {
    // One client, one pod: ingress-nginx's consistent hash of the client address.
    annotations[`${NGINX}/upstream-hash-by`] = "$remote_addr";
  } else if (app.balance !== "round_robin") {
    differences.note(
      `apps.${name}.balance`,
      `${app.balance}: ingress-nginx balances by round robin (or a hash, or EWMA), with no ${app.balance === "least_conn" ? "fewest-requests-in-flight" : "power-of-two-choices"} choice; written as round robin`,
    );
  }
  if (app.allow_trace) {
    differences.note(`apps.${name}.allow_trace`, "ingress-nginx refuses TRACE (405) before any Ingress sees it; the workers would let it through");
  }
  // ingress-nginx's limit-rps / limit-connections annotations take a burst as a multiple of the rate and one status for the whole controller: not the config's.
  if (app.rate_limit) differences.note(`apps.${name}.rate_limit`, "ingress-nginx's limit-rps annotations have no burst, delay or status of their own (the controller's limit-req-status-code); not written: no rate limit");
  if (app.error_pages) differences.note(`apps.${name}.error_pages`, ERROR_PAGES_DIFFERENCE);
  if (app.conn_limit) differences.note(`apps.${name}.conn_limit`, "ingress-nginx's limit-connections annotation answers the controller's limit-conn-status-code; not written: no limit");
  // ingress-nginx compresses for every Ingress at once (its ConfigMap), with no annotation per Ingress.
  if (app.compress) {
    differences.note(`apps.${name}.compress`, "ingress-nginx compresses for the whole controller (its ConfigMap's use-gzip, enable-brotli, gzip-level, gzip-types), off by default; not written: the controller's");
  }
  // Both would need a configuration-snippet, which ingress-nginx turns off by default (allow-snippet-annotations: false) since CVE-2021-25742.
  if (Object.keys(app.headers).length > 0) {
    differences.note(`apps.${name}.headers`, "ingress-nginx sets response headers per Ingress only through a configuration-snippet (off by default in the controller); not written: no headers added");
  }
  if (app.trailing_slash !== "keep") {
    differences.note(`apps.${name}.trailing_slash`, "ingress-nginx has no annotation for a trailing-slash redirect (only a configuration-snippet, off by default); not written: paths kept as sent");
  }
  return annotations;
}

function metadata(name: string, labels: Record<string, string>, namespace: string | undefined, extra: Manifest = {}): Manifest {
  return { name, ...(namespace === undefined ? {} : { namespace }), labels, ...extra };
}

/** An HTTP probe of the health path, or a TCP one: the pod answers on its port. */
function probe(worker: WorkerProcess, periodS: number, timeoutS: number, failureThreshold: number): Manifest {
  const action = worker.healthPath
    ? {
        httpGet: {
          path: worker.healthPath,
          port: "http",
          ...(Object.keys(worker.healthHeaders).length > 0 ? { httpHeaders: Object.entries(worker.healthHeaders).map(([name, value]) => ({ name, value })) } : {}),
        },
      }
    : { tcpSocket: { port: "http" } };
  return { ...action, periodSeconds: periodS, timeoutSeconds: timeoutS, successThreshold: 1, failureThreshold };
}

/** What one worker app becomes: its ConfigMap (when it has env), Deployment and Service. */
function appManifests(name: string, app: AppConfig, input: K8sInput, labels: Record<string, string>, differences: Differences): Manifest[] {
  const id = k8sName(name);
  // A Service is reachable without the ingress controller: the one mount is the fallback.
  const worker = workerProcess({ name, app, configDir: path.dirname(input.configFile), cli: input.cli, mountHeader: K8S_MOUNT_HEADER, fallbackMount: true, differences });
  noteContainerDifferences(name, app, worker, K8S_RESTARTS, differences);
  const memory = memoryLimit(app, worker);
  const env = Object.entries(app.env);
  const configMap = `${id}-env`;
  const periodS = app.health ? seconds(app.health.interval) : 5;
  const timeoutS = app.health ? seconds(app.health.timeout) : 1;
  const container: Manifest = {
    name: id,
    image: input.image,
    command: worker.argv,
    workingDir: worker.workingDir,
    ports: [{ name: "http", containerPort: CONTAINER_PORT, protocol: "TCP" }],
    ...(Object.keys(worker.env).length > 0 ? { env: Object.entries(worker.env).map(([key, value]) => ({ name: key, value })) } : {}),
    ...(env.length > 0 ? { envFrom: [{ configMapRef: { name: configMap } }] } : {}),
    // max_memory (a difference): above it the stack replaces the worker gracefully; the kernel kills.
    ...(memory ? { resources: { limits: { memory: quantity(memory) } } } : {}),
    // ready_timeout: a new worker that does not listen by then has failed to start.
    startupProbe: { tcpSocket: { port: "http" }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: seconds(app.ready_timeout) },
    // As the stack's checks: one failure takes the pod out of the Service, one pass puts it back.
    readinessProbe: probe(worker, periodS, timeoutS, 1),
    // Restart only a pod that keeps failing (the stack never restarts for a failed check; a hung worker ends itself).
    livenessProbe: probe(worker, periodS, timeoutS, 3),
    lifecycle: { preStop: { exec: { command: ["sleep", String(PRE_STOP_SLEEP_S)] } } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
  };
  const envDigest = createHash("sha1").update(JSON.stringify(app.env)).digest("hex").slice(0, 16);
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(id, labels, input.namespace),
    spec: {
      replicas: app.instances,
      selector: { matchLabels: labels },
      // One new pod at a time, none taken away before its successor is ready: the stack's rolling reload.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          // A change of env (the ConfigMap) changes this, and so rolls the pods, as a reload does.
          annotations: { "tsgi-stack/env-digest": envDigest },
        },
        spec: {
          // The pre-stop pause, the drain (graceful_timeout), and the worker's own exit margin (within which the
          // arbiter, when there is one, kills a worker still draining 1 s after graceful_timeout, and exits with it).
          terminationGracePeriodSeconds: PRE_STOP_SLEEP_S + seconds(killTimeoutMs(app.graceful_timeout)),
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
          containers: [container],
          volumes: [{ name: "tmp", emptyDir: {} }],
        },
      },
    },
  };
  const service: Manifest = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(id, labels, input.namespace),
    spec: {
      type: "ClusterIP",
      selector: labels,
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
      // ip_hash, for what reaches the Service without the ingress controller (which hashes itself).
      ...(app.balance === "ip_hash" ? { sessionAffinity: "ClientIP" } : {}),
    },
  };
  const manifests: Manifest[] = [];
  if (env.length > 0) {
    manifests.push({ apiVersion: "v1", kind: "ConfigMap", metadata: metadata(configMap, labels, input.namespace), data: Object.fromEntries(env) });
  }
  manifests.push(deployment, service);
  return manifests;
}

/** The Ingresses: one per app and mount point, each rule a host's (or no host's) paths. */
function ingresses(input: K8sInput, routes: Route[], labelsOf: (app: string) => Record<string, string>, differences: Differences): Manifest[] {
  const { config } = input;
  const proxy = proxyAnnotations(config, differences);
  const groups = new Map<string, { app: string; mount: string; rules: Map<string | undefined, Route[]> }>();
  for (const rule of ruleRoutes(routes)) {
    for (const route of rule.routes) {
      const key = `${route.app}\n${route.mount}`;
      if (!groups.has(key)) groups.set(key, { app: route.app, mount: route.mount, rules: new Map() });
      const group = groups.get(key)!;
      group.rules.set(rule.host, [...(group.rules.get(rule.host) ?? []), route]);
    }
  }
  const perApp = new Map<string, number>();
  for (const group of groups.values()) perApp.set(group.app, (perApp.get(group.app) ?? 0) + 1);
  const seen = new Map<string, number>();
  const tlsSecret = `${input.name}-tls`;
  return [...groups.values()].map((group) => {
    const app = config.apps[group.app]!;
    const id = k8sName(group.app);
    const nth = (seen.get(group.app) ?? 0) + 1;
    seen.set(group.app, nth);
    const hosts = [...group.rules.keys()].filter((host): host is string => host !== undefined);
    const annotations = {
      ...proxy,
      ...appAnnotations(group.app, app, differences),
      // The mount point, for a gateway worker's SCRIPT_NAME (a command app gets every path as sent).
      ...(appKind(app) === "module" ? { [`${NGINX}/x-forwarded-prefix`]: group.mount || "/" } : {}),
    };
    return {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: metadata(perApp.get(group.app)! > 1 ? `${id}-${nth}` : id, labelsOf(group.app), input.namespace, { annotations }),
      spec: {
        ingressClassName: INGRESS_CLASS,
        ...(config.proxy.tls ? { tls: [{ ...(hosts.length > 0 ? { hosts } : {}), secretName: tlsSecret }] } : {}),
        rules: [...group.rules.entries()].map(([host, paths]) => ({
          ...(host === undefined ? {} : { host }),
          http: {
            paths: paths.map((route) => ({
              path: route.path,
              pathType: "Prefix",
              backend: { service: { name: id, port: { name: "http" } } },
            })),
          },
        })),
      },
    };
  });
}

/** The routes of the worker apps, checked for what an Ingress cannot say; static apps are left out, and noted. */
function routesOf(config: StackConfig, differences: Differences): Route[] {
  const routes: Route[] = [];
  for (const [name, app] of Object.entries(config.apps)) {
    if (appKind(app) === "redirect") {
      differences.note(
        `apps.${name}.redirect`,
        `a redirect app has no workers, and an Ingress cannot answer a redirect for one path of a host alone (ingress-nginx's permanent-redirect annotation redirects every path of its Ingress, without the request's path): left out; answer ${app.routes.map((route) => `${route.host ?? ""}${route.path}`).join(", ") || "it"} from the front nginx or the app`,
      );
      continue;
    }
    if (appKind(app) === "static") {
      differences.note(
        `apps.${name}.static`,
        `a static folder has no workers to run, and an Ingress serves no files: left out; serve ${app.static} from an nginx image of its own (or a bucket) and route ${app.routes.map((route) => `${route.host ?? ""}${route.path}`).join(", ") || "it"} there`,
      );
      continue;
    }
    app.routes.forEach((route, index) => {
      if (route.host?.startsWith("*.")) {
        differences.note(
          `apps.${name}.routes[${index}].host`,
          `${route.host}: an Ingress wildcard matches one label (a.${route.host.slice(2)}, not a.b.${route.host.slice(2)}); the stack's matches any`,
        );
      }
      if (!NGINX_PATH.test(route.path)) {
        differences.note(`apps.${name}.routes[${index}].path`, `${route.path}: ingress-nginx refuses a Prefix path with characters other than letters, digits, _, - and /`);
      }
      routes.push({ app: name, ...(route.host === undefined ? {} : { host: route.host }), path: route.path, mount: mountOf(route.path), index });
    });
  }
  return routes;
}

/** The manifests, as one multi-document YAML text; throws Inexpressible (writing nothing) on differences without force. */
export function k8sManifests(input: K8sInput): string {
  const { config } = input;
  const differences = new Differences();
  const stack = input.name;
  const labelsOf = (app: string) => ({ "app.kubernetes.io/name": k8sName(app), "app.kubernetes.io/part-of": stack, "app.kubernetes.io/managed-by": "tsgi-stack" });
  const names = new Map<string, string>();
  const documents: Manifest[] = [];
  const routes = routesOf(config, differences);
  for (const [name, app] of Object.entries(config.apps)) {
    if (appKind(app) === "static" || appKind(app) === "redirect") continue;
    const id = k8sName(name);
    if (names.has(id)) differences.note(`apps.${name}`, `its Kubernetes name is ${id}, as apps.${names.get(id)}'s: one would replace the other`);
    names.set(id, name);
    documents.push(...appManifests(name, app, input, labelsOf(name), differences));
  }
  documents.push(...ingresses(input, routes, labelsOf, differences));
  const notes = differences.settle("k8s", input.configFile, input.force);
  const header = [
    `Written by \`tsgi-stack export k8s\` from ${input.configFile}: kubectl apply -f this file.`,
    `The image (${input.image}) has the config at ${input.configFile}, its apps beside it, and tsgi-stack at ${input.cli} (deploy/Dockerfile's layout by default).`,
    ...(config.proxy.tls
      ? [`HTTPS: create the certificate's Secret first: kubectl create secret tls ${stack}-tls --cert=${config.proxy.tls.cert} --key=${config.proxy.tls.key}`]
      : []),
    "The Ingress annotations are ingress-nginx's (nginx.ingress.kubernetes.io/*); another controller ignores them.",
    ...notes,
  ];
  const body = documents.map((document) => stringify(document, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
  return `${header.map((line) => `# ${line}`).join("\n")}\n---\n${body}`;
}
