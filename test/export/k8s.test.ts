/**
 * `tsgi-stack export k8s`: the manifests a user applies, checked as the
 * cluster would check them (every document validated by kubernetes-models
 * against the schemas generated from Kubernetes' OpenAPI), then as a user
 * reads them (replicas, the worker's command line, probes, limits, the
 * grace period, the rollout, Service selectors, Ingress rules, env), the
 * refusal of a setting Kubernetes cannot express (and --force's comments),
 * and the proof that the container's command is right: the gateway worker
 * started with exactly those arguments answers its probe, and gives a
 * routed request the SCRIPT_NAME the stack's own proxy would; a worker
 * that recycles is replaced while the container's process and its listener
 * stay, and SIGTERM drains within the pod's grace period.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { parseAllDocuments } from "yaml";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { killTimeoutMs } from "../../src/contract/stopping.ts";
import { BIN, httpGet, runCli, serve, sleep, stopAll, waitFor } from "../helpers/serve.ts";

type Doc = Record<string, any>;

const dirs: string[] = [];
afterEach(stopAll);
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A TSGI app that answers with where the gateway mounted the request, and which process answered (x-pid); `?sleep=MS` answers late. */
const MOUNT_ECHO = `export default async (environ, start) => {
  const ms = Number(new URLSearchParams(environ.QUERY_STRING).get("sleep") ?? 0);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  start("200 OK", [["content-type", "application/json"], ["x-pid", String(process.pid)]]);
  return [JSON.stringify({ scriptName: environ.SCRIPT_NAME, pathInfo: environ.PATH_INFO })];
};
`;

/** A config file (the apps' YAML under `apps:`, plus any top-level YAML) in a new folder holding app.mjs. */
function configDir(apps: string, top = ""): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-k8s-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), MOUNT_ECHO);
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, `${top}apps:\n${apps}`);
  return { dir, file };
}

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "networking.k8s.io/v1/Ingress": Ingress,
};

/** Every document of the text, each validated against its kind's schema. */
function validated(text: string): Doc[] {
  const documents = parseAllDocuments(text);
  expect(Array.isArray(documents)).toBe(true);
  return (documents as ReturnType<typeof parseAllDocuments> & unknown[]).map((document: any) => {
    expect(document.errors).toEqual([]);
    const data = document.toJS() as Doc;
    const Model = MODELS[`${data.apiVersion}/${data.kind}`];
    expect(Model, `${data.apiVersion} ${data.kind}`).toBeDefined();
    new Model!(data).validate();
    return data;
  });
}

async function exportK8s(file: string, ...flags: string[]): Promise<{ text: string; docs: Doc[] }> {
  const result = await runCli(["export", "k8s", "-c", file, ...flags]);
  expect(result.code, result.stderr).toBe(0);
  return { text: result.stdout, docs: validated(result.stdout) };
}

const find = (docs: Doc[], kind: string, name: string): Doc => {
  const found = docs.find((doc) => doc.kind === kind && doc.metadata.name === name);
  expect(found, `${kind} ${name}`).toBeDefined();
  return found!;
};

/** The value after a flag on a command line. */
const flag = (argv: string[], name: string) => argv[argv.indexOf(name) + 1];

/** host/path -> { service, mount } over every Ingress. */
function ingressRoutes(docs: Doc[]): Record<string, { service: string; port: string; mount?: string; pathType: string }> {
  const routes: Record<string, { service: string; port: string; mount?: string; pathType: string }> = {};
  for (const ingress of docs.filter((doc) => doc.kind === "Ingress")) {
    expect(ingress.spec.ingressClassName).toBe("nginx");
    for (const rule of ingress.spec.rules) {
      for (const entry of rule.http.paths) {
        routes[`${rule.host ?? "*"}${entry.path}`] = {
          service: entry.backend.service.name,
          port: entry.backend.service.port.name,
          mount: ingress.metadata.annotations["nginx.ingress.kubernetes.io/x-forwarded-prefix"],
          pathType: entry.pathType,
        };
      }
    }
  }
  return routes;
}

const WEB = `  web:
    module: app.mjs
    instances: 3
    routes: [{ host: hello.example.com }, { path: /hello }]
    health: { path: /healthz, interval: 10s, timeout: 3s }
    env: { NODE_ENV: production, GREETING: "hi there" }
    max_requests: 500
    timeout: 20s
    graceful_timeout: 25s
`;

describe("export k8s", () => {
  it("writes valid manifests a user can read: a worker app with host and path routes and a health path needs no --force", async () => {
    const { file } = configDir(WEB);
    const { text, docs } = await exportK8s(file, "--image", "registry.example.com/shop:1.2", "--namespace", "shop");
    expect(text).not.toContain("--force");
    for (const doc of docs) expect(doc.metadata.namespace).toBe("shop");

    const deployment = find(docs, "Deployment", "web");
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pod = deployment.spec.template.spec;
    // graceful_timeout 25 s, the worker's 2 s exit margin, and the 5 s pre-stop pause.
    expect(pod.terminationGracePeriodSeconds).toBe(32);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const [container] = pod.containers;
    expect(container.image).toBe("registry.example.com/shop:1.2");
    const argv: string[] = container.command;
    // max_requests and timeout make the worker leave by design: the arbiter replaces it inside the container.
    expect(argv.slice(0, 6)).toEqual(["node", "/app/dist/cli/bin.js", "serve", "/app/app.mjs", "--workers", "1"]);
    expect(argv).not.toContain("--no-arbiter");
    expect(flag(argv, "--http")).toBe("0.0.0.0:8000");
    expect(flag(argv, "--max-requests")).toBe("500");
    expect(flag(argv, "--timeout")).toBe("20000ms");
    expect(flag(argv, "--graceful-timeout")).toBe("25000ms");
    expect(flag(argv, "--script-name-header")).toBe("x-forwarded-prefix");
    expect(flag(argv, "--script-name")).toBe("/hello");
    expect(argv).not.toContain("--allow-trace");
    expect(container.ports).toEqual([{ name: "http", containerPort: 8000, protocol: "TCP" }]);
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet.path).toBe("/healthz");
      expect(probe.httpGet.port).toBe("http");
      expect(probe.periodSeconds).toBe(10);
      expect(probe.timeoutSeconds).toBe(3);
    }
    expect(container.readinessProbe.failureThreshold).toBe(1);
    expect(container.resources).toBeUndefined();
    // An exec of sleep(1), which every cluster accepts (the `sleep` action needs Kubernetes 1.30).
    expect(container.lifecycle).toEqual({ preStop: { exec: { command: ["sleep", "5"] } } });
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);

    const configMap = find(docs, "ConfigMap", "web-env");
    expect(configMap.data).toEqual({ NODE_ENV: "production", GREETING: "hi there" });
    expect(container.envFrom).toEqual([{ configMapRef: { name: "web-env" } }]);

    const service = find(docs, "Service", "web");
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(service.spec.ports).toEqual([{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }]);
    expect(deployment.spec.template.metadata.labels["app.kubernetes.io/name"]).toBe("web");

    // Each route to the Service's port; the mount is what the worker gets as SCRIPT_NAME.
    expect(ingressRoutes(docs)).toEqual({
      "hello.example.com/": { service: "web", port: "http", mount: "/", pathType: "Prefix" },
      "*/hello": { service: "web", port: "http", mount: "/hello", pathType: "Prefix" },
    });
    const ingress = find(docs, "Ingress", "web-1");
    expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]).toBe("1m");
    expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]).toBe("60");
    expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-next-upstream-tries"]).toBe("3");
  });

  it("keeps the router's precedence: a host route beats any-host routes, which still reach a host whose routes do not cover them", async () => {
    const { file } = configDir(`  shop:
    module: app.mjs
    routes: [{ host: shop.example.com, path: /shop }, { host: www.example.com }]
  api:
    command: "node server.js"
    routes: [{ path: /api }]
`);
    const { docs } = await exportK8s(file);
    const routes = ingressRoutes(docs);
    expect(Object.keys(routes).sort()).toEqual(["*/api", "shop.example.com/api", "shop.example.com/shop", "www.example.com/"]);
    expect(routes["shop.example.com/api"]!.service).toBe("api");
    // A command app gets every path as sent: no mount header.
    expect(routes["*/api"]!.mount).toBeUndefined();
    const api = find(docs, "Deployment", "api").spec.template.spec.containers[0];
    expect(api.command).toEqual(["sh", "-c", "exec node server.js"]);
    expect(api.env).toEqual([{ name: "PORT", value: "8000" }]);
    // No health path: the pod is checked by its port.
    expect(api.readinessProbe.tcpSocket).toEqual({ port: "http" });
  });

  it("adds TLS for every host, with the Secret to create named at the top", async () => {
    const { dir, file } = configDir(WEB, "proxy:\n  tls: { cert: cert.pem, key: key.pem }\n");
    writeFileSync(path.join(dir, "cert.pem"), "");
    writeFileSync(path.join(dir, "key.pem"), "");
    const { text, docs } = await exportK8s(file);
    const hosted = docs.find((doc) => doc.kind === "Ingress" && doc.spec.rules.some((rule: Doc) => rule.host === "hello.example.com"))!;
    expect(hosted.spec.tls).toEqual([{ hosts: ["hello.example.com"], secretName: expect.stringMatching(/-tls$/) }]);
    expect(text).toContain(`# HTTPS: create the certificate's Secret first: kubectl create secret tls ${hosted.spec.tls[0].secretName}`);
    // ingress-nginx speaks HTTP/2 as the stack does by default; turning it off for one stack is not an Ingress's to say.
    writeFileSync(file, readFileSync(file, "utf8").replace("key: key.pem }", "key: key.pem, http2: false }"));
    const refused = await runCli(["export", "k8s", "-c", file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/proxy\.tls\.http2: ingress-nginx offers HTTP\/2 to every Ingress at once/);
  });

  it("refuses a balance Kubernetes cannot express, naming its key and writing nothing; --force writes it with the difference on top", async () => {
    const { dir, file } = configDir(WEB.replace("    instances: 3\n", "    instances: 3\n    balance: random_two\n"));
    const out = path.join(dir, "k8s.yaml");
    const refused = await runCli(["export", "k8s", "-c", file, "-o", out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("nothing was written");
    expect(refused.stderr).toContain("apps.web.balance");
    expect(existsSync(out)).toBe(false);

    const forced = await runCli(["export", "k8s", "-c", file, "-o", out, "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    const text = readFileSync(out, "utf8");
    const comments = text.split("\n---\n")[0]!.split("\n");
    expect(comments.every((line) => line.startsWith("#"))).toBe(true);
    expect(comments.some((line) => line.startsWith("#   apps.web.balance: random_two"))).toBe(true);
    expect(find(validated(text), "Deployment", "web").spec.replicas).toBe(3);
  });

  it("refuses rate_limit, conn_limit, compress and error_pages, which ingress-nginx's annotations cannot say as configured, naming each key", async () => {
    const { file } = configDir(
      WEB.replace("    instances: 3\n", "    instances: 3\n    rate_limit: { rate: 10r/s, burst: 20 }\n    conn_limit: { max: 5 }\n    compress: {}\n    error_pages: { 5xx: app.mjs }\n"),
      "proxy:\n  error_pages: { 404: app.mjs }\n",
    );
    const refused = await runCli(["export", "k8s", "-c", file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.rate_limit: ingress-nginx's limit-rps annotations");
    expect(refused.stderr).toContain("apps.web.conn_limit: ingress-nginx's limit-connections annotation");
    expect(refused.stderr).toContain("apps.web.compress: ingress-nginx compresses for the whole controller");
    // Custom pages need a default backend of one's own (custom-http-errors): a difference, on the stack and on the app.
    expect(refused.stderr).toContain("proxy.error_pages: ingress-nginx serves custom error pages only from a default backend");
    expect(refused.stderr).toContain("apps.web.error_pages: ingress-nginx serves custom error pages only from a default backend");
  });

  it("writes https_redirect as ssl-redirect, and refuses headers, trailing_slash and a redirect app, naming each key", async () => {
    const redirect = "  moved:\n    redirect: { to: https://example.com }\n    routes: [{ path: /old }]\n";
    const app = WEB.replace("    instances: 3\n", "    instances: 3\n    headers: { X-Frame-Options: DENY }\n    trailing_slash: add\n");
    const { dir, file } = configDir(`${app}${redirect}`, "proxy:\n  tls: { cert: cert.pem, key: key.pem }\n  https_redirect: {}\n");
    writeFileSync(path.join(dir, "cert.pem"), "");
    writeFileSync(path.join(dir, "key.pem"), "");
    const refused = await runCli(["export", "k8s", "-c", file]);
    expect(refused.code).toBe(1);
    for (const key of ["apps.web.headers: ", "apps.web.trailing_slash: ", "apps.moved.redirect: "]) expect(refused.stderr).toContain(key);
    expect(refused.stderr).not.toContain("proxy.https_redirect");
    const { docs } = await exportK8s(file, "--force");
    const ingress = docs.find((doc) => doc.kind === "Ingress")!;
    expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/ssl-redirect"]).toBe("true");
  });

  it("runs the worker alone (--no-arbiter) only when it never leaves by itself: no max_requests, no timeout", async () => {
    const { file } = configDir(WEB.replace("    max_requests: 500\n", "").replace("    timeout: 20s\n", "    timeout: 0\n"));
    const argv: string[] = find((await exportK8s(file)).docs, "Deployment", "web").spec.template.spec.containers[0].command;
    expect(argv.slice(0, 5)).toEqual(["node", "/app/dist/cli/bin.js", "serve", "/app/app.mjs", "--no-arbiter"]);
    expect(argv).not.toContain("--workers");
    // timeout's default (30 s) alone is enough for the arbiter.
    const { file: defaulted } = configDir(WEB.replace("    max_requests: 500\n", "").replace("    timeout: 20s\n", ""));
    const withDefault: string[] = find((await exportK8s(defaulted)).docs, "Deployment", "web").spec.template.spec.containers[0].command;
    expect(withDefault.slice(4, 6)).toEqual(["--workers", "1"]);
  });

  it("refuses max_memory, a changed restart and a json access log, naming each key; --force writes the limit with the arbiter's share", async () => {
    const { dir, file } = configDir(
      WEB.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    max_memory: 256M\n    restart: { max_restarts: 3, backoff: 100ms, min_uptime: 5s }\n"),
      "proxy:\n  access_log: json\n",
    );
    const out = path.join(dir, "k8s.yaml");
    const refused = await runCli(["export", "k8s", "-c", file, "-o", out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.max_memory: 256 MiB");
    expect(refused.stderr).toContain("apps.web.restart: max_restarts 3, min_uptime 5000 ms:");
    expect(refused.stderr).not.toContain("backoff");
    expect(refused.stderr).toContain("proxy.access_log: json");
    expect(existsSync(out)).toBe(false);

    const { text, docs } = await exportK8s(file, "--force");
    expect(text).toMatch(/^#   apps\.web\.max_memory: 256 MiB: written as the container's memory limit \(320 MiB, with the arbiter's share\)/m);
    expect(text).toMatch(/^#   apps\.web\.restart: .*CrashLoopBackOff/m);
    const container = find(docs, "Deployment", "web").spec.template.spec.containers[0];
    // 256 MiB for the worker, 64 MiB for the arbiter beside it.
    expect(container.resources.limits.memory).toBe("320Mi");
    // A worker alone has the limit to itself.
    writeFileSync(file, `apps:\n  web:\n    module: app.mjs\n    routes: [{ path: / }]\n    timeout: 0\n    max_memory: 256M\n`);
    const alone = find((await exportK8s(file, "--force")).docs, "Deployment", "web").spec.template.spec.containers[0];
    expect(alone.command).toContain("--no-arbiter");
    expect(alone.resources.limits.memory).toBe("256Mi");
  });

  it("needs no --force for restart's defaults written out nor for access_log off, which every Ingress says", async () => {
    const { file } = configDir(
      WEB.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    restart: { max_restarts: 10, backoff: 100ms, min_uptime: 1s }\n"),
      "proxy:\n  access_log: \"off\"\n",
    );
    const { text, docs } = await exportK8s(file);
    expect(text).not.toContain("--force");
    const ingresses = docs.filter((doc) => doc.kind === "Ingress");
    expect(ingresses.length).toBe(2);
    for (const ingress of ingresses) expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/enable-access-log"]).toBe("false");
    // With the default (combined), the controller logs as it does by default.
    const { docs: logged } = await exportK8s(configDir(WEB).file);
    for (const ingress of logged.filter((doc) => doc.kind === "Ingress")) {
      expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/enable-access-log"]).toBeUndefined();
    }
  });

  it("leaves a static app out and refuses a wildcard host, naming each key; --force writes the rest", async () => {
    const { dir, file } = configDir(`  web:
    module: app.mjs
    routes: [{ host: "*.example.com" }]
  site:
    static: public
    routes: [{ path: /static }]
`);
    mkdirSync(path.join(dir, "public"));
    const refused = await runCli(["export", "k8s", "-c", file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.routes[0].host");
    expect(refused.stderr).toContain("apps.site.static");
    expect(refused.stdout).toBe("");
    const { text, docs } = await exportK8s(file, "--force");
    expect(text).toMatch(/^#   apps\.site\.static: /m);
    expect(docs.filter((doc) => doc.metadata.name === "site")).toEqual([]);
    expect(ingressRoutes(docs)).toEqual({ "*.example.com/": { service: "web", port: "http", mount: "/", pathType: "Prefix" } });
  });

  it("writes the paths where the image has the config (--config-path, --cli), and refuses a module outside the config's folder", async () => {
    const { file } = configDir(WEB);
    const { docs } = await exportK8s(file, "--config-path", "/srv/shop/tsgi.yaml", "--cli", "/usr/local/lib/node_modules/tsgi-stack/dist/cli/bin.js");
    const container = find(docs, "Deployment", "web").spec.template.spec.containers[0];
    expect(container.command.slice(0, 4)).toEqual(["node", "/usr/local/lib/node_modules/tsgi-stack/dist/cli/bin.js", "serve", "/srv/shop/app.mjs"]);
    expect(container.workingDir).toBe("/srv/shop");

    const outside = mkdtempSync(path.join(os.tmpdir(), "tsgi-k8s-outside-"));
    dirs.push(outside);
    writeFileSync(path.join(outside, "app.mjs"), MOUNT_ECHO);
    writeFileSync(file, `apps:\n  web:\n    module: ${path.join(outside, "app.mjs")}\n    routes: [{ path: / }]\n`);
    const refused = await runCli(["export", "k8s", "-c", file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.module");
  });

  it("the container's command, run here, answers its probe, mounts routed requests as the stack's proxy would, recycles in place and drains on SIGTERM", async () => {
    // max_requests 3: recycled every few requests; graceful_timeout 1 s: the drain's deadline comes soon.
    const { dir, file } = configDir(WEB.replace("max_requests: 500", "max_requests: 3").replace("graceful_timeout: 25s", "graceful_timeout: 1s"));
    const { docs } = await exportK8s(file);
    const container = find(docs, "Deployment", "web").spec.template.spec.containers[0];
    const argv: string[] = container.command;
    // The same arguments, with this machine's paths for the image's and a free loopback port for 0.0.0.0:8000.
    expect(argv[1]).toBe("/app/dist/cli/bin.js");
    expect(argv[2]).toBe("serve");
    const args = argv.slice(3).map((arg) => (arg.startsWith("/app/") ? path.join(dir, arg.slice("/app/".length)) : arg === "0.0.0.0:8000" ? "127.0.0.1:0" : arg));
    expect(BIN).toMatch(/cli\/bin\.js$/);
    const worker = await serve(args);
    const probe = container.readinessProbe.httpGet;
    const headers = Object.fromEntries((probe.httpHeaders ?? []).map(({ name, value }: Doc) => [name, value]));
    const probed = await httpGet(`${worker.url}${probe.path}`, headers);
    expect(probed.status).toBe(200);
    expect(JSON.parse(probed.body)).toEqual({ scriptName: "", pathInfo: "/healthz" });

    const mountHeader = flag(argv, "--script-name-header")!;
    const routes = ingressRoutes(docs);
    // Through the path route: ingress-nginx sends the Ingress' x-forwarded-prefix.
    const routed = await httpGet(`${worker.url}/hello/rest`, { [mountHeader]: routes["*/hello"]!.mount! });
    expect(JSON.parse(routed.body)).toEqual({ scriptName: "/hello", pathInfo: "/rest" });
    // Through the host route, a path that happens to start with /hello is not mounted, as in the stack.
    const hosted = await httpGet(`${worker.url}/hello/rest`, { [mountHeader]: routes["hello.example.com/"]!.mount! });
    expect(JSON.parse(hosted.body)).toEqual({ scriptName: "", pathInfo: "/hello/rest" });
    // With no proxy in front (a client inside the cluster), the one mount there is.
    const direct = await httpGet(`${worker.url}/hello/rest`);
    expect(JSON.parse(direct.body)).toEqual({ scriptName: "/hello", pathInfo: "/rest" });
    const outside = await httpGet(`${worker.url}/other`);
    expect(JSON.parse(outside.body)).toEqual({ scriptName: "", pathInfo: "/other" });

    // Recycling: each worker leaves after 3 requests; the arbiter (the container's process) replaces it while it
    // still serves, so every request on the same listener is answered, by one worker pid after another.
    expect(argv).toContain("--workers");
    const pids = new Set<string>();
    await waitFor(
      "three workers in turn",
      async () => {
        const batch = await Promise.all([1, 2, 3, 4].map(() => httpGet(`${worker.url}/hello/x`)));
        for (const response of batch) {
          expect(response.status).toBe(200);
          pids.add(String(response.headers["x-pid"]));
        }
        return pids.size >= 3 ? true : undefined;
      },
      20_000,
      50,
    );
    expect(pids.has(String(worker.pid))).toBe(false);
    expect(worker.child.exitCode).toBeNull();
    expect(worker.stdout()).toMatch(/max-requests 3\): recycling/);

    // SIGTERM (what the kubelet sends the container's process after the pre-stop pause): a request in flight is
    // answered, one past graceful_timeout is dropped, and the process exits 0 within graceful_timeout and the
    // worker's exit margin, the part of the pod's grace period after the pause.
    const answered = httpGet(`${worker.url}/hello/x?sleep=300`);
    const dropped = httpGet(`${worker.url}/hello/x?sleep=10000`).then(
      () => "answered",
      () => "dropped",
    );
    await sleep(100);
    const signalled = Date.now();
    process.kill(worker.pid, "SIGTERM");
    expect((await answered).status).toBe(200);
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(killTimeoutMs(1000));
    expect(await dropped).toBe("dropped");
  });
});
